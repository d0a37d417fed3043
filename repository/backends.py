"""Backends of a service version: registered, updated and checked in one place (the CLI, the Repository
service and the demo all come here)."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from repository.models import Backend, ServiceVersion

SECURITY = ("x509", "none")  # x509: signed both ways; none: plain SOAP (a backend inside the integrator's network)


class BackendRefused(ValueError):
    """The backend cannot be registered as given; the message says what to change."""


def check_backend(url: str, cert_pem: bytes, timeout_seconds: float, priority: int, weight: int,
                  security: str) -> None:
    """Refuse what would make a backend unreachable or unverifiable."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendRefused(f"the backend address {url!r} must be an absolute http:// or https:// URL")
    try:
        x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise BackendRefused("the backend's certificate is not a PEM X.509 certificate") from None
    if security not in SECURITY:
        raise BackendRefused(f"security {security!r} must be x509 (signed both ways) or none")
    if not 0 < timeout_seconds <= 300:
        raise BackendRefused(f"timeout {timeout_seconds:g} s must be more than 0 and at most 300 seconds")
    if weight < 1:
        raise BackendRefused(f"weight {weight} must be at least 1")
    if priority < 0:
        raise BackendRefused(f"priority {priority} must be 0 or more (0 is tried first)")


def check_service_version(session: Session, service: str, code_backed: Collection[str] | None) -> None:
    """Refuse a backend for a service version ("Name/vMajor") that is neither published in code (code_backed: the
    keys of services.PUBLISHED, which the faces pass in) nor registered in the repository; None: the caller
    vouches for it."""
    if code_backed is None or service in code_backed:
        return
    name, _, major = service.partition("/v")
    registered = major.isdigit() and session.execute(
        select(ServiceVersion.id).where(ServiceVersion.name == name, ServiceVersion.major == int(major)).limit(1)
    ).first() is not None
    if not registered:
        raise BackendRefused(f"there is no service version {service!r} at this integrator; name it as Name/vMajor, "
                             "for example TaxExemptionStatus/v1, and register a repository service first")


def register_backend(session: Session, service: str, name: str, url: str, cert_pem: bytes,
                     timeout_seconds: float = 5.0, *, priority: int = 0, weight: int = 1, security: str = "x509",
                     idempotent: list[str] | None = None,
                     code_backed: Collection[str] | None = None) -> tuple[Backend, bool]:
    """Register (or update) a backend endpoint of a service version ("Name/vMajor"); True when it is new."""
    check_backend(url, cert_pem, timeout_seconds, priority, weight, security)
    check_service_version(session, service, code_backed)
    backend = session.execute(select(Backend).where(Backend.service == service, Backend.name == name)
                              ).scalar_one_or_none()
    created = backend is None
    if backend is None:
        backend = Backend(service=service, name=name)
        session.add(backend)
    backend.url, backend.certificate_pem, backend.timeout_seconds = url, cert_pem.decode(), timeout_seconds
    backend.priority, backend.weight, backend.security = priority, weight, security
    backend.idempotent = " ".join(sorted(idempotent or []))
    backend.active = True
    session.flush()
    return backend, created
