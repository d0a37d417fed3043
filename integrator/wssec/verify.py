"""Incoming WS-Security: check the profile, verify with signxml, keep only what the signature covers."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from lxml import etree
from signxml import DigestAlgorithm, InvalidInput, InvalidSignature, SignatureConfiguration, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest, SignXMLException
from signxml.verifier import XMLVerifier

from integrator.envelope import Envelope
from integrator.faults import (
    AlgorithmRefused,
    DuplicateId,
    SecurityMissing,
    SignatureInvalid,
    TimestampExpired,
    TimestampInFuture,
    TimestampInvalid,
    UnsignedContent,
)
from integrator.namespaces import DS, EXC_C14N, SOAP_ENV, WSSE, WSU, WSU_ID, X509_TOKEN, q
from integrator.wssec.trust import TrustStore

RSA_SHA256 = SignatureMethod.RSA_SHA256.value
SHA256 = DigestAlgorithm.SHA256.value
_CONFIG = SignatureConfiguration(
    require_x509=True,
    expect_references=True,
    signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
)
_ID_NAMES = ("Id", "ID", "id")


@dataclass(frozen=True)
class SecurityPolicy:
    """How fresh and how long-lived a Timestamp may be."""

    max_ttl: timedelta = timedelta(minutes=5)
    clock_skew: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class Verified:
    """What the signature covers, re-parsed from the bytes that were digested: nothing else is processed."""

    body: etree._Element
    created: datetime
    expires: datetime
    certificate: x509.Certificate
    signature_value: bytes
    headers: dict[str, etree._Element] = field(default_factory=dict)

    @property
    def payload(self) -> etree._Element | None:
        """The first element inside the signed Body."""
        return next((c for c in self.body if isinstance(c.tag, str)), None)

    @property
    def signature_digest(self) -> bytes:
        return hashlib.sha256(self.signature_value).digest()


def verify_envelope(envelope: Envelope, trust: TrustStore, policy: SecurityPolicy, now: datetime) -> Verified:
    """Refuse with the precise fault, or return the signed content of the envelope."""
    security = _security_header(envelope)
    _refuse_duplicate_ids(envelope.root)
    signature = _single(security, q(DS, "Signature"), "ds:Signature")
    if len(envelope.root.findall(f".//{q(DS, 'Signature')}")) != 1:
        raise SignatureInvalid("The request must carry exactly one ds:Signature, inside wsse:Security.")
    _check_algorithms(signature)
    cert = _signing_certificate(security, signature)
    trust.check(cert, now)
    results = _signxml_verify(envelope.root, cert)

    uris = [ref.get("URI", "") for ref in signature.iterfind(f"{q(DS, 'SignedInfo')}/{q(DS, 'Reference')}")]
    stamp = security.find(q(WSU, "Timestamp"))
    body = None
    signed_stamp = None
    headers: dict[str, etree._Element] = {}
    for uri, result in zip(uris, results, strict=True):
        target = _by_id(envelope.root, uri)
        if target is envelope.body:
            body = result.signed_xml
        elif stamp is not None and target is stamp:
            signed_stamp = result.signed_xml
        elif envelope.header is not None and target.getparent() is envelope.header:
            headers[target.tag] = result.signed_xml
        else:
            raise UnsignedContent(
                f"The signature covers {target.tag}, which is not the Body, the Timestamp or a SOAP header; "
                "a signed element was moved. Sign the Body, the Timestamp and the kp:Caller header in place."
            )
    if body is None:
        raise UnsignedContent("The signature does not cover the SOAP Body of this envelope; sign the Body in place.")
    if signed_stamp is None:
        raise UnsignedContent("The signature does not cover the wsu:Timestamp; sign the Timestamp.")
    created, expires = _check_timestamp(signed_stamp, policy, now)
    value = base64.b64decode(_single(signature, q(DS, "SignatureValue"), "ds:SignatureValue").text or "")
    return Verified(body=body, created=created, expires=expires, certificate=cert, signature_value=value,
                    headers=headers)


def _security_header(envelope: Envelope) -> etree._Element:
    found = [] if envelope.header is None else envelope.header.findall(q(WSSE, "Security"))
    if not found:
        raise SecurityMissing(
            "The request is not signed: a wsse:Security header with an X.509 token, a Timestamp and a "
            "signature over Body and Timestamp is required."
        )
    if len(found) > 1:
        raise SignatureInvalid("The request carries more than one wsse:Security header; send exactly one.")
    return found[0]


def _single(parent: etree._Element, tag: str, label: str) -> etree._Element:
    found = parent.findall(tag)
    if len(found) != 1:
        raise SecurityMissing(f"wsse:Security must contain exactly one {label}; found {len(found)}.")
    return found[0]


def _refuse_duplicate_ids(root: etree._Element) -> None:
    counts: Counter[str] = Counter()
    for element in root.iter(tag=etree.Element):
        for name, value in element.attrib.items():
            if etree.QName(name).localname in _ID_NAMES:
                counts[value] += 1
    duplicates = sorted(v for v, n in counts.items() if n > 1)
    if duplicates:
        raise DuplicateId(f"The Id value(s) {', '.join(duplicates)} occur more than once; every Id must be unique.")


def _check_algorithms(signature: etree._Element) -> None:
    info = signature.find(q(DS, "SignedInfo"))
    if info is None:
        raise SignatureInvalid("The ds:Signature has no SignedInfo.")
    c14n = info.find(q(DS, "CanonicalizationMethod"))
    method = info.find(q(DS, "SignatureMethod"))
    if c14n is None or c14n.get("Algorithm") != EXC_C14N:
        raise AlgorithmRefused(f"SignedInfo must use exclusive canonicalisation without comments ({EXC_C14N}).")
    if method is None or method.get("Algorithm") != RSA_SHA256:
        found = None if method is None else method.get("Algorithm")
        raise AlgorithmRefused(f"The signature method {found} is refused; sign with RSA-SHA256 ({RSA_SHA256}).")
    for ref in info.iterfind(q(DS, "Reference")):
        digest = ref.find(q(DS, "DigestMethod"))
        if digest is None or digest.get("Algorithm") != SHA256:
            found = None if digest is None else digest.get("Algorithm")
            raise AlgorithmRefused(f"The digest method {found} is refused; digest with SHA-256 ({SHA256}).")
        for transform in ref.iterfind(f"{q(DS, 'Transforms')}/{q(DS, 'Transform')}"):
            if transform.get("Algorithm") != EXC_C14N:
                raise AlgorithmRefused(
                    f"The transform {transform.get('Algorithm')} is refused; only exclusive c14n is allowed."
                )


def _signing_certificate(security: etree._Element, signature: etree._Element) -> x509.Certificate:
    reference = signature.find(f"{q(DS, 'KeyInfo')}/{q(WSSE, 'SecurityTokenReference')}/{q(WSSE, 'Reference')}")
    if reference is None or not (reference.get("URI") or "").startswith("#"):
        raise SecurityMissing("ds:KeyInfo must reference the BinarySecurityToken (wsse:SecurityTokenReference).")
    token_id = reference.get("URI", "")[1:]
    tokens = [t for t in security.findall(q(WSSE, "BinarySecurityToken")) if t.get(WSU_ID) == token_id]
    if len(tokens) != 1 or tokens[0].get("ValueType") != X509_TOKEN:
        raise SecurityMissing("The referenced BinarySecurityToken (X509v3) is missing from wsse:Security.")
    try:
        return x509.load_der_x509_certificate(base64.b64decode(tokens[0].text or ""))
    except ValueError:
        raise SecurityMissing("The BinarySecurityToken does not hold a DER-encoded X.509 certificate.") from None


def _signxml_verify(root: etree._Element, cert: x509.Certificate) -> list:
    try:
        results = XMLVerifier().verify(root, x509_cert=cert, expect_config=_CONFIG)
    except InvalidDigest:
        raise SignatureInvalid(
            "A digest does not match: the Body, Timestamp or a signed header changed after signing."
        ) from None
    except InvalidInput as exc:
        if "Ambiguous" in str(exc):
            raise DuplicateId(f"A signed reference is ambiguous: {exc}") from None
        raise SignatureInvalid(f"The signature cannot be verified: {exc}") from None
    except (InvalidSignature, InvalidCertificate, SignXMLException) as exc:
        raise SignatureInvalid(f"The signature does not verify with the certificate in the token: {exc}") from None
    return results if isinstance(results, list) else [results]


def _by_id(root: etree._Element, uri: str) -> etree._Element:
    ident = uri[1:] if uri.startswith("#") else None
    found = root.xpath("//*[@*[local-name()='Id' or local-name()='ID' or local-name()='id'] = $v]", v=ident)
    if ident is None or len(found) != 1:
        raise UnsignedContent(f"The signature reference {uri!r} does not name exactly one element of the envelope.")
    return found[0]


def _parse_time(text: str | None, label: str) -> datetime:
    try:
        moment = datetime.fromisoformat((text or "").strip().replace("Z", "+00:00"))
    except ValueError:
        raise TimestampInvalid(f"wsu:{label} is not an xs:dateTime: {text!r}.") from None
    if moment.tzinfo is None:
        raise TimestampInvalid(f"wsu:{label} must be in UTC (end with Z).")
    return moment


def _check_timestamp(stamp: etree._Element, policy: SecurityPolicy, now: datetime) -> tuple[datetime, datetime]:
    created = _parse_time(stamp.findtext(q(WSU, "Created")), "Created")
    expires_text = stamp.findtext(q(WSU, "Expires"))
    if expires_text is None:
        raise TimestampInvalid("The wsu:Timestamp must carry Expires.")
    expires = _parse_time(expires_text, "Expires")
    if expires <= created or expires - created > policy.max_ttl:
        raise TimestampInvalid(
            f"The Timestamp's lifetime must be positive and at most {policy.max_ttl.total_seconds():.0f} seconds."
        )
    if created > now + policy.clock_skew:
        raise TimestampInFuture(f"The Timestamp was created at {created:%H:%M:%S}Z, in the future; check your clock.")
    if expires < now - policy.clock_skew:
        raise TimestampExpired(f"The Timestamp expired at {expires:%H:%M:%S}Z; sign a fresh request.")
    return created, expires


__all__ = ["SOAP_ENV", "SecurityPolicy", "Verified", "verify_envelope"]
