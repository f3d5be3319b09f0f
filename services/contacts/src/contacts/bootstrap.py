"""Wires the contacts service: what it serves, stores, publishes and reacts to."""

from contacts.imports import api as imports_api
from contacts.imports import repository as imports_repository
from contacts.imports import service as imports_service
from contacts.intake import api as intake_api
from contacts.intake import repository as intake_repository
from contacts.intake import service as intake_service
from contacts.leads import api as leads_api
from contacts.leads import repository as leads_repository
from contacts.leads import transfer_api
from contacts.settings import ContactsSettings
from contacts.subscriptions import subscriptions
from contacts.timeline import api as timeline_api
from contacts.timeline import repository as timeline_repository
from contacts.users import api as users_api
from contacts.users import repository as users_repository
from gala.app import ServiceDefinition
from gala.contracts.contacts import CONTACT_EVENTS, USER_EVENTS

service = ServiceDefinition(
    name="contacts",
    port=8001,
    description="Leads, their heat, and the people directory: staff and clients with roles.",
    routers=[
        # intake before leads: /api/v1/contacts/{contact_id} would capture its admin paths
        intake_api.admin_router,
        intake_api.public_router,
        imports_api.router,
        transfer_api.router,
        timeline_api.router,
        leads_api.router,
        users_api.router,
        users_api.internal_router,
        leads_api.internal_router,
    ],
    publishes=[*CONTACT_EVENTS, *USER_EVENTS],
    subscriptions=subscriptions,
    indexes=[
        *leads_repository.INDEXES,
        *timeline_repository.INDEXES,
        *users_repository.INDEXES,
        *intake_repository.INDEXES,
        *imports_repository.INDEXES,
    ],
    outbox_collections=[leads_repository.COLLECTION, users_repository.COLLECTION],
    background=[intake_service.process_meta_leads, imports_service.process_imports],
    settings_type=ContactsSettings,
)
