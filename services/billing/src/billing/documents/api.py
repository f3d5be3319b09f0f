"""HTTP entry points for documents: upload, replace, list, download, sign."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from billing.contacts.repository import ContactCopyRepository
from billing.deals.repository import DealRepository
from billing.documents.blobs import blob_store
from billing.documents.domain import (
    DocumentChangedConcurrently,
    DocumentNotAsReviewed,
    DocumentNotFound,
    DocumentSignedAlready,
    InvalidDocument,
    Links,
)
from billing.documents.links import LinkRefused
from billing.documents.repository import DocumentFilter, DocumentRepository
from billing.documents.schemas import DocumentOut, SignIn
from billing.documents.service import DocumentService
from billing.settings import billing_settings
from gala.api import Cursor, Limit, PageOut, client_address, problems, stream_body
from gala.app import OutboxDep, RuntimeDep, StoreDep
from gala.errors import Forbidden, PayloadTooLarge, UnsupportedMediaType
from gala.identity import CurrentPrincipal

PREFIX = "/api/v1/documents"
Id = Annotated[str | None, Query(max_length=200)]


async def document_service(
    store: StoreDep, outbox: OutboxDep, runtime: RuntimeDep
) -> DocumentService:
    settings = billing_settings(runtime.settings)
    return DocumentService(
        DocumentRepository(store, outbox),
        DealRepository(store),
        ContactCopyRepository(store),
        blob_store(settings),
        link_secret=settings.link_secret(),
        link_ttl=timedelta(seconds=settings.document_link_ttl_seconds),
    )


Documents = Annotated[DocumentService, Depends(document_service)]
router = APIRouter(prefix=PREFIX, tags=["documents"])
UPLOAD_PROBLEMS = (Forbidden, InvalidDocument, UnsupportedMediaType, PayloadTooLarge)


async def _max_bytes(runtime: RuntimeDep) -> int:
    return billing_settings(runtime.settings).document_max_bytes


MaxBytes = Annotated[int, Depends(_max_bytes)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(*UPLOAD_PROBLEMS))
async def upload_document(
    principal: CurrentPrincipal,
    documents: Documents,
    request: Request,
    response: Response,
    max_bytes: MaxBytes,
    name: Annotated[str, Query(min_length=1, max_length=200, examples=["contract.pdf"])],
    opportunity_id: Annotated[str | None, Query(alias="opportunityId", max_length=200)] = None,
    project_id: Annotated[str | None, Query(alias="projectId", max_length=200)] = None,
    contact_id: Annotated[str | None, Query(alias="contactId", max_length=200)] = None,
) -> DocumentOut:
    """Upload a file (ADMIN, SALES, PROJECT_MANAGER): the request body is the file,
    streamed, with its ``Content-Type`` (PDF, PNG, JPEG, DOCX, XLSX; the bytes must agree),
    linked to an opportunity, a project and/or a contact of the venue."""
    document = await documents.upload(
        principal,
        name=name,
        declared_type=request.headers.get("content-type"),
        links=Links(opportunity_id, project_id, contact_id),
        chunks=stream_body(request, max_bytes),
    )
    response.headers["Location"] = f"{PREFIX}/{document.id}"
    return DocumentOut.of(document, documents.link(document, principal))


@router.put(
    "/{document_id}/content",
    responses=problems(
        *UPLOAD_PROBLEMS, DocumentNotFound, DocumentSignedAlready, DocumentChangedConcurrently
    ),
)
async def replace_document(
    principal: CurrentPrincipal,
    documents: Documents,
    request: Request,
    max_bytes: MaxBytes,
    document_id: str,
) -> DocumentOut:
    """Replace an unsigned document's file (a signed one: 409)."""
    document = await documents.replace(
        principal,
        document_id,
        declared_type=request.headers.get("content-type"),
        chunks=stream_body(request, max_bytes),
    )
    return DocumentOut.of(document, documents.link(document, principal))


@router.get("", responses=problems(Forbidden))
async def list_documents(
    principal: CurrentPrincipal,
    documents: Documents,
    opportunity_id: Annotated[str | None, Query(alias="opportunityId", max_length=200)] = None,
    project_id: Annotated[str | None, Query(alias="projectId", max_length=200)] = None,
    contact_id: Annotated[str | None, Query(alias="contactId", max_length=200)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[DocumentOut]:
    """The venue's documents, newest first (a CLIENT: those of their own projects)."""
    where = DocumentFilter(opportunity_id, project_id, contact_id)
    items, next_cursor = await documents.page(principal, where, limit, cursor)
    return PageOut[DocumentOut](
        items=[DocumentOut.of(d, documents.link(d, principal)) for d in items],
        next_cursor=next_cursor,
    )


@router.get("/{document_id}", responses=problems(Forbidden, DocumentNotFound))
async def get_document(
    principal: CurrentPrincipal, documents: Documents, document_id: str
) -> DocumentOut:
    """The document, with a fresh signed download link."""
    document = await documents.get(principal, document_id)
    return DocumentOut.of(document, documents.link(document, principal))


@router.get(
    "/{document_id}/content",
    response_class=StreamingResponse,
    responses=problems(LinkRefused, DocumentNotFound),
)
async def download_document(
    documents: Documents,
    document_id: str,
    expires: Annotated[int, Query(ge=0)],
    signature: Annotated[str, Query(pattern="^[0-9a-f]{64}$", description="The link's HMAC.")],
    client: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> StreamingResponse:
    """The file (public: the signed, expiring link is the credential; a client's link
    works only while the document is theirs)."""
    document, chunks = await documents.content(document_id, expires, signature, client)
    return StreamingResponse(
        chunks,
        media_type=document.content_type,
        headers={
            "Content-Length": str(document.file.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(document.name)}",
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post(
    "/{document_id}/sign",
    responses=problems(
        Forbidden,
        DocumentNotFound,
        InvalidDocument,
        DocumentNotAsReviewed,
        DocumentChangedConcurrently,
    ),
)
async def sign_document(
    principal: CurrentPrincipal,
    documents: Documents,
    runtime: RuntimeDep,
    request: Request,
    document_id: str,
    body: SignIn,
) -> DocumentOut:
    """The client signs (typed name, explicit consent, and the ``sha256`` of the file they
    reviewed: if the document's current file is another one, 409 and nothing is signed):
    who, when, from which address, and the SHA-256 of the exact file are recorded.
    Signing again changes nothing."""
    address = client_address(
        request.headers.get("x-forwarded-for"),
        request.client.host if request.client else None,
        runtime.settings.trusted_proxies,
    )
    document = await documents.sign(
        principal,
        document_id,
        signer_name=body.signer_name,
        consent=body.consent,
        reviewed_sha256=body.sha256,
        address=address,
        user_agent=request.headers.get("user-agent"),
    )
    return DocumentOut.of(document, documents.link(document, principal))
