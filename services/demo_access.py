"""Demo data for access management: a local administrator for each demo municipality (and a co-administrator for
Kruisdorp, so that a sensitive grant can be approved by a second administrator), their right and grants to
AccessManagement, and one sensitive demo service. Called by services.demo.load, last, so that the grants the other
demo modules made before the service was marked sensitive stay in effect."""

from __future__ import annotations

from sqlalchemy.orm import Session

from integrator import commands
from integrator.config import Settings
from repository import access_rights, administrators
from repository.models import AdministratorRole
from services.demo_organisations import ADMINISTRATORS, BRUGSTEDE, KRUISDORP

SERVICE = "AccessManagement"
PURPOSE_ACCESS = "ACCESS_MANAGEMENT"  # an administrator manages their organisation's officials and grants
SENSITIVE = "BisRegister.Update"  # changing the BIS register: a grant needs a second administrator's approval


def load(settings: Settings, session: Session, backend_urls: dict[str, str]) -> None:
    """Idempotent, like everything in the demo."""
    desk = commands.operator()
    for org in (KRUISDORP, BRUGSTEDE):
        commands.add_access_right(session, org.enterprise_number, SERVICE)
    for admin in ADMINISTRATORS:
        commands.add_official(session, admin.organisation, admin.insz, admin.name,
                              department=admin.department)
        commands.add_grant(session, admin.organisation, admin.insz, SERVICE, PURPOSE_ACCESS,
                           reason="the organisation's administrator")
        organisation = commands.organisation_id(session, admin.organisation)
        if not any(a.official == admin.insz and a.active
                   for a in administrators.list_administrators(session, desk, organisation)):
            administrators.designate(session, desk, organisation, admin.insz, AdministratorRole(admin.role))
    if not access_rights.is_sensitive(session, SENSITIVE):
        access_rights.mark_sensitive(session, desk, SENSITIVE, "changes the BIS register: four eyes", None)
