"""Stage: who is calling: the organisation that owns the certificate, the named official, the grant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from integrator.faults import (
    AccessDenied,
    FederationLoop,
    GrantMissing,
    HopLimit,
    OfficialUnknown,
    OrganisationMismatch,
    OrganisationUnknown,
    PeerUnknown,
    PersonNotInFiles,
)
from repository.peers import PeerView, peer_by_certificate
from repository.queries import CallerFacts, OrganisationView, caller_facts, organisation_by_certificate


@dataclass(frozen=True)
class Caller:
    organisation: OrganisationView
    official: str
    purpose: str
    message_id: str


@dataclass(frozen=True)
class Calling:
    """What the caller stage found: who is asking, and by which integrators the request came (federation)."""

    caller: Caller
    via: tuple[str, ...] = ()
    came_from: str | None = None  # the peer integrator that forwarded the request here
    came_from_ticket: str | None = None  # that peer's ticket


def identify(session: Session, fingerprint: str, header: dict[str, str], service: str, now: datetime,
             person: str | None = None) -> CallerFacts:
    """The certificate's organisation with everything authorisation needs (one round trip)."""
    facts = caller_facts(session, fingerprint, header["Official"], service, header["Purpose"], now.date(), person)
    if facts is None:
        raise OrganisationUnknown(
            f"The signing certificate (SHA-256 {fingerprint[:16]}…) is not registered to any organisation; "
            "ask the integrator's service desk to register it."
        )
    return facts


def identify_logged_on(session: Session, enterprise_number: str, header: dict[str, str], service: str,
                       now: datetime, person: str | None = None) -> CallerFacts:
    """The organisation of an official logged on at the portal, with everything authorisation needs."""
    facts = caller_facts(session, None, header["Official"], service, header["Purpose"], now.date(), person,
                         enterprise_number=enterprise_number)
    if facts is None:
        raise OrganisationUnknown(f"Organisation {enterprise_number} is no longer registered at this integrator; "
                                  "ask the integrator's service desk.")
    return facts


def authorise(facts: CallerFacts, header: dict[str, str], service: str, now: datetime,
              person: str | None = None) -> Caller:
    """Refuse unless the certificate's organisation employs the official with a grant for service + purpose,
    and (for a service that concerns a person) has that person in its files for the purpose today."""
    official, purpose = header["Official"], header["Purpose"]
    organisation = facts.organisation
    claimed = header.get("Organisation")
    if claimed and claimed != organisation.enterprise_number:
        raise OrganisationMismatch(
            f"The certificate belongs to organisation {organisation.enterprise_number}, but the Caller header "
            f"claims to act for {claimed}; sign with that organisation's own certificate."
        )
    if not facts.access_right:
        raise AccessDenied(
            f"Organisation {organisation.enterprise_number} has no access right to service {service}; "
            "the integrator's service desk grants organisations access to services."
        )
    if not facts.official_registered:
        raise OfficialUnknown(
            f"Official {official} is not an active official of organisation {organisation.enterprise_number}; "
            "your local administrator registers officials."
        )
    if not facts.granted:
        raise GrantMissing(
            f"Official {official} has no active grant for service {service} with purpose {purpose}; "
            "ask your local administrator for one."
        )
    if person is not None and not facts.person_in_files:
        raise PersonNotInFiles(
            f"Person {person} is not in the files of organisation {organisation.enterprise_number} for purpose "
            f"{purpose} on {now.date()}; register them in the reference directory (ReferenceDirectory "
            "RegisterPerson) before asking about them."
        )
    return Caller(organisation, official, purpose, header["MessageId"])


def authorise_peer(session: Session, fingerprint: str) -> tuple[PeerView, OrganisationView]:
    """Only an integrator registered here as a peer may call peer-only operations or forward requests."""
    peer = peer_by_certificate(session, fingerprint)
    organisation = organisation_by_certificate(session, fingerprint)
    if peer is None or organisation is None:
        raise PeerUnknown(
            f"The signing certificate (SHA-256 {fingerprint[:16]}…) does not belong to an integrator registered "
            "here as a federation peer; ask this integrator's operators to register yours (kruispunt peer add)."
        )
    return peer, organisation


def authorise_forwarded(session: Session, fingerprint: str, behalf: dict[str, Any], *, own_enterprise_number: str,
                        max_hops: int, federated: bool, service: str) -> tuple[Caller, PeerView]:
    """A peer forwards a request for a caller it authorised: refuse loops, long chains and closed services."""
    peer, _ = authorise_peer(session, fingerprint)
    via = behalf["Via"] if isinstance(behalf["Via"], list) else [behalf["Via"]]
    if own_enterprise_number in via:
        raise FederationLoop(
            f"The request already passed through this integrator ({own_enterprise_number}); path {' → '.join(via)}."
        )
    if len(via) >= max_hops:
        raise HopLimit(f"The request passed through {len(via)} integrators ({' → '.join(via)}); at most "
                       f"{max_hops} may forward it.")
    if not federated:
        raise AccessDenied(f"Service {service} is not open to federation at this integrator.")
    caller = Caller(OrganisationView(0, behalf["Organisation"], behalf["Organisation"], "forwarded", None),
                    behalf["Official"], behalf["Purpose"], behalf["MessageId"])
    return caller, peer
