"""Read queries the request path needs, each one round trip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from repository.models import AccessRight, Backend, Certificate, Grant, Official, Organisation


@dataclass(frozen=True)
class OrganisationView:
    id: int
    enterprise_number: str
    name: str
    kind: str
    nis_code: str | None


@dataclass(frozen=True)
class BackendView:
    name: str
    url: str
    certificate_pem: str
    timeout_seconds: float
    id: int = 0
    priority: int = 0
    weight: int = 1
    security: str = "x509"
    idempotent: frozenset[str] = frozenset()


def organisation_by_certificate(session: Session, fingerprint: str) -> OrganisationView | None:
    row = session.execute(
        select(Organisation).join(Certificate).where(Certificate.fingerprint == fingerprint)
    ).scalar_one_or_none()
    if row is None:
        return None
    return OrganisationView(row.id, row.enterprise_number, row.name, row.kind, row.nis_code)


def has_access_right(session: Session, organisation_id: int, service: str) -> bool:
    return session.execute(
        select(AccessRight.id).where(AccessRight.organisation_id == organisation_id, AccessRight.service == service)
    ).first() is not None


def official_status(
    session: Session, organisation_id: int, insz: str, service: str, purpose: str, on: date
) -> tuple[bool, bool]:
    """(official is registered and active for the organisation, official holds a valid grant)."""
    rows = session.execute(
        select(Official.id, Grant.id)
        .outerjoin(
            Grant,
            (Grant.official_id == Official.id)
            & (Grant.service == service)
            & (Grant.purpose == purpose)
            & Grant.active
            & (Grant.valid_from <= on)
            & or_(Grant.valid_until.is_(None), Grant.valid_until >= on),
        )
        .where(Official.organisation_id == organisation_id, Official.insz == insz, Official.active)
    ).all()
    if not rows:
        return False, False
    return True, any(grant_id is not None for _, grant_id in rows)


def backends_for(session: Session, service: str) -> list[BackendView]:
    rows = session.execute(
        select(Backend).where(Backend.service == service, Backend.active).order_by(Backend.name)
    ).scalars()
    return [BackendView(b.name, b.url, b.certificate_pem, b.timeout_seconds, b.id, b.priority, b.weight,
                        b.security, frozenset(b.idempotent.split())) for b in rows]
