"""HTTP entry points for the venue's pipeline setup: stages and settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from gala.api import problems
from gala.app import OutboxDep, StoreDep
from gala.errors import Forbidden
from gala.identity import CurrentPrincipal
from gala.money import InvalidMoney
from pipeline.opportunities.repository import OpportunityRepository
from pipeline.stages.domain import (
    CurrencyInUse,
    InvalidStages,
    SetupChangedConcurrently,
    StagesInUse,
)
from pipeline.stages.repository import SetupRepository
from pipeline.stages.schemas import SettingsIn, SettingsOut, StagesIn, StagesOut
from pipeline.stages.service import SetupService

PREFIX = "/api/v1/pipeline"


async def get_setup_service(store: StoreDep, outbox: OutboxDep) -> SetupService:
    return SetupService(SetupRepository(store), OpportunityRepository(store, outbox))


Setups = Annotated[SetupService, Depends(get_setup_service)]
router = APIRouter(prefix=PREFIX, tags=["pipeline"])


@router.get("/stages", responses=problems(Forbidden))
async def get_stages(principal: CurrentPrincipal, setups: Setups) -> StagesOut:
    """The venue's stages in order, each with its win probability (ADMIN, SALES, PM)."""
    return StagesOut.of(await setups.get_stages(principal))


@router.put(
    "/stages",
    responses=problems(Forbidden, InvalidStages, StagesInUse, SetupChangedConcurrently),
)
async def put_stages(principal: CurrentPrincipal, setups: Setups, body: StagesIn) -> StagesOut:
    """Replace the ordered list (ADMIN, SALES). Keep a stage's ``id`` to rename or move it;
    a stage without one is new. Renaming, removing or changing ``holdsRoom`` of a stage
    with open opportunities is a 409 saying how many."""
    return StagesOut.of(await setups.put_stages(principal, [s.draft() for s in body.stages]))


@router.get("/settings", responses=problems(Forbidden))
async def get_settings(principal: CurrentPrincipal, setups: Setups) -> SettingsOut:
    """The venue's pipeline settings (ADMIN)."""
    return SettingsOut.of(await setups.get_settings(principal))


@router.put(
    "/settings",
    responses=problems(Forbidden, InvalidMoney, CurrencyInUse, SetupChangedConcurrently),
)
async def put_settings(
    principal: CurrentPrincipal, setups: Setups, body: SettingsIn
) -> SettingsOut:
    """Change the venue's currency (ADMIN); refused while opportunities have a value."""
    return SettingsOut.of(await setups.put_settings(principal, body.currency))
