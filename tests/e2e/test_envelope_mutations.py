"""Signed lookups, mutated after signing, sent to the live integrator over a real socket: whatever a caller breaks
(an element deleted, duplicated, moved or renamed; an attribute added, changed or dropped; a namespace declaration
added, changed or dropped; a text emptied, lengthened or replaced; bytes that are no longer XML at all) the answer is
below HTTP 500, signed by the integrator, and has exactly one audit record under the ticket it names: either the
right answer for the person (when nothing the signature covers was touched) or a Client.* (or MustUnderstand) fault
with the matching HTTP status.

Every example signs a fresh lookup (new MessageId, Timestamp, Ids and SignatureValue), so no example is a replay of
another. The mutations name the elements of that freshly signed envelope by labels such as "ds:Reference[2]" (the
second ds:Reference in document order) and texts or attribute values may name its Ids ("#{body}"), so a failing
example printed by hypothesis can be pasted back as an @example. Tree mutations are applied in order, then the
envelope is serialised and the byte mutations are applied in order, re-encodings last.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, currently_in_test_context, given, note, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from lxml import etree
from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod
from signxml.verifier import XMLVerifier

from integrator.audit import AuditRecord
from integrator.envelope import ACTOR, ACTOR_NEXT, MUST_UNDERSTAND, parse_envelope
from integrator.faults import KruispuntFault
from integrator.namespaces import BASE64_BINARY, DS, EXC_C14N, KP, SOAP_ENV, WSSE, WSU, WSU_ID, X509_TOKEN, q
from integrator.pki import Identity, fingerprint
from integrator.wssec.c14n import canonical
from integrator.wssec.sign import SigningKey, sign_envelope
from integrator.wssec.tokens import SKI, THUMBPRINT_SHA1, WSSE11, X509_PKIPATH
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import SecurityPolicy, Verified, verify_envelope
from integrator.xmlparse import XINCLUDE, EnvelopeLimits
from repository.certificates import subject_key_identifier
from services.backends.persons import PERSONS
from services.backends.status_source import SOURCES
from services.demo_organisations import OFFICIALS
from tests.support import TAX_NS, Request, audit_record, post

if TYPE_CHECKING:
    from tests.conftest import Stack

# database=None keeps failing examples out of .hypothesis/, but Hypothesis also caches constants and Unicode tables
# in its home directory: keep that out of the work tree as well (unless HYPOTHESIS_STORAGE_DIRECTORY names one).
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "kruispunt-hypothesis")

pytestmark = pytest.mark.e2e

OFFICIAL, PERSON, OTHER_PERSON = OFFICIALS[0], PERSONS[0], PERSONS[1]
ON = date(2026, 1, 1)
MAX_BYTES = 1_048_576
LONGEST = 2 * MAX_BYTES  # the longest text a mutation writes
# Each example is one signature and one round trip; KRUISPUNT_MUTATION_EXAMPLES searches harder (say 500).
EXAMPLES = int(os.environ.get("KRUISPUNT_MUTATION_EXAMPLES", "300"))
BENIGN_EXAMPLES = max(40, EXAMPLES // 4)

ATTACKER = "urn:example:attacker"
OTHER_ACTOR = "urn:example:some-other-node"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XML_NS = "http://www.w3.org/XML/1998/namespace"
OLD_WSSE = "http://schemas.xmlsoap.org/ws/2002/04/secext"
TAX_V2 = "urn:kruispunt:TaxExemptionStatus:v2"
NS = {"soapenv": SOAP_ENV, "wsse": WSSE, "wsu": WSU, "ds": DS, "ec": EXC_C14N, "kp": KP, "tax": TAX_NS}

HEADER, BODY, FAULT = q(SOAP_ENV, "Header"), q(SOAP_ENV, "Body"), q(SOAP_ENV, "Fault")
SECURITY, TOKEN, TIMESTAMP = q(WSSE, "Security"), q(WSSE, "BinarySecurityToken"), q(WSU, "Timestamp")
SIGNED_INFO, REFERENCE, SIGNATURE_VALUE = q(DS, "SignedInfo"), q(DS, "Reference"), q(DS, "SignatureValue")
INCLUSIVE_NAMESPACES = q(EXC_C14N, "InclusiveNamespaces")
CALLER, ANSWER, FAULT_DETAIL = q(KP, "Caller"), q(KP, "Answer"), q(KP, "FaultDetail")
RESPONSE = q(TAX_NS, "GetTaxExemptionStatusesResponse")
KERBEROS = "http://docs.oasis-open.org/wss/oasis-wss-kerberos-token-profile-1.1#Kerberosv5APREQSHA1"

ALGORITHMS = (
    EXC_C14N, f"{EXC_C14N}WithComments", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/2006/12/xml-c14n11", "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/TR/1999/REC-xpath-19991116", "http://www.w3.org/TR/1999/REC-xslt-19991116",
    "http://www.w3.org/2000/09/xmldsig#base64", "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2000/09/xmldsig#hmac-sha1", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
    "http://www.w3.org/2000/09/xmldsig#sha1", "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmlenc#sha512", "http://www.w3.org/2001/04/xmldsig-more#md5",
)

# --- the freshly signed envelope and the labels that name its elements ------------------------------------------
INCLUSIVE_PREFIXES = {  # the "inclusive" base: every c14n carries an ec:InclusiveNamespaces PrefixList
    SIGNED_INFO: ("soapenv", "wsu"), BODY: ("#default", "soapenv"), TIMESTAMP: ("wsse", "soapenv"),
    CALLER: ("soapenv",),
}
BASES = ("plain", "inclusive")
LABELS: tuple[str, ...] = (
    "soapenv:Envelope", "soapenv:Header", "wsse:Security", "wsse:BinarySecurityToken", "wsu:Timestamp",
    "wsu:Created", "wsu:Expires", "ds:Signature", "ds:SignedInfo", "ds:CanonicalizationMethod",
    "ds:SignatureMethod",
    *(f"ds:{name}[{n}]" for n in (1, 2, 3)
      for name in ("Reference", "Transforms", "Transform", "DigestMethod", "DigestValue")),
    "ds:SignatureValue", "ds:KeyInfo", "wsse:SecurityTokenReference", "wsse:Reference",
    "kp:Caller", "kp:Official", "kp:Purpose", "kp:MessageId",
    "soapenv:Body", "tax:GetTaxExemptionStatusesRequest", "tax:Insz", "tax:ReferenceDate",
    *(f"ec:InclusiveNamespaces[{n}]" for n in (1, 2, 3, 4)),  # in the "inclusive" base only
)
_LABEL = re.compile(r"^(\w+):(\w+)(?:\[(\d+)\])?$")


def find(root: etree._Element, label: str) -> etree._Element | None:
    """The element a label names: prefix:Local[n], the n-th (from 1) such element in document order."""
    match = _LABEL.match(label)
    assert match is not None, label
    prefix, local, nth = match.groups()
    found = list(root.iter(q(NS[prefix], local)))
    index = int(nth or 1) - 1
    return found[index] if index < len(found) else None


@dataclass(frozen=True, repr=False)
class Kit:
    """What every example needs, made once per database: the caller's key, the integrator's trust anchor and
    certificate to check answers with, other certificates to swap in, and the answer the person must get."""

    identity: Identity
    signing: SigningKey
    answers_trust: TrustStore
    integrator_fingerprint: str
    tokens: dict[str, str]  # name -> DER, base64: certificates a BinarySecurityToken may be swapped for
    key_references: dict[str, Callable[[], etree._Element]]  # form -> a new key reference for the STR
    expected: tuple[str, str, tuple[tuple[str, str], ...]]  # Insz, ReferenceDate, sorted (Code, Source)
    log: Path
    stack: Stack

    def __repr__(self) -> str:
        return f"Kit({self.stack.database_url.partition(':')[0]})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis prints a failing example
        printer.text(repr(self))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _element(tag: str, text: str | None = None, **attributes: str) -> etree._Element:
    node = etree.Element(tag, attributes)
    node.text = text
    return node


def _issuer_serial(issuer: str, serial: str) -> Callable[[], etree._Element]:
    def make() -> etree._Element:
        data = _element(q(DS, "X509Data"))
        pair = etree.SubElement(data, q(DS, "X509IssuerSerial"))
        etree.SubElement(pair, q(DS, "X509IssuerName")).text = issuer
        etree.SubElement(pair, q(DS, "X509SerialNumber")).text = serial
        return data

    return make


def _key_identifier(value_type: str, value: bytes) -> Callable[[], etree._Element]:
    return lambda: _element(q(WSSE, "KeyIdentifier"), _b64(value), ValueType=value_type,
                            EncodingType=BASE64_BINARY)


def _expected_answer() -> tuple[str, str, tuple[tuple[str, str], ...]]:
    source = {spec.code: spec.name for spec in SOURCES}
    statuses = sorted((p.code, source[p.code]) for p in PERSON.periods
                      if p.start <= ON and (p.end is None or ON <= p.end))
    return PERSON.insz, ON.isoformat(), tuple(statuses)


@pytest.fixture(scope="module")
def kit(stack: Stack) -> Kit:
    pki = stack.pki
    signing = SigningKey.from_identity(pki.kruisdorp)  # slow: once per database, not per example
    cert = signing.cert
    der = cert.public_bytes(Encoding.DER)
    others = {"brugstede": pki.brugstede, "untrusted": pki.untrusted, "expired": pki.expired,
              "revoked": pki.revoked, "no-usage": pki.no_signature_usage, "integrator": pki.integrator,
              "ca": pki.ca}
    tokens = {name: _b64(identity.load_cert().public_bytes(Encoding.DER)) for name, identity in others.items()}
    tokens["path-of-one"] = _b64(b"\x30\x82" + len(der).to_bytes(2, "big") + der)  # X509PKIPathv1 [cert]
    brugstede = pki.brugstede.load_cert()
    issuer = cert.issuer.rfc4514_string()
    key_references: dict[str, Callable[[], etree._Element]] = {
        "issuer-serial": _issuer_serial(issuer, str(cert.serial_number)),
        "issuer-serial-reordered": _issuer_serial(",".join(reversed(issuer.upper().split(","))),
                                                  f" {cert.serial_number} "),
        "issuer-serial-unknown": _issuer_serial(issuer, str(cert.serial_number + 1)),
        "issuer-serial-not-a-number": _issuer_serial(issuer, "0x" + format(cert.serial_number, "x")),
        "issuer-serial-huge": _issuer_serial(issuer, "9" * 4000),
        "issuer-serial-of-brugstede": _issuer_serial(brugstede.issuer.rfc4514_string(),
                                                     str(brugstede.serial_number)),
        "ski": _key_identifier(SKI, subject_key_identifier(cert)),
        "ski-unknown": _key_identifier(SKI, b"\x00" * 20),
        "thumbprint": _key_identifier(THUMBPRINT_SHA1, hashlib.sha1(der).digest()),
        "thumbprint-of-brugstede": _key_identifier(
            THUMBPRINT_SHA1, hashlib.sha1(brugstede.public_bytes(Encoding.DER)).digest()),
        "x509": _key_identifier(X509_TOKEN, der),
        "x509-not-a-certificate": _key_identifier(X509_TOKEN, b"\x30\x03\x02\x01\x01"),
        "kerberos": _key_identifier(KERBEROS, b"\x01\x02"),
        "x509data-empty": lambda: _element(q(DS, "X509Data")),
        "key-name": lambda: _element(q(DS, "KeyName"), "kruisdorp"),
    }
    pki_dir = stack.settings.pki_dir
    return Kit(
        identity=pki.kruisdorp,
        signing=signing,
        answers_trust=TrustStore.from_files([pki_dir / "ca.crt"], None),
        integrator_fingerprint=fingerprint(x509.load_pem_x509_certificate((pki_dir / "integrator.crt").read_bytes())),
        tokens=tokens,
        key_references=key_references,
        expected=_expected_answer(),
        log=stack.log_dir / "integrator.log",
        stack=stack,
    )


def _ids(root: etree._Element) -> dict[str, str]:
    """The Id values of the signed parts, by the placeholder that names them in a mutation's text."""
    named = {"body": find(root, "soapenv:Body"), "timestamp": find(root, "wsu:Timestamp"),
             "caller": find(root, "kp:Caller"), "token": find(root, "wsse:BinarySecurityToken")}
    return {name: element.get(WSU_ID, "") for name, element in named.items() if element is not None}


def _with_inclusive_namespaces(root: etree._Element, signing: SigningKey) -> None:
    """Re-sign the envelope with an ec:InclusiveNamespaces PrefixList in every canonicalisation (as WSS4J does)."""
    info = find(root, "ds:SignedInfo")
    assert info is not None
    by_id = {element.get(WSU_ID): element for element in root.iter() if element.get(WSU_ID)}

    def listed(holder: etree._Element, prefixes: tuple[str, ...]) -> None:
        etree.SubElement(holder, INCLUSIVE_NAMESPACES, PrefixList=" ".join(prefixes), nsmap={"ec": EXC_C14N})

    listed(info[0], INCLUSIVE_PREFIXES[SIGNED_INFO])
    for reference in info.iter(REFERENCE):
        target = by_id[reference.get("URI", "")[1:]]
        prefixes = INCLUSIVE_PREFIXES[target.tag]
        listed(reference[0][0], prefixes)
        reference[2].text = _b64(hashlib.sha256(canonical(target, prefixes)).digest())
    value = signing.key.sign(canonical(info, INCLUSIVE_PREFIXES[SIGNED_INFO]), padding.PKCS1v15(), hashes.SHA256())
    signature_value = info.getnext()
    assert signature_value is not None and signature_value.tag == SIGNATURE_VALUE
    signature_value.text = _b64(value)


def signed_lookup(kit: Kit, base: str) -> etree._Element:
    """A valid signed lookup: a new MessageId, a fresh Timestamp, new Ids and a new SignatureValue."""
    root, caller = Request(identity=kit.identity, official=OFFICIAL.insz, insz=PERSON.insz, on=ON).envelope()
    sign_envelope(root, kit.signing, headers=[caller], now=datetime.now(UTC))
    if base == "inclusive":
        _with_inclusive_namespaces(root, kit.signing)
    return root


# --- mutations ----------------------------------------------------------------------------------------------------
@dataclass
class Doc:
    """An envelope being mutated: the tree (then its bytes), its elements by label, the Ids of its signed parts."""

    kit: Kit
    root: etree._Element
    elements: dict[str, etree._Element]
    ids: dict[str, str]
    data: bytes = b""
    codec: str = "utf-8"  # how data is encoded (a Reencode changes it)

    @classmethod
    def of(cls, kit: Kit, root: etree._Element) -> Doc:
        labelled = {label: find(root, label) for label in LABELS}
        return cls(kit, root, {label: e for label, e in labelled.items() if e is not None}, _ids(root))

    def fill(self, text: str) -> str:
        """Placeholders {body}, {timestamp}, {caller}, {token} become this envelope's Id values."""
        for name, ident in self.ids.items():
            text = text.replace(f"{{{name}}}", ident)
        return text


class Mutation:
    """One change to a signed envelope; apply() makes it and says what it did (for hypothesis' notes)."""

    on_bytes: ClassVar[bool] = False

    def apply(self, doc: Doc) -> str:
        raise NotImplementedError


def _skipped(label: str) -> str:
    return f"skipped: the envelope has no {label}"


@dataclass(frozen=True)
class Delete(Mutation):
    target: str

    def apply(self, doc: Doc) -> str:
        element = doc.elements.get(self.target)
        parent = element.getparent() if element is not None else None
        if element is None or parent is None:
            return _skipped(self.target)
        parent.remove(element)
        return f"deleted {self.target}"


@dataclass(frozen=True)
class Duplicate(Mutation):
    """A copy right after the original (Ids and all)."""

    target: str

    def apply(self, doc: Doc) -> str:
        element = doc.elements.get(self.target)
        if element is None or element.getparent() is None:
            return _skipped(self.target)
        element.addnext(copy.deepcopy(element))
        return f"duplicated {self.target}"


def _insert(into: etree._Element, index: int, element: etree._Element) -> None:
    into.insert(min(index, len(into)), element)


@dataclass(frozen=True)
class Move(Mutation):
    target: str
    into: str
    index: int

    def apply(self, doc: Doc) -> str:
        element, into = doc.elements.get(self.target), doc.elements.get(self.into)
        if element is None or into is None or element.getparent() is None:
            return _skipped(f"{self.target} or {self.into}")
        if into is element or element in into.iterancestors():
            return f"skipped: {self.into} lies inside {self.target}"
        _insert(into, self.index, element)
        return f"moved {self.target} into {self.into} at {self.index}"


@dataclass(frozen=True)
class CopyInto(Mutation):
    target: str
    into: str
    index: int

    def apply(self, doc: Doc) -> str:
        element, into = doc.elements.get(self.target), doc.elements.get(self.into)
        if element is None or into is None:
            return _skipped(f"{self.target} or {self.into}")
        _insert(into, self.index, copy.deepcopy(element))
        return f"copied {self.target} into {self.into} at {self.index}"


@dataclass(frozen=True)
class Rename(Mutation):
    """A new local name and/or namespace (None: keep it; namespace "": no namespace)."""

    target: str
    namespace: str | None
    local: str | None

    def apply(self, doc: Doc) -> str:
        element = doc.elements.get(self.target)
        if element is None:
            return _skipped(self.target)
        old = etree.QName(element)
        namespace = old.namespace if self.namespace is None else self.namespace
        local = self.local or old.localname
        element.tag = q(namespace, local) if namespace else local
        return f"renamed {self.target} to {element.tag}"


@dataclass(frozen=True)
class SetAttribute(Mutation):
    target: str
    name: str
    value: str

    def apply(self, doc: Doc) -> str:
        element = doc.elements.get(self.target)
        if element is None:
            return _skipped(self.target)
        value = doc.fill(self.value)
        element.set(self.name, value)
        return f"set {self.target} @{self.name}={value[:80]!r}"


@dataclass(frozen=True)
class DropAttribute(Mutation):
    """Remove an attribute by name, or the n-th one (modulo how many there are)."""

    target: str
    name: str | int

    def apply(self, doc: Doc) -> str:
        element = doc.elements.get(self.target)
        if element is None:
            return _skipped(self.target)
        names = element.keys()
        name = self.name if isinstance(self.name, str) else names[self.name % len(names)] if names else None
        if name is None or name not in element.attrib:
            return f"skipped: {self.target} has no attribute {self.name}"
        del element.attrib[name]
        return f"dropped {self.target} @{name}"


@dataclass(frozen=True)
class SetText(Mutation):
    target: str
    text: str

    def apply(self, doc: Doc) -> str:
        element = doc.elements.get(self.target)
        if element is None:
            return _skipped(self.target)
        element.text = doc.fill(self.text)
        return f"set the text of {self.target} to {element.text[:80]!r}"


@dataclass(frozen=True)
class Lengthen(Mutation):
    target: str
    times: int

    def apply(self, doc: Doc) -> str:
        element = doc.elements.get(self.target)
        if element is None:
            return _skipped(self.target)
        text = element.text or "A"
        times = min(self.times, max(1, LONGEST // len(text)))  # repeated lengthening stays past the limit, no more
        element.text = text * times
        return f"repeated the text of {self.target} {times} times ({len(element.text)} characters)"


TIME_FORMS = ("Z", "seconds", "micro", "offset", "naive", "lower-z", "space")


def _written(moment: datetime, form: str) -> str:
    if form == "offset":
        return moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    return {
        "Z": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "seconds": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "micro": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "naive": moment.strftime("%Y-%m-%dT%H:%M:%S"),
        "lower-z": moment.strftime("%Y-%m-%dt%H:%M:%Sz"),
        "space": moment.strftime(" %Y-%m-%d %H:%M:%SZ "),
    }[form]


@dataclass(frozen=True)
class SetTime(Mutation):
    """The text becomes a moment relative to now, written one way or another."""

    target: str
    seconds: int
    form: str

    def apply(self, doc: Doc) -> str:
        element = doc.elements.get(self.target)
        if element is None:
            return _skipped(self.target)
        try:
            moment = datetime.now(UTC) + timedelta(seconds=self.seconds)
        except OverflowError:
            moment = (datetime.max if self.seconds > 0 else datetime.min).replace(tzinfo=UTC)
        try:
            written = _written(moment, self.form)
        except OverflowError:  # year 1 or 9999 in another time zone
            written = _written(moment, "Z")
        element.text = written
        return f"set the text of {self.target} to {written!r}"


@dataclass(frozen=True)
class AddElement(Mutation):
    into: str
    index: int
    tag: str
    attributes: tuple[tuple[str, str], ...] = ()
    text: str | None = None

    def apply(self, doc: Doc) -> str:
        into = doc.elements.get(self.into)
        if into is None:
            return _skipped(self.into)
        node = etree.Element(self.tag)
        for name, value in self.attributes:
            node.set(name, doc.fill(value))
        node.text = doc.fill(self.text) if self.text is not None else None
        _insert(into, self.index, node)
        return f"added {etree.tostring(node)[:200]!r} into {self.into} at {self.index}"


@dataclass(frozen=True)
class AddComment(Mutation):
    """A comment inside the element, splitting its text at a character offset."""

    target: str
    at: int

    def apply(self, doc: Doc) -> str:
        element = doc.elements.get(self.target)
        if element is None:
            return _skipped(self.target)
        text = element.text or ""
        cut = self.at % (len(text) + 1)
        comment = etree.Comment(" a comment ")
        element.text = text[:cut]
        element.insert(0, comment)
        comment.tail = text[cut:] or None
        return f"a comment in {self.target} after {cut} characters"


@dataclass(frozen=True)
class Whitespace(Mutation):
    """Whitespace as the text or tail of an element."""

    target: str
    tail: bool
    spaces: str

    def apply(self, doc: Doc) -> str:
        element = doc.elements.get(self.target)
        if element is None:
            return _skipped(self.target)
        if self.tail:
            element.tail = (element.tail or "") + self.spaces
        else:
            element.text = self.spaces + (element.text or "")
        return f"whitespace {self.spaces!r} as the {'tail' if self.tail else 'text'} of {self.target}"


@dataclass(frozen=True)
class Rewrap(Mutation):
    """Base64 text written again with a line break every `width` characters (xs:base64Binary allows it)."""

    target: str
    width: int

    def apply(self, doc: Doc) -> str:
        element = doc.elements.get(self.target)
        if element is None or not element.text:
            return _skipped(f"text in {self.target}")
        flat = "".join(element.text.split())
        element.text = "\n" + "\n".join(flat[i:i + self.width] for i in range(0, len(flat), self.width)) + "\n"
        return f"rewrapped {self.target} at {self.width} characters"


def _token(doc: Doc) -> etree._Element | None:
    return doc.elements.get("wsse:BinarySecurityToken")


@dataclass(frozen=True)
class FlipTokenByte(Mutation):
    """One byte of the certificate in the BinarySecurityToken XORed, the token still good base64."""

    offset: int
    xor: int

    def apply(self, doc: Doc) -> str:
        token = _token(doc)
        if token is None or not token.text:
            return _skipped("wsse:BinarySecurityToken")
        try:
            der = bytearray(base64.b64decode(token.text))
        except ValueError:  # an earlier mutation broke it up
            return "skipped: the BinarySecurityToken is no longer base64"
        if not der:
            return "skipped: the BinarySecurityToken is empty"
        at = self.offset % len(der)
        der[at] ^= self.xor
        token.text = _b64(bytes(der))
        return f"the certificate's byte {at} XOR {self.xor:#04x}"


@dataclass(frozen=True)
class SwapToken(Mutation):
    """The BinarySecurityToken holds another certificate (optionally as an X509PKIPathv1 ValueType)."""

    certificate: str

    def apply(self, doc: Doc) -> str:
        token = _token(doc)
        if token is None:
            return _skipped("wsse:BinarySecurityToken")
        token.text = doc.kit.tokens[self.certificate]
        if self.certificate == "path-of-one":
            token.set("ValueType", X509_PKIPATH)
        return f"the BinarySecurityToken holds the {self.certificate} certificate"


@dataclass(frozen=True)
class KeyReference(Mutation):
    """The SecurityTokenReference names the key another way: by issuer and serial, SKI, thumbprint, ..."""

    form: str

    def apply(self, doc: Doc) -> str:
        holder = doc.elements.get("wsse:SecurityTokenReference")
        if holder is None:
            return _skipped("wsse:SecurityTokenReference")
        for child in list(holder):
            holder.remove(child)
        holder.append(doc.kit.key_references[self.form]())
        return f"the key reference is {self.form}: {etree.tostring(holder[0])[:300]!r}"


# --- mutations of the serialised bytes -------------------------------------------------------------------------
_DECLARATION = re.compile(rb'\sxmlns(?::([A-Za-z_][\w.-]*))?\s*=\s*"([^"]*)"')
_START_TAG = re.compile(rb"<[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?")


def _attribute_value(text: str) -> bytes:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").encode()


@dataclass(frozen=True)
class DropNamespace(Mutation):
    """The n-th xmlns declaration (modulo how many there are) removed from the bytes."""

    index: int
    on_bytes: ClassVar[bool] = True

    def apply(self, doc: Doc) -> str:
        found = list(_DECLARATION.finditer(doc.data))
        if not found:
            return "skipped: no namespace declaration"
        match = found[self.index % len(found)]
        doc.data = doc.data[:match.start()] + doc.data[match.end():]
        return f"dropped the declaration {match.group().decode(errors='replace').strip()!r}"


@dataclass(frozen=True)
class ChangeNamespace(Mutation):
    """The n-th xmlns declaration (modulo how many there are) names another URI."""

    index: int
    uri: str
    on_bytes: ClassVar[bool] = True

    def apply(self, doc: Doc) -> str:
        found = list(_DECLARATION.finditer(doc.data))
        if not found:
            return "skipped: no namespace declaration"
        match = found[self.index % len(found)]
        doc.data = doc.data[:match.start(2)] + _attribute_value(self.uri) + doc.data[match.end(2):]
        return f"the declaration {match.group().decode(errors='replace').strip()!r} now names {self.uri!r}"


@dataclass(frozen=True)
class DeclareNamespace(Mutation):
    """A namespace declaration (prefix None: the default namespace) added to the n-th start tag."""

    tag: int
    prefix: str | None
    uri: str
    on_bytes: ClassVar[bool] = True

    def apply(self, doc: Doc) -> str:
        found = list(_START_TAG.finditer(doc.data))
        if not found:
            return "skipped: no start tag"
        match = found[self.tag % len(found)]
        name = b"xmlns" if self.prefix is None else b"xmlns:" + self.prefix.encode()
        declaration = b" " + name + b'="' + _attribute_value(self.uri) + b'"'
        doc.data = doc.data[:match.end()] + declaration + doc.data[match.end():]
        return f"declared {declaration.decode().strip()} on {match.group().decode(errors='replace')}"


@dataclass(frozen=True)
class Splice(Mutation):
    """Bytes deleted and inserted at an offset (modulo the length): often no longer well-formed."""

    at: int
    delete: int
    insert: bytes
    on_bytes: ClassVar[bool] = True

    def apply(self, doc: Doc) -> str:
        at = self.at % (len(doc.data) + 1)
        removed = doc.data[at:at + self.delete]
        doc.data = doc.data[:at] + self.insert + doc.data[at + self.delete:]
        return f"at byte {at} replaced {removed!r} with {self.insert!r}"


@dataclass(frozen=True)
class Reencode(Mutation):
    """The document in another character encoding, with an XML declaration naming `label` (or none)."""

    codec: str
    label: str | None
    on_bytes: ClassVar[bool] = True

    def apply(self, doc: Doc) -> str:
        text = _XML_DECLARATION.sub("", doc.data.decode(doc.codec, errors="replace"), count=1)
        if self.label is not None:
            text = f'<?xml version="1.0" encoding="{self.label}"?>\n{text}'
        doc.data = text.encode(self.codec, errors="xmlcharrefreplace")
        doc.codec = "utf-8-sig" if self.codec == "utf-8" else self.codec  # a later Reencode reads it back
        return f"encoded as {self.codec}, declared as {self.label}"


_XML_DECLARATION = re.compile(r"^\ufeff?<\?xml[^>]*\?>\n?")


@dataclass(frozen=True)
class Mutated:
    """The bytes to send, what the mutations did, and the signed parts as they were signed (exclusive c14n)."""

    data: bytes
    done: tuple[str, ...]
    signed: dict[str, bytes]

    def about(self, base: str) -> str:
        return f"base {base}: " + "; ".join(self.done) + f"\nbytes sent: {_shown(self.data)}"


SIGNED_PARTS = {"Body": "soapenv:Body", "Timestamp": "wsu:Timestamp", "Caller": "kp:Caller"}


def mutate(kit: Kit, base: str, mutations: list[Mutation]) -> Mutated:
    """A freshly signed lookup with the mutations applied: tree mutations in order, then byte mutations in order,
    then any re-encoding."""
    root = signed_lookup(kit, base)
    signed = {name: canonical(element) for name, label in SIGNED_PARTS.items()
              if (element := find(root, label)) is not None}
    doc = Doc.of(kit, root)
    done = [m.apply(doc) for m in mutations if not m.on_bytes]
    doc.data = etree.tostring(root)
    done += [m.apply(doc) for m in mutations if m.on_bytes and not isinstance(m, Reencode)]
    done += [m.apply(doc) for m in mutations if isinstance(m, Reencode)]
    return Mutated(doc.data, tuple(done), signed)


def processed_parts(data: bytes) -> dict[str, bytes]:
    """What a SOAP processor takes from the bytes: the Envelope's Body, the Timestamp in the Header's
    wsse:Security and the Header's kp:Caller (exclusive c14n, comments dropped as the integrator drops them)."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True))
    found = {"Body": root.find(BODY), "Timestamp": root.find(f"{HEADER}/{SECURITY}/{TIMESTAMP}"),
             "Caller": root.find(f"{HEADER}/{CALLER}")}
    return {name: canonical(element) for name, element in found.items() if element is not None}


# --- strategies -------------------------------------------------------------------------------------------------
XML_CHAR = st.one_of(  # what XML 1.0 can carry: no C0 controls but tab, newline and return; C1 and DEL are fine
    st.characters(codec="utf-8", exclude_categories=("Cs",),
                  exclude_characters="".join(map(chr, range(0x20))) + "\ufffe\uffff"),
    st.sampled_from("\t\n\r \x7f\x85\u2028"),
)
XML_TEXT = st.text(XML_CHAR, max_size=24)
TEXTS = (
    "", " ", "\n\t", "0", "-1", "1e9", "AAAA", "A", "====", "!!not base64!!", "QUJD\nREVG", "QUJD REVG", "QUJD=REVG",
    "2026-01-01", "2026-02-30", "1900-01-01", "9999-12-31", "0001-01-01", "2026-01-01Z", "2026-01-01+14:00",
    "2026-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999+00:00",
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "2026-13-45T25:61:61Z", "2026-01-01T00:00:00", "P1D",
    "now", OTHER_PERSON.insz, PERSON.insz + " ", "00000000000", "99999999999", PERSON.insz[:-1],
    "MUNICIPAL_TAX_EXEMPTION", "UNKNOWN_PURPOSE", str(uuid.UUID(int=0)), "é€😀", "\u202eevil", "١٢٣٤", "\u00a0",
    "x" * 5000, "{body}", "#{body}", "{token}", "#{timestamp}",
)
ATTRIBUTE_NAMES = (
    "Id", WSU_ID, "ID", "id", q(ATTACKER, "Id"), "URI", "Algorithm", "PrefixList", "ValueType", "EncodingType",
    MUST_UNDERSTAND, ACTOR, q(SOAP12, "mustUnderstand"), q(WSSE11, "TokenType"), q(XML_NS, "space"),
    q(XML_NS, "lang"), q(XML_NS, "base"), q(ATTACKER, "note"), "note",
)
ATTRIBUTE_VALUES = (
    "", " ", "1", "0", "true", "false", "2", " 1 ", "TRUE", "yes", ACTOR_NEXT, f" {ACTOR_NEXT} ", OTHER_ACTOR,
    *ALGORITHMS, X509_TOKEN, X509_PKIPATH, BASE64_BINARY, SKI, "urn:other-token",
    "#default", "#default soapenv wsu", "soapenv wsu", "ds wsse", "nosuchprefix", "xml xmlns", "preserve",
    "#", "#{body}", "#{timestamp}", "#{caller}", "#{token}", "{body}", "{timestamp}", "{caller}", "{token}",
    "#xpointer(/)", "#xpointer(id('{body}'))", "cid:attachment", "http://attacker.example/", "é€😀", "x" * 1000,
)
NAMESPACES = ("", SOAP_ENV, SOAP12, WSSE, OLD_WSSE, WSSE11, WSU, DS, EXC_C14N, KP, TAX_NS, TAX_V2, ATTACKER, XINCLUDE)
LOCAL_NAMES = (
    "Envelope", "Header", "Body", "Fault", "Security", "BinarySecurityToken", "Timestamp", "Created", "Expires",
    "Signature", "SignedInfo", "Reference", "Transforms", "Transform", "DigestValue", "SignatureValue", "KeyInfo",
    "SecurityTokenReference", "InclusiveNamespaces", "Caller", "OnBehalfOf", "MessageId",
    "GetTaxExemptionStatusesRequest", "GetEverybodysStatusesRequest", "Insz", "include", "Wrapper",
)
URIS = (ATTACKER, "relative", "../up", "", SOAP_ENV, SOAP12, WSU, WSSE, DS, EXC_C14N, KP, TAX_NS, TAX_V2, XML_NS,
        "http://www.w3.org/2000/xmlns/", "urn:é", "a b", "http://[::1", "urn:x#frag")
PREFIXES = (None, "x", "soapenv", "wsu", "wsse", "ds", "ns0", "ec", "xml", "xmlns")
NEW_TAGS = (
    q(ATTACKER, "Note"), SECURITY, TIMESTAMP, q(DS, "Signature"), CALLER, q(KP, "OnBehalfOf"), BODY, HEADER, FAULT,
    REFERENCE, q(DS, "Transform"), q(DS, "KeyInfo"), q(DS, "Object"), TOKEN, q(WSSE, "KeyIdentifier"),
    q(DS, "X509Data"), INCLUSIVE_NAMESPACES, q(XINCLUDE, "include"), q(TAX_NS, "GetTaxExemptionStatusesRequest"),
    "unqualified",
)
BASE64_LABELS = ("wsse:BinarySecurityToken", "ds:SignatureValue", "ds:DigestValue[1]", "ds:DigestValue[2]",
                 "ds:DigestValue[3]")
CODECS = (("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8"), ("utf-16", "UTF-16"), ("utf-16-le", "UTF-16LE"),
          ("utf-16-be", "UTF-16BE"), ("utf-32", "UTF-32"), ("latin-1", "ISO-8859-1"), ("cp1252", "windows-1252"),
          ("ascii", "US-ASCII"), ("cp037", "IBM037"))
NASTY_BYTES = (b"", b"<", b">", b"&", b"&amp;", b"&#0;", b"&#xD800;", b"\x00", b"\xff", b"\xc3", b"\xef\xbb\xbf",
               b"<!--", b"-->", b"]]>", b"<![CDATA[x]]>", b"<?pi x?>", b"<!DOCTYPE x>", b"&lt;", b'"', b"'",
               b" a='1'", b"</soapenv:Header>", b"<soapenv:Body>")

ELEMENT = st.sampled_from(LABELS)
INNER = st.sampled_from(LABELS[1:])  # not the Envelope
TEXT = st.one_of(st.sampled_from(TEXTS), XML_TEXT, st.binary(max_size=48).map(_b64))
ATTRIBUTE_VALUE = st.one_of(st.sampled_from(ATTRIBUTE_VALUES), XML_TEXT)
ATTRIBUTES = st.lists(st.tuples(st.sampled_from(ATTRIBUTE_NAMES), ATTRIBUTE_VALUE), max_size=2).map(tuple)
INDEX = st.integers(0, 12)
CERTIFICATES = ("brugstede", "untrusted", "expired", "revoked", "no-usage", "integrator", "ca", "path-of-one")
KEY_FORMS = ("issuer-serial", "issuer-serial-reordered", "issuer-serial-unknown", "issuer-serial-not-a-number",
             "issuer-serial-huge", "issuer-serial-of-brugstede", "ski", "ski-unknown", "thumbprint",
             "thumbprint-of-brugstede", "x509", "x509-not-a-certificate", "kerberos", "x509data-empty", "key-name")
SECONDS = st.one_of(st.sampled_from((-86_400, -3600, -660, -600, -301, -61, -1, 0, 1, 59, 61, 299, 301, 601, 3600)),
                    st.integers(-10**11, 10**11))

MUTATIONS: st.SearchStrategy[Mutation] = st.one_of(
    st.builds(Delete, INNER),
    st.builds(Duplicate, INNER),
    st.builds(Move, INNER, ELEMENT, INDEX),
    st.builds(CopyInto, ELEMENT, ELEMENT, INDEX),
    st.builds(Rename, ELEMENT, st.one_of(st.none(), st.sampled_from(NAMESPACES)),
              st.one_of(st.none(), st.sampled_from(LOCAL_NAMES))),
    st.builds(SetAttribute, ELEMENT, st.sampled_from(ATTRIBUTE_NAMES), ATTRIBUTE_VALUE),
    st.builds(DropAttribute, ELEMENT, st.one_of(INDEX, st.sampled_from(ATTRIBUTE_NAMES))),
    st.builds(SetText, ELEMENT, TEXT),
    st.builds(SetText, st.sampled_from(BASE64_LABELS), TEXT),
    st.builds(Lengthen, ELEMENT, st.sampled_from((2, 10, 100, 1000))),
    st.builds(SetTime, st.sampled_from(("wsu:Created", "wsu:Expires", "tax:ReferenceDate")), SECONDS,
              st.sampled_from(TIME_FORMS)),
    st.builds(AddElement, ELEMENT, INDEX, st.sampled_from(NEW_TAGS), ATTRIBUTES, st.one_of(st.none(), TEXT)),
    st.builds(AddComment, ELEMENT, st.integers(0, 2000)),
    st.builds(Whitespace, ELEMENT, st.booleans(), st.sampled_from((" ", "\n", "\t\r\n  "))),
    st.builds(Rewrap, st.sampled_from(BASE64_LABELS), st.integers(1, 76)),
    st.builds(FlipTokenByte, st.integers(0, 4096), st.integers(1, 255)),
    st.builds(SwapToken, st.sampled_from(CERTIFICATES)),
    st.builds(KeyReference, st.sampled_from(KEY_FORMS)),
    st.builds(DropNamespace, INDEX),
    st.builds(ChangeNamespace, INDEX, st.sampled_from(URIS)),
    st.builds(DeclareNamespace, st.integers(0, 64), st.sampled_from(PREFIXES), st.sampled_from(URIS)),
    st.builds(Splice, st.integers(0, 10_000), st.integers(0, 16),
              st.one_of(st.sampled_from(NASTY_BYTES), st.binary(max_size=8))),
    st.sampled_from(CODECS).flatmap(lambda pair: st.builds(
        Reencode, st.just(pair[0]), st.sampled_from((pair[1], None, "UTF-8", "UTF-16", "EBCDIC-US")))),
)

# Changes that touch nothing the signature covers, in ways WS-Security and SOAP 1.1 allow: each must be answered.
UNSIGNED_PARENTS = ("soapenv:Envelope", "soapenv:Header", "wsse:Security", "wsse:BinarySecurityToken",
                    "ds:Signature", "ds:SignatureValue", "ds:KeyInfo", "wsse:SecurityTokenReference", "wsse:Reference")
TAILS_OUTSIDE_SIGNED = ("soapenv:Header", "wsse:Security", "wsse:BinarySecurityToken", "wsu:Timestamp",
                        "ds:Signature", "ds:SignedInfo", "ds:SignatureValue", "ds:KeyInfo", "kp:Caller",
                        "soapenv:Body")
FOREIGN_HEADER = st.builds(
    AddElement, st.just("soapenv:Header"), INDEX, st.sampled_from((q(ATTACKER, "Note"), q(KP, "Trace"))),
    st.sampled_from(((), ((MUST_UNDERSTAND, "0"),), ((MUST_UNDERSTAND, "false"),),
                     ((MUST_UNDERSTAND, "1"), (ACTOR, OTHER_ACTOR)), ((ACTOR, ACTOR_NEXT),))),
    st.one_of(st.none(), XML_TEXT))
BENIGN: st.SearchStrategy[Mutation] = st.one_of(
    FOREIGN_HEADER,
    st.builds(SetAttribute, st.sampled_from(UNSIGNED_PARENTS), st.just(q(ATTACKER, "note")), XML_TEXT),
    st.builds(SetAttribute, st.just("wsse:Security"), st.just(MUST_UNDERSTAND), st.sampled_from(("0", "true", " 1"))),
    st.builds(SetAttribute, st.just("wsse:Security"), st.just(ACTOR), st.just(ACTOR_NEXT)),
    st.builds(DropAttribute, st.just("wsse:Security"), st.just(MUST_UNDERSTAND)),
    st.builds(DropAttribute, st.just("wsse:BinarySecurityToken"), st.just("EncodingType")),
    st.builds(AddComment, ELEMENT, st.integers(0, 2000)),
    st.builds(Whitespace, st.sampled_from(TAILS_OUTSIDE_SIGNED), st.just(True), st.sampled_from((" ", "\n\t"))),
    st.builds(Rewrap, st.sampled_from(("wsse:BinarySecurityToken", "ds:SignatureValue")), st.integers(1, 76)),
    st.builds(KeyReference, st.sampled_from(("issuer-serial", "issuer-serial-reordered", "ski", "thumbprint",
                                             "x509"))),
    st.sampled_from((Reencode("utf-8", "UTF-8"), Reencode("utf-8-sig", None), Reencode("utf-16", "UTF-16"),
                     Reencode("latin-1", "ISO-8859-1"))),
    st.builds(DeclareNamespace, st.integers(0, 64), st.sampled_from(("b1", "b2", "b3")),
              st.sampled_from((ATTACKER, KP, "urn:x#frag"))),
)


def _one_declaration(mutation: Mutation) -> object:
    """Two declarations of one prefix on one start tag are not well-formed: a benign list declares each once."""
    return mutation.prefix if isinstance(mutation, DeclareNamespace) else object()


# --- what every answer owes the caller and the auditor ------------------------------------------------------
def _fault_classes(cls: type[KruispuntFault]) -> Iterator[type[KruispuntFault]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _fault_classes(sub)


HTTP_STATUS = {cls.CODE: cls.HTTP_STATUS for cls in _fault_classes(KruispuntFault)}


@dataclass(frozen=True)
class Seen:
    response: requests.Response
    verified: Verified
    record: AuditRecord
    code: str | None  # the fault code, None for an answer
    logged: str = field(repr=False, default="")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _shown(data: bytes, limit: int = 20_000) -> str:
    text = repr(data)
    return text if len(text) <= limit else f"{text[:limit // 2]} ... ({len(data)} bytes) ... {text[-limit // 2:]}"


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")


def signed_by_integrator(kit: Kit, content: bytes, context: str) -> Verified:
    """The answer verifies with the integrator's trust anchor, and it was the integrator's certificate."""
    try:
        verified = verify_envelope(parse_envelope(content, EnvelopeLimits()), kit.answers_trust, SecurityPolicy(),
                                   datetime.now(UTC))
    except KruispuntFault as refusal:
        raise AssertionError(f"the answer is not signed: {refusal.code}: {refusal.reason}\n{context}") from None
    assert verified.fingerprint == kit.integrator_fingerprint, f"signed by another certificate\n{context}"
    return verified


def exchange(kit: Kit, data: bytes, about: str = "") -> Seen:
    """Post the bytes and check what every answer owes: below 500, no traceback, signed by the integrator, the
    right answer or a Client fault naming the ticket, and exactly one audit record of the same outcome."""
    stack = kit.stack
    offset = kit.log.stat().st_size
    response = post(stack.base_url, data)
    logged = _read_from(kit.log, offset)
    context = (f"{about}\nHTTP {response.status_code} {dict(response.headers)}\n{response.text[:3000]}\n"
               f"--- integrator log since the request ---\n{logged[-8000:]}")
    assert response.status_code < 500, context
    assert "Traceback" not in response.text and 'File "' not in response.text, context
    assert "Traceback" not in logged, context
    ticket = response.headers.get("X-Kruispunt-Ticket", "")
    assert ticket, f"no X-Kruispunt-Ticket\n{context}"
    verified = signed_by_integrator(kit, response.content, context)
    answer = verified.headers.get(ANSWER)
    assert answer is not None and answer.findtext(q(KP, "Ticket")) == ticket, context
    record = audit_record(stack.sessions, ticket)
    assert record.response_digest == _sha256(response.content), context
    if len(data) <= MAX_BYTES:
        assert record.request_digest == _sha256(data), context
    payload = verified.payload
    assert payload is not None, context
    if response.status_code == 200:
        assert payload.tag == RESPONSE, context
        tx = f"{{{TAX_NS}}}"
        statuses = tuple(sorted((s.findtext(f"{tx}Code") or "", s.findtext(f"{tx}Source") or "")
                                for s in payload.iter(f"{tx}Status")))
        assert (payload.findtext(f"{tx}Insz"), payload.findtext(f"{tx}ReferenceDate"), statuses) == kit.expected, \
            context
        assert (record.outcome, record.fault_code, record.person, record.official) == (
            "OK", None, PERSON.insz, OFFICIAL.insz), context
        return Seen(response, verified, record, None, logged)
    assert payload.tag == FAULT, context
    detail = payload.find(f"detail/{FAULT_DETAIL}")
    assert detail is not None, context
    code = detail.findtext(q(KP, "Code")) or ""
    assert code.startswith("Client.") or code == "MustUnderstand", context
    assert payload.findtext("faultcode") == f"soapenv:{code}", context
    assert ticket in (payload.findtext("faultstring") or ""), context
    assert detail.findtext(q(KP, "Ticket")) == ticket, context
    assert response.status_code == HTTP_STATUS.get(code), context
    assert (record.outcome, record.fault_code) == ("FAULT", code), context
    return Seen(response, verified, record, code, logged)


def sent(kit: Kit, base: str, mutations: list[Mutation]) -> Seen:
    """Mutate a freshly signed lookup, send it, check the answer; an answer (not a fault) must come from an
    envelope whose Body, Timestamp and kp:Caller, as a SOAP processor reads them, are exactly what was signed."""
    mutated = mutate(kit, base, mutations)
    about = mutated.about(base)
    if currently_in_test_context():
        note(about)
    seen = exchange(kit, mutated.data, about)
    if seen.code is None:
        assert processed_parts(mutated.data) == mutated.signed, f"answered, but signed content changed\n{about}"
    return seen


# No example database (no .hypothesis/ directory); the autouse loopback guard is function-scoped and harmless here.
LIVE = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


# --- the control: both bases are sound and accepted as they are ----------------------------------------------
ANY_ALGORITHM = SignatureConfiguration(require_x509=True, expect_references=True,
                                       signature_methods=frozenset(SignatureMethod),
                                       digest_algorithms=frozenset(DigestAlgorithm))


class SchemaLenientVerifier(XMLVerifier):
    """signxml, without its schema check: the XML-DSig schema's strict wildcard in ds:CanonicalizationMethod
    refuses the ec:InclusiveNamespaces that exclusive c14n puts there (signxml itself honours it)."""

    def validate_schema(self, signature: etree._Element) -> None:
        pass


@pytest.mark.parametrize("base", BASES)
def test_the_unmutated_bases_are_sound_and_answered(kit: Kit, base: str) -> None:
    root = signed_lookup(kit, base)
    labelled = {label for label in LABELS if find(root, label) is not None}
    assert labelled == {label for label in LABELS if base == "inclusive" or not label.startswith("ec:")}
    data = etree.tostring(root)
    checked = SchemaLenientVerifier().verify(etree.fromstring(data), x509_cert=kit.signing.cert,
                                             expect_config=ANY_ALGORITHM)
    assert len(checked) == 3  # signxml agrees: Body, Timestamp and kp:Caller, each digest and the signature
    assert exchange(kit, data).code is None


# --- the properties ---------------------------------------------------------------------------------------------
@settings(LIVE, max_examples=EXAMPLES)
@given(base=st.sampled_from(BASES), mutations=st.lists(MUTATIONS, min_size=1, max_size=3))
def test_a_mutated_envelope_is_answered_signed_below_500_and_audited_once(
        kit: Kit, base: str, mutations: list[Mutation]) -> None:
    """One to three mutations anywhere in a freshly signed lookup: a signed answer below 500, audited once; the
    right answer only if what the signature covers reached the processor unchanged, else a Client fault."""
    sent(kit, base, mutations)


@settings(LIVE, max_examples=BENIGN_EXAMPLES)
@given(base=st.sampled_from(BASES), mutations=st.lists(BENIGN, min_size=1, max_size=3, unique_by=_one_declaration))
def test_changes_outside_what_is_signed_are_answered(kit: Kit, base: str, mutations: list[Mutation]) -> None:
    """What WS-Security and SOAP 1.1 let a sender vary outside the signed parts (comments anywhere, whitespace,
    foreign attributes and headers, other key references, other encodings, spare namespace declarations) is
    answered, not refused."""
    seen = sent(kit, base, mutations)
    assert seen.code is None, seen.record.detail


# --- regression examples: mutations worth keeping, with the fault each one earns ------------------------------
REGRESSIONS: tuple[tuple[str, str, list[Mutation], str | None], ...] = (
    ("body-moved-into-header", "plain", [Move("soapenv:Body", "soapenv:Header", 12)], "Client.Envelope.Malformed"),
    ("signed-body-copied-into-header-original-changed", "plain",
     [CopyInto("soapenv:Body", "soapenv:Header", 12), DropAttribute("soapenv:Body", WSU_ID),
      SetText("tax:Insz", OTHER_PERSON.insz)], "Client.Security.UnsignedContent"),
    ("security-header-twice", "plain", [Duplicate("wsse:Security")], "Client.Security.DuplicateId"),
    ("soap-1.2-envelope", "plain", [Rename("soapenv:Envelope", SOAP12, None)], "Client.Envelope.Malformed"),
    ("body-reference-names-the-token", "plain", [SetAttribute("ds:Reference[1]", "URI", "#{token}")],
     "Client.Security.UnsignedContent"),
    ("security-for-another-actor", "plain", [SetAttribute("wsse:Security", ACTOR, OTHER_ACTOR)],
     "Client.Security.Missing"),
    ("created-in-year-9999", "plain", [SetText("wsu:Created", "9999-12-31T23:59:59Z")],
     "Client.Security.TimestampInvalid"),
    ("signature-value-not-base64", "plain", [SetText("ds:SignatureValue", "!!not base64!!")],
     "Client.Security.SignatureInvalid"),
    ("token-swapped-for-the-integrators-certificate", "plain", [SwapToken("integrator")],
     "Client.Security.SignatureInvalid"),
    ("token-swapped-for-a-revoked-certificate", "plain", [SwapToken("revoked")], "Client.Security.CertificateRevoked"),
    ("issuer-serial-with-4000-digits", "plain", [KeyReference("issuer-serial-huge")],
     "Client.Security.CertificateNotRegistered"),
    ("wsu-declaration-dropped", "plain", [DropNamespace(1)], "Client.Envelope.Malformed"),
    ("utf-8-declared-as-utf-16", "plain", [Reencode("utf-8", "UTF-16")], "Client.Envelope.Malformed"),
    ("ebcdic", "plain", [Reencode("cp037", "IBM037")], "Client.Envelope.Malformed"),
    ("unknown-header-must-be-understood", "plain",
     [AddElement("soapenv:Header", 0, q(ATTACKER, "Note"), ((MUST_UNDERSTAND, "1"),))], "MustUnderstand"),
    ("must-understand-is-yes", "plain", [SetAttribute("kp:Caller", MUST_UNDERSTAND, "yes")],
     "Client.Envelope.Malformed"),
    ("default-prefix-listed-after-signing", "plain",
     [AddElement("ds:Transform[1]", 0, INCLUSIVE_NAMESPACES, (("PrefixList", "#default"),))],
     "Client.Security.SignatureInvalid"),
    ("prefix-list-emptied", "inclusive", [SetAttribute("ec:InclusiveNamespaces[2]", "PrefixList", "")],
     "Client.Security.SignatureInvalid"),
    ("token-a-thousand-times-longer", "plain", [Lengthen("wsse:BinarySecurityToken", 1000)],
     "Client.Envelope.TooLarge"),
    # accepted: nothing the signature covers changed, as a SOAP processor reads it
    ("comment-inside-the-signed-insz", "plain", [AddComment("tax:Insz", 5)], None),
    ("comment-inside-signed-info", "inclusive", [AddComment("ds:SignedInfo", 0)], None),
    ("key-named-by-issuer-and-serial", "plain", [KeyReference("issuer-serial")], None),
    ("key-named-by-thumbprint", "inclusive", [KeyReference("thumbprint")], None),
    ("token-as-a-pki-path-of-one", "plain", [SwapToken("path-of-one")], None),
    ("utf-16", "inclusive", [Reencode("utf-16", "UTF-16")], None),
    # libxml2 reads UTF-16 from the first bytes (a byte order mark, or '<' and '?' as UTF-16) and ignores the label
    ("utf-16-with-bom-declared-as-utf-8", "plain", [Reencode("utf-16", "UTF-8")], None),
    ("utf-16-le-without-bom-declared-as-utf-8", "plain", [Reencode("utf-16-le", "UTF-8")], None),
    ("unknown-header-for-another-actor", "plain",
     [AddElement("soapenv:Header", 0, q(ATTACKER, "Note"), ((MUST_UNDERSTAND, "1"), (ACTOR, OTHER_ACTOR)))], None),
    ("xml-space-on-the-envelope", "plain", [SetAttribute("soapenv:Envelope", q(XML_NS, "space"), "preserve")], None),
)


@pytest.mark.parametrize(("base", "mutations", "code"), [case[1:] for case in REGRESSIONS],
                         ids=[case[0] for case in REGRESSIONS])
def test_regression_example(kit: Kit, base: str, mutations: list[Mutation], code: str | None) -> None:
    seen = sent(kit, base, mutations)
    assert seen.code == code, seen.record.detail


# --- certificates broken inside -----------------------------------------------------------------------------
def test_certificate_whose_names_are_not_utf8_is_refused_as_missing(kit: Kit) -> None:
    """A certificate broken inside its subject or issuer name is refused as no certificate at all."""
    der = base64.b64decode(kit.signing.cert_der_b64)
    issuer = der.find(b"kruispunt demo CA")
    assert issuer > 0
    for offset in (_subject_offset(kit), issuer):
        assert sent(kit, "plain", [FlipTokenByte(offset, 0x80)]).code == "Client.Security.Missing"


def test_certificate_whose_subject_holds_a_nul_is_refused_as_untrusted(kit: Kit) -> None:
    """RFC 4514 writes U+0000 as \\00, so the reason (and the audit record, on PostgreSQL too) holds no NUL."""
    seen = sent(kit, "plain", [FlipTokenByte(_subject_offset(kit), 0x47)])  # 'G' ^ 0x47 = U+0000
    assert seen.code == "Client.Security.CertificateUntrusted"
    assert "\x00" not in (seen.record.detail or "")


def _subject_offset(kit: Kit) -> int:
    """Where the signer's certificate spells its subject's common name (the issuer's name comes first)."""
    der = base64.b64decode(kit.signing.cert_der_b64)
    name = kit.signing.cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    at = der.find(str(name).encode())
    assert at > 0
    return at


# --- what the property found (each was a 5xx; now each is a signed, audited Client fault) ---------------------
def test_relative_namespace_uri_in_scope_of_a_signed_part_is_a_client_fault(kit: Kit) -> None:
    sent(kit, "plain", [DeclareNamespace(0, None, "relative")])


def test_certificate_whose_subject_holds_a_control_character_gets_a_signed_audited_fault(kit: Kit) -> None:
    sent(kit, "plain", [FlipTokenByte(_subject_offset(kit), 0x46)])  # 'G' ^ 0x46 = U+0001


def test_certificate_with_an_unknown_version_is_a_client_fault(kit: Kit) -> None:
    der = base64.b64decode(kit.signing.cert_der_b64)
    assert der[8:13] == bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 (v3), at byte 12
    sent(kit, "plain", [FlipTokenByte(12, 0x01)])


def test_certificate_with_a_duplicate_extension_is_a_client_fault(kit: Kit) -> None:
    der = base64.b64decode(kit.signing.cert_der_b64)
    key_usage = der.find(bytes.fromhex("0603551d0f"))  # OID 2.5.29.15; ^1 makes it 2.5.29.14, the SKI's
    assert key_usage > 0 and der.find(bytes.fromhex("0603551d0e")) > 0
    sent(kit, "plain", [FlipTokenByte(key_usage + 4, 0x01)])
