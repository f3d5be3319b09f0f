"""Wires the billing service: what it serves, stores, publishes and reacts to."""

from billing.checkout import api as checkout_api
from billing.contacts import repository as contacts_repository
from billing.deals import repository as deals_repository
from billing.documents import api as documents_api
from billing.documents import repository as documents_repository
from billing.payments import api as payments_api
from billing.payments import repository as payments_repository
from billing.policy import api as policy_api
from billing.policy import repository as policy_repository
from billing.reminders.service import send_reminders
from billing.settings import BillingSettings
from billing.subscriptions import subscriptions
from gala.app import ServiceDefinition
from gala.contracts.billing import DOCUMENT_EVENTS, PAYMENT_EVENTS

service = ServiceDefinition(
    name="billing",
    port=8005,
    description="Payment schedules, reminders, payments, and contracts to sign.",
    routers=[policy_api.router, payments_api.router, checkout_api.router, documents_api.router],
    publishes=[*PAYMENT_EVENTS, *DOCUMENT_EVENTS],
    subscriptions=subscriptions,
    indexes=[
        *payments_repository.INDEXES,
        *policy_repository.INDEXES,
        *deals_repository.INDEXES,
        *contacts_repository.INDEXES,
        *documents_repository.INDEXES,
    ],
    outbox_collections=[payments_repository.COLLECTION, documents_repository.COLLECTION],
    background=[send_reminders],
    settings_type=BillingSettings,
)
