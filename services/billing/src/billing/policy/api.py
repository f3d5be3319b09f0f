"""HTTP entry points for the venue's billing policy."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends

from billing.policy.domain import InvalidPolicy, PolicyChangedConcurrently
from billing.policy.repository import PolicyRepository
from billing.policy.schemas import PolicyIn, PolicyOut
from billing.policy.service import PolicyService
from gala.api import problems
from gala.app import StoreDep
from gala.errors import Forbidden
from gala.identity import CurrentPrincipal


async def policy_service(store: StoreDep) -> PolicyService:
    return PolicyService(PolicyRepository(store))


Policies = Annotated[PolicyService, Depends(policy_service)]
router = APIRouter(prefix="/api/v1/billing", tags=["billing"])


@router.get("/policy", responses=problems(Forbidden))
async def get_policy(principal: CurrentPrincipal, policies: Policies) -> PolicyOut:
    """How won opportunities are scheduled (ADMIN, SALES, PROJECT_MANAGER)."""
    return PolicyOut.of(await policies.get(principal))


@router.put("/policy", responses=problems(Forbidden, InvalidPolicy, PolicyChangedConcurrently))
async def put_policy(principal: CurrentPrincipal, policies: Policies, body: PolicyIn) -> PolicyOut:
    """Change it (ADMIN). Schedules made before keep their installments."""
    policy = await policies.put(
        principal,
        deposit_percent=Decimal(body.deposit_percent),
        deposit_due_days_after_win=body.deposit_due_days_after_win,
        balance_due_days_before_event=body.balance_due_days_before_event,
    )
    return PolicyOut.of(policy)
