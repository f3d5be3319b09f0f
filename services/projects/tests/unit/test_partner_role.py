"""A partner app's key (PARTNER) reads the venue's event log, never its projects: every
projects role set is an allow-list without it."""

import pytest

from gala.errors import Forbidden
from gala.identity import Principal, Role, ensure_role
from projects import roles


@pytest.mark.parametrize("allowed", [roles.EVERYONE, roles.TEAM, roles.MANAGERS, roles.WHOLE_VENUE])
def test_partner_is_in_no_projects_role_set(allowed: frozenset[Role]) -> None:
    partner = Principal(user_id="partner-app:x", venue_id="v", role=Role.PARTNER)
    with pytest.raises(Forbidden):
        ensure_role(partner, allowed, "list projects")


def test_everyone_is_the_staff_and_the_clients() -> None:
    people = {Role.ADMIN, Role.SALES, Role.PROJECT_MANAGER, Role.STAFF, Role.CLIENT}
    assert people == roles.EVERYONE
