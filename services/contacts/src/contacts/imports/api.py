"""HTTP entry points for CSV imports: upload a file as a job, follow the jobs.

Served before the contacts router: ``GET /api/v1/contacts/{contact_id}`` would
otherwise take ``/imports`` for a contact id.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from contacts.imports.domain import ImportJobNotFound
from contacts.imports.repository import ImportJobRepository
from contacts.imports.schemas import ImportJobOut, ImportJobSummaryOut
from contacts.imports.service import ImportService
from contacts.leads.api import PREFIX
from contacts.leads.csv_format import InvalidCsv
from contacts.leads.transfer_api import CSV_BODY, NotCsv, csv_body
from gala.api import Cursor, Limit, PageOut, problems
from gala.app import StoreDep
from gala.errors import Forbidden, InvalidInput
from gala.identity import CurrentPrincipal


async def get_imports(store: StoreDep) -> ImportService:
    return ImportService(ImportJobRepository(store))


Imports = Annotated[ImportService, Depends(get_imports)]

router = APIRouter(prefix=PREFIX, tags=["contacts"])


@router.post(
    "/import",
    status_code=HTTPStatus.ACCEPTED,
    responses=problems(Forbidden, NotCsv, InvalidCsv),
    openapi_extra=CSV_BODY,
)
async def import_contacts(
    principal: CurrentPrincipal, imports: Imports, request: Request, response: Response
) -> ImportJobOut:
    """Create or update the venue's contacts from a CSV file, by email, as a job (ADMIN,
    SALES): answers 202 with the queued job once the file is stored.

    Follow the job at its Location (``GET /api/v1/contacts/imports/{id}``): its state
    (queued, running, succeeded, failed), rows read, counts, the first rejected rows and
    how much of the file was read. A file whose first line is not a header of known
    columns (name and email required), or an empty one, is refused at once (422) and
    no job is made. A bad row is rejected alone (its line and why); an empty cell keeps
    what an existing contact has; a repeated email updates the contact its earlier row
    made. Importing the same file again leaves the contacts as they are.
    """
    imports.check_role(principal)
    job = await imports.start(principal, csv_body(request))
    response.headers["Location"] = f"{PREFIX}/imports/{job.id}"
    return ImportJobOut.of(job)


@router.get("/imports", responses=problems(Forbidden, InvalidInput))
async def list_imports(
    principal: CurrentPrincipal, imports: Imports, limit: Limit = 50, cursor: Cursor = None
) -> PageOut[ImportJobSummaryOut]:
    """The venue's import jobs, newest first, a page at a time (ADMIN, SALES)."""
    jobs, next_cursor = await imports.list(principal, limit, cursor)
    return PageOut[ImportJobSummaryOut](
        items=[ImportJobSummaryOut.of(job) for job in jobs], next_cursor=next_cursor
    )


@router.get("/imports/{import_id}", responses=problems(Forbidden, ImportJobNotFound))
async def get_import(principal: CurrentPrincipal, imports: Imports, import_id: str) -> ImportJobOut:
    """One import job of the venue, with its progress and first rejections."""
    return ImportJobOut.of(await imports.get(principal, import_id))
