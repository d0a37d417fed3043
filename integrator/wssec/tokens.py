"""Which certificate signed: the wsse:SecurityTokenReference in ds:KeyInfo, resolved to a token in the message or,
for references by issuer and serial, subject key identifier or thumbprint, to a certificate registered here."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from lxml import etree

from integrator.faults import CertificateNotRegistered, KeyReferenceUnsupported, SecurityMissing, TokenTooLarge
from integrator.namespaces import BASE64_BINARY, DS, WSSE, X509_TOKEN, q
from integrator.wssec.dsig import decode_base64

WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
X509_PKIPATH = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509PKIPathv1"
SKI = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier"
THUMBPRINT_SHA1 = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"
STR, BST = q(WSSE, "SecurityTokenReference"), q(WSSE, "BinarySecurityToken")
TOKEN_TYPES = (X509_TOKEN, X509_PKIPATH)
_FORMS = ("wsse:Reference to a BinarySecurityToken, ds:X509Data/ds:X509IssuerSerial, or a wsse:KeyIdentifier of "
          "type X509SubjectKeyIdentifier, ThumbprintSHA1 or X509v3")


@dataclass(frozen=True)
class Signer:
    """The signing certificate and its SHA-256 fingerprint (hex), computed once from the DER bytes."""

    certificate: x509.Certificate
    fingerprint: str

    @classmethod
    def of(cls, der: bytes) -> Signer:
        return _signer(der)


@functools.lru_cache(maxsize=1024)
def _signer(der: bytes) -> Signer:
    """Certificates come back with every request of an organisation: each is read once per worker, and read whole
    here (cryptography parses the names, extensions and key only when asked), so a certificate broken anywhere is
    the caller's fault now rather than an error deep in the trust checks."""
    try:
        certificate = x509.load_der_x509_certificate(der)
        _ = (certificate.issuer, certificate.subject, certificate.serial_number, certificate.not_valid_before_utc,
             certificate.not_valid_after_utc, certificate.signature_hash_algorithm, list(certificate.extensions),
             certificate.public_key())
    except Exception as exc:  # cryptography raises ValueError, InvalidVersion, DuplicateExtension, Unsupported…
        raise SecurityMissing(
            f"The security token does not hold a well-formed X.509 certificate ({type(exc).__name__}); send the "
            "certificate the network CA issued you, DER-encoded.") from None
    return Signer(certificate, hashlib.sha256(der).hexdigest())


class CertificateDirectory(Protocol):
    """The certificates registered to organisations, found by what a key reference names."""

    def by_issuer_serial(self, issuer: str, serial: int) -> Signer | None: ...

    def by_subject_key_identifier(self, identifier: bytes) -> Signer | None: ...

    def by_thumbprint(self, sha1: bytes) -> Signer | None: ...


def signing_certificate(security: etree._Element, key_info: etree._Element | None, ids: dict[str, etree._Element],
                        directory: CertificateDirectory | None, max_token_chars: int) -> Signer:
    """The certificate ds:KeyInfo names; refused with the form to use when it names none we can resolve."""
    references = [] if key_info is None else [child for child in key_info if child.tag == STR]
    if len(references) != 1:
        raise SecurityMissing(
            "ds:KeyInfo must hold exactly one wsse:SecurityTokenReference naming the signing certificate "
            f"({_FORMS}).")
    reference = references[0]
    token_type = reference.get(q(WSSE11, "TokenType"))
    if token_type is not None and token_type not in TOKEN_TYPES:
        raise KeyReferenceUnsupported(
            f"wsse:SecurityTokenReference has wsse11:TokenType {token_type}; sign with an X.509 certificate "
            "(TokenType …#X509v3, or leave it out).")
    children = [c for c in reference if isinstance(c.tag, str)]
    if len(children) != 1:
        raise KeyReferenceUnsupported(
            f"wsse:SecurityTokenReference must hold exactly one key reference ({_FORMS}); it holds {len(children)}.")
    child = children[0]
    if child.tag == q(WSSE, "Reference"):
        return _by_token(child, security, ids, max_token_chars)
    if child.tag == q(WSSE, "KeyIdentifier"):
        return _by_key_identifier(child, directory, max_token_chars)
    if child.tag == q(DS, "X509Data"):
        return _by_issuer_serial(child, directory)
    raise KeyReferenceUnsupported(f"wsse:SecurityTokenReference holds {child.tag}; use one of: {_FORMS}.")


def _by_token(reference: etree._Element, security: etree._Element, ids: dict[str, etree._Element],
              max_token_chars: int) -> Signer:
    uri = reference.get("URI", "")
    token = ids.get(uri[1:]) if uri.startswith("#") else None
    if token is None or token.tag != BST or token.getparent() is not security:
        raise SecurityMissing(
            f"wsse:Reference URI={uri!r} must name a wsse:BinarySecurityToken inside this wsse:Security header.")
    value_type = token.get("ValueType")
    if value_type not in TOKEN_TYPES:
        raise KeyReferenceUnsupported(
            f"The BinarySecurityToken has ValueType {value_type}; send the certificate as …#X509v3.")
    _base64_encoding(token)
    der = _decoded(token.text, "wsse:BinarySecurityToken", max_token_chars)
    return Signer.of(der if value_type == X509_TOKEN else _last_of_path(der))


def _by_key_identifier(identifier: etree._Element, directory: CertificateDirectory | None,
                       max_token_chars: int) -> Signer:
    value_type = identifier.get("ValueType")
    _base64_encoding(identifier)
    value = _decoded(identifier.text, "wsse:KeyIdentifier", max_token_chars)
    if value_type == X509_TOKEN:
        return Signer.of(value)
    if value_type not in (SKI, THUMBPRINT_SHA1):
        raise KeyReferenceUnsupported(
            f"wsse:KeyIdentifier has ValueType {value_type}; use X509SubjectKeyIdentifier, ThumbprintSHA1 or X509v3.")
    directory = _directory(directory)
    found = (directory.by_subject_key_identifier(value) if value_type == SKI else directory.by_thumbprint(value))
    if found is None:
        kind = "subject key identifier" if value_type == SKI else "SHA-1 thumbprint"
        raise CertificateNotRegistered(
            f"No certificate with {kind} {value.hex()} is registered with this integrator; ask the service desk to "
            "register your certificate, or send it as a BinarySecurityToken (WSS4J/CXF: "
            "signatureKeyIdentifier=DirectReference).")
    return found


def _by_issuer_serial(data: etree._Element, directory: CertificateDirectory | None) -> Signer:
    pair = data.find(q(DS, "X509IssuerSerial"))
    issuer_text = pair.findtext(q(DS, "X509IssuerName")) if pair is not None else None
    serial_text = pair.findtext(q(DS, "X509SerialNumber")) if pair is not None else None
    if issuer_text is None or serial_text is None or len(data) != 1:
        raise KeyReferenceUnsupported(
            "ds:X509Data in a SecurityTokenReference must hold one ds:X509IssuerSerial with X509IssuerName and "
            "X509SerialNumber.")
    issuer = issuer_text.strip()
    try:
        serial = int(serial_text.strip())
    except ValueError:
        raise KeyReferenceUnsupported("ds:X509SerialNumber must be a decimal integer.") from None
    found = _directory(directory).by_issuer_serial(issuer, serial)
    if found is None:
        raise CertificateNotRegistered(
            f"No certificate issued by '{issuer}' with serial number {serial} is registered with this "
            "integrator; ask the service desk to register your certificate, or send it as a BinarySecurityToken "
            "(WSS4J/CXF: signatureKeyIdentifier=DirectReference).")
    return found


def _directory(directory: CertificateDirectory | None) -> CertificateDirectory:
    if directory is None:
        raise KeyReferenceUnsupported(
            "Here the signing certificate must travel in the message: reference a BinarySecurityToken.")
    return directory


def _base64_encoding(element: etree._Element) -> None:
    encoding = element.get("EncodingType")
    if encoding is not None and encoding != BASE64_BINARY:
        raise KeyReferenceUnsupported(f"{element.tag} has EncodingType {encoding}; use …#Base64Binary.")


def _decoded(text: str | None, label: str, max_chars: int) -> bytes:
    text = text or ""
    if len(text) > max_chars:
        raise TokenTooLarge(f"The {label} holds {len(text)} characters; at most {max_chars} are accepted "
                            "(KRUISPUNT_MAX_TOKEN_CHARS). Send your own certificate only, not a chain.")
    try:
        return decode_base64(text)
    except ValueError:
        raise SecurityMissing(f"The {label} is not base64.") from None


def _last_of_path(der: bytes) -> bytes:
    """The signer's certificate of an X509PKIPathv1 token: a DER SEQUENCE of certificates, the signer's last."""
    try:
        offset, end = _header(der, 0)
        last = None
        while offset < end:
            start = offset
            body, offset = _header(der, offset)
            offset = body if offset <= body else offset
            last = der[start:offset]
        if last is None or end != len(der):
            raise ValueError("empty or trailing data")
    except (ValueError, IndexError):
        raise SecurityMissing("The X509PKIPathv1 token is not a DER sequence of certificates.") from None
    return last


def _header(der: bytes, offset: int) -> tuple[int, int]:
    """(start of content, end of content) of the DER SEQUENCE at offset."""
    if der[offset] != 0x30:
        raise ValueError("not a SEQUENCE")
    length = der[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise ValueError("bad length")
        length = int.from_bytes(der[offset:offset + count], "big")
        offset += count
    if offset + length > len(der):
        raise ValueError("truncated")
    return offset, offset + length
