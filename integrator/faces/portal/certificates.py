"""The official's personal certificate (the eID's authentication certificate, in the demo one of the citizen CA's),
as TLS client authentication verified it: (a) gunicorn terminating TLS (--ca-certs = the citizen CA, --cert-reqs
1), read from the connection's socket; (b) a load balancer terminating TLS, passing the verified certificate as
URL-encoded PEM in a header that only it sets, honoured only from the trusted proxies' addresses. Either way the
certificate is checked once more here: issued by the citizen CA, within its validity, an INSZ in serialNumber."""

from __future__ import annotations

import ipaddress
import logging
import ssl
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from integrator.config import PortalPolicy
from integrator.contract import check_insz
from integrator.faults import InszInvalid, PortalCertificateRefused

log = logging.getLogger("kruispunt.portal")


class Via:
    TLS = "tls"  # gunicorn's own TLS connection
    PROXY = "proxy"  # a trusted TLS-terminating proxy's header


@dataclass(frozen=True)
class PersonalCertificate:
    """A verified personal certificate: whose (INSZ), and how it reached us."""

    insz: str
    subject: str
    fingerprint: str  # SHA-256, hex
    via: str


def load_citizen_ca(path: Path) -> x509.Certificate | None:
    """The citizen CA, or None when it is not installed (certificate log-on then refuses every certificate)."""
    if not path.exists():
        log.warning("no citizen CA at %s: certificate log-on is off", path)
        return None
    return x509.load_pem_x509_certificate(path.read_bytes())


def trusted_proxy(environ: dict[str, Any], policy: PortalPolicy) -> bool:
    """Whether the request comes straight from one of the proxies allowed to speak for the client."""
    try:
        address = ipaddress.ip_address(environ.get("REMOTE_ADDR") or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network) for network in policy.trusted_proxies)


def client_address(environ: dict[str, Any], policy: PortalPolicy) -> str:
    """The client's address: the peer's, or, from a trusted proxy, the last hop of its X-Forwarded-For."""
    peer = environ.get("REMOTE_ADDR") or "-"
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if forwarded and trusted_proxy(environ, policy):
        return forwarded.split(",")[-1].strip() or peer
    return peer


def presented(environ: dict[str, Any], policy: PortalPolicy) -> tuple[x509.Certificate, str] | None:
    """The client certificate TLS verified, from gunicorn's socket or a trusted proxy's header; None without."""
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, ssl.SSLSocket):
        der = sock.getpeercert(binary_form=True)
        if der:
            return x509.load_der_x509_certificate(der), Via.TLS
    header = environ.get("HTTP_" + policy.certificate_header.upper().replace("-", "_"))
    if not header:
        return None
    if not trusted_proxy(environ, policy):
        log.warning("portal: %s header from %s ignored: not a trusted proxy (KRUISPUNT_PORTAL_TRUSTED_PROXIES)",
                    policy.certificate_header, environ.get("REMOTE_ADDR"))
        return None
    try:
        return x509.load_pem_x509_certificate(unquote(header).encode()), Via.PROXY
    except ValueError:
        raise PortalCertificateRefused(f"the {policy.certificate_header} header holds no PEM certificate") from None


def verify(found: tuple[x509.Certificate, str] | None, ca: x509.Certificate | None,
           now: datetime) -> PersonalCertificate:
    """The personal certificate checked: the citizen CA's, valid now, with an INSZ; else PortalCertificateRefused
    (its reason, in English, goes to the log; the page says what to do)."""
    if found is None:
        raise PortalCertificateRefused("no client certificate was presented")
    cert, via = found
    if ca is None:
        raise PortalCertificateRefused("no citizen CA is installed")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise PortalCertificateRefused(f"not issued by the citizen CA: {cert.issuer.rfc4514_string()}") from None
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise PortalCertificateRefused("outside its validity period")
    numbers = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    insz = str(numbers[0].value) if numbers else ""
    try:
        check_insz(insz, "the certificate's serialNumber")
    except InszInvalid:
        raise PortalCertificateRefused(f"no INSZ in serialNumber: {insz!r}") from None
    return PersonalCertificate(insz, cert.subject.rfc4514_string(), cert.fingerprint(hashes.SHA256()).hex(), via)
