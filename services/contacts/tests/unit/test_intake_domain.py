"""Lead intake's pure rules: signatures, payloads, forms, honeypot, addresses, windows."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from contacts.intake.domain import (
    FORM_ANSWERS_FIELD,
    InvalidLead,
    InvalidPageIds,
    InvalidPageToken,
    InvalidSubmission,
    InvalidWebhook,
    PageGrant,
    PageMapping,
    RateWindow,
    WebsiteLead,
    backoff,
    holder_lost_control,
    is_bot,
    looks_like_key,
    new_intake_key,
    normalize_page_grants,
    normalize_page_ids,
    parse_graph_lead,
    parse_leadgen_webhook,
    parse_submission,
    sign,
    tokens_missing,
    verify_signature,
    verify_subscription,
    with_message,
)
from contacts.intake.schemas import WebsiteFormIn
from gala.api import client_address
from gala.contracts.contacts import LeadSource
from gala.errors import InvalidInput, UnsupportedMediaType

SECRET = "app-secret-for-tests"


# --- signatures and the handshake -------------------------------------------------------


def test_a_signature_is_the_hmac_sha256_of_the_raw_body():
    body = b'{"object":"page","entry":[]}'
    header = sign(SECRET, body)
    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    assert verify_signature(SECRET, body, header)
    assert verify_signature(SECRET, body, header.upper().replace("SHA256=", "sha256="))
    assert verify_signature(SECRET, body, f"  {header} ")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=" + "0" * 40,
        "sha256=" + "0" * 64,
        "sha256=not-hex-at-all",
        sign("another-secret", b'{"object":"page","entry":[]}'),
        sign(SECRET, b'{"object":"page","entry":[] }'),  # one byte differs
        "sha256=é" + "0" * 63,
    ],
)
def test_a_missing_or_wrong_signature_is_refused(header):
    assert not verify_signature(SECRET, b'{"object":"page","entry":[]}', header)


def test_without_an_app_secret_nothing_verifies():
    body = b"{}"
    assert not verify_signature(None, body, sign("", body))
    assert not verify_signature("", body, sign("", body))


def test_the_subscription_handshake_needs_subscribe_and_the_token():
    assert verify_subscription("tok", "subscribe", "tok")
    assert not verify_subscription("tok", "subscribe", "tok2")
    assert not verify_subscription("tok", "unsubscribe", "tok")
    assert not verify_subscription("tok", None, "tok")
    assert not verify_subscription("tok", "subscribe", None)
    assert not verify_subscription(None, "subscribe", "")
    assert not verify_subscription("", "subscribe", "")


# --- webhook payloads ------------------------------------------------------------------


def leadgen(leadgen_id="444", page_id="111", form_id="222", **extra):
    return {
        "field": "leadgen",
        "value": {
            "leadgen_id": leadgen_id,
            "page_id": page_id,
            "form_id": form_id,
            "created_time": 1_700_000_000,
            **extra,
        },
    }


def test_a_page_payload_names_its_leads_once_each():
    payload = {
        "object": "page",
        "entry": [
            {"id": "111", "time": 1, "changes": [leadgen("1"), leadgen("2"), leadgen("1")]},
            {"id": "111", "time": 2, "changes": [{"field": "feed", "value": {}}, leadgen("3")]},
        ],
    }
    notices = parse_leadgen_webhook(payload)
    assert [n.leadgen_id for n in notices] == ["1", "2", "3"]
    first = notices[0]
    assert (first.source, first.page_id, first.entry_id, first.form_id, first.created_time) == (
        LeadSource.FACEBOOK,
        "111",
        "111",
        "222",
        1_700_000_000,
    )


def test_an_instagram_payload_is_an_instagram_lead_with_numeric_ids_accepted():
    payload = {
        "object": "instagram",
        "entry": [{"id": 178, "changes": [leadgen(leadgen_id=999, page_id=None)]}],
    }
    (notice,) = parse_leadgen_webhook(payload)
    assert notice.source == LeadSource.INSTAGRAM
    assert (notice.leadgen_id, notice.page_id, notice.entry_id) == ("999", None, "178")
    assert notice.page_candidates == ["178"]


def test_the_page_candidates_are_the_leads_page_then_the_entry():
    payload = {"object": "instagram", "entry": [{"id": "178", "changes": [leadgen(page_id="5")]}]}
    assert parse_leadgen_webhook(payload)[0].page_candidates == ["5", "178"]


def test_other_objects_and_fields_are_no_leads():
    assert parse_leadgen_webhook({"object": "user", "entry": [{"changes": [leadgen()]}]}) == []
    assert parse_leadgen_webhook({"object": "page", "entry": []}) == []
    assert parse_leadgen_webhook({"object": "page", "entry": [{"id": "1"}]}) == []


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "page",
        {"entry": []},
        {"object": "page", "entry": {}},
        {"object": "page", "entry": ["x"]},
        {"object": "page", "entry": [{"changes": {}}]},
        {"object": "page", "entry": [{"changes": ["x"]}]},
        {"object": "page", "entry": [{"changes": [{"field": "leadgen"}]}]},
        {"object": "page", "entry": [{"changes": [leadgen(leadgen_id="../../me")]}]},
        {"object": "page", "entry": [{"changes": [leadgen(leadgen_id=True)]}]},
        {"object": "page", "entry": [{"changes": [leadgen(leadgen_id="")]}]},
    ],
)
def test_a_payload_not_shaped_like_a_webhook_is_invalid(payload):
    with pytest.raises(InvalidWebhook):
        parse_leadgen_webhook(payload)


def test_page_ids_are_digits_deduplicated_and_bounded():
    assert normalize_page_ids([" 123 ", "456", "123"]) == ["123", "456"]
    assert normalize_page_ids([]) == []
    for bad in (["abc"], ["12/34"], [""], ["1" * 33]):
        with pytest.raises(InvalidPageIds):
            normalize_page_ids(bad)
    with pytest.raises(InvalidPageIds):
        normalize_page_ids([str(n) for n in range(51)])


# --- Graph API leads -------------------------------------------------------------------


def graph_lead(**fields):
    return {
        "id": "444",
        "created_time": "2026-01-01T10:00:00+0000",
        "field_data": [{"name": name, "values": [value]} for name, value in fields.items()],
    }


def test_a_graph_lead_becomes_a_contacts_details_and_other_answers():
    lead = parse_graph_lead(
        graph_lead(
            email=" Ana@Example.COM ",
            full_name="Ana  Pérez",
            phone_number="+34 600 11 22 33",
            guest_count="120",
        )
    )
    assert (lead.name, lead.email, lead.phone) == ("Ana Pérez", "ana@example.com", "+34600112233")
    assert lead.answers == {"guest_count": "120"}
    assert lead.custom_fields({"kept": 1}) == {
        "kept": 1,
        FORM_ANSWERS_FIELD: {"guest_count": "120"},
    }


def test_a_graph_lead_without_a_full_name_uses_first_and_last_or_the_email():
    assert parse_graph_lead(
        graph_lead(email="a@b.example", first_name="A", last_name="B")
    ).name == ("A B")
    only_email = parse_graph_lead(graph_lead(email="a@b.example"))
    assert (only_email.name, only_email.phone, only_email.answers) == ("a@b.example", None, {})
    assert only_email.custom_fields({"kept": 1}) is None


def test_a_free_text_phone_is_kept_among_the_answers():
    lead = parse_graph_lead(graph_lead(email="a@b.example", phone_number="call me maybe"))
    assert lead.phone is None
    assert lead.answers == {"phone_number": "call me maybe"}


@pytest.mark.parametrize(
    "data",
    [None, {}, {"field_data": "x"}, graph_lead(full_name="No Email"), graph_lead(email="nope")],
)
def test_a_graph_lead_without_a_usable_email_is_invalid(data):
    with pytest.raises(InvalidLead):
        parse_graph_lead(data)


def test_backoff_doubles_and_is_capped():
    assert [backoff(n, 2, 30).total_seconds() for n in (1, 2, 3, 4, 5, 6)] == [2, 4, 8, 16, 30, 30]


# --- website forms ---------------------------------------------------------------------


def test_keys_are_long_random_and_url_safe():
    keys = {new_intake_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(len(key) == 32 and looks_like_key(key) for key in keys)  # 192 bits
    assert not looks_like_key("short")
    assert not looks_like_key("x" * 20 + "/..")


def test_a_json_body_and_a_form_body_give_the_same_fields():
    as_json = parse_submission(
        "application/json; charset=utf-8", json.dumps({"name": "Ana", "email": "a@b.example"})
    )
    as_form = parse_submission(
        "application/x-www-form-urlencoded", b"name=Ana&email=a%40b.example&website="
    )
    assert as_json == {"name": "Ana", "email": "a@b.example"}
    assert as_form == {"name": "Ana", "email": "a@b.example", "website": ""}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{not json"),
        ("application/json", b'["a list"]'),
        ("application/json", b"[" * 100_000),
        ("application/x-www-form-urlencoded", b"name=a&name=b"),
        ("application/x-www-form-urlencoded", b"name=\xff"),
        ("application/x-www-form-urlencoded", b"&".join(b"f%d=1" % n for n in range(30))),
    ],
)
def test_a_body_that_cannot_be_read_is_invalid(content_type, body):
    with pytest.raises(InvalidSubmission):
        parse_submission(content_type, body)


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "multipart/form-data; b=x"])
def test_other_media_types_are_unsupported(content_type):
    with pytest.raises(UnsupportedMediaType):
        parse_submission(content_type, b"name=a")


def test_the_honeypot_marks_bots():
    assert not is_bot({"name": "Ana"})
    assert not is_bot({"website": ""})
    assert not is_bot({"website": "   "})
    assert not is_bot({"website": None})
    assert is_bot({"website": "http://spam.example"})
    assert is_bot({"website": 1})
    assert is_bot({"website": ["x"]})


def test_a_website_lead_is_normalized_and_defaults_to_website():
    lead = WebsiteLead.of(name=" Ana  P ", email=" A@B.Example ", phone="", message="  ")
    assert lead == WebsiteLead("Ana P", "a@b.example", None, None, LeadSource.WEBSITE)
    assert WebsiteLead.of(name="A", email="a@b.example", lead_source="referral").lead_source == (
        LeadSource.REFERRAL
    )
    assert WebsiteLead.of(name="A", email="a@b.example", lead_source=" ").lead_source == (
        LeadSource.WEBSITE
    )


@pytest.mark.parametrize(
    "details",
    [
        {"email": "not-an-email"},
        {"phone": "call me"},
        {"name": "   "},
        {"name": "n" * 201},
        {"lead_source": "CARRIER_PIGEON"},
        {"message": "m" * 5001},
    ],
)
def test_invalid_website_leads_are_refused(details):
    with pytest.raises(InvalidInput):
        WebsiteLead.of(**{"name": "Ana", "email": "a@b.example", **details})


def test_the_form_refuses_unknown_fields_and_non_text_values():
    with pytest.raises(ValueError):
        WebsiteFormIn.model_validate({"name": "A", "email": "a@b.example", "company": "X"})
    with pytest.raises(ValueError):
        WebsiteFormIn.model_validate({"name": "A", "email": 5})
    with pytest.raises(ValueError):
        WebsiteFormIn.model_validate({"name": "A", "email": "a@b.example", "lead_source": "X"})
    form = WebsiteFormIn.model_validate(
        {"name": "A", "email": "a@b.example", "leadSource": "DIRECT"}
    )
    assert form.to_lead().lead_source == LeadSource.DIRECT


def test_a_message_joins_the_custom_fields_others_kept():
    assert with_message({"a": 1, "message": "old"}, "new") == {"a": 1, "message": "new"}
    assert with_message(None, "hi") == {"message": "hi"}


# --- addresses and windows -------------------------------------------------------------


def test_the_client_address_is_the_one_our_proxies_saw():
    assert client_address(None, "10.0.0.9", 1) == "10.0.0.9"
    assert client_address("203.0.113.7", "10.0.0.9", 1) == "203.0.113.7"
    # whatever the caller claims before the gateway's own hop is ignored
    assert client_address("1.2.3.4, 203.0.113.7", "10.0.0.9", 1) == "203.0.113.7"
    # behind a load balancer too (two proxies of ours)
    assert client_address("1.2.3.4, 203.0.113.7, 10.1.1.1", "10.0.0.9", 2) == "203.0.113.7"
    assert client_address("203.0.113.7", "10.0.0.9", 2) == "203.0.113.7"
    assert client_address("203.0.113.7", "10.0.0.9", 0) == "10.0.0.9"
    assert client_address(" , ", "10.0.0.9", 1) == "10.0.0.9"
    assert client_address(None, None, 1) == "unknown"


def test_an_ipv6_client_counts_by_its_64():
    one = client_address("2001:db8:1:2:aaaa::1", None, 1)
    assert one == client_address("2001:db8:1:2:bbbb::9", None, 1) == "2001:db8:1:2::/64"
    assert client_address("2001:db8:1:3::1", None, 1) != one
    assert client_address("::ffff:203.0.113.7", None, 1) == "203.0.113.7"


def test_a_window_is_a_minute_and_tells_how_long_to_wait():
    now = datetime(2026, 1, 1, 10, 0, 42, 500_000, tzinfo=UTC)
    window = RateWindow.of(now)
    assert window.ends_at == datetime(2026, 1, 1, 10, 1, tzinfo=UTC)
    assert window.retry_after(now) == 18
    assert window.retry_after(window.ends_at - timedelta(milliseconds=1)) == 1
    assert RateWindow.of(now + timedelta(seconds=17)).index == window.index
    assert RateWindow.of(now + timedelta(seconds=18)).index == window.index + 1


# --- page grants: proof of control ----------------------------------------------------------


def test_page_grants_are_checked_ids_each_once_with_their_token():
    grants = normalize_page_grants([(" 123 ", "EAAGtok1"), ("456", None), ("123", None)])
    assert grants == [PageGrant("123", "EAAGtok1"), PageGrant("456", None)]
    assert normalize_page_grants([("123", "EAAGt"), ("123", "EAAGt")]) == [
        PageGrant("123", "EAAGt")
    ]
    assert "tok" not in repr(grants[0])  # a token is never printed
    with pytest.raises(InvalidPageIds, match="different access tokens"):
        normalize_page_grants([("123", "EAAGa"), ("123", "EAAGb")])
    with pytest.raises(InvalidPageIds):
        normalize_page_grants([("page", "EAAGa")])
    for token in ("", "two words", "tab\there", "é", "x" * 2049):
        with pytest.raises(InvalidPageToken) as refused:
            normalize_page_grants([("123", token)])
        assert refused.value.extensions["pageIds"] == ["123"]


def test_a_page_needs_a_token_unless_the_venue_holds_one_for_it():
    mappings = {
        "1": PageMapping("1", "v", "EAAGours"),
        "2": PageMapping("2", "v", None),  # mapped before tokens
        "3": PageMapping("3", "other", "EAAGtheirs"),
    }
    grants = [PageGrant(p) for p in ("1", "2", "3", "4")]
    assert tokens_missing("v", grants, mappings) == ["2", "3", "4"]
    given = [PageGrant(p, "EAAGnew") for p in ("2", "3", "4")]
    assert tokens_missing("v", given, mappings) == []


def test_a_holder_loses_its_page_only_when_its_token_no_longer_controls_it():
    holder = PageMapping("123", "v", "EAAGtoken")
    assert not holder_lost_control(holder, "123")  # the token still answers as the page
    assert holder_lost_control(holder, None)  # refused: expired or revoked
    assert holder_lost_control(holder, "999")  # another object's now
    assert holder_lost_control(PageMapping("123", "v", None), None)  # never proved anything
