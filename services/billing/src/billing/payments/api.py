"""HTTP entry points for payments: thin translations to the use cases."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status

from billing.checkout.stripe_gateway import gateway_of
from billing.deals.domain import UnknownOpportunity
from billing.deals.repository import DealRepository
from billing.payments.domain import (
    InvalidPayment,
    InvalidPaymentTransition,
    PaymentChangedConcurrently,
    PaymentNotFound,
    PaymentPatch,
    PaymentSettled,
)
from billing.payments.repository import PaymentFilter, PaymentRepository
from billing.payments.schemas import (
    CreatePaymentIn,
    PaymentOut,
    RecordPaymentIn,
    ResolveAttentionIn,
    UpdatePaymentIn,
)
from billing.payments.service import PaymentService
from billing.policy.repository import PolicyRepository
from billing.reminders.service import schedule_from
from billing.settings import billing_settings
from gala.api import Cursor, Limit, PageOut, problems
from gala.app import OutboxDep, RuntimeDep, StoreDep
from gala.contracts.billing import PaymentStatus
from gala.errors import Forbidden, InvalidInput
from gala.identity import CurrentPrincipal
from gala.money import to_minor
from gala.values import UNSET

PREFIX = "/api/v1/payments"


async def payment_service(
    store: StoreDep, outbox: OutboxDep, runtime: RuntimeDep
) -> PaymentService:
    return PaymentService(
        PaymentRepository(store, outbox),
        PolicyRepository(store),
        DealRepository(store),
        schedule_from(billing_settings(runtime.settings)),
        checkouts=gateway_of(runtime),
    )


Payments = Annotated[PaymentService, Depends(payment_service)]


async def payment_filter(
    opportunity_id: Annotated[str | None, Query(alias="opportunityId", max_length=200)] = None,
    project_id: Annotated[str | None, Query(alias="projectId", max_length=200)] = None,
    payment_status: Annotated[PaymentStatus | None, Query(alias="status")] = None,
    due_from: Annotated[datetime | None, Query(alias="dueFrom", description="Inclusive")] = None,
    due_to: Annotated[datetime | None, Query(alias="dueTo", description="Exclusive")] = None,
    attention: Annotated[
        bool | None,
        Query(
            description="true: only installments that need attention (money received online"
            " that did not pay them: less, more, another currency, a second payment, money for"
            " a cancelled one); false: only the others."
        ),
    ] = None,
) -> PaymentFilter:
    return PaymentFilter(
        opportunity_id, project_id, payment_status, due_from, due_to, needs_attention=attention
    )


Filter = Annotated[PaymentFilter, Depends(payment_filter)]
router = APIRouter(prefix=PREFIX, tags=["payments"])
CHANGE_PROBLEMS = (
    Forbidden,
    PaymentNotFound,
    InvalidPayment,
    InvalidPaymentTransition,
    PaymentSettled,
    PaymentChangedConcurrently,
)


@router.get("", responses=problems(Forbidden, InvalidInput))
async def list_payments(
    principal: CurrentPrincipal,
    payments: Payments,
    where: Filter,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[PaymentOut]:
    """The venue's payments by due date (a CLIENT: those of their own projects)."""
    items, next_cursor = await payments.page(principal, where, limit, cursor)
    return PageOut[PaymentOut](items=[PaymentOut.of(p) for p in items], next_cursor=next_cursor)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problems(Forbidden, InvalidPayment, UnknownOpportunity),
)
async def create_payment(
    principal: CurrentPrincipal, payments: Payments, body: CreatePaymentIn, response: Response
) -> PaymentOut:
    """An extra installment of a won opportunity, in its currency (ADMIN, SALES)."""
    payment = await payments.add(principal, body.opportunity_id, body.amount, body.due_date)
    response.headers["Location"] = f"{PREFIX}/{payment.id}"
    return PaymentOut.of(payment)


@router.get("/{payment_id}", responses=problems(Forbidden, PaymentNotFound))
async def get_payment(
    principal: CurrentPrincipal, payments: Payments, payment_id: str
) -> PaymentOut:
    return PaymentOut.of(await payments.get(principal, payment_id))


@router.patch("/{payment_id}", responses=problems(*CHANGE_PROBLEMS))
async def update_payment(
    principal: CurrentPrincipal, payments: Payments, payment_id: str, body: UpdatePaymentIn
) -> PaymentOut:
    """Change the amount or due date of an unpaid installment, or its status (ADMIN,
    SALES); an impossible status change is 409."""
    current = await payments.get(principal, payment_id)
    sent = body.model_fields_set
    for required in ("amount", "due_date", "status"):
        if required in sent and getattr(body, required) is None:
            raise InvalidPayment(f"{required} cannot be removed")
    try:
        amount = UNSET if body.amount is None else to_minor(body.amount, current.currency)
    except InvalidInput as exc:
        raise InvalidPayment(exc.detail) from exc
    patch = PaymentPatch(
        amount_minor=amount,
        due_date=UNSET if body.due_date is None else body.due_date,
        status=UNSET if body.status is None else body.status,
        payment_method=body.payment_method if "payment_method" in sent else UNSET,
    )
    return PaymentOut.of(await payments.change(principal, payment_id, patch))


@router.post("/{payment_id}/record", responses=problems(*CHANGE_PROBLEMS))
async def record_payment(
    principal: CurrentPrincipal,
    payments: Payments,
    payment_id: str,
    body: RecordPaymentIn,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> PaymentOut:
    """Record a payment received outside Gala (ADMIN, SALES): the installment is PAID.
    Send an ``Idempotency-Key``: the same key again answers the same payment and changes
    nothing; recording a paid installment under another key is 409."""
    payment = await payments.record(
        principal,
        payment_id,
        method=body.payment_method,
        reference=body.reference,
        idempotency_key=idempotency_key,
    )
    return PaymentOut.of(payment)


@router.post(
    "/{payment_id}/resolve",
    responses=problems(Forbidden, PaymentNotFound, InvalidPayment, PaymentChangedConcurrently),
)
async def resolve_attention(
    principal: CurrentPrincipal, payments: Payments, payment_id: str, body: ResolveAttentionIn
) -> PaymentOut:
    """Say what was done about an installment that needs attention (ADMIN, SALES): it
    no longer does (its receipts stay). Resolving one that needs none changes nothing."""
    return PaymentOut.of(await payments.resolve_attention(principal, payment_id, body.note))
