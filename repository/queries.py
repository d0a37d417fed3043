"""Read queries the request path needs, each one round trip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, bindparam, or_, select, true
from sqlalchemy.orm import Session

from repository.models import AccessRight, Backend, Certificate, DirectoryEntry, Grant, Official, Organisation
from repository.prepared import Prepared


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


@dataclass(frozen=True)
class CallerFacts:
    """Everything authorisation needs to know about a caller, read in one round trip."""

    organisation: OrganisationView
    access_right: bool
    official_registered: bool
    granted: bool
    person_in_files: bool  # true when no person was asked about


def _caller_facts_statement(with_person: bool, by_certificate: bool = True) -> Select[Any]:
    """The statement of caller_facts, built once: only its parameters change from one request to the next. The
    organisation is found by the signing certificate (SOAP) or by its enterprise number (a portal log-on)."""
    insz, service, purpose, on = bindparam("insz"), bindparam("service"), bindparam("purpose"), bindparam("on")
    official = (select(Official.id).where(Official.organisation_id == Organisation.id, Official.insz == insz,
                                          Official.active).limit(1).scalar_subquery())
    right = select(AccessRight.id).where(AccessRight.organisation_id == Organisation.id,
                                         AccessRight.service == service).exists()
    grant = (select(Grant.id).join(Official, Official.id == Grant.official_id)
             .where(Official.organisation_id == Organisation.id, Official.insz == insz, Official.active,
                    Grant.service == service, Grant.purpose == purpose, Grant.in_effect(on)).exists())
    files = (select(DirectoryEntry.id).where(
        DirectoryEntry.organisation_id == Organisation.id, DirectoryEntry.insz == bindparam("person"),
        DirectoryEntry.purpose == purpose, DirectoryEntry.valid_from <= on,
        or_(DirectoryEntry.valid_until.is_(None), DirectoryEntry.valid_until >= on)).exists()
             if with_person else true())
    columns = select(Organisation.id, Organisation.enterprise_number, Organisation.name, Organisation.kind,
                     Organisation.nis_code, right, official, grant, files)
    if not by_certificate:
        return columns.where(Organisation.enterprise_number == bindparam("enterprise_number"))
    return (columns.join(Certificate, Certificate.organisation_id == Organisation.id)
            .where(Certificate.fingerprint == bindparam("fingerprint")))


_CALLER_FACTS = {(person, certificate): Prepared(_caller_facts_statement(person, certificate))
                 for person in (True, False) for certificate in (True, False)}


def caller_facts(session: Session, fingerprint: str | None, insz: str, service: str, purpose: str,
                 on: date, person: str | None = None, *, enterprise_number: str | None = None) -> CallerFacts | None:
    """The certificate's organisation (or, for an official logged on at the portal, the organisation by its
    enterprise number), its access right to the service, the official's registration and grant, and whether the
    person concerned is in the organisation's files for the purpose: one SQL statement (the request path's
    hottest read, built once and compiled once: repository/prepared.py)."""
    parameters: dict[str, Any] = {"insz": insz, "service": service, "purpose": purpose, "on": on}
    if fingerprint is not None:
        parameters["fingerprint"] = fingerprint
    else:
        parameters["enterprise_number"] = enterprise_number
    if person:
        parameters["person"] = person
    # a read: on a connection with no transaction open yet it needs no BEGIN before it
    rows = _CALLER_FACTS[bool(person), fingerprint is not None].execute(session, parameters,
                                                                      autocommit_if_idle=True)
    if not rows:
        return None
    row = rows[0]
    return CallerFacts(OrganisationView(*row[:5]), bool(row[5]), row[6] is not None, bool(row[7]), bool(row[8]))


def has_access_right(session: Session, organisation_id: int, service: str) -> bool:
    return session.execute(
        select(AccessRight.id).where(AccessRight.organisation_id == organisation_id, AccessRight.service == service)
    ).first() is not None


def backends_for(session: Session, service: str) -> list[BackendView]:
    rows = session.execute(
        select(Backend).where(Backend.service == service, Backend.active).order_by(Backend.name)
    ).scalars()
    return [BackendView(b.name, b.url, b.certificate_pem, b.timeout_seconds, b.id, b.priority, b.weight,
                        b.security, frozenset(b.idempotent.split())) for b in rows]
