"""The integrator's own BIS register: persons who are not in the National Register, with address and contact
history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from repository.base import Base
from repository.bis_numbers import PartialDate
from repository.models import Organisation


class BisPerson(Base):
    """A BIS-registered person: identity as declared with evidence; birth date parts may be unknown."""

    __tablename__ = "bis_persons"
    __table_args__ = (UniqueConstraint("created_by", "message_id"),
                      Index("ix_bis_persons_created_by_official", "created_by", "created_by_official", "created_at"))
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
    created_by_official: Mapped[str | None] = mapped_column(String(11), nullable=True)  # their INSZ
    created_ticket: Mapped[str] = mapped_column(String(48))  # KP-yyyymmdd-32 hex: 44
    message_id: Mapped[str] = mapped_column(String(100))
    request_digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the request: a retry must repeat it

    @property
    def born(self) -> PartialDate:
        return PartialDate(self.birth_year, self.birth_month, self.birth_day)


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
    ticket: Mapped[str] = mapped_column(String(48))


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
    ticket: Mapped[str] = mapped_column(String(48))


@dataclass(frozen=True)
class AddressFields:
    street: str
    house_number: str
    postcode: str
    municipality: str
    country: str


@dataclass(frozen=True)
class Recorded:
    """Who recorded a period, when, under which ticket."""

    at: datetime
    organisation_id: int
    ticket: str


def by_insz(session: Session, insz: str) -> BisPerson | None:
    return session.execute(select(BisPerson).where(BisPerson.insz == insz)).scalar_one_or_none()


def by_message(session: Session, organisation_id: int, message_id: str) -> BisPerson | None:
    return session.execute(select(BisPerson).where(BisPerson.created_by == organisation_id,
                                                   BisPerson.message_id == message_id)).scalar_one_or_none()


def by_identity(session: Session, identity_key: str) -> BisPerson | None:
    return session.execute(select(BisPerson).where(BisPerson.identity_key == identity_key)).scalar_one_or_none()


def born_on(session: Session, born: PartialDate) -> list[BisPerson]:
    """Persons registered with exactly this (full or partial) birth date."""
    return list(session.execute(select(BisPerson).where(
        BisPerson.birth_year == born.year, BisPerson.birth_month == born.month, BisPerson.birth_day == born.day,
    )).scalars())


def born_around(session: Session, year: int | None) -> list[BisPerson]:
    """Search candidates: born within a year of year, or with an unknown birth year (everyone when year is None)."""
    query = select(BisPerson)
    if year is not None:
        query = query.where((BisPerson.birth_year.is_(None))
                            | BisPerson.birth_year.between(year - 1, year + 1))
    return list(session.execute(query.order_by(BisPerson.insz)).scalars())


def created_by_official(session: Session, organisation_id: int, official: str, page: int,
                        size: int) -> tuple[int, list[BisPerson]]:
    """One page of the BIS numbers an official of the organisation created, newest first; and the total."""
    theirs = (BisPerson.created_by == organisation_id, BisPerson.created_by_official == official)
    total = session.execute(select(func.count()).select_from(BisPerson).where(*theirs)).scalar_one()
    rows = session.execute(select(BisPerson).where(*theirs).order_by(BisPerson.created_at.desc(),
                                                                     BisPerson.id.desc())
                           .offset((page - 1) * size).limit(size)).scalars()
    return int(total), list(rows)


def numbers_with_prefix(session: Session, prefix: str) -> list[str]:
    return list(session.execute(select(BisPerson.insz).where(BisPerson.insz.like(f"{prefix}%"))).scalars())


def addresses(session: Session, person_id: int) -> list[BisAddress]:
    return list(session.execute(select(BisAddress).where(BisAddress.person_id == person_id)
                                .order_by(BisAddress.valid_from, BisAddress.id)).scalars())


def contacts(session: Session, person_id: int) -> list[BisContact]:
    return list(session.execute(select(BisContact).where(BisContact.person_id == person_id)
                                .order_by(BisContact.valid_from, BisContact.id)).scalars())


def enterprise_numbers(session: Session, organisation_ids: set[int]) -> dict[int, str]:
    rows = session.execute(select(Organisation.id, Organisation.enterprise_number)
                           .where(Organisation.id.in_(organisation_ids)))
    return {row.id: row.enterprise_number for row in rows}


class PeriodOrder(ValueError):
    """A new period must start after the current one started."""


def _close_current(rows: list[BisAddress] | list[BisContact], valid_from: date) -> BisAddress | BisContact | None:
    current = next((r for r in reversed(rows) if r.valid_until is None), None)
    if current is None:
        return None
    if valid_from <= current.valid_from:
        raise PeriodOrder(f"the current period started on {current.valid_from}; a new one must start after it")
    current.valid_until = date.fromordinal(valid_from.toordinal() - 1)
    return current


def add_address(session: Session, person: BisPerson, fields: AddressFields, valid_from: date,
                recorded: Recorded) -> tuple[BisAddress, BisAddress | None]:
    """A new address period from valid_from; the running one ends the day before (history is kept)."""
    closed = _close_current(addresses(session, person.id), valid_from)
    row = BisAddress(person_id=person.id, street=fields.street, house_number=fields.house_number,
                     postcode=fields.postcode, municipality=fields.municipality, country=fields.country,
                     valid_from=valid_from, recorded_at=recorded.at, recorded_by=recorded.organisation_id,
                     ticket=recorded.ticket)
    session.add(row)
    session.flush()
    return row, closed  # type: ignore[return-value]


def add_contact(session: Session, person: BisPerson, phone: str | None, email: str | None, valid_from: date,
                recorded: Recorded) -> tuple[BisContact, BisContact | None]:
    """New contact data from valid_from; what is not given carries over from the running period."""
    closed = _close_current(contacts(session, person.id), valid_from)
    if closed is not None:
        phone = phone if phone is not None else closed.phone  # type: ignore[union-attr]
        email = email if email is not None else closed.email  # type: ignore[union-attr]
    row = BisContact(person_id=person.id, phone=phone, email=email, valid_from=valid_from, recorded_at=recorded.at,
                     recorded_by=recorded.organisation_id, ticket=recorded.ticket)
    session.add(row)
    session.flush()
    return row, closed  # type: ignore[return-value]
