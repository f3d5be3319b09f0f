"""Lead intake's rules: website forms and Meta lead ads. Pure: no I/O.

Website forms:

- a venue publishes one public key (unguessable: 192 random bits, URL-safe); a form
  posts to ``/api/v1/intake/{key}``; rotating the key retires the old one at once;
- a body is JSON or form-encoded, size-limited, with the fields ``name``, ``email``,
  ``phone``, ``message``, ``leadSource`` (WEBSITE unless given) and the honeypot
  ``website``: humans never see it, so a filled one marks a bot, which is answered as a
  success while nothing is stored (it learns nothing);
- each venue's form accepts a limited number of submissions per client address and
  minute (an IPv6 client counts by its /64: one host holds a whole one); the client
  address is the one our own proxies saw: the last ``trusted`` hops of
  ``X-Forwarded-For`` were appended by them, what comes before is the caller's claim.

Meta (Facebook/Instagram) lead ads:

- a webhook payload counts only if its ``X-Hub-Signature-256`` is the HMAC-SHA256 of
  the raw body under the app secret (compared in constant time, before parsing);
- a venue maps a page only with proof that it controls it: a page access token, which
  the Graph API must answer as a token of exactly that page (``GET /me`` with the token
  names the page it belongs to; a user's token names the user, so it proves nothing);
  the token is kept per venue and page, never shown nor logged, and reads that page's
  leads. A page stays one venue's: another venue takes it over only when it proves
  control and the holder's own token is dead (refused by the Graph API, or now another
  object's), or when the holder never gave one (a mapping made before tokens were
  required); while the holder's token works, the page is taken (409);
- a payload names leads by id only (``leadgen`` changes); each becomes a pending lead,
  once per id, routed to the venue that mapped its page (or kept as unroutable);
- the lead's answers come from the Graph API later, read with the venue's token of the
  page; failures are retried with exponential backoff, a bounded number of times; a
  lead whose venue holds no token for its page waits as unroutable until the page is
  mapped (again) with its token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import parse_qsl

from contacts.leads.domain import NAME_MAX, normalize_email, normalize_name, normalize_phone
from gala.contracts.contacts import LeadSource
from gala.errors import (
    Conflict,
    Forbidden,
    GalaError,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    UnsupportedMediaType,
)

# --- errors ---------------------------------------------------------------------------


class IntakeError(GalaError):
    """Base of the intake module's errors."""


class UnknownIntakeKey(IntakeError, NotFound):
    def __init__(self) -> None:
        super().__init__("No intake form has this key.")


class InvalidSubmission(IntakeError, InvalidInput):
    pass


class TooManySubmissions(IntakeError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "too-many-requests"
    title = "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many submissions from this address; try again in {retry_after}s.",
            retryAfter=retry_after,
        )

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.extensions["retryAfter"])}


class SignatureRejected(IntakeError):
    status = HTTPStatus.UNAUTHORIZED
    code = "invalid-signature"
    title = "The payload's signature is missing or wrong"

    def __init__(self) -> None:
        super().__init__("X-Hub-Signature-256 must be the HMAC-SHA256 of the body.")

    def response_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'X-Hub-Signature-256 realm="meta-webhooks"'}


class HandshakeRefused(IntakeError, Forbidden):
    def __init__(self) -> None:
        super().__init__("The subscription's mode or verify token is wrong.")


class InvalidWebhook(IntakeError, InvalidInput):
    pass


class InvalidPageIds(IntakeError, InvalidInput):
    pass


class PageTaken(IntakeError, Conflict):
    def __init__(self, page_ids: Sequence[str]) -> None:
        super().__init__("Another venue receives the leads of these pages.", pageIds=list(page_ids))


class InvalidPageToken(IntakeError, InvalidInput):
    def __init__(self, page_ids: Sequence[str], reason: str) -> None:
        super().__init__(reason, pageIds=list(page_ids))


class GraphUnavailable(IntakeError, ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__(
            "Meta's Graph API could not be reached to check the pages' access tokens;"
            " nothing changed, try again later."
        )


class InvalidLead(Exception):
    """A lead from the Graph API that cannot become a contact (retrying will not help)."""


# --- venue keys -----------------------------------------------------------------------

KEY_BYTES: Final = 24
"""192 random bits; ``token_urlsafe`` writes them as 32 characters."""
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def new_intake_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def looks_like_key(value: str) -> bool:
    """Whether ``value`` could be a key at all (anything else is unknown, unlooked-up)."""
    return bool(_KEY.match(value))


# --- client address and rate windows ---------------------------------------------------


@dataclass(frozen=True)
class RateWindow:
    """A fixed window of time in which submissions are counted."""

    index: int
    ends_at: datetime

    @classmethod
    def of(cls, now: datetime, seconds: int = 60) -> RateWindow:
        index = math.floor(now.timestamp() / seconds)
        return cls(index, datetime.fromtimestamp((index + 1) * seconds, UTC))

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the window ends (at least one)."""
        return max(1, math.ceil((self.ends_at - now).total_seconds()))


# --- website forms ----------------------------------------------------------------------

JSON_TYPE: Final = "application/json"
FORM_TYPE: Final = "application/x-www-form-urlencoded"
HONEYPOT: Final = "website"
MESSAGE_MAX: Final = 5000
MESSAGE_FIELD: Final = "message"
MAX_FORM_FIELDS: Final = 20


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_submission(content_type: str | None, body: bytes) -> dict[str, Any]:
    """A submission's fields, from a JSON object or a form-encoded body."""
    kind = media_type(content_type)
    if kind == JSON_TYPE:
        try:
            fields = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise InvalidSubmission("The body is not valid JSON.") from exc
        if not isinstance(fields, dict):
            raise InvalidSubmission("The body must be a JSON object.")
        return fields
    if kind == FORM_TYPE:
        try:
            pairs = parse_qsl(
                body.decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=MAX_FORM_FIELDS,
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidSubmission("The form is not valid UTF-8 form encoding.") from exc
        form: dict[str, Any] = {}
        for name, value in pairs:
            if name in form:
                raise InvalidSubmission(f"The field {name!r} is given more than once.")
            form[name] = value
        return form
    raise UnsupportedMediaType(f"Send {JSON_TYPE} or {FORM_TYPE}.")


def is_bot(fields: Mapping[str, Any]) -> bool:
    """The honeypot: a person never fills the hidden ``website`` field."""
    value = fields.get(HONEYPOT)
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return True


def form_lead_source(value: str | None) -> LeadSource:
    """The form's ``leadSource``: WEBSITE when blank, else one of the known sources."""
    if value is None or not value.strip():
        return LeadSource.WEBSITE
    try:
        return LeadSource(value.strip().upper())
    except ValueError as exc:
        allowed = ", ".join(source.value for source in LeadSource)
        raise InvalidSubmission(f"leadSource must be one of {allowed}.") from exc


@dataclass(frozen=True)
class WebsiteLead:
    """A person who filled a venue's website form, with their details normalized."""

    name: str
    email: str
    phone: str | None
    message: str | None
    lead_source: LeadSource

    @classmethod
    def of(
        cls,
        *,
        name: str,
        email: str,
        phone: str | None = None,
        message: str | None = None,
        lead_source: str | None = None,
    ) -> WebsiteLead:
        text = message.strip() if message else ""
        if len(text) > MESSAGE_MAX:
            raise InvalidSubmission(f"A message has at most {MESSAGE_MAX} characters.")
        return cls(
            name=normalize_name(name),
            email=normalize_email(email),
            phone=normalize_phone(phone),
            message=text or None,
            lead_source=form_lead_source(lead_source),
        )


def with_message(custom_fields: Mapping[str, Any] | None, message: str | None) -> dict[str, Any]:
    """The contact's custom fields with the latest message (the others kept)."""
    merged = dict(custom_fields or {})
    if message is not None:
        merged[MESSAGE_FIELD] = message
    return merged


# --- Meta webhooks ---------------------------------------------------------------------

SIGNATURE_PREFIX: Final = "sha256="
MAX_PAGES: Final = 50
_META_ID = re.compile(r"^[0-9]{1,32}$")
OBJECT_SOURCES: Final = {"page": LeadSource.FACEBOOK, "instagram": LeadSource.INSTAGRAM}


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(secret: str | None, body: bytes, header: str | None) -> bool:
    """Whether ``header`` signs ``body`` under ``secret`` (constant time); no secret: no."""
    if not secret or not header:
        return False
    given = header.strip()
    if not given.lower().startswith(SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(
        sign(secret, body)[len(SIGNATURE_PREFIX) :].encode(),
        given[len(SIGNATURE_PREFIX) :].lower().encode("ascii", "replace"),
    )


def verify_subscription(expected: str | None, mode: str | None, token: str | None) -> bool:
    """Meta's handshake: ``hub.mode=subscribe`` with our verify token (constant time)."""
    if not expected or mode != "subscribe" or token is None:
        return False
    return hmac.compare_digest(expected.encode(), token.encode())


def meta_id(value: Any) -> str | None:
    """A Meta object id (digits; Meta sends strings, sometimes numbers), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and _META_ID.match(value.strip()):
        return value.strip()
    return None


def normalize_page_ids(values: Iterable[str]) -> list[str]:
    pages: list[str] = []
    for value in values:
        page = meta_id(value)
        if page is None:
            raise InvalidPageIds(f"{value!r} is not a page id (digits, as Meta shows them).")
        if page not in pages:
            pages.append(page)
    if len(pages) > MAX_PAGES:
        raise InvalidPageIds(f"A venue maps at most {MAX_PAGES} pages.")
    return pages


_TOKEN = re.compile(r"^[!-~]{1,2048}$")
"""An access token as Meta writes them: printable ASCII, no spaces (it goes in a query)."""


@dataclass(frozen=True)
class PageGrant:
    """A page a venue's ADMIN maps, with the page access token proving control (none:
    keep the token the venue holds for it already)."""

    page_id: str
    access_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PageMapping:
    """A mapped page: the venue that receives its leads, and the token that reads them."""

    page_id: str
    venue_id: str
    access_token: str | None = field(default=None, repr=False)


def normalize_page_grants(grants: Iterable[tuple[str, str | None]]) -> list[PageGrant]:
    """The pages of a mapping request, checked: ids as Meta shows them, each once."""
    items = list(grants)
    pages = normalize_page_ids(page for page, _ in items)
    tokens: dict[str, str | None] = dict.fromkeys(pages)
    for raw, token in items:
        page = meta_id(raw)
        assert page is not None  # checked above
        if token is None:
            continue
        if not _TOKEN.match(token):
            raise InvalidPageToken(
                [page], f"The access token of page {page} is not a token (printable, no spaces)."
            )
        if tokens[page] not in (None, token):
            raise InvalidPageIds(f"Page {page} is given twice with different access tokens.")
        tokens[page] = token
    return [PageGrant(page, tokens[page]) for page in pages]


def tokens_missing(
    venue_id: str, grants: Sequence[PageGrant], mappings: Mapping[str, PageMapping]
) -> list[str]:
    """The pages given without a token that the venue does not already hold one for."""
    missing = []
    for grant in grants:
        held = mappings.get(grant.page_id)
        if grant.access_token is None and (
            held is None or held.venue_id != venue_id or held.access_token is None
        ):
            missing.append(grant.page_id)
    return missing


def holder_lost_control(holder: PageMapping, owner_of_its_token: str | None) -> bool:
    """Whether a page's holder may lose it to a venue that proved control.

    ``owner_of_its_token`` is what the Graph API answers for the holder's token (``None``:
    refused). A holder that gave no token (a mapping from before tokens) proved nothing.
    """
    if holder.access_token is None:
        return True
    return owner_of_its_token != holder.page_id


@dataclass(frozen=True)
class LeadgenNotice:
    """One lead a webhook announces: only ids; the answers are read from the Graph API."""

    leadgen_id: str
    source: LeadSource
    page_id: str | None
    entry_id: str | None
    form_id: str | None = None
    ad_id: str | None = None
    created_time: int | None = None

    @property
    def page_candidates(self) -> list[str]:
        """The ids a venue may have mapped: the lead's page, then the entry's object."""
        return list(dict.fromkeys(i for i in (self.page_id, self.entry_id) if i is not None))


def parse_leadgen_webhook(payload: Any) -> list[LeadgenNotice]:
    """The leads a (verified) webhook payload announces, once each.

    Objects other than pages and Instagram accounts, and changes other than ``leadgen``,
    are not leads and are skipped; a payload that is not shaped like a webhook is invalid.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("object"), str):
        raise InvalidWebhook("A webhook payload is an object with 'object' and 'entry'.")
    entries = payload.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidWebhook("'entry' must be a list.")
    source = OBJECT_SOURCES.get(payload["object"])
    if source is None:
        return []
    notices: dict[str, LeadgenNotice] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidWebhook("Each entry must be an object.")
        changes = entry.get("changes", [])
        if not isinstance(changes, list):
            raise InvalidWebhook("'changes' must be a list.")
        for change in changes:
            if not isinstance(change, dict):
                raise InvalidWebhook("Each change must be an object.")
            if change.get("field") != "leadgen":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                raise InvalidWebhook("A leadgen change needs a 'value' object.")
            leadgen_id = meta_id(value.get("leadgen_id"))
            if leadgen_id is None:
                raise InvalidWebhook("A leadgen change needs a numeric 'leadgen_id'.")
            created = value.get("created_time")
            notices.setdefault(
                leadgen_id,
                LeadgenNotice(
                    leadgen_id=leadgen_id,
                    source=source,
                    page_id=meta_id(value.get("page_id")),
                    entry_id=meta_id(entry.get("id")),
                    form_id=meta_id(value.get("form_id")),
                    ad_id=meta_id(value.get("ad_id")),
                    created_time=created
                    if isinstance(created, int) and not isinstance(created, bool)
                    else None,
                ),
            )
    return list(notices.values())


# --- Meta leads --------------------------------------------------------------------------


class LeadState(StrEnum):
    PENDING = "PENDING"
    DONE = "DONE"
    FAILED = "FAILED"
    UNROUTABLE = "UNROUTABLE"


_EMAIL_FIELDS: Final = ("email", "work_email")
_PHONE_FIELDS: Final = ("phone_number", "work_phone_number", "phone")
_NAME_FIELDS: Final = ("full_name", "first_name", "last_name")
FORM_ANSWERS_FIELD: Final = "metaLeadForm"
ANSWER_MAX: Final = 1000


@dataclass(frozen=True)
class MetaLead:
    """A lead's answers as the Graph API gives them, normalized to a contact's details."""

    name: str
    email: str
    phone: str | None
    answers: dict[str, str] = field(default_factory=dict)

    def custom_fields(self, existing: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The contact's custom fields with this lead's other answers (others kept)."""
        if not self.answers:
            return None
        return {**(existing or {}), FORM_ANSWERS_FIELD: dict(self.answers)}


def parse_graph_lead(data: Any) -> MetaLead:
    """A Graph API lead (``{"field_data": [{"name": ..., "values": [...]}, ...]}``)."""
    if not isinstance(data, dict) or not isinstance(data.get("field_data"), list):
        raise InvalidLead("The Graph API answered no field_data.")
    answers: dict[str, str] = {}
    for item in data["field_data"]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        values = item.get("values")
        texts = (
            [v.strip() for v in values if isinstance(v, str)] if isinstance(values, list) else []
        )
        text = ", ".join(t for t in texts if t)
        if text:
            answers[item["name"][:100]] = text[:ANSWER_MAX]
    email = next((answers[name] for name in _EMAIL_FIELDS if name in answers), None)
    if email is None:
        raise InvalidLead("The lead has no email.")
    phone = next((answers[name] for name in _PHONE_FIELDS if name in answers), None)
    name = answers.get("full_name") or " ".join(
        answers[part] for part in ("first_name", "last_name") if part in answers
    )
    try:
        normalized_email = normalize_email(email)
        try:
            normalized_phone = normalize_phone(phone)
        except InvalidInput:
            normalized_phone = None  # a free-text phone answer: keep it among the answers
        else:
            for known in _PHONE_FIELDS:
                answers.pop(known, None)
        lead = MetaLead(
            name=normalize_name(" ".join((name or normalized_email).split())[:NAME_MAX]),
            email=normalized_email,
            phone=normalized_phone,
            answers={
                key: value
                for key, value in answers.items()
                if key not in _EMAIL_FIELDS and key not in _NAME_FIELDS
            },
        )
    except InvalidInput as exc:
        raise InvalidLead(exc.detail) from exc
    return lead


def backoff(attempt: int, initial: float, maximum: float) -> timedelta:
    """The wait after failed attempt number ``attempt`` (1, 2, ...): doubling, capped."""
    return timedelta(seconds=min(maximum, initial * 2 ** max(0, attempt - 1)))
