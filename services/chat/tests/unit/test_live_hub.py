"""The hub's bounded queues: a client that stops reading never holds up the others."""

from chat.live.api import SendRate
from chat.live.hub import LiveHub
from gala.identity import Principal, Role

ADA = Principal(user_id="ada", venue_id="v", role=Role.CLIENT)
BOB = Principal(user_id="bob", venue_id="v", role=Role.ADMIN)


async def test_a_full_queue_marks_its_socket_too_slow_and_spares_the_others():
    hub = LiveHub(queue_size=2)
    slow, fine = hub.join("p", ADA), hub.join("p", BOB)
    other = hub.join("q", BOB)
    for n in range(3):
        hub.deliver("p", {"type": "message-sent", "seq": n})
        fine.queue.get_nowait()  # this one keeps reading
    assert slow.overflowed.is_set() and not fine.overflowed.is_set()
    assert other.queue.empty()
    hub.leave(slow)
    hub.leave(fine)
    assert not hub.watches("p") and hub.watches("q")


def test_a_user_sends_at_most_the_rate_per_minute():
    rate = SendRate(per_minute=3)
    assert [rate.allow("ada") for _ in range(4)] == [True, True, True, False]
    assert rate.allow("bob")


async def test_a_revoked_socket_receives_nothing_and_sockets_are_found_by_user():
    hub = LiveHub(queue_size=4)
    ada_here, ada_there, bob = hub.join("p", ADA), hub.join("q", ADA), hub.join("p", BOB)
    assert set(hub.of_user("v", "ada")) == {ada_here, ada_there}
    assert hub.of_user("other-venue", "ada") == []
    assert set(hub.of_project("p")) == {ada_here, bob}
    assert set(hub.everyone()) == {ada_here, ada_there, bob}
    ada_here.revoked.set()
    hub.deliver("p", {"type": "typing", "userId": "bob"})
    assert ada_here.queue.empty() and bob.queue.qsize() == 1
    hub.leave(ada_here)
    hub.leave(ada_there)
    assert hub.of_user("v", "ada") == [] and hub.of_project("p") == [bob]
