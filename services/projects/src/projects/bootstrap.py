"""Wires the projects service: what it serves, stores, publishes and reacts to."""

from gala.app import ServiceDefinition
from gala.contracts.projects import PROJECT_EVENTS, TASK_EVENTS
from projects.people import repository as people_repository
from projects.portal import api as portal_api
from projects.projects import api as projects_api
from projects.projects import repository as projects_repository
from projects.subscriptions import subscriptions
from projects.tasks import api as tasks_api
from projects.templates import api as templates_api
from projects.templates import repository as templates_repository

service = ServiceDefinition(
    name="projects",
    port=8003,
    description="Event projects from won opportunities, their tasks, the client portal.",
    # templates first: /projects/templates is not a project id
    routers=[templates_api.router, projects_api.router, tasks_api.router, portal_api.router],
    publishes=[*PROJECT_EVENTS, *TASK_EVENTS],
    subscriptions=subscriptions,
    indexes=[
        *projects_repository.INDEXES,
        *templates_repository.INDEXES,
        *people_repository.INDEXES,
    ],
    outbox_collections=[projects_repository.COLLECTION],
)
