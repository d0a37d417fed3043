"""Stage: who is calling: the organisation that owns the certificate, the named official, the grant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from integrator.faults import GrantMissing, OfficialUnknown, OrganisationMismatch, OrganisationUnknown
from repository.queries import OrganisationView, official_status, organisation_by_certificate


@dataclass(frozen=True)
class Caller:
    organisation: OrganisationView
    official: str
    purpose: str
    message_id: str


def authorise(
    session: Session, fingerprint: str, header: dict[str, str], service: str, now: datetime
) -> Caller:
    """Refuse unless the certificate's organisation employs the official with a grant for service + purpose."""
    organisation = organisation_by_certificate(session, fingerprint)
    if organisation is None:
        raise OrganisationUnknown(
            f"The signing certificate (SHA-256 {fingerprint[:16]}…) is not registered to any organisation; "
            "ask the integrator's service desk to register it."
        )
    claimed = header.get("Organisation")
    if claimed and claimed != organisation.enterprise_number:
        raise OrganisationMismatch(
            f"The certificate belongs to organisation {organisation.enterprise_number}, but the Caller header "
            f"claims to act for {claimed}; sign with that organisation's own certificate."
        )
    official, purpose = header["Official"], header["Purpose"]
    registered, granted = official_status(session, organisation.id, official, service, purpose, now.date())
    if not registered:
        raise OfficialUnknown(
            f"Official {official} is not an active official of organisation {organisation.enterprise_number}; "
            "your local administrator registers officials."
        )
    if not granted:
        raise GrantMissing(
            f"Official {official} has no active grant for service {service} with purpose {purpose}; "
            "ask your local administrator for one."
        )
    return Caller(organisation, official, purpose, header["MessageId"])
