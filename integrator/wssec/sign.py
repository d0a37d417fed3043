"""Outgoing WS-Security: BinarySecurityToken, Timestamp and one XML signature over Body, Timestamp and headers."""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod
from signxml.algorithms import CanonicalizationMethod, SignatureConstructionMethod
from signxml.signer import XMLSigner

from integrator.namespaces import BASE64_BINARY, DS, EXC_C14N, SOAP_ENV, WSSE, WSU, WSU_ID, X509_TOKEN, q
from integrator.pki import Identity

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


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _ensure_id(element: etree._Element, prefix: str) -> str:
    ident = element.get(WSU_ID)
    if ident is None:
        ident = f"{prefix}-{uuid.uuid4().hex}"
        element.set(WSU_ID, ident)
    return ident


def _signer() -> XMLSigner:
    return XMLSigner(
        method=SignatureConstructionMethod.detached,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )


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
    header = root.find(q(SOAP_ENV, "Header"))
    if header is None:
        header = etree.Element(q(SOAP_ENV, "Header"))
        root.insert(0, header)
    body = root.find(q(SOAP_ENV, "Body"))
    if body is None:
        raise ValueError("an envelope to sign needs a Body")

    security = etree.Element(q(WSSE, "Security"), nsmap={"wsse": WSSE, "wsu": WSU})
    security.set(q(SOAP_ENV, "mustUnderstand"), "1")
    header.insert(0, security)
    token = etree.SubElement(security, q(WSSE, "BinarySecurityToken"), EncodingType=BASE64_BINARY,
                             ValueType=X509_TOKEN)
    token_id = _ensure_id(token, "X509")
    token.text = signing_key.cert_der_b64
    stamp = etree.SubElement(security, q(WSU, "Timestamp"))
    etree.SubElement(stamp, q(WSU, "Created")).text = _utc(now)
    etree.SubElement(stamp, q(WSU, "Expires")).text = _utc(now + ttl)

    targets = [body, stamp, *(headers or [])]
    uris = [f"#{_ensure_id(t, 'id')}" for t in targets]

    key_info = etree.Element(q(DS, "KeyInfo"), nsmap={"ds": DS})
    reference_holder = etree.SubElement(key_info, q(WSSE, "SecurityTokenReference"), nsmap={"wsse": WSSE})
    etree.SubElement(reference_holder, q(WSSE, "Reference"), URI=f"#{token_id}", ValueType=X509_TOKEN)

    signature = _signer().sign(root, key=signing_key.key, reference_uri=uris, key_info=key_info)
    security.append(signature)
    return root


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


__all__ = ["EXC_C14N", "SigningKey", "new_envelope", "sign_envelope", "signature_digest"]
