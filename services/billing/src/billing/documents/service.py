"""Use cases for documents: upload (streamed, size-limited, type-checked), replace,
list, download through signed links, and a client's signature."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime, timedelta

from billing.contacts.repository import ContactCopyRepository
from billing.deals.repository import DealRepository
from billing.documents.blobs import BlobStore, new_key, sha256_of
from billing.documents.domain import (
    SNIFF_BYTES,
    Document,
    DocumentChangedConcurrently,
    DocumentNotFound,
    DocumentSignedAlready,
    InvalidDocument,
    Links,
    Signature,
    Stored,
    check_content,
    media_type,
)
from billing.documents.links import LinkRefused, check_link, signed_link
from billing.documents.repository import DocumentFilter, DocumentRepository
from billing.roles import DOCUMENT_STAFF
from gala.concurrency import save_attempts
from gala.identity import Principal, Role, ensure_role
from gala.store import utc_now

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
CONSENT = "I have read this document and I sign it electronically."


async def sniffed(chunks: AsyncIterator[bytes], content_type: str) -> AsyncIterator[bytes]:
    """``chunks``, once their first bytes have shown the declared type (415 otherwise)."""
    head = b""
    checked = False
    async for chunk in chunks:
        if not checked:
            head += chunk
            if len(head) < SNIFF_BYTES:
                continue
            check_content(content_type, head)
            checked, chunk, head = True, head, b""
        yield chunk
    if not checked:
        if not head:
            raise InvalidDocument("The file is empty.")
        check_content(content_type, head)
        yield head


class DocumentService:
    def __init__(
        self,
        documents: DocumentRepository,
        deals: DealRepository,
        contacts: ContactCopyRepository,
        blobs: BlobStore,
        *,
        link_secret: bytes,
        link_ttl: timedelta,
        clock: Clock = utc_now,
    ) -> None:
        self._documents = documents
        self._deals = deals
        self._contacts = contacts
        self._blobs = blobs
        self._secret = link_secret
        self._ttl = link_ttl
        self._clock = clock

    # --- staff ------------------------------------------------------------------------

    async def upload(
        self,
        principal: Principal,
        *,
        name: str,
        declared_type: str | None,
        links: Links,
        chunks: AsyncIterator[bytes],
    ) -> Document:
        ensure_role(principal, DOCUMENT_STAFF, "upload documents")
        content_type = media_type(declared_type)
        links = await self._check_links(principal.venue_id, links.check())
        document_id = Document.new_id()
        stored = await self._store(principal.venue_id, document_id, content_type, chunks)
        try:
            document = Document.upload(
                venue_id=principal.venue_id, name=name, content_type=content_type,
                links=links, file=stored, uploaded_by=principal.user_id, now=self._clock(),
                document_id=document_id,
            )  # fmt: skip
            await self._documents.insert(document)
        except BaseException:
            await self._blobs.delete(stored.key)
            raise
        return document

    async def replace(
        self,
        principal: Principal,
        document_id: str,
        *,
        declared_type: str | None,
        chunks: AsyncIterator[bytes],
    ) -> Document:
        """A new file for an unsigned document (409 once it is signed)."""
        ensure_role(principal, DOCUMENT_STAFF, "replace documents")
        content_type = media_type(declared_type)
        if (await self._load(principal.venue_id, document_id)).is_signed:
            raise DocumentSignedAlready()
        stored = await self._store(principal.venue_id, document_id, content_type, chunks)
        async for _ in save_attempts():
            document = await self._load(principal.venue_id, document_id)
            try:
                old = document.replace_file(content_type, stored, self._clock())
            except BaseException:
                await self._blobs.delete(stored.key)
                raise
            if await self._documents.save(document):
                await self._blobs.delete(old.key)
                return document
        await self._blobs.delete(stored.key)
        raise DocumentChangedConcurrently()

    # --- staff and clients ------------------------------------------------------------

    async def page(
        self, principal: Principal, where: DocumentFilter, limit: int, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        if principal.role is Role.CLIENT:
            opportunities, projects = await self._deals.of_client(
                principal.venue_id, principal.user_id
            )
            where = replace(where, opportunity_ids=opportunities, project_ids=projects)
        else:
            ensure_role(principal, DOCUMENT_STAFF, "see documents")
        return await self._documents.page(principal.venue_id, where, limit, cursor)

    async def get(self, principal: Principal, document_id: str) -> Document:
        document = await self._load(principal.venue_id, document_id)
        if principal.role is Role.CLIENT:
            if not await self._client_owns(principal.venue_id, principal.user_id, document):
                raise DocumentNotFound()
        else:
            ensure_role(principal, DOCUMENT_STAFF, "see documents")
        return document

    def link(self, document: Document, principal: Principal) -> str:
        """A signed download link, valid for a while (a CLIENT's: while it is theirs)."""
        client = principal.user_id if principal.role is Role.CLIENT else None
        return signed_link(self._secret, document.id, self._clock(), self._ttl, client)

    async def content(
        self, document_id: str, expires: int, signature: str, client_id: str | None = None
    ) -> tuple[Document, AsyncIterator[bytes]]:
        """The file behind a signed link (no login: the link is the credential); a link
        issued to a client stops working once the document is no longer theirs."""
        check_link(self._secret, document_id, expires, signature, self._clock(), client_id)
        document = await self._documents.find_one({"_id": document_id})
        if document is None:
            raise DocumentNotFound()
        if client_id is not None and not await self._client_owns(
            document.venue_id, client_id, document
        ):
            raise LinkRefused()
        return document, self._blobs.read(document.file.key)

    async def sign(
        self,
        principal: Principal,
        document_id: str,
        *,
        signer_name: str,
        consent: bool,
        reviewed_sha256: str,
        address: str,
        user_agent: str | None,
    ) -> Document:
        """The client signs the file they reviewed (its SHA-256; another current file is
        409 and signs nothing): who, when, from where, and the SHA-256 of the exact bytes."""
        if principal.role is not Role.CLIENT:
            ensure_role(principal, frozenset({Role.CLIENT}), "sign documents")
        if not consent:
            raise InvalidDocument("Signing needs your explicit consent (consent: true).")
        await self.get(principal, document_id)  # theirs to see (else 404)
        async for _ in save_attempts():
            document = await self._load(principal.venue_id, document_id)
            document.check_reviewed(reviewed_sha256)
            if document.is_signed:
                return document  # signed already: nothing changes
            signature = Signature(
                signer_id=principal.user_id,
                signer_name=" ".join(signer_name.split()),
                signed_at=self._clock(),
                address=address,
                user_agent=user_agent[:500] if user_agent else None,
                sha256=await sha256_of(self._blobs, document.file.key),
                consent=CONSENT,
            )
            document.sign(signature)
            if await self._documents.save(document):
                return document
        raise DocumentChangedConcurrently()

    # --- internals --------------------------------------------------------------------

    async def _store(
        self, venue_id: str, document_id: str, content_type: str, chunks: AsyncIterator[bytes]
    ) -> Stored:
        stored = await self._blobs.put(
            new_key(venue_id, document_id), sniffed(chunks, content_type)
        )
        if stored.size == 0:
            await self._blobs.delete(stored.key)
            raise InvalidDocument("The file is empty.")
        return stored

    async def _load(self, venue_id: str, document_id: str) -> Document:
        document = await self._documents.get(venue_id, document_id)
        if document is None:
            raise DocumentNotFound()
        return document

    async def _check_links(self, venue_id: str, links: Links) -> Links:
        """Each link must name the venue's own; a project's or opportunity's document also
        names the opportunity and its contact (so that a signed contract can move the
        opportunity on, and shows in the contact's timeline)."""
        deal = None
        if links.opportunity_id:
            deal = await self._deals.get(venue_id, links.opportunity_id)
            if deal is None:
                raise InvalidDocument(
                    f"The venue has no opportunity {links.opportunity_id!r}.",
                    opportunityId=links.opportunity_id,
                )
        if links.project_id:
            of_project = await self._deals.by_project(venue_id, links.project_id)
            if of_project is None or (deal and deal.opportunity_id != of_project.opportunity_id):
                raise InvalidDocument(
                    f"The venue has no project {links.project_id!r} (of that opportunity).",
                    projectId=links.project_id,
                )
            deal = of_project
        if links.contact_id:
            contact = await self._contacts.get(venue_id, links.contact_id)
            if contact is None or contact.erased:
                raise InvalidDocument(
                    f"The venue has no contact {links.contact_id!r}.", contactId=links.contact_id
                )
        if deal is None:
            return links
        return Links(
            opportunity_id=deal.opportunity_id,
            project_id=links.project_id or deal.project_id,
            contact_id=links.contact_id or deal.contact_id,
        )

    async def _client_owns(self, venue_id: str, user_id: str, document: Document) -> bool:
        """The document is of a project (or opportunity) the CLIENT belongs to now."""
        opportunities, projects = await self._deals.of_client(venue_id, user_id)
        return (document.links.opportunity_id in opportunities) or (
            document.links.project_id in projects
        )
