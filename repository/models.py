"""Repository tables: who is in the network, who may do what, and where each service's backends are."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from repository.base import Base


class Organisation(Base):
    """A member of the network, identified by its enterprise number."""

    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_number: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))  # municipality, pcsw, institution, integrator
    nis_code: Mapped[str | None] = mapped_column(String(5), nullable=True)
    certificates: Mapped[list[Certificate]] = relationship(back_populates="organisation")


class Certificate(Base):
    """A signing certificate registered to an organisation (by SHA-256 fingerprint)."""

    __tablename__ = "certificates"
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    subject: Mapped[str] = mapped_column(String(400))
    organisation: Mapped[Organisation] = relationship(back_populates="certificates")


class Official(Base):
    """A named person working for an organisation, identified by INSZ."""

    __tablename__ = "officials"
    __table_args__ = (UniqueConstraint("organisation_id", "insz"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    insz: Mapped[str] = mapped_column(String(11))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Grant(Base):
    """An official may call a service for a purpose (legal context), within a period."""

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("official_id", "service", "purpose"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    official_id: Mapped[int] = mapped_column(ForeignKey("officials.id"))
    service: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Backend(Base):
    """An authentic source registered for a service: where to call it and whose certificate answers."""

    __tablename__ = "backends"
    __table_args__ = (UniqueConstraint("service", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(Text)
    certificate_pem: Mapped[str] = mapped_column(Text)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=5.0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
