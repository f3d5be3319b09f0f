"""Where document files live: a blob store (a local folder by default).

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
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Protocol

from billing.documents.domain import Stored

CHUNK = 256 * 1024


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
