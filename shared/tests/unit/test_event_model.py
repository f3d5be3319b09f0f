import pytest

from gala.events.model import Event, UnknownEventType, registry


class GadgetShipped(Event, type="gala.gadget.shipped.v1", topic="gala.depot.gadget"):
    gadget_id: str
    venue_id: str


def test_declared_events_are_registered_by_type():
    assert registry.get("gala.gadget.shipped.v1") is GadgetShipped
    assert "gala.gadget.shipped.v1" in registry
    assert GadgetShipped.TOPIC == "gala.depot.gadget"


def test_payloads_use_camel_case_and_round_trip():
    event = GadgetShipped(gadget_id="g-1", venue_id="v-1")
    assert event.to_json() == b'{"gadgetId":"g-1","venueId":"v-1"}'
    assert GadgetShipped.from_json(event.to_json()) == event


def test_unknown_fields_are_tolerated_for_additive_changes():
    event = GadgetShipped.from_json(b'{"gadgetId":"g","venueId":"v","addedLater":1}')
    assert event == GadgetShipped(gadget_id="g", venue_id="v")


def test_unknown_type_is_reported():
    with pytest.raises(UnknownEventType):
        registry.get("gala.gadget.vanished.v1")


@pytest.mark.parametrize(
    ("event_type", "topic"),
    [
        ("gadget.shipped.v1", "gala.depot.gadget"),
        ("gala.gadget.shipped", "gala.depot.gadget"),
        ("gala.gadget.shipped.v1", "depot.gadget"),
        ("gala.gadget.shipped.v1", "gala.depot.gadget.extra"),
    ],
)
def test_type_and_topic_names_follow_the_convention(event_type, topic):
    with pytest.raises(ValueError):

        class Bad(Event, type=event_type, topic=topic):
            pass


def test_one_type_cannot_be_declared_by_two_classes():
    with pytest.raises(ValueError, match="already declared"):

        class Impostor(Event, type="gala.gadget.shipped.v1", topic="gala.depot.gadget"):
            pass
