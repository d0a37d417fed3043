"""The service desk designates each organisation's local administrator and co-administrators, and withdraws them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrator.faults import LocalAdministratorTaken, NotAdministrator, OfficialInactive
from repository.actors import (
    Actor,
    now_or,
    official_of,
    organisation_number,
    require_administrator,
    require_service_desk,
)
from repository.base import aware
from repository.models import Administrator, AdministratorRole, Official


@dataclass(frozen=True)
class AdministratorView:
    official: str  # INSZ
    name: str
    role: AdministratorRole
    active: bool
    designated_by: str
    designated_at: datetime
    withdrawn_by: str | None
    withdrawn_at: datetime | None


def designate(session: Session, actor: Actor, organisation_id: int, insz: str, role: AdministratorRole,
              now: datetime | None = None) -> AdministratorView:
    """Make an active official of the organisation its local administrator (one at a time) or a co-administrator;
    designating an administrator again changes their role."""
    require_service_desk(actor, "designate administrators")
    official = official_of(session, organisation_id, insz)
    if not official.active:
        raise OfficialInactive(f"Official {insz} is deactivated; reactivate them before designating them.")
    if role == AdministratorRole.LOCAL:
        local = session.execute(
            select(Official.insz).join(Administrator, Administrator.official_id == Official.id)
            .where(Administrator.organisation_id == organisation_id, Administrator.active,
                   Administrator.role == AdministratorRole.LOCAL, Official.id != official.id)
        ).scalar_one_or_none()
        if local is not None:
            raise LocalAdministratorTaken(
                f"Official {local} is the local administrator of organisation "
                f"{organisation_number(session, organisation_id)}; withdraw them first, or designate {insz} as a "
                "co-administrator."
            )
    row = session.execute(select(Administrator).where(Administrator.organisation_id == organisation_id,
                                                      Administrator.official_id == official.id)
                          ).scalar_one_or_none()
    if row is None:
        row = Administrator(organisation_id=organisation_id, official_id=official.id)
        session.add(row)
    row.role, row.active, row.designated_by, row.designated_at = role, True, actor.label, now_or(now)
    row.withdrawn_at = row.withdrawn_by = None
    session.flush()
    return _view(row, official)


def withdraw(session: Session, actor: Actor, organisation_id: int, insz: str,
             now: datetime | None = None) -> AdministratorView:
    """The official stays an official; they no longer administer the organisation."""
    require_service_desk(actor, "withdraw administrators")
    official = official_of(session, organisation_id, insz)
    row = session.execute(select(Administrator).where(Administrator.organisation_id == organisation_id,
                                                      Administrator.official_id == official.id, Administrator.active)
                          ).scalar_one_or_none()
    if row is None:
        raise NotAdministrator(f"Official {insz} is not an active administrator of organisation "
                               f"{organisation_number(session, organisation_id)}: there is nothing to withdraw.")
    row.active, row.withdrawn_at, row.withdrawn_by = False, now_or(now), actor.label
    session.flush()
    return _view(row, official)


def list_administrators(session: Session, actor: Actor, organisation_id: int) -> list[AdministratorView]:
    require_administrator(session, actor, organisation_id)
    rows = session.execute(select(Administrator, Official).join(Official, Official.id == Administrator.official_id)
                           .where(Administrator.organisation_id == organisation_id).order_by(Official.insz)).all()
    return [_view(row, official) for row, official in rows]


def _view(row: Administrator, official: Official) -> AdministratorView:
    return AdministratorView(official.insz, official.name, AdministratorRole(row.role), row.active, row.designated_by,
                             aware(row.designated_at), row.withdrawn_by, aware(row.withdrawn_at))
