"""Who performs an administrative act, and the checks every act starts with: the actor may act for the
organisation, the reason is given, the official concerned exists. Every face (AccessManagement v1, the portal's
administration pages, the operator CLI) comes through here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrator.faults import AccessOfficialUnknown, NotAdministrator, ReasonMissing
from repository.models import Administrator, Official, Organisation

SERVICE_DESK = "service-desk"


@dataclass(frozen=True)
class Actor:
    """An official acting for their organisation, or the integrator's service desk (an operator at the CLI)."""

    label: str  # what the records say: the official's INSZ, or service-desk:<operator>
    organisation_id: int | None = None  # the official's organisation; None for the service desk
    insz: str | None = None  # the official's INSZ; None for the service desk

    @classmethod
    def official(cls, organisation_id: int, insz: str) -> Actor:
        return cls(insz, organisation_id, insz)

    @classmethod
    def service_desk(cls, operator: str) -> Actor:
        return cls(f"{SERVICE_DESK}:{operator}")

    @property
    def is_service_desk(self) -> bool:
        return self.insz is None


def now_or(moment: datetime | None) -> datetime:
    return moment if moment is not None else datetime.now(UTC)


def organisation_number(session: Session, organisation_id: int) -> str:
    return session.execute(select(Organisation.enterprise_number).where(Organisation.id == organisation_id)
                           ).scalar_one()


def administrator_of(session: Session, actor: Actor, organisation_id: int) -> Administrator | None:
    """The actor's active administrator role in the organisation (None: the service desk, or none)."""
    if actor.is_service_desk or actor.organisation_id != organisation_id:
        return None
    return session.execute(
        select(Administrator).join(Official, Official.id == Administrator.official_id)
        .where(Administrator.organisation_id == organisation_id, Administrator.active, Official.active,
               Official.organisation_id == organisation_id, Official.insz == actor.insz)
    ).scalar_one_or_none()


def require_administrator(session: Session, actor: Actor, organisation_id: int) -> None:
    """Refuse unless the actor is the service desk or an active (co-)administrator of the organisation."""
    if actor.is_service_desk or administrator_of(session, actor, organisation_id) is not None:
        return
    raise NotAdministrator(
        f"Official {actor.insz} is not an active administrator of organisation "
        f"{organisation_number(session, organisation_id)}; the integrator's service desk designates each "
        "organisation's local administrator and co-administrators."
    )


def require_service_desk(actor: Actor, act: str) -> None:
    if not actor.is_service_desk:
        raise NotAdministrator(f"Only the integrator's service desk may {act}; ask the service desk.")


def reason_given(reason: str | None, act: str) -> str:
    """The stated reason of an act, which every record of it carries."""
    if reason is None or not reason.strip():
        raise ReasonMissing(f"State why you {act}: the reason is recorded with the act.")
    return reason.strip()


def official_of(session: Session, organisation_id: int, insz: str) -> Official:
    official = session.execute(select(Official).where(Official.organisation_id == organisation_id,
                                                      Official.insz == insz)).scalar_one_or_none()
    if official is None:
        raise AccessOfficialUnknown(
            f"Official {insz} is not registered at organisation {organisation_number(session, organisation_id)}; "
            "register the official first (RegisterOfficial, kruispunt official add)."
        )
    return official
