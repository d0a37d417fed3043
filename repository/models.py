"""Repository tables: who is in the network, who may do what, and where each service's backends are."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    or_,
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
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    department: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # who registered the official, and the last deactivation (cleared on reactivation); the whole history of
    # these acts is in the audit records, one per act, with its ticket, its actor and its reason
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # None: < 0010
    registered_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    deactivated_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
    deactivation_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class AdministratorRole(StrEnum):
    """The stored words of an administrator's role."""

    LOCAL = "local"  # the organisation's local administrator (one at a time)
    CO = "co"  # a co-administrator: the same powers; the second pair of eyes for sensitive grants


class Administrator(Base):
    """An official the service desk designated to manage their organisation's officials and grants."""

    __tablename__ = "administrators"
    __table_args__ = (UniqueConstraint("organisation_id", "official_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    official_id: Mapped[int] = mapped_column(ForeignKey("officials.id"))  # an official of that organisation
    role: Mapped[str] = mapped_column(String(10))  # AdministratorRole
    designated_by: Mapped[str] = mapped_column(String(60))  # an actor's label (repository/administrators.py)
    designated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdrawn_by: Mapped[str | None] = mapped_column(String(60), nullable=True)


class GrantStatus(StrEnum):
    """The stored words of a grant's state."""

    PENDING_APPROVAL = "pending-approval"  # a sensitive service: waits for a second administrator
    ACTIVE = "active"
    ENDED = "ended"  # an administrator set its end date: in effect up to that day, never after
    REVOKED = "revoked"  # withdrawn at once


IN_EFFECT = (GrantStatus.ACTIVE, GrantStatus.ENDED)  # within their period; pending and revoked grants never


class Grant(Base):
    """An official may call a service for a purpose (legal context), within a period. Grants are kept when they
    end or are revoked (with who, when and why); at most one per official, service and purpose is open."""

    __tablename__ = "grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    official_id: Mapped[int] = mapped_column(ForeignKey("officials.id"), index=True)
    service: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default=GrantStatus.ACTIVE,
                                        server_default=GrantStatus.ACTIVE.value)  # GrantStatus
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # None: granted before revision 0010
    granted_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    @classmethod
    def in_effect(cls, on: ColumnElement[date] | date) -> ColumnElement[bool]:
        """The condition of a grant that lets its official call the service on a day: the one definition the
        request path's authorisation and the list of allowed services share."""
        return (cls.status.in_(IN_EFFECT) & (cls.valid_from <= on)
                & or_(cls.valid_until.is_(None), cls.valid_until >= on))


class SensitiveService(Base):
    """A service (by name, as access rights and grants are) whose grants take effect only once a second
    administrator of the organisation approved them."""

    __tablename__ = "sensitive_services"
    service: Mapped[str] = mapped_column(String(100), primary_key=True)
    marked_by: Mapped[str] = mapped_column(String(60))
    marked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)


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
