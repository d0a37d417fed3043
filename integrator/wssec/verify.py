"""Incoming WS-Security on the one parsed tree: the header, the Timestamp, the signing certificate and one XML
signature over Body, Timestamp and header blocks; only the elements it covers go further.

What each reference names is found in the envelope's Id index and must stand where the profile puts it (the
Body, the Timestamp of this header, a header block, the token), each element named once, before anything is
canonicalised: a moved (wrapped) element is refused, and the elements digested are disjoint, so no request costs
more canonicalisation than its own size. The SignedInfo's signature is checked before the digests, so a sender
without the key costs the canonicalisation of SignedInfo alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from integrator.envelope import Envelope, addressed_to_us
from integrator.faults import (
    AlgorithmRefused,
    SecurityMissing,
    SignatureInvalid,
    TimestampExpired,
    TimestampInFuture,
    TimestampInvalid,
    UnsignedContent,
)
from integrator.namespaces import DS, SOAP_ENV, WSSE, WSU, q
from integrator.wssec import dsig
from integrator.wssec.tokens import BST, CertificateDirectory, signing_certificate
from integrator.wssec.trust import TrustStore

SECURITY, TIMESTAMP, SIGNATURE = q(WSSE, "Security"), q(WSU, "Timestamp"), q(DS, "Signature")
_CREATED, _EXPIRES = q(WSU, "Created"), q(WSU, "Expires")


@dataclass(frozen=True)
class SecurityPolicy:
    """How fresh a Timestamp must be and how much a signature may ask of the verifier."""

    max_ttl: timedelta = timedelta(minutes=10)  # KRUISPUNT_TIMESTAMP_MAX_TTL_SECONDS (node-soap writes 600 s)
    clock_skew: timedelta = timedelta(seconds=60)  # KRUISPUNT_CLOCK_SKEW_SECONDS
    max_references: int = 16  # KRUISPUNT_MAX_REFERENCES
    max_prefixes: int = 64  # KRUISPUNT_MAX_INCLUSIVE_PREFIXES: prefixes in one InclusiveNamespaces PrefixList
    max_token_chars: int = 16_384  # KRUISPUNT_MAX_TOKEN_CHARS: a BinarySecurityToken or KeyIdentifier


@dataclass(frozen=True)
class Verified:
    """What the signature covers, as elements of the one parsed tree: nothing else is processed."""

    body: etree._Element
    created: datetime
    expires: datetime
    certificate: x509.Certificate
    fingerprint: str  # SHA-256 of the certificate (hex): how it is registered and audited
    signature_value: bytes
    headers: dict[str, etree._Element] = field(default_factory=dict)  # signed header blocks by tag

    @property
    def payload(self) -> etree._Element | None:
        """The first element inside the signed Body."""
        return next((c for c in self.body if isinstance(c.tag, str)), None)

    @property
    def signature_digest(self) -> bytes:
        return hashlib.sha256(self.signature_value).digest()


def verify_envelope(envelope: Envelope, trust: TrustStore, policy: SecurityPolicy, now: datetime,
                    directory: CertificateDirectory | None = None) -> Verified:
    """Refuse with the precise fault, or return the signed content of the envelope."""
    security = _security_header(envelope)
    stamp = _timestamp(security)
    signature = _signature(envelope, security)
    read = dsig.read_signature(signature, policy.max_references, policy.max_prefixes)
    targets = [(reference, _placed(envelope, security, signature, reference)) for reference in read.info.references]
    signed = [element for _, element in targets]
    if len({id(element) for element in signed}) != len(signed):  # one element under two Id attributes
        raise SignatureInvalid("Two ds:Reference elements name the same element; reference each element once.")
    if envelope.body not in signed:
        raise UnsignedContent("The signature does not cover the SOAP Body of this envelope; sign the Body in place.")
    if stamp not in signed:
        raise UnsignedContent("The signature does not cover the wsu:Timestamp; sign the Timestamp.")
    created, expires = _check_timestamp(stamp, policy, now)
    signer = signing_certificate(security, read.key_info, envelope.ids, directory, policy.max_token_chars)
    trust.check(signer.certificate, now, signer.fingerprint)
    key = signer.certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AlgorithmRefused("The signing certificate must carry an RSA key.")
    # the SignedInfo first: whoever does not hold the key never makes the integrator digest the Body
    if not dsig.signature_matches(read.info, read.value, key):
        raise SignatureInvalid("The signature does not verify with the signing certificate's key.")
    for reference, element in targets:
        if not dsig.digest_matches(reference, element):
            raise SignatureInvalid(
                f"The digest of {_label(element)} does not match: it changed after signing. Sign the final bytes.")
    headers = {element.tag: element for element in signed if element.getparent() is envelope.header}
    return Verified(body=envelope.body, created=created, expires=expires, certificate=signer.certificate,
                    fingerprint=signer.fingerprint, signature_value=read.value, headers=headers)


def _security_header(envelope: Envelope) -> etree._Element:
    blocks = [b for b in envelope.blocks if b.tag == SECURITY]
    if not blocks:
        elsewhere = envelope.header is not None and envelope.header.find(SECURITY) is not None
        raise SecurityMissing(
            "The wsse:Security header is addressed to another actor; send it without soapenv:actor."
            if elsewhere else
            "The request is not signed: a wsse:Security header with an X.509 token, a Timestamp and a signature "
            "over Body, Timestamp and kp:Caller is required.")
    if len(blocks) > 1:
        raise SignatureInvalid("The request carries more than one wsse:Security header; send exactly one.")
    return blocks[0]


def _timestamp(security: etree._Element) -> etree._Element:
    found = security.findall(TIMESTAMP)
    if not found:
        raise SecurityMissing(
            "wsse:Security holds no wsu:Timestamp; add one (WSS4J/CXF action 'Timestamp Signature') and sign it.")
    if len(found) > 1:
        raise SignatureInvalid("wsse:Security holds more than one wsu:Timestamp; send exactly one.")
    return found[0]


def _signature(envelope: Envelope, security: etree._Element) -> etree._Element:
    found = list(envelope.root.iter(SIGNATURE))
    if not found:
        raise SecurityMissing("wsse:Security holds no ds:Signature; sign the Body, the Timestamp and kp:Caller.")
    if len(found) > 1 or found[0].getparent() is not security:
        raise SignatureInvalid("The request must carry exactly one ds:Signature, inside wsse:Security.")
    return found[0]


def _placed(envelope: Envelope, security: etree._Element, signature: etree._Element,
            reference: dsig.Reference) -> etree._Element:
    """The element a reference names, if it stands where the profile puts signed content."""
    element = envelope.ids.get(reference.target)
    if element is None:
        raise UnsignedContent(
            f"The signature reference #{reference.target} does not name an element of this envelope.")
    parent = element.getparent()
    in_place = (element is envelope.body
                or (parent is security and element.tag in (TIMESTAMP, BST))
                or (parent is envelope.header and element is not security and addressed_to_us(element)))
    if not in_place:
        raise UnsignedContent(
            f"The signature covers {element.tag}, which is not the Body, the Timestamp or a SOAP header block of "
            "this envelope; a signed element was moved. Sign the Body, the Timestamp and kp:Caller in place.")
    if reference.enveloped and any(a is element for a in signature.iterancestors()):
        raise AlgorithmRefused(f"The enveloped-signature transform on #{reference.target} would remove the "
                               "signature from what it covers; reference the Body, Timestamp and header blocks.")
    return element


def _label(element: etree._Element) -> str:
    names = {q(SOAP_ENV, "Body"): "the SOAP Body", TIMESTAMP: "the wsu:Timestamp"}
    return names.get(element.tag, str(element.tag))


def _parse_time(text: str | None, label: str) -> datetime:
    try:
        moment = datetime.fromisoformat((text or "").strip().replace("Z", "+00:00"))
    except ValueError:
        raise TimestampInvalid(f"wsu:{label} is not an xs:dateTime: {text!r}.") from None
    if moment.tzinfo is None:
        raise TimestampInvalid(f"wsu:{label} must be in UTC (end with Z).")
    return moment


def _check_timestamp(stamp: etree._Element, policy: SecurityPolicy, now: datetime) -> tuple[datetime, datetime]:
    texts = {child.tag: child.text for child in stamp}
    created = _parse_time(texts.get(_CREATED), "Created")
    if _EXPIRES not in texts:
        raise TimestampInvalid("The wsu:Timestamp must carry Expires.")
    expires = _parse_time(texts[_EXPIRES], "Expires")
    if expires <= created or expires - created > policy.max_ttl:
        raise TimestampInvalid(
            f"The Timestamp lives {(expires - created).total_seconds():.0f} s; its lifetime must be positive and at "
            f"most {policy.max_ttl.total_seconds():.0f} s (KRUISPUNT_TIMESTAMP_MAX_TTL_SECONDS).")
    if created > now + policy.clock_skew:
        raise TimestampInFuture(f"The Timestamp was created at {created:%H:%M:%S}Z, in the future; check your clock.")
    if expires < now - policy.clock_skew:
        raise TimestampExpired(f"The Timestamp expired at {expires:%H:%M:%S}Z; sign a fresh request.")
    return created, expires


__all__ = ["SOAP_ENV", "SecurityPolicy", "Verified", "verify_envelope"]
