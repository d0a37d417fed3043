"""The integrator's own BIS register: persons who are not in the National Register, with address and contact
history."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from repository.base import Base


class BisPerson(Base):
    """A BIS-registered person: identity as declared with evidence; birth date parts may be unknown."""

    __tablename__ = "bis_persons"
    __table_args__ = (UniqueConstraint("created_by", "message_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    insz: Mapped[str] = mapped_column(String(11), unique=True)
    identity_key: Mapped[str] = mapped_column(String(64), unique=True)  # normalised identity: one number each
    last_name: Mapped[str] = mapped_column(String(200))
    first_names: Mapped[str] = mapped_column(String(200))
    birth_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    birth_month: Mapped[int | None] = mapped_column(Integer, nullable=True)
    birth_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gender: Mapped[str | None] = mapped_column(String(1), nullable=True)  # M, F, or unknown
    nationality: Mapped[str] = mapped_column(String(3))
    evidence_type: Mapped[str] = mapped_column(String(40))
    evidence_number: Mapped[str] = mapped_column(String(60))
    evidence_country: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    created_ticket: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(100))


class BisAddress(Base):
    """One address period of a BIS person; a new address closes the previous one (history is kept)."""

    __tablename__ = "bis_addresses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("bis_persons.id"), index=True)
    street: Mapped[str] = mapped_column(String(200))
    house_number: Mapped[str] = mapped_column(String(20))
    postcode: Mapped[str] = mapped_column(String(20))
    municipality: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(3))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    ticket: Mapped[str] = mapped_column(String(40))


class BisContact(Base):
    """One period of a BIS person's contact data (telephone, e-mail), with history."""

    __tablename__ = "bis_contacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("bis_persons.id"), index=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    ticket: Mapped[str] = mapped_column(String(40))
