"""Where document files live: a blob store (a local folder by default, or an S3-compatible
object store when configured).

Files are written under a temporary name and renamed into place once complete, so a
reader never sees half a file, and hashed (SHA-256) while they stream in. Keys are
opaque (``<venue>/<document>/<random>``) and never reach a client: downloads go through
signed, expiring links (see links.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from billing.documents.domain import Stored
from billing.settings import BillingSettings
from gala.errors import ServiceUnavailable

CHUNK = 256 * 1024
PART = 5 * 1024 * 1024
"""S3 multipart parts: every part but the last must be at least 5 MiB."""


class BlobStore(Protocol):
    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> Stored:
        """Store ``chunks`` as ``key``; its size and SHA-256 (nothing stored on failure)."""

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The file's bytes, a chunk at a time."""

    async def delete(self, key: str) -> None: ...


def new_key(venue_id: str, document_id: str) -> str:
    return f"{venue_id}/{document_id}/{uuid.uuid4().hex}"


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root.resolve()):
            raise ValueError("a blob key leaves the store")
        return path

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> Stored:
        path = self._path(key)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")
        digest = hashlib.sha256()
        size = 0
        handle: BinaryIO = await asyncio.to_thread(partial.open, "wb")
        try:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(handle.flush)
            await asyncio.to_thread(os.fsync, handle.fileno())
        except BaseException:
            handle.close()
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            raise
        handle.close()
        await asyncio.to_thread(os.replace, partial, path)
        return Stored(key, size, digest.hexdigest())

    async def read(self, key: str) -> AsyncIterator[bytes]:
        handle: BinaryIO = await asyncio.to_thread(self._path(key).open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)


async def sha256_of(store: BlobStore, key: str) -> str:
    """The SHA-256 of a stored file, read again (what a signature vouches for)."""
    digest = hashlib.sha256()
    async for chunk in store.read(key):
        digest.update(chunk)
    return digest.hexdigest()


class S3BlobStore:
    """Files as objects of one bucket (multipart uploads, so nothing is held whole)."""

    def __init__(self, settings: BillingSettings) -> None:
        if not settings.s3_bucket:
            raise ValueError("GALA_S3_BUCKET is required with GALA_BLOB_STORE=s3")
        self._bucket = settings.s3_bucket
        self._prefix = settings.s3_prefix
        secret = settings.s3_secret_access_key
        self._client_args: dict[str, Any] = {
            "service_name": "s3",
            "endpoint_url": settings.s3_endpoint_url,
            "region_name": settings.s3_region,
            "aws_access_key_id": settings.s3_access_key_id,
            "aws_secret_access_key": secret.get_secret_value() if secret else None,
        }
        self._session = get_session()

    def _client(self) -> Any:
        return self._session.create_client(**self._client_args)

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> Stored:
        name = self._prefix + key
        digest = hashlib.sha256()
        size = 0
        async with self._client() as s3:
            upload = await _s3(s3.create_multipart_upload(Bucket=self._bucket, Key=name))
            upload_id = upload["UploadId"]
            parts: list[dict[str, Any]] = []
            buffer = bytearray()
            try:
                async for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    buffer += chunk
                    if len(buffer) >= PART:
                        parts.append(await self._part(s3, name, upload_id, len(parts) + 1, buffer))
                        buffer = bytearray()
                if buffer or not parts:
                    parts.append(await self._part(s3, name, upload_id, len(parts) + 1, buffer))
                await _s3(
                    s3.complete_multipart_upload(
                        Bucket=self._bucket,
                        Key=name,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                    )
                )
            except BaseException:
                await s3.abort_multipart_upload(Bucket=self._bucket, Key=name, UploadId=upload_id)
                raise
        return Stored(key, size, digest.hexdigest())

    async def _part(
        self, s3: Any, name: str, upload_id: str, number: int, data: bytearray
    ) -> dict[str, Any]:
        answer = await _s3(
            s3.upload_part(
                Bucket=self._bucket,
                Key=name,
                UploadId=upload_id,
                PartNumber=number,
                Body=bytes(data),
            )
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def read(self, key: str) -> AsyncIterator[bytes]:
        async with self._client() as s3:
            answer = await _s3(s3.get_object(Bucket=self._bucket, Key=self._prefix + key))
            async with answer["Body"] as body:
                while chunk := await body.read(CHUNK):
                    yield chunk

    async def delete(self, key: str) -> None:
        async with self._client() as s3:
            await _s3(s3.delete_object(Bucket=self._bucket, Key=self._prefix + key))


async def _s3(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(f"The document store did not answer: {exc}") from exc


def blob_store(settings: BillingSettings) -> BlobStore:
    """The store the settings name."""
    if settings.blob_store == "s3":
        return S3BlobStore(settings)
    return LocalBlobStore(settings.blob_dir)
