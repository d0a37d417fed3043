"""Stage: exactly one audit record per transaction, accepted or refused."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, String, Text, insert, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from repository.base import Base
from repository.prepared import Prepared


class Channel(StrEnum):
    """How the transaction reached the integrator (the audit record's channel column)."""

    SOAP = "soap"  # a signed SOAP envelope
    PORTAL = "portal"  # an official logged on at the portal
    CLI = "cli"  # the operator's command line (the service desk)


class AuditRecord(Base):
    """Who asked what about whom, when, why, and how it ended.

    On PostgreSQL the table is partitioned by month of received_at (migration 0009, integrator/partitions.py), and
    its primary key there is (ticket, received_at), as a partitioned table's must hold the partition key. The ORM
    still identifies a record by its ticket alone (unique by construction: 128 random bits), so
    session.get(AuditRecord, ticket) works on both databases; on SQLite the table is plain, keyed by ticket. The
    request path only ever inserts here."""

    __tablename__ = "audit_records"
    ticket: Mapped[str] = mapped_column(String(48), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    organisation: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)
    certificate: Mapped[str | None] = mapped_column(String(64), nullable=True)
    official: Mapped[str | None] = mapped_column(String(11), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(64), nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    service: Mapped[str | None] = mapped_column(String(100), nullable=True)
    operation: Mapped[str | None] = mapped_column(String(100), nullable=True)
    person: Mapped[str | None] = mapped_column(String(11), nullable=True, index=True)
    outcome: Mapped[str] = mapped_column(String(10))  # OK, PARTIAL, FAULT
    fault_code: Mapped[str | None] = mapped_column(String(80), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_digest: Mapped[str] = mapped_column(String(64))
    response_digest: Mapped[str] = mapped_column(String(64))
    came_from: Mapped[str | None] = mapped_column(String(100), nullable=True)  # the peer that forwarded it here
    came_from_ticket: Mapped[str | None] = mapped_column(String(48), nullable=True)  # that peer's ticket
    forwarded_to: Mapped[str | None] = mapped_column(String(100), nullable=True)  # the peer that owns the service
    forwarded_tickets: Mapped[str | None] = mapped_column(String(400), nullable=True)  # its ticket, then upstream
    channel: Mapped[str] = mapped_column(String(10), default=Channel.SOAP, server_default=Channel.SOAP.value)


def write_audit(session: Session, values: dict[str, Any]) -> None:
    """Add the record to the session's transaction; the pipeline commits it together with the transaction's
    effects, right after (integrator/journey.py assembles the values: every column). A transaction that holds
    nothing else (a pass-through call, a refusal) is this one statement, autocommitted on PostgreSQL."""
    _INSERT.execute(session, values, autocommit_if_idle=True)


_INSERT = Prepared(insert(AuditRecord.__table__))  # compiled once; each request only binds its values


def recent_transactions(session: Session, organisation: str, official: str, limit: int = 20,
                        leaving_out: Collection[tuple[str, str]] = ()) -> list[AuditRecord]:
    """The official's own latest transactions at this integrator, whichever channel they came by, newest first
    (the personal page's list of tickets), but for the (service, operation) pairs left out."""
    query = select(AuditRecord).where(AuditRecord.organisation == organisation, AuditRecord.official == official)
    for service, operation in leaving_out:
        query = query.where(or_(AuditRecord.service.is_(None), AuditRecord.operation.is_(None),  # NULL: not a match
                                AuditRecord.service != service, AuditRecord.operation != operation))
    return list(session.execute(query.order_by(AuditRecord.received_at.desc()).limit(limit)).scalars())
