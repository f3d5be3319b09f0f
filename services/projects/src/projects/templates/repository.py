"""The only module that speaks to the store about task templates.

One document per venue in ``task_templates`` (``_id`` = venue id), holding only the
venue's own templates; a venue without one has the built-in templates. Saves are
version-checked, the first one an insert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from gala.store import Document, Index, Store
from gala.values import as_utc
from projects.templates.domain import EventTemplate, TaskTemplate, VenueTemplates

COLLECTION = "task_templates"
INDEXES: Sequence[Index] = ()


def _template_document(t: EventTemplate) -> Document:
    return {
        "eventType": t.event_type,
        "durationHours": t.duration_hours,
        "tasks": [
            {
                "title": task.title,
                "daysBefore": task.days_before,
                "description": task.description,
                "isInternal": task.is_internal,
            }
            for task in t.tasks
        ],
    }


def _template(d: Mapping[str, Any]) -> EventTemplate:
    return EventTemplate(
        d["eventType"],
        int(d["durationHours"]),
        tuple(
            TaskTemplate(t["title"], int(t["daysBefore"]), t.get("description"), t["isInternal"])
            for t in d["tasks"]
        ),
    )


class TemplateRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def collection(self) -> AsyncCollection[Document]:
        return self._store[COLLECTION]

    async def get(self, venue_id: str) -> VenueTemplates:
        d = await self.collection.find_one({"_id": venue_id})
        if d is None:
            return VenueTemplates(venue_id)
        own = [_template(t) for t in d["templates"]]
        return VenueTemplates(
            venue_id,
            {t.event_type: t for t in own},
            int(d["version"]),
            as_utc(d.get("updatedAt")),
        )

    async def save(self, templates: VenueTemplates) -> bool:
        """Write unless someone saved since it was read (then ``False``)."""
        state = {
            "venueId": templates.venue_id,
            "templates": [_template_document(t) for t in templates.own.values()],
            "updatedAt": templates.updated_at,
            "version": templates.version + 1,
        }
        if templates.version == 0:
            try:
                await self.collection.insert_one({"_id": templates.venue_id, **state})
            except DuplicateKeyError:
                return False
        else:
            result = await self.collection.update_one(
                {"_id": templates.venue_id, "version": templates.version}, {"$set": state}
            )
            if result.matched_count != 1:
                return False
        templates.version += 1
        return True
