"""Applications forwarded to an institution (Communit-e), and the signed receipts the integrator gave for them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from integrator.outbox import OutboxEntry
from repository.base import Base


class Application(Base):
    """An application as received, its signed receipt, and the outbox entry that carries it to the institution."""

    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("organisation_id", "message_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket: Mapped[str] = mapped_column(String(48), unique=True)  # the receipt's ticket (KP-yyyymmdd-32 hex: 44)
    kind: Mapped[str] = mapped_column(String(40))  # DISABILITY_ALLOWANCE, PENSION
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    official: Mapped[str] = mapped_column(String(11), index=True)
    message_id: Mapped[str] = mapped_column(String(100))  # a retry with the same MessageId is the same application
    insz: Mapped[str] = mapped_column(String(11), index=True)
    file_number: Mapped[str] = mapped_column(String(100))  # the municipality's own file number
    institution: Mapped[str] = mapped_column(String(100))  # the backend it goes to
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the application's exclusive c14n, as received
    receipt: Mapped[str] = mapped_column(Text)  # the signed receipt document
    delivery_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))


def by_message_id(session: Session, organisation_id: int, message_id: str) -> Application | None:
    """The application an organisation submitted under this MessageId (a retry finds the first submission)."""
    return session.execute(select(Application).where(Application.organisation_id == organisation_id,
                                                     Application.message_id == message_id)).scalar_one_or_none()


def receipt_of(session: Session, ticket: str, organisation_id: int, official: str) -> Application | None:
    """The application with this ticket, if this official of this organisation submitted it."""
    return session.execute(select(Application).where(Application.ticket == ticket,
                                                     Application.organisation_id == organisation_id,
                                                     Application.official == official)).scalar_one_or_none()


def receipts_of(session: Session, organisation_id: int, official: str, kind: str | None, page: int,
                size: int) -> tuple[int, list[tuple[Application, OutboxEntry]]]:
    """One page of an official's own applications, newest first, each with its outbox entry; and the total."""
    mine = [Application.organisation_id == organisation_id, Application.official == official]
    if kind:
        mine.append(Application.kind == kind)
    total = session.execute(select(func.count()).select_from(Application).where(*mine)).scalar_one()
    rows = session.execute(
        select(Application, OutboxEntry).join(OutboxEntry, OutboxEntry.id == Application.delivery_id).where(*mine)
        .order_by(Application.received_at.desc(), Application.id.desc()).offset((page - 1) * size).limit(size)
    ).tuples().all()
    return int(total), list(rows)

