"""HTTP entry points for rooms: thin translations to the use cases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from gala.api import Cursor, Limit, PageOut, problems
from gala.app import StoreDep
from gala.errors import Forbidden, InvalidInput
from gala.identity import CurrentPrincipal
from pipeline.rooms.domain import InvalidRoom, RoomMissing, RoomNameTaken
from pipeline.rooms.repository import RoomRepository
from pipeline.rooms.schemas import CreateRoomIn, RoomOut
from pipeline.rooms.service import RoomService

PREFIX = "/api/v1/rooms"


async def get_room_service(store: StoreDep) -> RoomService:
    return RoomService(RoomRepository(store))


Rooms = Annotated[RoomService, Depends(get_room_service)]
router = APIRouter(prefix=PREFIX, tags=["rooms"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problems(Forbidden, InvalidRoom, RoomNameTaken),
)
async def create_room(
    principal: CurrentPrincipal, rooms: Rooms, body: CreateRoomIn, response: Response
) -> RoomOut:
    """Add a room (ADMIN, SALES); its name is unique in the venue."""
    room = await rooms.create(principal, body.name, body.capacity)
    response.headers["Location"] = f"{PREFIX}/{room.id}"
    return RoomOut.of(room)


@router.get("", responses=problems(Forbidden, InvalidInput))
async def list_rooms(
    principal: CurrentPrincipal, rooms: Rooms, limit: Limit = 50, cursor: Cursor = None
) -> PageOut[RoomOut]:
    """The venue's rooms by name (ADMIN, SALES)."""
    items, next_cursor = await rooms.list(principal, limit, cursor)
    return PageOut[RoomOut](items=[RoomOut.of(r) for r in items], next_cursor=next_cursor)


@router.get("/{room_id}", responses=problems(Forbidden, RoomMissing))
async def get_room(principal: CurrentPrincipal, rooms: Rooms, room_id: str) -> RoomOut:
    return RoomOut.of(await rooms.get(principal, room_id))
