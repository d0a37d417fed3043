"""Outgoing WS-Security: BinarySecurityToken, Timestamp and one XML signature over Body, Timestamp and headers,
made on the tree as built (exclusive c14n and RSA-SHA256 from integrator.wssec.dsig), serialised once by the caller."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from integrator.namespaces import BASE64_BINARY, DS, SOAP_ENV, WSSE, WSU, WSU_ID, X509_TOKEN, q
from integrator.pki import Identity
from integrator.wssec import dsig

TIMESTAMP_TTL = timedelta(minutes=5)


@dataclass(frozen=True)
class SigningKey:
    """A private key with its certificate, loaded once and reused for every signature."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    cert_der_b64: str

    @classmethod
    def from_identity(cls, identity: Identity) -> SigningKey:
        cert = identity.load_cert()
        der = cert.public_bytes(Encoding.DER)
        return cls(key=identity.load_key(), cert=cert, cert_der_b64=base64.b64encode(der).decode())

    @property
    def security_template(self) -> etree._Element:
        """wsse:Security with this key's token, made once per thread (see integrator.wssec.dsig._templates)."""
        made: dict[str, etree._Element] = getattr(_TEMPLATES, "security", None) or {}
        _TEMPLATES.security = made
        template = made.get(self.cert_der_b64)
        if template is None:
            template = made[self.cert_der_b64] = _security_template(self.cert_der_b64)
        return template


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"  # ...T10:00:00.123+00:00


def _ensure_id(element: etree._Element, prefix: str) -> str:
    ident = element.get(WSU_ID)
    if ident is None:
        ident = f"{prefix}-{os.urandom(16).hex()}"
        element.set(WSU_ID, ident)
    return ident


def sign_envelope(
    root: etree._Element,
    signing_key: SigningKey,
    *,
    headers: list[etree._Element] | None = None,
    now: datetime | None = None,
    ttl: timedelta = TIMESTAMP_TTL,
) -> etree._Element:
    """Sign an Envelope in place: Body, a fresh Timestamp and the given header elements; return the root."""
    now = now or datetime.now(UTC)
    header = root.find(_HEADER)
    if header is None:
        header = etree.Element(_HEADER)
        root.insert(0, header)
    body = root.find(_BODY)
    if body is None:
        raise ValueError("an envelope to sign needs a Body")

    security = dsig.copied(signing_key.security_template)
    header.insert(0, security)
    token, stamp = security[0], security[1]
    token_id = _ensure_id(token, "X509")
    stamp[0].text = _utc(now)
    stamp[1].text = _utc(now + ttl)
    targets = [(_ensure_id(t, "id"), t) for t in (body, stamp, *(headers or []))]
    key_info = dsig.copied(_key_info())
    key_info[0][0].set("URI", f"#{token_id}")
    dsig.sign(targets, signing_key.key, key_info, security)
    return root


def _security_template(cert_der_b64: str) -> etree._Element:
    """wsse:Security with this key's BinarySecurityToken and an empty wsu:Timestamp, copied for each signature."""
    security = etree.Element(q(WSSE, "Security"), nsmap={"wsse": WSSE, "wsu": WSU})
    security.set(q(SOAP_ENV, "mustUnderstand"), "1")
    token = etree.SubElement(security, q(WSSE, "BinarySecurityToken"), EncodingType=BASE64_BINARY,
                             ValueType=X509_TOKEN)
    token.text = cert_der_b64
    stamp = etree.SubElement(security, q(WSU, "Timestamp"))
    etree.SubElement(stamp, q(WSU, "Created"))
    etree.SubElement(stamp, q(WSU, "Expires"))
    return security


def _key_info_template() -> etree._Element:
    key_info = etree.Element(q(DS, "KeyInfo"), nsmap={"ds": DS})
    holder = etree.SubElement(key_info, q(WSSE, "SecurityTokenReference"), nsmap={"wsse": WSSE})
    etree.SubElement(holder, q(WSSE, "Reference"), ValueType=X509_TOKEN)
    return key_info


def _key_info() -> etree._Element:
    made = getattr(_TEMPLATES, "key_info", None)
    if made is None:
        made = _TEMPLATES.key_info = _key_info_template()
    return made


_TEMPLATES = threading.local()  # per thread: libxml2's name dictionaries are not shared between threads
_HEADER, _BODY = q(SOAP_ENV, "Header"), q(SOAP_ENV, "Body")


def signature_digest(root: etree._Element) -> bytes:
    """SHA-256 of a signed envelope's SignatureValue (decoded): what an answer quotes to bind to it."""
    value = root.findtext(f".//{q(DS, 'SignatureValue')}") or ""
    return hashlib.sha256(base64.b64decode(value)).digest()


def new_envelope() -> tuple[etree._Element, etree._Element, etree._Element]:
    """An empty SOAP 1.1 envelope: (root, header, body)."""
    root = etree.Element(q(SOAP_ENV, "Envelope"), nsmap={"soapenv": SOAP_ENV, "wsu": WSU})
    header = etree.SubElement(root, q(SOAP_ENV, "Header"))
    body = etree.SubElement(root, q(SOAP_ENV, "Body"))
    return root, header, body


__all__ = ["SigningKey", "new_envelope", "sign_envelope", "signature_digest"]
