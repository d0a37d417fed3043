"""National Register update proposals: stored durably, routed to the competent municipality, decided once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from repository.base import Base

SUBMITTED, ACKNOWLEDGED, ACCEPTED, REJECTED = "SUBMITTED", "ACKNOWLEDGED", "ACCEPTED", "REJECTED"


class Proposal(Base):
    """One proposal: who proposed what about whom, which municipality decides, and where it stands."""

    __tablename__ = "proposals"
    __table_args__ = (UniqueConstraint("proposer_id", "message_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)  # public id: the submitting ticket
    proposer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    proposer_official: Mapped[str] = mapped_column(String(11))
    message_id: Mapped[str] = mapped_column(String(100))  # the proposer's MessageId: a retry is the same proposal
    insz: Mapped[str] = mapped_column(String(11), index=True)
    field: Mapped[str] = mapped_column(String(20))
    proposed_value: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    competent_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    state: Mapped[str] = mapped_column(String(12), default=SUBMITTED, index=True)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_ticket: Mapped[str | None] = mapped_column(String(40), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(11), nullable=True)
    reject_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    update_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), nullable=True)  # the NR update owed
