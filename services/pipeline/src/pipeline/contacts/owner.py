"""Asking the owner: the contacts service's internal API, for a contact the pipeline's
copy does not have (yet). One ``GET /internal/v1/contacts/{id}?venueId=`` with the
pipeline's service token (as the gateway asks for users); rare (only on a copy miss),
so each question opens its own short-lived client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import httpx

from gala.identity import IDENTITY_HEADER, InternalTokens
from gala.values import required_utc

PATH = "/internal/v1/contacts/{contact_id}"


class OwnerUnreachable(Exception):
    """The contacts service did not answer, or answered something unexpected."""


@dataclass(frozen=True)
class OwnedContact:
    id: str
    venue_id: str
    name: str | None
    erased: bool
    updated_at: datetime


class ContactsOwner:
    def __init__(
        self,
        base_url: str,
        tokens: InternalTokens,
        *,
        timeout: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._timeout = timeout
        self._transport = transport

    async def contact(self, venue_id: str, contact_id: str) -> OwnedContact | None:
        """The venue's contact as the contacts service has it; ``None`` if it has none."""
        path = PATH.format(contact_id=quote(contact_id, safe=""))
        headers = {IDENTITY_HEADER: self._tokens.issue_for_service("pipeline")}
        try:
            async with httpx.AsyncClient(
                base_url=self._base_url, timeout=self._timeout, transport=self._transport
            ) as client:
                response = await client.get(path, params={"venueId": venue_id}, headers=headers)
        except httpx.HTTPError as exc:
            raise OwnerUnreachable(f"contacts service: {exc!r}") from exc
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.status_code != httpx.codes.OK:
            raise OwnerUnreachable(f"contacts service answered {response.status_code}")
        try:
            body = response.json()
            updated = required_utc(datetime.fromisoformat(body["updatedAt"]))
            found = OwnedContact(
                id=str(body["id"]),
                venue_id=str(body["venueId"]),
                name=body.get("name"),
                erased=bool(body["erased"]),
                updated_at=updated,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise OwnerUnreachable(f"contacts service answered an unreadable body: {exc}") from exc
        if found.id != contact_id or found.venue_id != venue_id:
            raise OwnerUnreachable("contacts service answered about another contact")
        return found
