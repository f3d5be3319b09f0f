"""Partner keys and the event log's pure rules: key format and hashing, rotation and
revocation, cursors (tampering refused), type filters, the gap rules."""

from datetime import UTC, datetime, timedelta

import pytest

from partners.apps.domain import AppRevoked, InvalidApp, PartnerApp, key_hash
from partners.events.domain import (
    CursorCodec,
    InvalidEventQuery,
    TypeFilter,
    abandoned,
    contact_of,
    late,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
KNOWN = ["gala.opportunity.won.v1", "gala.opportunity.lost.v1", "gala.payment.paid.v1"]


def test_a_key_is_256_random_bits_kept_as_its_sha256_and_rotation_replaces_it() -> None:
    app, key = PartnerApp.create(venue_id="v", name="ERP", description=None, now=NOW)
    assert key.startswith("gala_pk_") and len(key) == 8 + 43
    assert app.key_hash == key_hash(key) and key not in repr(app)
    assert [type(e).__name__ for e in app.collect_events()] == ["PartnerAppCreated"]
    rotated = app.rotate_key(NOW)
    assert rotated != key and app.key_hash == key_hash(rotated)
    app.revoke(NOW)
    assert not app.active
    with pytest.raises(AppRevoked):
        app.rotate_key(NOW)
    with pytest.raises(InvalidApp):
        PartnerApp.create(venue_id="v", name="  ", description=None, now=NOW)


def test_a_cursor_is_the_venues_own_and_tampering_is_refused() -> None:
    cursors = CursorCodec("s" * 40)
    cursor = cursors.encode("venue-a", 42)
    assert cursors.decode("venue-a", cursor) == 42
    body, _, mac = cursor.partition(".")
    for bad in (f"{body}A.{mac}", f"{body}.{mac[::-1]}", "x", body):
        with pytest.raises(InvalidEventQuery):
            cursors.decode("venue-a", bad)
    with pytest.raises(InvalidEventQuery):
        cursors.decode("venue-b", cursor)
    with pytest.raises(InvalidEventQuery):
        CursorCodec("t" * 40).decode("venue-a", cursor)


def test_types_are_exact_or_an_aggregates_and_unknown_ones_are_refused() -> None:
    chosen = TypeFilter.parse(["gala.opportunity.won.v1,gala.payment.*"], KNOWN)
    assert chosen.matches("gala.opportunity.won.v1") and chosen.matches("gala.payment.paid.v1")
    assert not chosen.matches("gala.opportunity.lost.v1")
    assert TypeFilter.parse([], KNOWN).matches("anything")
    for bad in (["gala.opportunity.wn.v1"], ["gala.nothing.*"]):
        with pytest.raises(InvalidEventQuery):
            TypeFilter.parse(bad, KNOWN)


def test_a_missing_position_is_given_up_only_past_the_grace_period() -> None:
    grace = timedelta(seconds=30)
    assert not abandoned(None, NOW, grace)  # nothing later: a writer may be at it
    assert not abandoned(NOW - timedelta(seconds=29), NOW, grace)
    assert abandoned(NOW - timedelta(seconds=31), NOW, grace)
    assert not late(NOW - timedelta(seconds=9), NOW, grace)
    assert late(NOW - timedelta(seconds=11), NOW, grace)


def test_what_an_event_is_about_for_erasure() -> None:
    assert contact_of("gala.contact.updated.v1", "c1", {}) == "c1"
    assert contact_of("gala.opportunity.won.v1", "o1", {"contactId": "c2"}) == "c2"
    assert contact_of("gala.task.created.v1", "t1", {"contactId": None}) is None
