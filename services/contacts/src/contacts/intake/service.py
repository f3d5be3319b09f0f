"""Intake use cases: keys and pages for a venue's ADMIN, website forms, Meta lead ads.

Leads become contacts through :meth:`ContactService.upsert_by_email`: a person who
comes back (by email) updates their contact instead of adding one. Meta webhooks are
accepted fast (each lead recorded once, by id) and their leads fetched from the Graph
API by :func:`process_meta_leads`, a worker loop: a lease makes each lead one
replica's at a time, failures wait longer and longer, and give up after a few attempts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from contacts.intake.domain import (
    HandshakeRefused,
    InvalidLead,
    InvalidWebhook,
    LeadgenNotice,
    MetaLead,
    RateWindow,
    SignatureRejected,
    TooManySubmissions,
    UnknownIntakeKey,
    WebsiteLead,
    backoff,
    looks_like_key,
    new_intake_key,
    normalize_page_ids,
    parse_graph_lead,
    parse_leadgen_webhook,
    verify_signature,
    verify_subscription,
    with_message,
)
from contacts.intake.graph import GraphClient, GraphError, LeadReader
from contacts.intake.repository import (
    ClaimedLead,
    IntakeKey,
    IntakeRepository,
    MetaLeadRepository,
)
from contacts.leads.repository import ContactRepository
from contacts.leads.service import ContactService
from contacts.settings import ContactsSettings, contacts_settings
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
        settings: ContactsSettings,
        clock: Clock = _now,
    ) -> None:
        self._intake = intake
        self._meta_leads = meta_leads
        self._contacts = contacts
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

    async def map_meta_pages(self, principal: Principal, page_ids: Sequence[str]) -> list[str]:
        """Make these the venue's lead-ads pages; their unroutable leads come to it now."""
        _ensure_admin(principal, "change the lead-ads pages")
        pages = normalize_page_ids(page_ids)
        now = self._clock()
        await self._intake.map_pages(principal.venue_id, pages, now)
        if pages:
            routed = await self._meta_leads.route_unroutable(principal.venue_id, pages, now)
            if routed:
                log.info(
                    "unroutable meta leads routed",
                    extra={"venue_id": principal.venue_id, "leads": routed},
                )
        return await self._intake.pages_of(principal.venue_id)

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
        existing = await self._contacts.by_email(venue_id, lead.email)
        custom_fields = None
        if lead.message is not None:
            custom_fields = with_message(existing.custom_fields if existing else None, lead.message)
        contact, created = await ContactService(self._contacts).upsert_by_email(
            venue_id,
            name=lead.name,
            email=lead.email,
            phone=lead.phone,
            lead_source=lead.lead_source,
            custom_fields=custom_fields,
        )
        log.info(
            "website lead",
            extra={"venue_id": venue_id, "contact_id": contact.id, "created": created},
        )

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
        meta_leads: MetaLeadRepository,
        contacts: ContactRepository,
        graph: LeadReader,
        settings: ContactsSettings,
        clock: Clock = _now,
    ) -> None:
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
        try:
            data = await self._graph.lead(lead.leadgen_id)
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


def _about(lead: ClaimedLead) -> dict[str, object]:
    return {"leadgen_id": lead.leadgen_id, "venue_id": lead.venue_id, "attempt": lead.attempts}


async def process_meta_leads(runtime: Runtime) -> None:
    """The worker loop: fetch pending Meta leads from the Graph API into contacts."""
    settings = contacts_settings(runtime.settings)
    token = _secret(settings.meta_page_access_token)
    if token is None:
        log.warning("GALA_META_PAGE_ACCESS_TOKEN is not set: Meta leads stay pending")
        return
    async with GraphClient(
        settings.meta_graph_url,
        token,
        app_secret=_secret(settings.meta_app_secret),
        timeout=settings.meta_graph_timeout_seconds,
    ) as graph:
        worker = MetaLeadWorker(
            MetaLeadRepository(runtime.store),
            ContactRepository(runtime.store, runtime.outbox),
            graph,
            settings,
        )

        async def run_once() -> bool:
            return await worker.run_once() > 0

        await keep_polling(run_once, settings.meta_lead_poll_interval_seconds, "meta leads")
