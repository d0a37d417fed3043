"""Differential tests of the security stage: every stored sample of another stack, and tampered copies of each,
get the same verdict from the integrator's request path (parse_envelope, then verify_envelope) and from xmlsec1,
the oracle for "does this signature verify with this key?".

Valid means verify_envelope returns and xmlsec1 says OK; invalid means verify_envelope raises
Client.Security.SignatureInvalid and xmlsec1 says no. Any other fault is a different verdict, and fails the test.
Each sample is verified at its own wsu:Created + 1 s, with the sample PKI's CA as the only trust anchor and a
directory that knows only the sample signer's certificate (for IssuerSerial, SKI and thumbprint references)."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from integrator.envelope import parse_envelope
from integrator.faults import KruispuntFault
from integrator.wssec.tokens import Signer
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import SecurityPolicy, verify_envelope
from integrator.xmlparse import EnvelopeLimits
from repository.certificates import dn_values, subject_key_identifier
from tests.interop.common import KP, SAMPLE_PKI, SAMPLES, SOAP_ENV, parse, require
from tests.interop.xmlsec import xmlsec1_stack
from tests.interop.xmlsec.xmlsec1_stack import DS, EC, WSU

SIGNATURE_INVALID = "Client.Security.SignatureInvalid"
SIGNER_CERT = SAMPLE_PKI / "signer.crt"
NS = {"ds": DS, "ec": EC, "wsu": WSU, "soapenv": SOAP_ENV, "kp": KP}
PERSON, OTHER_PERSON = b"48021420212", b"48021420213"  # the Insz in every sample's Body (tests/interop/regenerate)
OFFICIAL, OTHER_OFFICIAL = b"75041214531", b"75041214532"  # the kp:Official of every sample's kp:Caller
# Samples whose signature does not cover kp:Caller (node-soap's WSSecurityCert signs Body and Timestamp only): the
# signature is sound with any Caller, and the request path refuses the unsigned header later (UnsignedContent).
CALLER_NOT_SIGNED = frozenset({"node-soap/wssecuritycert-default"})
DEFAULT_NAMESPACE_SAMPLE = SAMPLES / xmlsec1_stack.STACK / "default-namespace-prefix-lists.xml"

SAMPLE_FILES = sorted(SAMPLES.glob("*/*.xml"))


def sample_name(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


@functools.cache
def _oracle_problem() -> str | None:
    return xmlsec1_stack.available()


@pytest.fixture(autouse=True)
def oracle_available() -> None:
    """xmlsec1 is the oracle: without it these tests fail (the CI installs it), unless interop is optional here."""
    require(xmlsec1_stack.STACK, _oracle_problem())


# --- the request path ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleSigner:
    """A CertificateDirectory that knows the sample signer's certificate only, found as the repository finds a
    registered one: by issuer and serial number, by subject key identifier, by SHA-1 thumbprint."""

    certificate: x509.Certificate

    @property
    def _der(self) -> bytes:
        return self.certificate.public_bytes(Encoding.DER)

    def by_issuer_serial(self, issuer: str, serial: int) -> Signer | None:
        issued_by = sorted(str(a.value).casefold() for a in self.certificate.issuer) == dn_values(issuer)
        return Signer.of(self._der) if issued_by and serial == self.certificate.serial_number else None

    def by_subject_key_identifier(self, identifier: bytes) -> Signer | None:
        return Signer.of(self._der) if identifier == subject_key_identifier(self.certificate) else None

    def by_thumbprint(self, sha1: bytes) -> Signer | None:
        return Signer.of(self._der) if sha1 == hashlib.sha1(self._der).digest() else None


DIRECTORY = SampleSigner(x509.load_pem_x509_certificate(SIGNER_CERT.read_bytes()))
TRUST = TrustStore.from_files([SAMPLE_PKI / "ca.crt"], None)


@dataclass(frozen=True)
class Verdict:
    """Both verdicts on one document: the request path's fault (None: it verified) and xmlsec1's."""

    fault: KruispuntFault | None
    oracle: xmlsec1_stack.Verdict

    @property
    def request_path_valid(self) -> bool:
        return self.fault is None

    def explain(self) -> str:
        said = "valid" if self.fault is None else f"{self.fault.code}: {self.fault.reason}"
        return f"request path: {said}; xmlsec1: {'valid' if self.oracle.ok else self.oracle.error}"


def created_plus_one_second(data: bytes) -> datetime:
    created = parse(data).findtext("soapenv:Header/*/wsu:Timestamp/wsu:Created", namespaces=NS)
    assert created, "the sample has no wsu:Timestamp/wsu:Created"
    return datetime.fromisoformat(created.strip().replace("Z", "+00:00")) + timedelta(seconds=1)


def verdicts(data: bytes, now: datetime) -> Verdict:
    try:
        verify_envelope(parse_envelope(data, EnvelopeLimits()), TRUST, SecurityPolicy(), now, DIRECTORY)
        fault = None
    except KruispuntFault as refused:
        fault = refused
    return Verdict(fault, xmlsec1_stack.verify(data, SIGNER_CERT))


def assert_invalid_for_both(verdict: Verdict) -> None:
    assert not verdict.oracle.ok, f"xmlsec1 accepted it; {verdict.explain()}"
    assert verdict.fault is not None, f"the request path accepted it; {verdict.explain()}"
    assert verdict.fault.code == SIGNATURE_INVALID, verdict.explain()


# --- tampering -----------------------------------------------------------------------------------------------
def _replace_once(data: bytes, pattern: bytes, replacement: Callable[[re.Match[bytes]], bytes]) -> bytes:
    matches = list(re.finditer(pattern, data))
    assert matches, f"{pattern!r} not found"
    first = matches[0]
    return data[:first.start()] + replacement(first) + data[first.end():]


def _other_base64_char(match: re.Match[bytes]) -> bytes:
    """The opening tag, then the first character of its text replaced by another base64 character."""
    return match.group(1) + (b"B" if match.group(2) == b"A" else b"A")


def body_text_changed(data: bytes) -> bytes:
    assert data.count(PERSON) == 1
    tampered = data.replace(PERSON, OTHER_PERSON)
    body = parse(tampered).find("soapenv:Body", NS)
    assert body is not None and OTHER_PERSON.decode() in "".join(body.itertext())
    return tampered


def digest_value_changed(data: bytes) -> bytes:
    return _replace_once(data, rb"(<(?:[\w.-]+:)?DigestValue>\s*)(.)", _other_base64_char)


def signature_value_changed(data: bytes) -> bytes:
    return _replace_once(data, rb"(<(?:[\w.-]+:)?SignatureValue(?:\s[^>]*)?>\s*)(.)", _other_base64_char)


def expires_changed(data: bytes) -> bytes:
    """Expires one second earlier, written as the stack wrote it: still parseable, after Created, and fresh."""

    def earlier(match: re.Match[bytes]) -> bytes:
        text = match.group(2).decode()
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")) - timedelta(seconds=1)
        fraction = re.search(r"\.\d+", text)
        written = f"{moment:%Y-%m-%dT%H:%M:%S}{fraction.group(0) if fraction else ''}Z"
        assert written != text and len(written) == len(text), (text, written)
        return match.group(1) + written.encode() + match.group(3)

    assert len(re.findall(rb"<(?:[\w.-]+:)?Expires>", data)) == 1
    return _replace_once(data, rb"(<(?:[\w.-]+:)?Expires>)([^<]+Z)(</)", earlier)


def caller_official_changed(data: bytes) -> bytes:
    assert data.count(OFFICIAL) == 1
    return _replace_once(data, rb"(<(?:[\w.-]+:)?Official>)" + OFFICIAL + rb"(</)",
                         lambda m: m.group(1) + OTHER_OFFICIAL + m.group(2))


VARIANTS: dict[str, Callable[[bytes], bytes]] = {
    "body-text": body_text_changed,
    "digest-value": digest_value_changed,
    "signature-value": signature_value_changed,
    "timestamp-expires": expires_changed,
    "caller-official": caller_official_changed,
}


def covered_local_names(data: bytes) -> set[str]:
    """The local names of the elements the sample's References name, by any attribute called Id."""
    root = parse(data)
    names = set()
    for reference in root.iterfind(".//ds:Signature/ds:SignedInfo/ds:Reference", NS):
        [target] = root.xpath("//*[@*[local-name()='Id'] = $id]", id=reference.get("URI", "")[1:])
        names.add(etree.QName(target).localname)
    return names


# --- every stored sample -------------------------------------------------------------------------------------
def test_samples_of_every_stack_are_there() -> None:
    from tests.interop.stacks import STACKS

    stored = {sample_name(path) for path in SAMPLE_FILES}
    expected = {f"{stack.STACK}/{config}" for stack in STACKS for config in stack.CONFIGS}
    assert stored == expected, "regenerate the samples: python -m tests.interop.regenerate"


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=sample_name)
def test_stored_sample_verifies_on_the_request_path_as_with_xmlsec1(path: Path) -> None:
    data = path.read_bytes()
    verdict = verdicts(data, created_plus_one_second(data))
    assert verdict.request_path_valid == verdict.oracle.ok, verdict.explain()
    assert verdict.request_path_valid and verdict.oracle.ok, verdict.explain()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("path", SAMPLE_FILES, ids=sample_name)
def test_tampered_sample_is_invalid_for_the_request_path_and_for_xmlsec1(path: Path, variant: str) -> None:
    data = path.read_bytes()
    tampered = VARIANTS[variant](data)
    assert tampered != data
    verdict = verdicts(tampered, created_plus_one_second(data))
    if variant == "caller-official":
        caller_signed = sample_name(path) not in CALLER_NOT_SIGNED
        assert ("Caller" in covered_local_names(data)) == caller_signed
        if not caller_signed:
            # Not covered: the signature is sound either way, and both must say so (the pipeline refuses it later).
            assert verdict.request_path_valid and verdict.oracle.ok, verdict.explain()
            return
    assert_invalid_for_both(verdict)


# --- a default namespace rendered through "#default" ---------------------------------------------------------
def _referenced(root: etree._Element, reference: etree._Element) -> etree._Element:
    [target] = root.xpath("//*[@*[local-name()='Id'] = $id]", id=reference.get("URI", "")[1:])
    return target


def _prefix_list_holders(root: etree._Element) -> dict[str, etree._Element]:
    """The ec:InclusiveNamespaces of SignedInfo's CanonicalizationMethod and of each Reference's transform, by
    what they canonicalise: SignedInfo, Body, Timestamp, Caller."""
    info = root.find(".//ds:Signature/ds:SignedInfo", NS)
    assert info is not None
    holders = {"SignedInfo": info.find("ds:CanonicalizationMethod/ec:InclusiveNamespaces", NS)}
    for reference in info.iterfind("ds:Reference", NS):
        target = etree.QName(_referenced(root, reference)).localname
        holders[target] = reference.find("ds:Transforms/ds:Transform/ec:InclusiveNamespaces", NS)
    assert all(holder is not None for holder in holders.values())
    return holders


def without_default_in(data: bytes, which: str) -> bytes:
    """The same bytes with "#default" taken out of one PrefixList (the n-th in document order)."""
    root = parse(data)
    every = list(root.iter(f"{{{EC}}}InclusiveNamespaces"))
    index = next(n for n, holder in enumerate(every) if holder is _prefix_list_holders(root)[which])
    attributes = list(re.finditer(rb'PrefixList="([^"]*)"', data))
    assert len(attributes) == len(every)
    found = attributes[index]
    tokens = found.group(1).split()
    assert b"#default" in tokens
    kept = b" ".join(token for token in tokens if token != b"#default")
    return data[:found.start(1)] + kept + data[found.end(1):]


def test_default_namespace_sample_lists_default_everywhere_and_it_changes_every_digest() -> None:
    """The case means something: the Envelope declares a default namespace that no element uses, every PrefixList
    names "#default", and xmlsec1's digests are not those of exclusive c14n without it."""
    data = DEFAULT_NAMESPACE_SAMPLE.read_bytes()
    root = parse(data)
    assert root.nsmap.get(None) == xmlsec1_stack.DEFAULT_NS
    holders = _prefix_list_holders(root)
    assert set(holders) == {"SignedInfo", "Body", "Timestamp", "Caller"}
    assert all("#default" in (holder.get("PrefixList") or "").split() for holder in holders.values())
    for reference in root.iterfind(".//ds:Signature/ds:SignedInfo/ds:Reference", NS):
        target = _referenced(root, reference)
        named = [p for p in (reference.find(".//ec:InclusiveNamespaces", NS).get("PrefixList") or "").split()
                 if p != "#default"]
        plain = etree.tostring(target, method="c14n", exclusive=True, inclusive_ns_prefixes=named or None)
        assert xmlsec1_stack.DEFAULT_NS.encode() not in plain
        digest = base64.b64encode(hashlib.sha256(plain).digest()).decode()
        assert reference.findtext("ds:DigestValue", namespaces=NS) != digest, etree.QName(target).localname


def test_default_namespace_sample_verifies_on_the_request_path_as_with_xmlsec1() -> None:
    data = DEFAULT_NAMESPACE_SAMPLE.read_bytes()
    verdict = verdicts(data, created_plus_one_second(data))
    assert verdict.request_path_valid and verdict.oracle.ok, verdict.explain()


@pytest.mark.parametrize("which", ["SignedInfo", "Body", "Timestamp", "Caller"])
def test_default_taken_out_of_one_prefix_list_is_invalid_for_both(which: str) -> None:
    data = DEFAULT_NAMESPACE_SAMPLE.read_bytes()
    tampered = without_default_in(data, which)
    assert tampered != data and tampered.count(b"#default") == data.count(b"#default") - 1
    verdict = verdicts(tampered, created_plus_one_second(data))
    assert_invalid_for_both(verdict)
    assert verdict.fault is not None
    # every PrefixList lies inside SignedInfo, whose signature the request path checks before any digest
    assert "does not verify" in verdict.fault.reason, verdict.explain()
