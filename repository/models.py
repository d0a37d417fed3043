"""Repository tables: who is in the network, who may do what, and where each service's backends are."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
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
    """A signing certificate registered to an organisation (by SHA-256 fingerprint), with what key references in
    a signature may name it by: issuer and serial number, subject key identifier, SHA-1 thumbprint."""

    __tablename__ = "certificates"
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    subject: Mapped[str] = mapped_column(String(400))
    der: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # None: registered before revision 0008
    serial: Mapped[str | None] = mapped_column(String(50), nullable=True, index=True)  # decimal
    subject_key_identifier: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)  # hex
    thumbprint_sha1: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)  # hex, of the DER
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
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # lower is tried first
    weight: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # share within a priority
    security: Mapped[str] = mapped_column(String(20), default="x509", server_default="x509")  # x509 | none
    idempotent: Mapped[str] = mapped_column(Text, default="", server_default="")  # operations safe to retry


class Peer(Base):
    """Another integrator this one federates with: where it answers and whose certificate signs for it."""

    __tablename__ = "peers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(Text)
    certificate_pem: Mapped[str] = mapped_column(Text)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    cursor: Mapped[int] = mapped_column(Integer, default=0)  # last change sequence pulled from the peer
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    synced_versions: Mapped[int] = mapped_column(Integer, default=0)


class ServiceVersion(Base):
    """One version (major.minor) of a service, with its lifecycle; owned locally or learnt from a peer."""

    __tablename__ = "service_versions"
    __table_args__ = (UniqueConstraint("name", "major", "minor"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    major: Mapped[int] = mapped_column(Integer)
    minor: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(10))  # enterprise number of the owning organisation
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft, active, deprecated, retired
    sunset: Mapped[date | None] = mapped_column(Date, nullable=True)
    successor: Mapped[str | None] = mapped_column(String(120), nullable=True)
    wsdl: Mapped[str] = mapped_column(String(300))  # path of the WSDL among the documents
    federated: Mapped[bool] = mapped_column(Boolean, default=False)  # open to federation
    origin_peer_id: Mapped[int | None] = mapped_column(ForeignKey("peers.id"), nullable=True, index=True)
    origin: Mapped[str] = mapped_column(String(100), default="local")  # integrator that owns it
    change_seq: Mapped[int] = mapped_column(Integer, default=0, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the request element (local name) naming the person concerned: set, the gateway refuses requests about
    # persons who are not in the caller's files (reference directory) for the purpose
    person_element: Mapped[str | None] = mapped_column(String(100), nullable=True)

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def key(self) -> str:
        return f"{self.name}/v{self.major}"


class ServiceDocument(Base):
    """A WSDL or XSD file of a service version, stored as submitted."""

    __tablename__ = "service_documents"
    __table_args__ = (UniqueConstraint("version_id", "path"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("service_versions.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(300))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Change(Base):
    """The change feed peers pull from: one row per creation, update, lifecycle move of a version."""

    __tablename__ = "changes"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("service_versions.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AccessRight(Base):
    """An organisation may use a service at all; officials' grants can only fall within these."""

    __tablename__ = "access_rights"
    __table_args__ = (UniqueConstraint("organisation_id", "service"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    service: Mapped[str] = mapped_column(String(100))


class Circuit(Base):
    """Circuit-breaker state of one backend endpoint, shared by every worker on every host."""

    __tablename__ = "circuits"
    backend_id: Mapped[int] = mapped_column(ForeignKey("backends.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(10), default="closed")  # closed, open, half-open
    failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class DirectoryEntry(Base):
    """Reference directory: an organisation has a file on a person, for a purpose (quality), in a period."""

    __tablename__ = "directory_entries"
    __table_args__ = (UniqueConstraint("organisation_id", "insz", "purpose", "valid_from"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    insz: Mapped[str] = mapped_column(String(11), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
