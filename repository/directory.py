"""The reference directory (persons repertory): which organisation has a file on which person, why, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from repository.models import DirectoryEntry


@dataclass(frozen=True)
class Entry:
    insz: str
    purpose: str
    start: date
    end: date | None


def register(session: Session, organisation_id: int, insz: str, purpose: str, start: date,
             end: date | None = None) -> tuple[Entry, bool]:
    """Declare a file on a person for a purpose and period; idempotent (True when it was new)."""
    if end is not None and end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    row = session.execute(select(DirectoryEntry).where(
        DirectoryEntry.organisation_id == organisation_id, DirectoryEntry.insz == insz,
        DirectoryEntry.purpose == purpose, DirectoryEntry.valid_from == start)).scalar_one_or_none()
    created = row is None
    if row is None:
        row = DirectoryEntry(organisation_id=organisation_id, insz=insz, purpose=purpose, valid_from=start,
                             registered_at=datetime.now(UTC))
        session.add(row)
    row.valid_until = end
    session.flush()
    return Entry(insz, purpose, start, end), created


def unregister(session: Session, organisation_id: int, insz: str, purpose: str, end: date) -> int:
    """End the file on end: periods still running after it are closed on end, periods that would only start
    after it are withdrawn; return how many periods changed."""
    rows = session.execute(select(DirectoryEntry).where(
        DirectoryEntry.organisation_id == organisation_id, DirectoryEntry.insz == insz,
        DirectoryEntry.purpose == purpose,
        or_(DirectoryEntry.valid_until.is_(None), DirectoryEntry.valid_until > end))).scalars().all()
    for row in rows:
        if row.valid_from > end:
            session.delete(row)
        else:
            row.valid_until = end
    session.flush()
    return len(rows)


def entries(session: Session, organisation_id: int, insz: str | None = None,
            purpose: str | None = None) -> list[Entry]:
    query = select(DirectoryEntry).where(DirectoryEntry.organisation_id == organisation_id)
    if insz:
        query = query.where(DirectoryEntry.insz == insz)
    if purpose:
        query = query.where(DirectoryEntry.purpose == purpose)
    rows = session.execute(query.order_by(DirectoryEntry.insz, DirectoryEntry.purpose, DirectoryEntry.valid_from))
    return [Entry(r.insz, r.purpose, r.valid_from, r.valid_until) for r in rows.scalars()]
