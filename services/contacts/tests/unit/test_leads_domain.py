from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from contacts.leads.domain import (
    Contact,
    ContactNotFound,
    ContactPatch,
    InvalidContact,
    InvalidTransition,
    normalize_phone,
)
from gala.contracts.contacts import (
    ContactCreated,
    ContactErased,
    ContactHeatChanged,
    ContactStatus,
    ContactStatusChanged,
    ContactUpdated,
    LeadSource,
)
from gala.contracts.pipeline import (
    OpportunityCreated,
    OpportunityLost,
    OpportunityUpdated,
    OpportunityWon,
)
from gala.identity import Role

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def new(**kw) -> Contact:
    values = {"venue_id": "v", "name": " Ada  Lovelace ", "email": " Ada@Example.COM ", "now": NOW}
    contact = Contact.create(**{**values, **kw})
    contact.collect_events()
    return contact


def opportunity(kind=OpportunityCreated, oid="o1", **kw):
    values = {
        "opportunity_id": oid,
        "venue_id": "v",
        "contact_id": "c",
        "name": "Wedding",
        "stage": "new",
        **kw,
    }
    if kind is OpportunityWon:
        values["won_at"] = NOW
    if kind is OpportunityLost:
        values.update(lost_at=NOW, reason="budget")
    return kind(**values)


def test_creation_normalises_and_announces():
    contact = Contact.create(
        venue_id="v",
        name=" Ada  Lovelace ",
        email=" Ada@Example.COM ",
        phone="+44 (20) 7946-0958",
        lead_source=LeadSource.REFERRAL,
        now=NOW,
    )
    assert (contact.name, contact.email, contact.phone) == (
        "Ada Lovelace",
        "ada@example.com",
        "+442079460958",
    )
    (created,) = contact.collect_events()
    assert isinstance(created, ContactCreated)
    assert created.lead_heat == contact.lead_heat == 25  # a referral
    assert contact.heat_reasons[0].rule == "source"


@pytest.mark.parametrize("phone", ["12", "call me", "+1 555 12345678901234", "555-CALL"])
def test_implausible_phones_are_refused(phone):
    with pytest.raises(InvalidContact):
        normalize_phone(phone)


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@b", "two@@example.com"])
def test_bad_emails_are_refused(email):
    with pytest.raises(InvalidContact):
        new(email=email)


def test_extra_fields_are_kept_as_given_up_to_a_size():
    odd = {"a.b": 1, "$weird": [1, {"x": None}], "ünï": "ok"}
    assert new(custom_fields=odd).custom_fields == odd
    with pytest.raises(InvalidContact):
        new(custom_fields={"big": "x" * 20_000})
    with pytest.raises(InvalidContact):
        new(social_profiles=["not", "an", "object"])


def test_the_lifecycle_moves_one_step_at_a_time():
    contact = new()
    for status in ("PROSPECT", "LEAD", "QUALIFIED", "CUSTOMER"):
        contact.move_to(ContactStatus(status), role=Role.SALES, now=NOW)
    events = contact.collect_events()
    assert [e.status for e in events] == ["PROSPECT", "LEAD", "QUALIFIED", "CUSTOMER"]
    assert all(isinstance(e, ContactStatusChanged) for e in events)


@pytest.mark.parametrize(
    ("start", "target"),
    [("UNQUALIFIED", "LEAD"), ("LEAD", "PROSPECT"), ("CUSTOMER", "LOST"), ("LOST", "LEAD")],
)
def test_invalid_jumps_are_conflicts_unless_admin(start, target):
    contact = new(status=ContactStatus(start)) if start != "LOST" else new()
    if start == "LOST":
        contact.move_to(ContactStatus.LOST, role=Role.SALES, now=NOW)
    with pytest.raises(InvalidTransition):
        contact.move_to(ContactStatus(target), role=Role.SALES, now=NOW)
    contact.move_to(ContactStatus(target), role=Role.ADMIN, now=NOW)
    assert contact.status == target


def test_lost_is_reachable_from_any_open_state():
    for start in ("UNQUALIFIED", "PROSPECT", "LEAD", "QUALIFIED"):
        contact = new(status=ContactStatus(start))
        contact.move_to(ContactStatus.LOST, role=Role.SALES, now=NOW)
        assert contact.status == ContactStatus.LOST


def test_an_unchanged_update_announces_nothing():
    contact = new()
    contact.update(ContactPatch(name="Ada Lovelace", email="ADA@example.com"), NOW)
    assert contact.collect_events() == []
    contact.update(ContactPatch(phone="+1 555 0100 200"), NOW)
    assert [type(e) for e in contact.collect_events()] == [ContactUpdated]


def test_a_new_source_recomputes_heat():
    contact = new(lead_source=LeadSource.OTHER)
    contact.update(ContactPatch(lead_source=LeadSource.REFERRAL), NOW)
    updated, heat = contact.collect_events()
    assert isinstance(updated, ContactUpdated)
    assert isinstance(heat, ContactHeatChanged)
    assert (heat.previous_heat, heat.lead_heat) == (5, 25)


def test_opportunities_move_the_contact_and_heat_it():
    contact = new()
    soon = NOW + timedelta(days=20)
    contact.apply_opportunity(
        opportunity(event_date=soon, guest_count=150, value=Decimal("12000.00"), currency="EUR"),
        NOW,
    )
    assert contact.status == ContactStatus.LEAD
    rules = {r.rule: r.points for r in contact.heat_reasons}
    assert rules == {"source": 5, "event-date": 25, "guests": 10, "value": 10}
    assert contact.lead_heat == 50
    contact.apply_opportunity(opportunity(OpportunityWon, event_date=soon), NOW)
    assert contact.status == ContactStatus.CUSTOMER


def test_a_lost_opportunity_loses_the_contact_only_when_none_is_open():
    contact = new()
    contact.apply_opportunity(opportunity(oid="o1"), NOW)
    contact.apply_opportunity(opportunity(oid="o2"), NOW)
    contact.apply_opportunity(opportunity(OpportunityLost, oid="o1"), NOW)
    assert contact.status == ContactStatus.LEAD
    contact.apply_opportunity(opportunity(OpportunityLost, oid="o2"), NOW)
    assert contact.status == ContactStatus.LOST
    contact.apply_opportunity(opportunity(oid="o3"), NOW)  # a new inquiry reopens
    assert contact.status == ContactStatus.LEAD


def test_a_customer_stays_a_customer_when_another_opportunity_is_lost():
    contact = new()
    contact.apply_opportunity(opportunity(OpportunityWon, oid="o1"), NOW)
    contact.apply_opportunity(opportunity(OpportunityLost, oid="o2"), NOW)
    assert contact.status == ContactStatus.CUSTOMER


def test_applying_the_same_opportunity_twice_changes_nothing_more():
    contact = new()
    event = opportunity(OpportunityUpdated, guest_count=300)
    contact.apply_opportunity(event, NOW)
    contact.collect_events()
    contact.apply_opportunity(event, NOW)
    assert contact.collect_events() == []


def test_engagement_heats_with_caps():
    contact = new()
    contact.set_engagement(messages=3, signed=1, paid=5, now=NOW)
    contact.collect_events()
    contact.set_engagement(messages=3, signed=1, paid=5, now=NOW)
    assert contact.collect_events() == []  # the same counts again: nothing
    rules = {r.rule: r.points for r in contact.heat_reasons}
    assert rules == {"source": 5, "messages": 6, "signed": 10, "paid": 15}


def test_each_new_inquiry_heats_up_to_a_cap_and_a_lower_count_changes_nothing():
    contact = new(lead_source=LeadSource.WEBSITE)
    before = contact.lead_heat
    contact.count_inquiries(1, NOW)
    (heat,) = contact.collect_events()
    assert isinstance(heat, ContactHeatChanged)
    assert (heat.previous_heat, heat.lead_heat) == (before, before + 5)
    assert {r.rule: r.detail for r in contact.heat_reasons}["inquiries"] == "1 new inquiry(ies)"
    for late in (1, 0):  # a redelivered or late count never lowers it
        contact.count_inquiries(late, NOW)
        assert contact.collect_events() == []
    contact.count_inquiries(10, NOW)
    assert {r.rule: r.points for r in contact.heat_reasons}["inquiries"] == 15
    assert (contact.name, contact.email, contact.inquiries) == (
        "Ada Lovelace",
        "ada@example.com",
        10,
    )
    contact.erase(NOW)
    contact.collect_events()
    contact.count_inquiries(11, NOW)
    assert contact.collect_events() == [] and contact.inquiries == 10


def test_heat_never_exceeds_100():
    contact = new(lead_source=LeadSource.REFERRAL)
    contact.apply_opportunity(
        opportunity(event_date=NOW + timedelta(days=3), guest_count=500, value=Decimal(90000)),
        NOW,
    )
    contact.set_engagement(messages=50, signed=5, paid=5, now=NOW)
    assert contact.lead_heat == 100


def test_erasure_forgets_the_person_and_freezes_the_contact():
    contact = new(phone="+15550100200", custom_fields={"diet": "vegan"})
    contact.erase(NOW)
    (erased,) = contact.collect_events()
    assert isinstance(erased, ContactErased)
    assert "ada" not in erased.to_json().decode().lower()
    assert (contact.name, contact.email, contact.phone, contact.custom_fields) == (
        "",
        "",
        None,
        None,
    )
    with pytest.raises(ContactNotFound):
        contact.update(ContactPatch(name="Back"), NOW)
    contact.apply_opportunity(opportunity(), NOW)
    assert contact.collect_events() == []
