"""The rooms API's bodies (camelCase JSON, ids as ``id``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from gala.api import RequestBody, ResponseBody
from pipeline.rooms.domain import Room


class CreateRoomIn(RequestBody):
    name: Annotated[str, Field(min_length=1, max_length=1000, examples=["Grand Ballroom"])]
    capacity: Annotated[int, Field(ge=1, le=100_000, examples=[250])]


class RoomOut(ResponseBody):
    id: str
    name: str
    capacity: int
    created_at: datetime

    @classmethod
    def of(cls, room: Room) -> RoomOut:
        return cls(id=room.id, name=room.name, capacity=room.capacity, created_at=room.created_at)
