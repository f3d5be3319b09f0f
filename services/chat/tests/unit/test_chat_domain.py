"""Who takes part in a conversation, and what a message may be, without infrastructure."""

import pytest

from chat.conversations.domain import Conversation, NotAMember, UserCopy, as_known
from chat.messages.domain import InvalidMessage, check_content, system_message_id
from gala.contracts.chat import MessageType
from gala.identity import Principal, Role


def who(role: Role, user: str = "u-1", venue: str = "v") -> Principal:
    return Principal(user_id=user, venue_id=venue, role=role)


def test_members_are_the_clients_the_team_and_assigned_staff():
    conversation = Conversation("p", "v", client_ids=("client-1",), assignees={"t": "staff-1"})
    assert conversation.is_member(who(Role.ADMIN))
    assert conversation.is_member(who(Role.PROJECT_MANAGER))
    assert conversation.is_member(who(Role.CLIENT, "client-1"))
    assert conversation.is_member(who(Role.STAFF, "staff-1"))
    for outsider in (
        who(Role.CLIENT, "client-2"),
        who(Role.STAFF, "staff-2"),
        who(Role.SALES),
        who(Role.ADMIN, venue="other"),
    ):
        assert not conversation.is_member(outsider)
        with pytest.raises(NotAMember):
            conversation.ensure_member(outsider)


@pytest.mark.parametrize(
    ("kind", "content", "metadata"),
    [
        (MessageType.TEXT, "", None),
        (MessageType.TEXT, "x" * 4001, None),
        (MessageType.FILE, "a file", None),
        (MessageType.FILE, "a file", {"name": "x"}),
        (MessageType.SYSTEM, "hi", None),
        (MessageType.TEXT, "hi", {"blob": "x" * 5000}),
    ],
)
def test_what_a_message_may_not_be(kind, content, metadata):
    with pytest.raises(InvalidMessage):
        check_content(kind, content, metadata)


def test_a_system_message_id_derives_from_its_event():
    assert system_message_id("evt-1") == system_message_id("evt-1") != system_message_id("evt-2")
    check_content(MessageType.FILE, "", {"url": "https://files.example/plan.pdf"})


def test_a_caller_is_judged_by_the_copy_of_the_user_as_well_as_by_the_token():
    conversation = Conversation("p", "v", client_ids=("client-1",), assignees={"t": "staff-1"})
    manager = who(Role.PROJECT_MANAGER, "pm-1")

    def copy(role: Role | str, active: bool = True, user: str = "pm-1") -> UserCopy:
        return UserCopy(user, "v", str(role), active)

    assert conversation.admits(manager, None) == manager  # no event read yet: the token
    assert conversation.admits(manager, copy(Role.PROJECT_MANAGER)) == manager
    promoted = conversation.admits(manager, copy(Role.ADMIN))  # still in, with the new role
    assert promoted is not None and promoted.role is Role.ADMIN
    assert conversation.admits(manager, copy(Role.SALES)) is None  # demoted: out
    assert conversation.admits(manager, copy(Role.PROJECT_MANAGER, active=False)) is None
    assert conversation.admits(manager, copy("NO_SUCH_ROLE")) is None
    # the token's role counts as well: an unassigned STAFF token is out whatever the copy
    assert conversation.admits(who(Role.STAFF, "pm-1"), copy(Role.ADMIN)) is None
    assert as_known(manager, copy(Role.PROJECT_MANAGER, active=False)) is None
    assert as_known(manager, copy(Role.ADMIN, user="someone-else")) is None
