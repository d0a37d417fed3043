"""A local administrator registers their organisation's officials, deactivates and reactivates them, lists them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrator.contract import check_insz
from integrator.faults import ContractViolation, EmailInvalid
from repository.actors import Actor, now_or, official_of, reason_given, require_administrator
from repository.base import aware
from repository.models import Official

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


@dataclass(frozen=True)
class OfficialView:
    insz: str
    name: str
    email: str | None
    department: str | None
    active: bool
    registered_by: str | None
    registered_at: datetime | None
    deactivated_by: str | None
    deactivated_at: datetime | None
    deactivation_reason: str | None


def view(official: Official) -> OfficialView:
    return OfficialView(official.insz, official.name, official.email, official.department, official.active,
                        official.registered_by, aware(official.registered_at), official.deactivated_by,
                        aware(official.deactivated_at), official.deactivation_reason)


def register_official(session: Session, actor: Actor, organisation_id: int, insz: str, name: str,
                      email: str | None = None, department: str | None = None,
                      now: datetime | None = None) -> tuple[OfficialView, bool]:
    """Register an official (INSZ, name, e-mail, department); an official registered already gets the details
    given (an active one stays active, a deactivated one stays deactivated). True when new."""
    require_administrator(session, actor, organisation_id)
    check_insz(insz, "official INSZ")
    if not name.strip():
        raise ContractViolation("The official's name is empty; give their name as it should be shown.")
    if email is not None and EMAIL.fullmatch(email) is None:
        raise EmailInvalid(f"{email!r} is not an e-mail address; give one as name@example.be.")
    official = session.execute(select(Official).where(Official.organisation_id == organisation_id,
                                                      Official.insz == insz)).scalar_one_or_none()
    created = official is None
    if official is None:
        official = Official(organisation_id=organisation_id, insz=insz, active=True, registered_by=actor.label,
                            registered_at=now_or(now))
        session.add(official)
    official.name = name.strip()
    official.email = email if email is not None else official.email
    official.department = department if department is not None else official.department
    session.flush()
    return view(official), created


def deactivate_official(session: Session, actor: Actor, organisation_id: int, insz: str, reason: str,
                        now: datetime | None = None) -> OfficialView:
    """From now on the official is refused on every service (their grants and roles stay, and count again once
    they are reactivated); deactivating a deactivated official changes nothing."""
    require_administrator(session, actor, organisation_id)
    why = reason_given(reason, "deactivate the official")
    official = official_of(session, organisation_id, insz)
    if official.active:
        official.active = False
        official.deactivated_at, official.deactivated_by, official.deactivation_reason = now_or(now), actor.label, why
        session.flush()
    return view(official)


def reactivate_official(session: Session, actor: Actor, organisation_id: int, insz: str, reason: str,
                        now: datetime | None = None) -> OfficialView:
    require_administrator(session, actor, organisation_id)
    reason_given(reason, "reactivate the official")
    official = official_of(session, organisation_id, insz)
    if not official.active:
        official.active = True
        official.deactivated_at = official.deactivated_by = official.deactivation_reason = None
        session.flush()
    return view(official)


def list_officials(session: Session, actor: Actor, organisation_id: int) -> list[OfficialView]:
    require_administrator(session, actor, organisation_id)
    rows = session.execute(select(Official).where(Official.organisation_id == organisation_id)
                           .order_by(Official.insz)).scalars()
    return [view(official) for official in rows]
