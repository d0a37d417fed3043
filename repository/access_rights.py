"""Which services an organisation may use at all (the service desk decides), which services exist, and which of
them are sensitive (their grants wait for a second administrator's approval)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from integrator.faults import AccessServiceUnknown
from repository.actors import Actor, now_or, reason_given, require_administrator, require_service_desk
from repository.models import AccessRight, SensitiveService, ServiceVersion


def check_service(session: Session, service: str, code_backed: Collection[str] | None) -> None:
    """Refuse a service name that is neither published in code (code_backed: the names of services.PUBLISHED, which
    the faces pass in) nor registered in the repository. None: the caller vouches for the name (setup code, and a
    federation customer granted a peer's service before this integrator learnt its versions)."""
    if code_backed is None or service in code_backed:
        return
    if session.execute(select(ServiceVersion.id).where(ServiceVersion.name == service).limit(1)).first() is None:
        raise AccessServiceUnknown(
            f"There is no service {service!r} at this integrator; give its name as the catalogue (/services) "
            "shows it, for example TaxExemptionStatus."
        )


def add_access_right(session: Session, actor: Actor, organisation_id: int, service: str,
                     code_backed: Collection[str] | None) -> tuple[AccessRight, bool]:
    """Let an organisation use a service at all (its officials still need grants); True when it is new."""
    require_service_desk(actor, "give organisations access rights")
    check_service(session, service, code_backed)
    right = session.execute(select(AccessRight).where(AccessRight.organisation_id == organisation_id,
                                                      AccessRight.service == service)).scalar_one_or_none()
    if right is not None:
        return right, False
    right = AccessRight(organisation_id=organisation_id, service=service)
    session.add(right)
    session.flush()
    return right, True


def revoke_access_right(session: Session, actor: Actor, organisation_id: int, service: str) -> bool:
    """The organisation may no longer use the service: its officials' grants for it stop counting at once (they
    are kept, and count again should the right come back). True when there was a right."""
    require_service_desk(actor, "withdraw organisations' access rights")
    removed = session.execute(delete(AccessRight).where(AccessRight.organisation_id == organisation_id,
                                                        AccessRight.service == service))
    return bool(removed.rowcount)  # type: ignore[attr-defined]


def access_rights(session: Session, actor: Actor, organisation_id: int) -> list[str]:
    require_administrator(session, actor, organisation_id)
    return list(session.execute(select(AccessRight.service).where(AccessRight.organisation_id == organisation_id)
                                .order_by(AccessRight.service)).scalars())


def is_sensitive(session: Session, service: str) -> bool:
    return session.get(SensitiveService, service) is not None


def mark_sensitive(session: Session, actor: Actor, service: str, reason: str, code_backed: Collection[str] | None,
                   sensitive: bool = True, now: datetime | None = None) -> bool:
    """Mark a service sensitive (its new grants wait for a second administrator's approval) or take the mark
    away; grants made before keep their state. True when something changed."""
    require_service_desk(actor, "mark services sensitive")
    why = reason_given(reason, "mark the service sensitive" if sensitive else "take the sensitive mark away")
    check_service(session, service, code_backed)
    row = session.get(SensitiveService, service)
    if sensitive and row is None:
        session.add(SensitiveService(service=service, marked_by=actor.label, marked_at=now_or(now), reason=why))
    elif not sensitive and row is not None:
        session.delete(row)
    else:
        return False
    session.flush()
    return True


def sensitive_services(session: Session) -> list[SensitiveService]:
    return list(session.execute(select(SensitiveService).order_by(SensitiveService.service)).scalars())
