"""Read queries of the Metadata and Repository services: versions by name, an official's usable grants, backends."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from repository.models import AccessRight, Backend, Grant, Official, ServiceVersion
from repository.registry import CALLABLE


def versions_named(session: Session, name: str, major: int | None = None) -> list[ServiceVersion]:
    """Every version of a service (of one major version, if given), oldest first."""
    query = select(ServiceVersion).where(ServiceVersion.name == name)
    if major is not None:
        query = query.where(ServiceVersion.major == major)
    return list(session.execute(query.order_by(ServiceVersion.major, ServiceVersion.minor)).scalars())


def newest_callable(session: Session, name: str) -> ServiceVersion | None:
    """The highest active or deprecated version of a service, over all its major versions."""
    return session.execute(
        select(ServiceVersion).where(ServiceVersion.name == name, ServiceVersion.status.in_(CALLABLE))
        .order_by(ServiceVersion.major.desc(), ServiceVersion.minor.desc()).limit(1)
    ).scalar_one_or_none()


def allowed_services(session: Session, organisation_id: int, insz: str, on: date) -> list[tuple[str, list[str]]]:
    """(service, purposes) the official may use on a date: active grants, valid that day, within an access right."""
    rows = session.execute(
        select(Grant.service, Grant.purpose)
        .join(Official, Official.id == Grant.official_id)
        .join(AccessRight, (AccessRight.organisation_id == Official.organisation_id)
              & (AccessRight.service == Grant.service))
        .where(Official.organisation_id == organisation_id, Official.insz == insz, Official.active,
               Grant.in_effect(on))
        .order_by(Grant.service, Grant.purpose)
    ).all()
    found: dict[str, list[str]] = {}
    for service, purpose in rows:
        found.setdefault(service, []).append(purpose)
    return list(found.items())


def backend_urls(session: Session, service: str) -> list[str]:
    """The address of every backend ever registered for a service key (Name/vMajor), active or not."""
    return list(session.execute(select(Backend.url).where(Backend.service == service)).scalars())


def backend_named(session: Session, service: str, name: str) -> Backend | None:
    return session.execute(
        select(Backend).where(Backend.service == service, Backend.name == name)
    ).scalar_one_or_none()
