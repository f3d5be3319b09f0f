"""The domain refuses the PARTNER role for a person, whatever the API let through."""

from datetime import UTC, datetime

import pytest

from contacts.users.domain import InvalidUser, User, UserPatch
from gala.identity import Principal, Role


def test_a_user_is_never_registered_nor_patched_as_partner() -> None:
    now = datetime.now(UTC)
    with pytest.raises(InvalidUser):
        User.register(
            venue_id="v", auth_subject="s", email="a@b.example", role=Role.PARTNER, now=now
        )
    user = User.register(
        venue_id="v", auth_subject="s", email="a@b.example", role=Role.STAFF, now=now
    )
    admin = Principal(user_id="admin", venue_id="v", role=Role.ADMIN)
    with pytest.raises(InvalidUser):
        user.update(UserPatch(role=Role.PARTNER), actor=admin, now=now)
    assert user.role is Role.STAFF
