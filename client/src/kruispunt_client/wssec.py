"""The network's WS-Security profile on the client's side, with signxml.

sign_envelope() writes what the integrator requires of a request: one wsse:Security header holding the signer's
BinarySecurityToken, a wsu:Timestamp (5 minutes) and one detached ds:Signature (RSA-SHA256, SHA-256 digests,
exclusive c14n) with a reference to each of the Body, the Timestamp and the given header blocks (kp:Caller), its
KeyInfo a SecurityTokenReference to the token.

verify_answer() checks an answer the integrator signed the same way: the structure first (one Security header, one
Timestamp, one Signature inside it, every Id unique, no comments or processing instructions, each signed element
where the profile puts it, the Body and the Timestamp among them), then the Timestamp, the signer's certificate
against the trust anchors, and the signature and its digests (signxml). Only what it returns is signed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureConstructionMethod, SignatureMethod
from signxml.exceptions import SignXMLException
from signxml.signer import XMLSigner
from signxml.verifier import SignatureConfiguration, XMLVerifier

from kruispunt_client.errors import AnswerRefused
from kruispunt_client.keys import SigningKey
from kruispunt_client.namespaces import BASE64_BINARY, DS, EXC_C14N, SOAP_ENV, WSSE, WSU, WSU_ID, X509_TOKEN, q
from kruispunt_client.trust import Trust

TIMESTAMP_TTL = timedelta(minutes=5)
MAX_TTL = timedelta(minutes=10)  # the longest a Timestamp may live (as the integrator's policy)
CLOCK_SKEW = timedelta(seconds=60)
MAX_REFERENCES = 16

ENVELOPE, HEADER, BODY = q(SOAP_ENV, "Envelope"), q(SOAP_ENV, "Header"), q(SOAP_ENV, "Body")
SECURITY, TOKEN, TIMESTAMP = q(WSSE, "Security"), q(WSSE, "BinarySecurityToken"), q(WSU, "Timestamp")
SIGNATURE = q(DS, "Signature")
ACTOR, ACTOR_NEXT = q(SOAP_ENV, "actor"), "http://schemas.xmlsoap.org/soap/actor/next"
SIGNATURE_METHODS = frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512})
DIGEST_METHODS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})
_ID_NAMES = frozenset({"Id", "ID", "id"})


def _utc(moment: datetime) -> str:
    """xs:dateTime in UTC with milliseconds, as WS-Security writes it: 2026-12-01T09:30:00.000Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sign_envelope(root: etree._Element, signer: SigningKey, *, headers: Iterable[etree._Element] = (),
                  now: datetime | None = None, ttl: timedelta = TIMESTAMP_TTL) -> bytes:
    """Sign a SOAP 1.1 Envelope in place: the Body, a fresh Timestamp and the given header blocks. Returns the
    SignatureValue (decoded), whose SHA-256 the integrator's answer quotes (see signature_digest)."""
    if root.tag != ENVELOPE or root.find(BODY) is None:
        raise ValueError("sign_envelope signs a SOAP 1.1 Envelope with a Body")
    header = root.find(HEADER)
    if header is None:
        header = etree.Element(HEADER)
        root.insert(0, header)
    now = now or datetime.now(UTC)
    security = etree.Element(SECURITY, nsmap={"wsse": WSSE, "wsu": WSU})
    security.set(q(SOAP_ENV, "mustUnderstand"), "1")
    header.insert(0, security)
    token = etree.SubElement(security, TOKEN, {WSU_ID: f"X509-{os.urandom(16).hex()}"},
                             EncodingType=BASE64_BINARY, ValueType=X509_TOKEN)
    token.text = signer.token
    stamp = etree.SubElement(security, TIMESTAMP)
    etree.SubElement(stamp, q(WSU, "Created")).text = _utc(now)
    etree.SubElement(stamp, q(WSU, "Expires")).text = _utc(now + ttl)
    signed = [root.find(BODY), stamp, *headers]
    for element in signed:  # each referenced by its wsu:Id (one it has already, or a new one)
        if element is not None and element.get(WSU_ID) is None:
            element.set(WSU_ID, f"id-{os.urandom(16).hex()}")
    uris = [f"#{element.get(WSU_ID)}" for element in signed if element is not None]
    key_info = etree.Element(q(DS, "KeyInfo"), nsmap={"ds": DS})
    reference = etree.SubElement(etree.SubElement(key_info, q(WSSE, "SecurityTokenReference"), nsmap={"wsse": WSSE}),
                                 q(WSSE, "Reference"), ValueType=X509_TOKEN)
    reference.set("URI", f"#{token.get(WSU_ID)}")
    xml_signer = XMLSigner(method=SignatureConstructionMethod.detached, signature_algorithm=SignatureMethod.RSA_SHA256,
                           digest_algorithm=DigestAlgorithm.SHA256,
                           c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signature = xml_signer.sign(root, key=signer.key, reference_uri=uris, key_info=key_info)
    security.append(signature)
    return base64.b64decode(signature.findtext(q(DS, "SignatureValue")) or "")


def signature_digest(root: etree._Element) -> bytes:
    """SHA-256 of a signed envelope's SignatureValue (decoded): what the answer to it quotes as binding."""
    value = root.findtext(f"{HEADER}/{SECURITY}/{SIGNATURE}/{q(DS, 'SignatureValue')}") or ""
    return hashlib.sha256(base64.b64decode(value)).digest()


@dataclass(frozen=True)
class Verified:
    """What an answer's signature covers, as elements of the tree it was verified on."""

    body: etree._Element
    certificate: x509.Certificate
    created: datetime
    expires: datetime
    headers: dict[str, etree._Element] = field(default_factory=dict)  # the signed header blocks by tag

    @property
    def payload(self) -> etree._Element | None:
        """The first element inside the signed Body."""
        return next((child for child in self.body if isinstance(child.tag, str)), None)


def verify_answer(root: etree._Element, trust: Trust, now: datetime | None = None, *,
                  max_ttl: timedelta = MAX_TTL, clock_skew: timedelta = CLOCK_SKEW) -> Verified:
    """The signed content of an answer envelope; AnswerRefused saying why when it is not validly signed by a
    certificate the trust anchors vouch for."""
    now = now or datetime.now(UTC)
    header, body = _structure(root)
    ids = _ids(root)
    security = _one([b for b in header if b.tag == SECURITY and _for_us(b)], "wsse:Security header")
    stamp = _one(security.findall(TIMESTAMP), "wsu:Timestamp in wsse:Security")
    signature = _one(list(root.iter(SIGNATURE)), "ds:Signature")
    if signature.getparent() is not security:
        raise AnswerRefused("the ds:Signature is not inside the wsse:Security header")
    signed = [_placed(ids, uri, header, body, security) for uri in _references(signature)]
    if len({id(element) for element in signed}) != len(signed):
        raise AnswerRefused("two references name the same element")
    if body not in signed or stamp not in signed:
        raise AnswerRefused("the signature does not cover the Body and the Timestamp")
    created, expires = _fresh(stamp, now, max_ttl, clock_skew)
    certificate = _token(signature, ids, security)
    trust.check(certificate, now)
    config = SignatureConfiguration(location=f"./{HEADER}/{SECURITY}/", expect_references=len(signed),
                                    signature_methods=SIGNATURE_METHODS, digest_algorithms=DIGEST_METHODS)
    try:
        XMLVerifier().verify(root, x509_cert=certificate, expect_config=config)
    except (SignXMLException, etree.DocumentInvalid) as exc:
        raise AnswerRefused(f"the signature does not verify: {exc}") from None
    return Verified(body=body, certificate=certificate, created=created, expires=expires,
                    headers={element.tag: element for element in signed if element.getparent() is header})


def _structure(root: etree._Element) -> tuple[etree._Element, etree._Element]:
    if root.tag != ENVELOPE:
        raise AnswerRefused(f"not a SOAP 1.1 Envelope but {root.tag}")
    children = [child for child in root if isinstance(child.tag, str)]
    if len(children) != 2 or children[0].tag != HEADER or children[1].tag != BODY:
        raise AnswerRefused("a signed answer holds a Header and a Body, nothing else")
    for node in root.iter():
        if not isinstance(node.tag, str):  # what exclusive c14n leaves out of every digest
            raise AnswerRefused("the answer carries a comment or processing instruction")
    return children[0], children[1]


def _ids(root: etree._Element) -> dict[str, etree._Element]:
    found: dict[str, etree._Element] = {}
    for element in root.iter():
        for name, value in element.items():
            if etree.QName(name).localname in _ID_NAMES:
                ident = str(value)
                if ident in found:
                    raise AnswerRefused(f"the Id {ident!r} is given to two elements")
                found[ident] = element
    return found


def _for_us(block: etree._Element) -> bool:
    actor = block.get(ACTOR)
    return actor is None or actor.strip() == ACTOR_NEXT


def _one(found: list[etree._Element], what: str) -> etree._Element:
    if len(found) != 1:
        raise AnswerRefused(f"the answer must carry exactly one {what}, not {len(found)}")
    return found[0]


def _references(signature: etree._Element) -> list[str]:
    """The references' URIs, after checking every algorithm is one the profile allows."""
    info = signature.find(q(DS, "SignedInfo"))
    if info is None or info.find(q(DS, "CanonicalizationMethod")) is None:
        raise AnswerRefused("the signature has no SignedInfo with a CanonicalizationMethod")
    if info.find(q(DS, "CanonicalizationMethod")).get("Algorithm") != EXC_C14N:  # type: ignore[union-attr]
        raise AnswerRefused("the SignedInfo is not canonicalised with exclusive c14n")
    references = info.findall(q(DS, "Reference"))
    if not 0 < len(references) <= MAX_REFERENCES:
        raise AnswerRefused(f"the signature has {len(references)} references")
    uris = []
    for reference in references:
        uri = reference.get("URI") or ""
        transforms = [t.get("Algorithm") for t in reference.iterfind(f"{q(DS, 'Transforms')}/{q(DS, 'Transform')}")]
        if not uri.startswith("#") or transforms != [EXC_C14N]:
            raise AnswerRefused(f"the reference {uri!r} is not an exclusive-c14n reference to an element by Id")
        uris.append(uri[1:])
    return uris


def _placed(ids: dict[str, etree._Element], ident: str, header: etree._Element, body: etree._Element,
            security: etree._Element) -> etree._Element:
    """The element a reference names, if it stands where the profile puts signed content (so it is what is read)."""
    element = ids.get(ident)
    if element is None:
        raise AnswerRefused(f"the reference #{ident} names no element of the answer")
    parent = element.getparent()
    if not (element is body or (parent is security and element.tag in (TIMESTAMP, TOKEN))
            or (parent is header and element is not security and _for_us(element))):
        raise AnswerRefused(f"the signature covers {element.tag}, which is not where the profile puts signed content")
    return element


def _fresh(stamp: etree._Element, now: datetime, max_ttl: timedelta,
           skew: timedelta) -> tuple[datetime, datetime]:
    def moment(local: str) -> datetime:
        text = (stamp.findtext(q(WSU, local)) or "").strip()
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise AnswerRefused(f"wsu:{local} is not a dateTime: {text!r}") from None
        if value.tzinfo is None:
            raise AnswerRefused(f"wsu:{local} is not in UTC")
        return value

    created, expires = moment("Created"), moment("Expires")
    if not timedelta(0) < expires - created <= max_ttl:
        raise AnswerRefused(f"the Timestamp lives {(expires - created).total_seconds():.0f} s")
    if created > now + skew or expires < now - skew:
        raise AnswerRefused(f"the Timestamp ({_utc(created)} to {_utc(expires)}) is not current")
    return created, expires


def _token(signature: etree._Element, ids: dict[str, etree._Element], security: etree._Element) -> x509.Certificate:
    """The signer's certificate: the BinarySecurityToken the KeyInfo's SecurityTokenReference names."""
    reference = signature.find(f"{q(DS, 'KeyInfo')}/{q(WSSE, 'SecurityTokenReference')}/{q(WSSE, 'Reference')}")
    uri = reference.get("URI", "") if reference is not None else ""
    token = ids.get(uri[1:]) if uri.startswith("#") else None
    if token is None or token.tag != TOKEN or token.getparent() is not security \
            or token.get("ValueType") != X509_TOKEN:
        raise AnswerRefused("the KeyInfo does not refer to an X.509 BinarySecurityToken in the wsse:Security header")
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join((token.text or "").split()), validate=True))
    except (ValueError, binascii.Error):
        raise AnswerRefused("the BinarySecurityToken is not an X.509 certificate") from None


__all__ = ["TIMESTAMP_TTL", "Verified", "sign_envelope", "signature_digest", "verify_answer"]
