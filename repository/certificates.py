"""Registered signing certificates: kept with what a signature's key reference may name them by."""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from repository.models import Certificate


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, hex: how certificates are registered and audited."""
    return cert.fingerprint(hashes.SHA256()).hex()


def subject_key_identifier(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectKeyIdentifier extension, or (without one) the SHA-1 of its public key as RFC 5280
    section 4.2.1.2 method (1) derives it: what WSS4J and .NET put in an X509SubjectKeyIdentifier reference."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest  # type: ignore[arg-type]


def register(session: Session, organisation_id: int, cert: x509.Certificate) -> str:
    """Register cert to the organisation (again: fills in what a registration before revision 0008 lacks)."""
    der = cert.public_bytes(Encoding.DER)
    fp = fingerprint(cert)
    row = session.get(Certificate, fp)
    if row is None:
        row = Certificate(fingerprint=fp, organisation_id=organisation_id, subject=cert.subject.rfc4514_string())
        session.add(row)
    row.der = der
    row.serial = str(cert.serial_number)
    row.subject_key_identifier = subject_key_identifier(cert).hex()
    row.thumbprint_sha1 = hashlib.sha1(der).hexdigest()  # an identifier WS-Security 1.1 names, not a check
    return fp


def by_issuer_serial(session: Session, issuer: str, serial: int) -> x509.Certificate | None:
    """The registered certificate with this serial number whose issuer the distinguished name (RFC 2253/4514 text,
    as X509IssuerName carries it) names. Only a hint: the certificate must still verify the signature and be
    issued by a trust anchor."""
    rows = session.execute(select(Certificate.der).where(Certificate.serial == str(serial))).scalars().all()
    wanted = dn_values(issuer)
    return next((c for c in _loaded(rows) if sorted(str(a.value).casefold() for a in c.issuer) == wanted), None)


def by_subject_key_identifier(session: Session, identifier: bytes) -> x509.Certificate | None:
    rows = session.execute(select(Certificate.der).where(
        Certificate.subject_key_identifier == identifier.hex())).scalars().all()
    return next(iter(_loaded(rows)), None)


def by_thumbprint(session: Session, sha1: bytes) -> x509.Certificate | None:
    rows = session.execute(select(Certificate.der).where(Certificate.thumbprint_sha1 == sha1.hex())).scalars().all()
    return next(iter(_loaded(rows)), None)


def _loaded(rows: list[bytes | None]) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(der) for der in rows if der]


def dn_values(text: str) -> list[str]:
    """The attribute values of a distinguished name written as text, unescaped, case-folded and sorted: stacks
    spell attribute types differently (serialNumber, SERIALNUMBER, 2.5.4.5) and order RDNs either way."""
    values, current, escaped, in_value = [], [], False, False
    index = 0
    while index < len(text):
        char = text[index]
        if escaped:
            pair = text[index:index + 2]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                current.append(chr(int(pair, 16)))
                index += 1
            else:
                current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "=" and not in_value:
            current, in_value = [], True
        elif char in ",+;" and in_value:
            values.append("".join(current).strip().strip('"').casefold())
            current, in_value = [], False
        else:
            current.append(char)
        index += 1
    if in_value:
        values.append("".join(current).strip().strip('"').casefold())
    return sorted(values)
