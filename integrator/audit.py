"""Stage: exactly one audit record per transaction, accepted or refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, String, Text, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from repository.base import Base


class AuditRecord(Base):
    """Who asked what about whom, when, why, and how it ended."""

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


@dataclass
class AuditDraft:
    """What the stages learn about a transaction as it travels; written once at the end."""

    ticket: str
    received_at: datetime
    request_digest: str
    service: str | None = None
    operation: str | None = None
    organisation: str | None = None
    certificate: str | None = None
    official: str | None = None
    purpose: str | None = None
    message_id: str | None = None
    person: str | None = None
    outcome: str = "FAULT"
    fault_code: str | None = None
    detail: str | None = None
    came_from: str | None = None
    came_from_ticket: str | None = None
    forwarded_to: str | None = None
    forwarded_tickets: str | None = None
    request_signature_digest: bytes | None = None  # not stored: binds the answer (or fault) to the request


def write_audit(session: Session, draft: AuditDraft, answered_at: datetime, response_digest: str) -> None:
    """Add the record to the session's transaction; the caller commits it together with the transaction's effects."""
    session.execute(
        insert(AuditRecord).values(
            ticket=draft.ticket,
            received_at=draft.received_at,
            answered_at=answered_at,
            organisation=draft.organisation,
            certificate=draft.certificate,
            official=draft.official,
            purpose=draft.purpose,
            message_id=draft.message_id,
            service=draft.service,
            operation=draft.operation,
            person=draft.person,
            outcome=draft.outcome,
            fault_code=draft.fault_code,
            detail=draft.detail,
            request_digest=draft.request_digest,
            response_digest=response_digest,
            came_from=draft.came_from,
            came_from_ticket=draft.came_from_ticket,
            forwarded_to=draft.forwarded_to,
            forwarded_tickets=draft.forwarded_tickets,
        )
    )
