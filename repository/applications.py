"""Applications forwarded to an institution (Communit-e), and the signed receipts the integrator gave for them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from repository.base import Base


class Application(Base):
    """An application as received, its signed receipt, and the outbox entry that carries it to the institution."""

    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("organisation_id", "message_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket: Mapped[str] = mapped_column(String(40), unique=True)  # the receipt's ticket
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
