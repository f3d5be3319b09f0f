"""HTTP entry points for contacts as CSV: the export, and what reads an uploaded CSV body.

The import itself is a job (``contacts.imports.api``). Served before the contacts
router: ``GET /api/v1/contacts/{contact_id}`` would otherwise take ``/export`` for a
contact id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from contacts.leads.api import PREFIX, Filter, Sort
from contacts.leads.domain import ContactError
from contacts.leads.repository import ContactRepository
from contacts.leads.transfer import ContactTransfer
from gala.api import problems
from gala.app import OutboxDep, StoreDep
from gala.errors import Forbidden, InvalidInput
from gala.identity import CurrentPrincipal

CSV = "text/csv"
_UTF8 = frozenset({"utf-8", "utf8"})


class NotCsv(ContactError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported-media-type"
    title = "Unsupported media type"


async def get_transfer(store: StoreDep, outbox: OutboxDep) -> ContactTransfer:
    return ContactTransfer(ContactRepository(store, outbox))


Transfer = Annotated[ContactTransfer, Depends(get_transfer)]


def check_csv(content_type: str | None) -> None:
    """Refuse a body that is not ``text/csv`` (in UTF-8, if a charset is named)."""
    media_type, *parameters = (content_type or "").split(";")
    charsets = [
        value.strip().strip('"').lower()
        for name, _, value in (p.partition("=") for p in parameters)
        if name.strip().lower() == "charset"
    ]
    if media_type.strip().lower() != CSV or any(c not in _UTF8 for c in charsets):
        raise NotCsv(
            f"Send the file as {CSV} in UTF-8 (Content-Type: {CSV}; charset=utf-8),"
            f" not {content_type or 'without a content type'}.",
            accepted=[f"{CSV}; charset=utf-8"],
        )


async def csv_body(request: Request) -> AsyncIterator[bytes]:
    """The body as it arrives. Its type is checked on the first read, i.e. after the
    use case has checked the caller's role (a 403 says nothing about the body)."""
    check_csv(request.headers.get("content-type"))
    async for chunk in request.stream():
        if chunk:
            yield chunk


router = APIRouter(prefix=PREFIX, tags=["contacts"])

CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A CSV file, UTF-8, with a header: name,email,phone,leadSource,status,"
        "customFields (name and email required, any order; customFields a JSON object).",
        "content": {CSV: {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The contacts as CSV", "content": {CSV: {}}},
        **problems(Forbidden, InvalidInput),
    },
)
async def export_contacts(
    principal: CurrentPrincipal, transfer: Transfer, where: Filter, sort: Sort = Sort.CREATED
) -> StreamingResponse:
    """The venue's contacts matching the list's filters, as a CSV download (ADMIN, SALES).

    Columns: id,name,email,phone,leadSource,status,customFields,leadHeat,createdAt; the
    file imports back as is. Sorted by creation by default: an order that changes
    under no one, so a contact changed during the download is still listed once.
    """
    body = transfer.export_csv(principal, where, sort.value)
    filename = f"contacts-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv"
    return StreamingResponse(
        body,
        media_type=f"{CSV}; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
