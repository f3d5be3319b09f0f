"""The only module that speaks to the store about a venue's pipeline setup.

One document per venue in ``pipeline_setup`` (``_id`` = venue id); a venue without one
has the defaults. Saves are version-checked, the first one an insert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from gala.store import Document, Index, Store
from pipeline.stages.domain import PipelineSetup, Stage

COLLECTION = "pipeline_setup"
INDEXES: Sequence[Index] = ()


def to_document(setup: PipelineSetup) -> Document:
    return {
        "_id": setup.venue_id,
        "venueId": setup.venue_id,
        "currency": setup.currency,
        "stages": [
            {
                "id": stage.id,
                "name": stage.name,
                "probability": str(stage.probability),
                "holdsRoom": stage.holds_room,
            }
            for stage in setup.stages
        ],
        "updatedAt": setup.updated_at,
        "version": setup.version,
    }


def from_document(document: Mapping[str, Any]) -> PipelineSetup:
    updated = document.get("updatedAt")
    return PipelineSetup(
        venue_id=document["venueId"],
        currency=document["currency"],
        stages=tuple(
            Stage(s["id"], s["name"], Decimal(s["probability"]), bool(s.get("holdsRoom")))
            for s in document["stages"]
        ),
        version=int(document["version"]),
        updated_at=updated.astimezone(UTC) if isinstance(updated, datetime) else None,
    )


class SetupRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def collection(self) -> AsyncCollection[Document]:
        return self._store[COLLECTION]

    async def get(self, venue_id: str) -> PipelineSetup:
        document = await self.collection.find_one({"_id": venue_id, "venueId": venue_id})
        return from_document(document) if document is not None else PipelineSetup(venue_id)

    async def save(self, setup: PipelineSetup) -> bool:
        """Write unless someone saved since it was read (then ``False``)."""
        state = to_document(setup)
        state["version"] = setup.version + 1
        if setup.version == 0:
            try:
                await self.collection.insert_one(state)
            except DuplicateKeyError:
                return False
        else:
            del state["_id"]
            result = await self.collection.update_one(
                {"_id": setup.venue_id, "version": setup.version}, {"$set": state}
            )
            if result.matched_count != 1:
                return False
        setup.version += 1
        return True
