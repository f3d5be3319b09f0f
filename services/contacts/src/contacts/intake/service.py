"""Intake use cases: keys and pages for a venue's ADMIN, website forms, Meta lead ads.

A website form from a new email makes a contact. A form from the email of a known
contact changes none of its details (anyone can post a public form with anyone's
email): the submission goes on the contact's timeline as a new inquiry, as it was
submitted, and raises its heat. Meta leads (whose answers come from the Graph API, not
from the caller) become contacts through :meth:`ContactService.upsert_by_email`: a
person who comes back (by email) updates their contact. Meta webhooks are
accepted fast (each lead recorded once, by id) and their leads fetched from the Graph
API by :func:`process_meta_leads`, a worker loop, with the token the lead's venue holds
for its page: a lease makes each lead one replica's at a time, failures wait longer and
longer, and give up after a few attempts. A venue maps a page only with a page access
token the Graph API answers as that page's (see the intake domain's rules).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from contacts.intake.domain import (
    GraphUnavailable,
    HandshakeRefused,
    InvalidLead,
    InvalidPageToken,
    InvalidWebhook,
    LeadgenNotice,
    MetaLead,
    PageTaken,
    RateWindow,
    SignatureRejected,
    TooManySubmissions,
    UnknownIntakeKey,
    WebsiteLead,
    backoff,
    holder_lost_control,
    looks_like_key,
    new_intake_key,
    normalize_page_grants,
    parse_graph_lead,
    parse_leadgen_webhook,
    tokens_missing,
    verify_signature,
    verify_subscription,
    with_message,
)
from contacts.intake.graph import GraphClient, GraphError, LeadReader, TokenChecker
from contacts.intake.repository import (
    ClaimedLead,
    IntakeKey,
    IntakeRepository,
    MetaLeadRepository,
)
from contacts.leads.domain import Contact, ContactAlreadyExists, ContactChangedConcurrently
from contacts.leads.repository import ContactRepository
from contacts.leads.service import ContactService
from contacts.settings import ContactsSettings, contacts_settings
from contacts.timeline.entries import INQUIRY, inquiry
from contacts.timeline.repository import TimelineRepository
from gala.app import Runtime, keep_polling
from gala.errors import Forbidden, InvalidInput
from gala.identity import Principal, Role

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def _ensure_admin(principal: Principal, doing: str) -> None:
    if principal.role != Role.ADMIN:
        raise Forbidden(f"Only ADMIN may {doing}.")


def _secret(value: SecretStr | None) -> str | None:
    """A secret setting's value; unset or blank is none."""
    return (value.get_secret_value() or None) if value is not None else None


class IntakeService:
    def __init__(
        self,
        intake: IntakeRepository,
        meta_leads: MetaLeadRepository,
        contacts: ContactRepository,
        timeline: TimelineRepository,
        settings: ContactsSettings,
        clock: Clock = _now,
    ) -> None:
        self._intake = intake
        self._meta_leads = meta_leads
        self._contacts = contacts
        self._timeline = timeline
        self._settings = settings
        self._clock = clock

    # --- a venue's ADMIN ------------------------------------------------------------------

    async def intake_key(self, principal: Principal) -> IntakeKey:
        """The venue's website key, made on first use."""
        _ensure_admin(principal, "see the website intake key")
        return await self._intake.key_of(principal.venue_id, new_intake_key(), self._clock())

    async def rotate_key(self, principal: Principal) -> IntakeKey:
        _ensure_admin(principal, "rotate the website intake key")
        key = await self._intake.rotate(principal.venue_id, new_intake_key(), self._clock())
        log.info("intake key rotated", extra={"venue_id": principal.venue_id})
        return key

    async def meta_pages(self, principal: Principal) -> list[str]:
        _ensure_admin(principal, "see the lead-ads pages")
        return await self._intake.pages_of(principal.venue_id)

    async def map_meta_pages(
        self,
        principal: Principal,
        pages: Sequence[tuple[str, str | None]],
        graph: TokenChecker,
    ) -> list[str]:
        """Make these (page id, access token) the venue's lead-ads pages.

        Every token is checked with the Graph API first: a token it refuses, or one of
        another object, is a 422; a page another venue holds is a 409 while the
        holder's own token still works (see ``holder_lost_control``); the Graph API out
        of reach is a 503. Each of these changes nothing. A page given without a token
        keeps the one the venue holds (there must be one). The unroutable leads of the
        pages come to the venue now, and the pending leads of a page taken over, too.
        """
        _ensure_admin(principal, "change the lead-ads pages")
        venue_id = principal.venue_id
        grants = normalize_page_grants(pages)
        mappings = await self._intake.mappings([grant.page_id for grant in grants])
        missing = tokens_missing(venue_id, grants, mappings)
        if missing:
            raise InvalidPageToken(
                missing,
                "Give the page access token of each page this venue does not hold a token"
                " for yet: it proves the venue controls the page.",
            )
        held = [m for m in mappings.values() if m.venue_id != venue_id]
        given = [grant for grant in grants if grant.access_token is not None]
        owners = await _owners(
            graph,
            [*(g.access_token for g in given), *(m.access_token for m in held)],
        )
        refused = [
            g.page_id
            for g, owner in zip(given, owners[: len(given)], strict=True)
            if owner != g.page_id
        ]
        if refused:
            raise InvalidPageToken(
                refused,
                "The Graph API does not answer these access tokens as tokens of their pages"
                " (refused, expired, or another page's or a person's).",
            )
        holder_owners = owners[len(given) :]
        taken = [
            m.page_id
            for m, owner in zip(held, holder_owners, strict=True)
            if not holder_lost_control(m, owner)
        ]
        if taken:
            raise PageTaken(sorted(taken))
        takeovers = {m.page_id: m for m in held}
        now = self._clock()
        await self._intake.map_pages(venue_id, grants, takeovers, now)
        for holder in takeovers.values():
            moved = await self._meta_leads.move_pending(
                holder.page_id, holder.venue_id, venue_id, now
            )
            log.warning(
                "meta page taken over: the holder's token no longer controls it",
                extra={
                    "venue_id": venue_id,
                    "page_id": holder.page_id,
                    "previous_venue_id": holder.venue_id,
                    "leads": moved,
                },
            )
        page_ids = [grant.page_id for grant in grants]
        if page_ids:
            routed = await self._meta_leads.route_unroutable(venue_id, page_ids, now)
            if routed:
                log.info(
                    "unroutable meta leads routed",
                    extra={"venue_id": venue_id, "leads": routed},
                )
        return await self._intake.pages_of(venue_id)

    # --- website forms -------------------------------------------------------------------

    async def open_form(self, key: str, address: str) -> str:
        """The venue whose form ``key`` opens, counting one submission from ``address``."""
        venue_id = await self._intake.venue_of_key(key) if looks_like_key(key) else None
        if venue_id is None:
            raise UnknownIntakeKey()
        now = self._clock()
        window = RateWindow.of(now)
        count = await self._intake.count_submission(venue_id, address, window, now)
        if count > self._settings.intake_rate_limit_per_minute:
            raise TooManySubmissions(window.retry_after(now))
        return venue_id

    async def accept_website_lead(self, venue_id: str, lead: WebsiteLead) -> None:
        """A new email makes a contact; a known one gets a new inquiry (nothing else)."""
        existing = await self._contacts.by_email(venue_id, lead.email)
        if existing is None:
            try:
                contact = await ContactService(self._contacts, self._clock).create_in_venue(
                    venue_id,
                    name=lead.name,
                    email=lead.email,
                    phone=lead.phone,
                    lead_source=lead.lead_source,
                    custom_fields=with_message(None, lead.message) if lead.message else None,
                )
            except ContactAlreadyExists:
                existing = await self._contacts.by_email(venue_id, lead.email)
                if existing is None:  # made and erased meanwhile: let the sender retry
                    raise ContactChangedConcurrently() from None
            else:
                log.info(
                    "website lead",
                    extra={"venue_id": venue_id, "contact_id": contact.id, "new_contact": True},
                )
                return
        await self._record_inquiry(existing, lead)
        log.info(
            "website lead",
            extra={"venue_id": venue_id, "contact_id": existing.id, "new_contact": False},
        )

    async def _record_inquiry(self, contact: Contact, lead: WebsiteLead) -> None:
        """The submission on the contact's timeline, then its heat from the inquiries
        counted there (a count, not an increment: the timeline is the record)."""
        await self._timeline.record(
            event_id=f"inquiry-{uuid.uuid4()}",
            venue_id=contact.venue_id,
            contact_id=contact.id,
            at=self._clock(),
            entry=inquiry(
                name=lead.name,
                email=lead.email,
                phone=lead.phone,
                message=lead.message,
                lead_source=lead.lead_source.value,
            ),
        )
        contacts = ContactService(self._contacts, self._clock)
        count = await self._timeline.count(contact.venue_id, contact.id, INQUIRY)
        await contacts.count_inquiries(contact.venue_id, contact.id, count)
        if not await contacts.exists(contact.venue_id, contact.id):
            # erased meanwhile (its timeline forgotten already): forget this entry too
            await self._timeline.forget(contact.venue_id, contact.id)

    # --- Meta lead ads -------------------------------------------------------------------

    def subscription_challenge(self, mode: str | None, token: str | None, challenge: str) -> str:
        expected = _secret(self._settings.meta_verify_token)
        if not verify_subscription(expected, mode, token):
            raise HandshakeRefused()
        return challenge

    async def receive_meta_webhook(self, body: bytes, signature: str | None) -> int:
        """Record the leads of a signed payload (verified before parsing); answers how
        many were new."""
        secret = _secret(self._settings.meta_app_secret)
        if secret is None:
            log.error("a meta webhook arrived but GALA_META_APP_SECRET is not set")
        if not verify_signature(secret, body, signature):
            raise SignatureRejected()
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise InvalidWebhook("The payload is not JSON.") from exc
        notices = parse_leadgen_webhook(payload)
        recorded = 0
        for notice in notices:
            recorded += await self._record(notice)
        return recorded

    async def _record(self, notice: LeadgenNotice) -> int:
        routed = await self._intake.venue_of_pages(notice.page_candidates)
        if not await self._meta_leads.record(notice, routed, self._clock()):
            return 0  # delivered before: nothing changes
        if routed is None:
            log.warning(
                "meta lead for a page no venue mapped: kept as unroutable",
                extra={
                    "leadgen_id": notice.leadgen_id,
                    "page_id": notice.page_id,
                    "entry_id": notice.entry_id,
                },
            )
        return 1


class MetaLeadWorker:
    """Turns pending Meta leads into contacts, one claimed lead at a time."""

    def __init__(
        self,
        intake: IntakeRepository,
        meta_leads: MetaLeadRepository,
        contacts: ContactRepository,
        graph: LeadReader,
        settings: ContactsSettings,
        clock: Clock = _now,
    ) -> None:
        self._intake = intake
        self._meta_leads = meta_leads
        self._contacts = contacts
        self._graph = graph
        self._settings = settings
        self._clock = clock

    async def run_once(self, limit: int = 20) -> int:
        """Process up to ``limit`` due leads; answers how many were taken."""
        taken = 0
        lease = timedelta(seconds=self._settings.meta_lead_lease_seconds)
        while taken < limit:
            lead = await self._meta_leads.claim(self._clock(), lease)
            if lead is None:
                break
            taken += 1
            await self._process(lead)
        return taken

    async def _process(self, lead: ClaimedLead) -> None:
        if lead.attempts > self._settings.meta_lead_max_attempts:
            await self._give_up(lead, "attempts exhausted (a worker stopped while holding it)")
            return
        token = await self._intake.token_for(lead.venue_id, lead.page_candidates)
        if token is None:
            await self._meta_leads.park_unroutable(
                lead,
                "the venue holds no access token for the lead's page: map the page with"
                " its page access token",
                self._clock(),
            )
            log.warning("meta lead: no token for its page, kept as unroutable", extra=_about(lead))
            return
        try:
            data = await self._graph.lead(lead.leadgen_id, token)
        except GraphError as exc:
            await self._retry(lead, str(exc))
            return
        try:
            parsed = parse_graph_lead(data)
        except InvalidLead as exc:
            await self._give_up(lead, f"the lead cannot become a contact: {exc}")
            return
        try:
            contact_id = await self._upsert(lead, parsed)
        except InvalidInput as exc:
            await self._give_up(lead, f"the lead cannot become a contact: {exc.detail}")
            return
        except Exception as exc:
            log.exception("meta lead: the contact could not be saved", extra=_about(lead))
            await self._retry(lead, f"the contact could not be saved: {type(exc).__name__}")
            return
        if await self._meta_leads.complete(lead, contact_id, self._clock()):
            log.info("meta lead", extra={**_about(lead), "contact_id": contact_id})

    async def _upsert(self, lead: ClaimedLead, parsed: MetaLead) -> str:
        existing = await self._contacts.by_email(lead.venue_id, parsed.email)
        contact, _ = await ContactService(self._contacts).upsert_by_email(
            lead.venue_id,
            name=parsed.name,
            email=parsed.email,
            phone=parsed.phone,
            lead_source=lead.source,
            custom_fields=parsed.custom_fields(existing.custom_fields if existing else None),
        )
        return contact.id

    async def _retry(self, lead: ClaimedLead, error: str) -> None:
        settings = self._settings
        if lead.attempts >= settings.meta_lead_max_attempts:
            await self._give_up(lead, f"{error} (after {lead.attempts} attempts)")
            return
        now = self._clock()
        wait = backoff(
            lead.attempts,
            settings.meta_lead_backoff_initial_seconds,
            settings.meta_lead_backoff_max_seconds,
        )
        await self._meta_leads.retry_at(lead, now + wait, error, now)
        log.warning(
            "meta lead: will retry",
            extra={**_about(lead), "error": error, "retry_in_seconds": wait.total_seconds()},
        )

    async def _give_up(self, lead: ClaimedLead, error: str) -> None:
        await self._meta_leads.fail(lead, error, self._clock())
        log.error("meta lead failed for good", extra={**_about(lead), "error": error})


async def _owners(graph: TokenChecker, tokens: Sequence[str | None]) -> list[str | None]:
    """Whose each token is, per the Graph API (``None``: refused, or no token at all)."""

    async def owner(token: str | None) -> str | None:
        return None if token is None else await graph.token_owner(token)

    try:
        return list(await asyncio.gather(*(owner(token) for token in tokens)))
    except GraphError as exc:
        log.warning("meta page tokens could not be checked", extra={"error": str(exc)})
        raise GraphUnavailable() from None


def graph_client(settings: ContactsSettings) -> GraphClient:
    """The Graph API as the settings name it (each call brings a page's own token)."""
    return GraphClient(
        settings.meta_graph_url,
        app_secret=_secret(settings.meta_app_secret),
        timeout=settings.meta_graph_timeout_seconds,
    )


def _about(lead: ClaimedLead) -> dict[str, object]:
    return {"leadgen_id": lead.leadgen_id, "venue_id": lead.venue_id, "attempt": lead.attempts}


async def process_meta_leads(runtime: Runtime) -> None:
    """The worker loop: fetch pending Meta leads from the Graph API into contacts."""
    settings = contacts_settings(runtime.settings)
    async with graph_client(settings) as graph:
        worker = MetaLeadWorker(
            IntakeRepository(runtime.store),
            MetaLeadRepository(runtime.store),
            ContactRepository(runtime.store, runtime.outbox),
            graph,
            settings,
        )

        async def run_once() -> bool:
            return await worker.run_once() > 0

        await keep_polling(run_once, settings.meta_lead_poll_interval_seconds, "meta leads")
