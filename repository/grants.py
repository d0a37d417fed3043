"""A local administrator grants officials services per purpose (start, optional end, reason), within the
organisation's access rights; a second administrator approves grants of sensitive services; grants are ended on a
date or revoked at once, and kept with who did what, when and why."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from integrator.faults import (
    GrantState,
    GrantUnknown,
    NotAdministrator,
    OfficialInactive,
    OutsideRights,
    PeriodInvalid,
    SameApprover,
    SelfGrant,
)
from repository.access_rights import check_service, is_sensitive
from repository.actors import (
    Actor,
    administrator_of,
    now_or,
    official_of,
    organisation_number,
    reason_given,
    require_administrator,
)
from repository.base import aware
from repository.models import Grant, GrantStatus, Official
from repository.queries import has_access_right

OPEN = (GrantStatus.PENDING_APPROVAL, GrantStatus.ACTIVE, GrantStatus.ENDED)  # may still come into or be in effect


@dataclass(frozen=True)
class GrantView:
    id: int
    official: str  # INSZ
    service: str
    purpose: str
    valid_from: date
    valid_until: date | None
    status: GrantStatus
    reason: str | None
    granted_by: str | None
    created_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    ended_by: str | None
    end_reason: str | None
    revoked_by: str | None
    revoked_at: datetime | None
    revoke_reason: str | None


def view(row: Grant, insz: str) -> GrantView:
    return GrantView(row.id, insz, row.service, row.purpose, row.valid_from, row.valid_until, GrantStatus(row.status),
                     row.reason, row.granted_by, aware(row.created_at), row.approved_by, aware(row.approved_at),
                     row.ended_by, row.end_reason, row.revoked_by, aware(row.revoked_at), row.revoke_reason)


def grant(session: Session, actor: Actor, organisation_id: int, insz: str, service: str, purpose: str,
          start: date, end: date | None, reason: str, code_backed: Collection[str] | None,
          now: datetime | None = None) -> tuple[GrantView, bool]:
    """Grant an official of the organisation a service for a purpose from start (to end, inclusive). Pending
    approval when the service is sensitive. The same grant again (same period) is answered with the open one
    (False); another period while one is open is refused: end or revoke that one first."""
    require_administrator(session, actor, organisation_id)
    why = reason_given(reason, "grant the service")
    if end is not None and end < start:
        raise PeriodInvalid(f"The grant ends ({end}) before it starts ({start}); correct the end or the start.")
    check_service(session, service, code_backed)
    if not has_access_right(session, organisation_id, service):
        raise OutsideRights(
            f"Organisation {organisation_number(session, organisation_id)} has no access right to service "
            f"{service}; a grant must fall within the organisation's rights: ask the integrator's service desk."
        )
    official = official_of(session, organisation_id, insz)
    if actor.insz == insz:
        raise SelfGrant(f"You cannot grant yourself access ({insz}); another administrator of your organisation "
                        "grants you.")
    if not official.active:
        raise OfficialInactive(f"Official {insz} is deactivated; reactivate them before granting them access.")
    moment = now_or(now)
    today = moment.astimezone(UTC).date()
    open_grant = session.execute(
        select(Grant).where(Grant.official_id == official.id, Grant.service == service, Grant.purpose == purpose,
                            Grant.status.in_(OPEN), or_(Grant.valid_until.is_(None), Grant.valid_until >= today))
    ).scalars().first()
    if open_grant is not None:
        if (open_grant.valid_from, open_grant.valid_until) == (start, end):
            return view(open_grant, insz), False
        raise GrantState(
            f"Official {insz} already has grant {open_grant.id} for {service} with purpose {purpose} "
            f"({open_grant.status}, from {open_grant.valid_from}{_until(open_grant.valid_until)}); end or revoke "
            "it first."
        )
    row = Grant(official_id=official.id, service=service, purpose=purpose, valid_from=start, valid_until=end,
                reason=why, granted_by=actor.label, created_at=moment,
                status=GrantStatus.PENDING_APPROVAL if is_sensitive(session, service) else GrantStatus.ACTIVE)
    session.add(row)
    session.flush()
    return view(row, insz), True


def approve_grant(session: Session, actor: Actor, organisation_id: int, grant_id: int,
                  now: datetime | None = None) -> GrantView:
    """A second administrator of the organisation lets a pending grant of a sensitive service take effect."""
    if administrator_of(session, actor, organisation_id) is None:
        raise NotAdministrator(
            f"Only an active administrator of organisation {organisation_number(session, organisation_id)} other "
            "than the one who granted it approves a grant; ask your co-administrator."
        )
    row, insz = _grant_of(session, organisation_id, grant_id)
    if row.status != GrantStatus.PENDING_APPROVAL:
        raise GrantState(f"Grant {grant_id} is {row.status}; only a grant pending approval is approved.")
    if actor.label == row.granted_by:
        raise SameApprover(f"You granted {grant_id} yourself; a second administrator of your organisation "
                           "approves it.")
    if actor.insz == insz:
        raise SelfGrant(f"Grant {grant_id} is yours; another administrator of your organisation approves it.")
    row.status, row.approved_by, row.approved_at = GrantStatus.ACTIVE, actor.label, now_or(now)
    session.flush()
    return view(row, insz)


def end_grant(session: Session, actor: Actor, organisation_id: int, grant_id: int, on: date, reason: str,
              now: datetime | None = None) -> GrantView:
    """The grant is in effect up to and including `on`, never after (an end set before may be moved earlier)."""
    require_administrator(session, actor, organisation_id)
    why = reason_given(reason, "end the grant")
    row, insz = _grant_of(session, organisation_id, grant_id)
    if row.status not in (GrantStatus.ACTIVE, GrantStatus.ENDED, GrantStatus.PENDING_APPROVAL):
        raise GrantState(f"Grant {grant_id} is {row.status}; there is nothing to end.")
    if on < row.valid_from:
        raise PeriodInvalid(f"Grant {grant_id} starts on {row.valid_from}; it cannot end before ({on}). Revoke it "
                            "instead.")
    if row.valid_until is not None and on > row.valid_until:
        raise PeriodInvalid(f"Grant {grant_id} already ends on {row.valid_until}; an end moves only earlier.")
    if row.status != GrantStatus.PENDING_APPROVAL:  # a pending grant keeps waiting for approval, with its end
        row.status = GrantStatus.ENDED
    row.valid_until, row.ended_at, row.ended_by, row.end_reason = on, now_or(now), actor.label, why
    session.flush()
    return view(row, insz)


def revoke_grant(session: Session, actor: Actor, organisation_id: int, grant_id: int, reason: str,
                 now: datetime | None = None) -> GrantView:
    """Withdraw the grant at once: the next request under it is refused."""
    require_administrator(session, actor, organisation_id)
    why = reason_given(reason, "revoke the grant")
    row, insz = _grant_of(session, organisation_id, grant_id)
    if row.status == GrantStatus.REVOKED:
        raise GrantState(f"Grant {grant_id} was revoked already, on {aware(row.revoked_at)} by {row.revoked_by}.")
    row.status, row.revoked_at, row.revoked_by, row.revoke_reason = GrantStatus.REVOKED, now_or(now), actor.label, why
    session.flush()
    return view(row, insz)


def list_grants(session: Session, actor: Actor, organisation_id: int, insz: str | None = None,
                status: GrantStatus | None = None) -> list[GrantView]:
    """The organisation's grants (of one official, in one state), oldest first."""
    require_administrator(session, actor, organisation_id)
    query = (select(Grant, Official.insz).join(Official, Official.id == Grant.official_id)
             .where(Official.organisation_id == organisation_id).order_by(Grant.id))
    if insz is not None:
        query = query.where(Official.insz == insz)
    if status is not None:
        query = query.where(Grant.status == status)
    return [view(row, official) for row, official in session.execute(query).all()]


def grant_official(session: Session, organisation_id: int, grant_id: int) -> str:
    """The INSZ of the official a grant of the organisation is for (what an audit record names as the person)."""
    return _grant_of(session, organisation_id, grant_id)[1]


def _grant_of(session: Session, organisation_id: int, grant_id: int) -> tuple[Grant, str]:
    found = session.execute(select(Grant, Official.insz).join(Official, Official.id == Grant.official_id)
                            .where(Grant.id == grant_id, Official.organisation_id == organisation_id)).first()
    if found is None:
        raise GrantUnknown(f"Organisation {organisation_number(session, organisation_id)} has no grant {grant_id}; "
                           "list your grants (ListGrants, kruispunt grant list) for their numbers.")
    return found[0], found[1]


def _until(end: date | None) -> str:
    return f" to {end}" if end is not None else ""
