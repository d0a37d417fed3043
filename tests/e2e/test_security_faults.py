"""Hostile and broken requests over real sockets: each one is refused with its own fault code and the HTTP status
of a caller's mistake, in a fault that is itself signed, carries a ticket and has exactly one audit record.

Every hostile request is built so that only the check a test names can refuse it: the signatures are genuine
(checked here with signxml where the integrator would refuse the algorithm), the hostile certificates are registered
to the organisation, the official has a grant and the persons have valid INSZ numbers.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from kruispunt_client.xml import build
from lxml import etree
from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod
from signxml.verifier import XMLVerifier

from integrator.audit import AuditRecord
from integrator.namespaces import BASE64_BINARY, DS, EXC_C14N, KP, SOAP_ENV, WSSE, WSU, WSU_ID, X509_TOKEN, q
from integrator.pki import Identity, fingerprint
from integrator.wssec.sign import SigningKey, sign_envelope
from services.backends.persons import PERSONS, Person
from services.demo_organisations import OFFICIALS
from tests.support import TAX_NS, TAX_PATH, FaultSeen, Request, audit_record, fault_of, post

pytestmark = pytest.mark.e2e

OFFICIAL = OFFICIALS[0]  # Kruisdorp, granted TaxExemptionStatus
PERSON, OTHER_PERSON = PERSONS[0], PERSONS[1]
ON = date(2026, 1, 1)
SERVICE_KEY = "TaxExemptionStatus/v1"
MAX_BYTES = 1_048_576

HEADER, BODY = q(SOAP_ENV, "Header"), q(SOAP_ENV, "Body")
SECURITY, CALLER = q(WSSE, "Security"), q(KP, "Caller")
REQUEST = q(TAX_NS, "GetTaxExemptionStatusesRequest")
INSZ = q(TAX_NS, "Insz")
ATTACKER = "urn:example:attacker"

RSA_SHA256, RSA_SHA1 = SignatureMethod.RSA_SHA256.value, SignatureMethod.RSA_SHA1.value
SHA256, SHA1 = DigestAlgorithm.SHA256.value, DigestAlgorithm.SHA1.value
EXC_C14N_WITH_COMMENTS = f"{EXC_C14N}WithComments"
XPATH_FILTER = "http://www.w3.org/TR/1999/REC-xpath-19991116"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
XSL = "http://www.w3.org/1999/XSL/Transform"
HASHES: dict[str, type[hashes.HashAlgorithm]] = {RSA_SHA256: hashes.SHA256, RSA_SHA1: hashes.SHA1,
                                                 SHA256: hashes.SHA256, SHA1: hashes.SHA1}
RESPONSE_SIGNATURE = SignatureConfiguration(require_x509=True, expect_references=True,
                                            signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
                                            digest_algorithms=frozenset({DigestAlgorithm.SHA256}))
ANY_ALGORITHM = SignatureConfiguration(require_x509=True, expect_references=True,
                                       signature_methods=frozenset(SignatureMethod),
                                       digest_algorithms=frozenset(DigestAlgorithm))


# --- building requests ----------------------------------------------------------------------------------
def lookup(identity: Identity, person: Person = PERSON, **kwargs: Any) -> Request:
    """A lookup by the granted Kruisdorp official, about a known person: acceptable but for what a test changes."""
    return Request(identity, OFFICIAL.insz, person.insz, ON, **kwargs)


def signed_after(request: Request, prepare: Callable[[etree._Element], None]) -> bytes:
    """Change the envelope first, then sign it genuinely: only a check on the change itself can refuse it."""
    root, caller = request.envelope()
    prepare(root)
    sign_envelope(root, SigningKey.from_identity(request.identity), headers=[caller],
                  now=request.now or datetime.now(UTC), ttl=request.ttl)
    return etree.tostring(root)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _exc_c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def transform(algorithm: str, *content: etree._Element) -> etree._Element:
    node = etree.Element(q(DS, "Transform"), Algorithm=algorithm, nsmap={"ds": DS})
    node.extend(content)
    return node


def hand_signed(
    request: Request,
    *,
    cover: tuple[str, ...] = ("Body", "Timestamp", "Caller"),
    c14n: str = EXC_C14N,
    signature_method: str = RSA_SHA256,
    digest_method: str = SHA256,
    body_transforms: tuple[etree._Element, ...] | None = None,
) -> bytes:
    """A WS-Security envelope like integrator.wssec.sign makes, with the SignedInfo written by hand: any
    algorithm, any transforms, any choice of covered parts. The result is checked with signxml (every algorithm
    allowed) so that a refusal can only come from the integrator's policy, never from a broken signature."""
    signing = SigningKey.from_identity(request.identity)
    now = request.now or datetime.now(UTC)
    root, caller = request.envelope()
    header, body = root.find(HEADER), root.find(BODY)
    assert header is not None and body is not None
    security = etree.Element(SECURITY, nsmap={"wsse": WSSE, "wsu": WSU})
    security.set(q(SOAP_ENV, "mustUnderstand"), "1")
    header.insert(0, security)
    token = etree.SubElement(security, q(WSSE, "BinarySecurityToken"), EncodingType=BASE64_BINARY,
                             ValueType=X509_TOKEN)
    token_id = f"X509-{uuid.uuid4().hex}"
    token.set(WSU_ID, token_id)
    token.text = signing.cert_der_b64
    stamp = etree.SubElement(security, q(WSU, "Timestamp"))
    etree.SubElement(stamp, q(WSU, "Created")).text = _utc(now)
    etree.SubElement(stamp, q(WSU, "Expires")).text = _utc(now + request.ttl)
    parts = {"Body": body, "Timestamp": stamp, "Caller": caller}

    signature = etree.SubElement(security, q(DS, "Signature"), nsmap={"ds": DS})
    info = etree.SubElement(signature, q(DS, "SignedInfo"))
    etree.SubElement(info, q(DS, "CanonicalizationMethod"), Algorithm=c14n)
    etree.SubElement(info, q(DS, "SignatureMethod"), Algorithm=signature_method)
    for name in cover:
        part = parts[name]
        ident = f"{name.lower()}-{uuid.uuid4().hex}"
        part.set(WSU_ID, ident)
        reference = etree.SubElement(info, q(DS, "Reference"), URI=f"#{ident}")
        transforms = etree.SubElement(reference, q(DS, "Transforms"))
        chosen = body_transforms if name == "Body" and body_transforms is not None else (transform(EXC_C14N),)
        transforms.extend(chosen)
        etree.SubElement(reference, q(DS, "DigestMethod"), Algorithm=digest_method)
        digest = hashes.Hash(HASHES[digest_method]())
        digest.update(_exc_c14n(part))  # the parts hold no comments: with or without them, the same octets
        etree.SubElement(reference, q(DS, "DigestValue")).text = base64.b64encode(digest.finalize()).decode()
    signed_info = etree.tostring(info, method="c14n", exclusive=True, with_comments=c14n.endswith("#WithComments"))
    value = signing.key.sign(signed_info, padding.PKCS1v15(), HASHES[signature_method]())
    etree.SubElement(signature, q(DS, "SignatureValue")).text = base64.b64encode(value).decode()
    key_info = etree.SubElement(signature, q(DS, "KeyInfo"))
    holder = etree.SubElement(key_info, q(WSSE, "SecurityTokenReference"))
    etree.SubElement(holder, q(WSSE, "Reference"), URI=f"#{token_id}", ValueType=X509_TOKEN)

    data = etree.tostring(root)
    checked = XMLVerifier().verify(etree.fromstring(data), x509_cert=signing.cert, expect_config=ANY_ALGORITHM)
    assert len(checked) == len(cover), "the hand-made signature must be cryptographically sound"
    return data


def forged_body(root: etree._Element) -> etree._Element:
    """A new, unsigned Body asking about another (valid) person, in the place the SOAP processor reads."""
    body = etree.SubElement(root, BODY)
    body.append(build(REQUEST, {"Insz": OTHER_PERSON.insz, "ReferenceDate": ON}))
    return body


def with_doctype(signed: bytes, internal_subset: str, reference: str) -> bytes:
    """A signed envelope preceded by a DTD, with an entity reference placed in a new header element."""
    text = signed.decode()
    text = text.replace("</soapenv:Header>", f'<x:Note xmlns:x="{ATTACKER}">{reference}</x:Note></soapenv:Header>', 1)
    return f'<?xml version="1.0"?>\n<!DOCTYPE soapenv:Envelope [\n{internal_subset}\n]>\n{text}'.encode()


# --- reading answers ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Refusal:
    response: requests.Response
    fault: FaultSeen
    record: AuditRecord


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_no_traceback(response: requests.Response) -> None:
    assert "Traceback" not in response.text and 'File "' not in response.text, response.text[:2000]


def assert_signed_by_integrator(response: requests.Response, integrator: Identity, code: str, ticket: str) -> None:
    """The fault is a signed SOAP answer: wsse:Security with a ds:Signature that verifies with the integrator's
    certificate and covers the Body holding the fault and the kp:Answer header holding the ticket."""
    root = etree.fromstring(response.content)
    security = root.find(f"{HEADER}/{SECURITY}")
    assert security is not None, "the fault has no wsse:Security header"
    assert security.find(q(DS, "Signature")) is not None, "the fault's wsse:Security has no ds:Signature"
    results = XMLVerifier().verify(root, x509_cert=integrator.load_cert(), expect_config=RESPONSE_SIGNATURE)
    signed = {result.signed_xml.tag: result.signed_xml for result in results}
    assert signed[BODY].findtext(f".//{q(KP, 'FaultDetail')}/{q(KP, 'Code')}") == code
    assert signed[q(KP, "Answer")].findtext(q(KP, "Ticket")) == ticket


def refused(stack, data: bytes, code: str, *, status: int = 400, path: str = TAX_PATH,
            response: requests.Response | None = None) -> Refusal:
    """Post (unless already posted) and check everything every refusal owes the caller and the auditor."""
    response = response if response is not None else post(stack.base_url, data, path)
    assert_no_traceback(response)
    fault = fault_of(response)
    assert (fault.code, response.status_code) == (code, status), fault.reason
    assert 400 <= response.status_code < 500
    assert fault.ticket, "the fault carries no ticket"
    assert response.headers["X-Kruispunt-Ticket"] == fault.ticket
    assert fault.ticket in fault.faultstring
    assert_signed_by_integrator(response, stack.pki.integrator, code, fault.ticket)
    record = audit_record(stack.sessions, fault.ticket)
    assert (record.outcome, record.fault_code) == ("FAULT", code)
    assert record.response_digest == sha256_hex(response.content)
    if len(data) <= MAX_BYTES:
        assert record.request_digest == sha256_hex(data)
    return Refusal(response, fault, record)


def assert_nothing_attributed(record: AuditRecord, *, service: str | None = SERVICE_KEY) -> None:
    """Refused before the signature was accepted: the audit claims no certificate, organisation or official."""
    assert record.service == service
    assert (record.certificate, record.organisation, record.official, record.purpose, record.message_id,
            record.operation, record.person) == (None, None, None, None, None, None, None)


def answered(stack, data: bytes) -> requests.Response:
    response = post(stack.base_url, data)
    assert_no_traceback(response)
    assert response.status_code == 200, response.text[:2000]
    assert audit_record(stack.sessions, response.headers["X-Kruispunt-Ticket"]).outcome == "OK"
    return response


def post_on_new_connection(base_url: str, data: bytes) -> requests.Response:
    """A fresh connection each time (new Session, Connection: close), so gunicorn may hand it to any worker."""
    with requests.Session() as session:
        response = session.post(f"{base_url}{TAX_PATH}", data=data, timeout=60,
                                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""',
                                         "Connection": "close"})
    assert_no_traceback(response)
    return response


# --- the control: the builders above make acceptable requests --------------------------------------------
def test_baseline_requests_built_here_are_accepted(stack) -> None:
    answered(stack, lookup(stack.pki.kruisdorp).signed())
    answered(stack, hand_signed(lookup(stack.pki.kruisdorp)))
    answered(stack, signed_after(lookup(stack.pki.kruisdorp), lambda root: None))


# --- WS-Security: presence, integrity, coverage ----------------------------------------------------------
def test_unsigned_request_is_refused_as_security_missing(stack) -> None:
    root, _caller = lookup(stack.pki.kruisdorp).envelope()
    data = etree.tostring(root)
    refusal = refused(stack, data, "Client.Security.Missing")
    assert_nothing_attributed(refusal.record)


def test_body_changed_after_signing_is_refused_as_signature_invalid(stack) -> None:
    def other_person(root: etree._Element) -> None:
        insz = root.find(f"{BODY}/{REQUEST}/{INSZ}")
        assert insz is not None and insz.text == PERSON.insz
        insz.text = OTHER_PERSON.insz  # a valid INSZ: only the digest can tell

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=other_person),
                      "Client.Security.SignatureInvalid")
    assert_nothing_attributed(refusal.record)


def test_body_moved_into_wrapper_in_header_and_replaced_is_refused(stack) -> None:
    def wrap(root: etree._Element) -> None:
        header = root.find(HEADER)
        wrapper = etree.SubElement(header, q(ATTACKER, "Wrapper"))
        wrapper.append(root.find(BODY))  # the signed Body, still verifying, now out of the SOAP processor's view
        forged_body(root)

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=wrap), "Client.Security.UnsignedContent")
    assert_nothing_attributed(refusal.record)


def test_body_moved_into_wrapper_inside_wsse_security_and_replaced_is_refused(stack) -> None:
    def wrap(root: etree._Element) -> None:
        security = root.find(f"{HEADER}/{SECURITY}")
        wrapper = etree.SubElement(security, q(ATTACKER, "Wrapper"))
        wrapper.append(root.find(BODY))
        forged_body(root)

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=wrap), "Client.Security.UnsignedContent")
    assert_nothing_attributed(refusal.record)


def test_body_moved_into_header_as_a_header_block_and_replaced_is_refused(stack) -> None:
    def move(root: etree._Element) -> None:
        root.find(HEADER).append(root.find(BODY))  # a direct child of the Header, like a signed header block
        forged_body(root)

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=move), "Client.Security.UnsignedContent")
    assert_nothing_attributed(refusal.record)


def test_signed_caller_moved_into_wrapper_and_replaced_by_forged_caller_is_refused(stack) -> None:
    def wrap(root: etree._Element) -> None:
        header = root.find(HEADER)
        signed_caller = header.find(CALLER)
        etree.SubElement(header, q(ATTACKER, "Wrapper")).append(signed_caller)
        header.append(build(CALLER, {"Official": OFFICIALS[1].insz, "Purpose": "MUNICIPAL_TAX_EXEMPTION",
                                     "MessageId": str(uuid.uuid4())}))

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=wrap), "Client.Security.UnsignedContent")
    assert_nothing_attributed(refusal.record)


@pytest.mark.parametrize("attribute", [WSU_ID, "Id", "ID", "id", "{http://www.w3.org/XML/1998/namespace}id"],
                         ids=["wsu:Id", "Id", "ID", "id", "xml:id"])
def test_second_element_carrying_the_body_id_is_refused_as_duplicate_id(stack, attribute: str) -> None:
    def decoy(root: etree._Element) -> None:
        body_id = root.find(BODY).get(WSU_ID)
        assert body_id
        etree.SubElement(root.find(HEADER), q(ATTACKER, "Decoy"), {attribute: body_id})

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=decoy), "Client.Security.DuplicateId")
    assert_nothing_attributed(refusal.record)


def test_timestamp_not_covered_by_the_signature_is_refused(stack) -> None:
    data = hand_signed(lookup(stack.pki.kruisdorp), cover=("Body", "Caller"))
    assert b"Timestamp" in data
    refusal = refused(stack, data, "Client.Security.UnsignedContent")
    assert_nothing_attributed(refusal.record)
    assert "Timestamp" in refusal.fault.reason


def test_caller_header_not_covered_by_the_signature_is_refused(stack) -> None:
    request = lookup(stack.pki.kruisdorp, sign_caller=False)
    refusal = refused(stack, request.signed(), "Client.Security.UnsignedContent")
    record = refusal.record
    assert record.certificate == fingerprint(stack.pki.kruisdorp.load_cert())  # the signature itself was accepted
    assert (record.official, record.purpose, record.message_id, record.organisation) == (None, None, None, None)
    assert "Caller" in refusal.fault.reason


# --- WS-Security: the Timestamp ------------------------------------------------------------------------------
def test_expired_timestamp_is_refused(stack) -> None:
    request = lookup(stack.pki.kruisdorp, now=datetime.now(UTC) - timedelta(minutes=10))
    refusal = refused(stack, request.signed(), "Client.Security.TimestampExpired")
    assert (refusal.record.official, refusal.record.organisation, refusal.record.message_id) == (None, None, None)


def test_timestamp_from_the_future_is_refused(stack) -> None:
    request = lookup(stack.pki.kruisdorp, now=datetime.now(UTC) + timedelta(minutes=10))
    refusal = refused(stack, request.signed(), "Client.Security.TimestampInFuture")
    assert (refusal.record.official, refusal.record.organisation, refusal.record.message_id) == (None, None, None)


def test_timestamp_living_longer_than_five_minutes_is_refused(stack) -> None:
    request = lookup(stack.pki.kruisdorp, ttl=timedelta(hours=1))
    refusal = refused(stack, request.signed(), "Client.Security.TimestampInvalid")
    assert (refusal.record.official, refusal.record.organisation, refusal.record.message_id) == (None, None, None)


# --- WS-Security: the signer's certificate (each one registered to Kruisdorp) ---------------------------------
def test_certificate_from_an_untrusted_authority_with_the_same_name_is_refused(stack) -> None:
    refusal = refused(stack, lookup(stack.pki.untrusted).signed(), "Client.Security.CertificateUntrusted")
    assert_nothing_attributed(refusal.record)


def test_expired_certificate_is_refused(stack) -> None:
    refusal = refused(stack, lookup(stack.pki.expired).signed(), "Client.Security.CertificateExpired")
    assert_nothing_attributed(refusal.record)


def test_revoked_certificate_is_refused(stack) -> None:
    refusal = refused(stack, lookup(stack.pki.revoked).signed(), "Client.Security.CertificateRevoked")
    assert_nothing_attributed(refusal.record)


def test_certificate_without_digital_signature_key_usage_is_refused(stack) -> None:
    refusal = refused(stack, lookup(stack.pki.no_signature_usage).signed(), "Client.Security.CertificateUsage")
    assert_nothing_attributed(refusal.record)


# --- WS-Security: algorithms -----------------------------------------------------------------------------
def test_rsa_sha1_signature_method_is_refused(stack) -> None:
    data = hand_signed(lookup(stack.pki.kruisdorp), signature_method=RSA_SHA1)
    refusal = refused(stack, data, "Client.Security.AlgorithmRefused")
    assert_nothing_attributed(refusal.record)


def test_sha1_reference_digests_are_refused(stack) -> None:
    data = hand_signed(lookup(stack.pki.kruisdorp), digest_method=SHA1)
    refusal = refused(stack, data, "Client.Security.AlgorithmRefused")
    assert_nothing_attributed(refusal.record)


def test_comment_preserving_canonicalisation_of_signed_info_is_refused(stack) -> None:
    data = hand_signed(lookup(stack.pki.kruisdorp), c14n=EXC_C14N_WITH_COMMENTS)
    refusal = refused(stack, data, "Client.Security.AlgorithmRefused")
    assert_nothing_attributed(refusal.record)


def test_comment_preserving_canonicalisation_transform_is_refused(stack) -> None:
    data = hand_signed(lookup(stack.pki.kruisdorp), body_transforms=(transform(EXC_C14N_WITH_COMMENTS),))
    refusal = refused(stack, data, "Client.Security.AlgorithmRefused")
    assert_nothing_attributed(refusal.record)


def test_xpath_filter_transform_is_refused(stack) -> None:
    xpath = etree.Element(q(DS, "XPath"), nsmap={"ds": DS})
    xpath.text = "not(ancestor-or-self::ds:Signature)"  # keeps every node of the Body: the digest stays right
    data = hand_signed(lookup(stack.pki.kruisdorp), body_transforms=(transform(XPATH_FILTER, xpath),
                                                                     transform(EXC_C14N)))
    refusal = refused(stack, data, "Client.Security.AlgorithmRefused")
    assert_nothing_attributed(refusal.record)


def test_xslt_transform_is_refused(stack) -> None:
    stylesheet = etree.fromstring(
        f'<xsl:stylesheet xmlns:xsl="{XSL}" version="1.0"><xsl:template match="/">'
        '<xsl:copy-of select="document(\'file:///etc/passwd\')"/></xsl:template></xsl:stylesheet>'
    )
    data = hand_signed(lookup(stack.pki.kruisdorp), body_transforms=(transform(XSLT, stylesheet),
                                                                     transform(EXC_C14N)))
    refusal = refused(stack, data, "Client.Security.AlgorithmRefused")
    assert_nothing_attributed(refusal.record)
    assert "root:" not in refusal.response.text


# --- the envelope: what the parser must never do ---------------------------------------------------------
def test_dtd_declaring_nested_entities_is_refused(stack) -> None:
    laughs = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 5)
    ]
    data = with_doctype(lookup(stack.pki.kruisdorp).signed(), "\n".join(laughs), "&lol4;")
    refusal = refused(stack, data, "Client.Envelope.ForbiddenConstruct")
    assert_nothing_attributed(refusal.record)
    assert "lollol" not in refusal.response.text
    assert len(refusal.response.content) < 16_384


@pytest.fixture
def secret_file(tmp_path: Path) -> tuple[Path, str]:
    """A file on the integrator's machine whose content must never reach a caller."""
    marker = f"SECRET-{uuid.uuid4().hex}"
    path = tmp_path / "secret.txt"
    path.write_text(marker)
    return path, marker


def _leaks(text: str | None, marker: str) -> bool:
    return text is not None and (marker in text or "root:x:0" in text)


def test_external_entity_is_refused_without_reading_the_file(stack, secret_file: tuple[Path, str]) -> None:
    path, marker = secret_file
    subset = f'<!ENTITY passwd SYSTEM "file:///etc/passwd">\n<!ENTITY secret SYSTEM "{path.as_uri()}">'

    def in_insz(root: etree._Element) -> None:
        root.find(f"{BODY}/{REQUEST}/{INSZ}").text = "XXE-HERE"

    signed = lookup(stack.pki.kruisdorp).signed(after=in_insz).replace(b"XXE-HERE", b"&secret;&passwd;")
    data = with_doctype(signed, subset, "&secret;")
    refusal = refused(stack, data, "Client.Envelope.ForbiddenConstruct")
    assert_nothing_attributed(refusal.record)
    assert not _leaks(refusal.response.text, marker)
    assert not _leaks(refusal.record.detail, marker)


def test_dtd_hidden_in_utf16_encoding_is_refused_without_reading_the_file(stack, secret_file) -> None:
    path, marker = secret_file
    text = with_doctype(lookup(stack.pki.kruisdorp).signed(), f'<!ENTITY secret SYSTEM "{path.as_uri()}">',
                        "&secret;").decode()
    data = text.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16")
    assert b"<!DOCTYPE" not in data  # a byte-level search for the DTD cannot see it
    refusal = refused(stack, data, "Client.Envelope.ForbiddenConstruct")
    assert_nothing_attributed(refusal.record)
    assert not _leaks(refusal.response.text, marker)
    assert not _leaks(refusal.record.detail, marker)


def test_processing_instruction_before_the_envelope_is_refused(stack) -> None:
    signed = lookup(stack.pki.kruisdorp).signed()
    data = b'<?xml-stylesheet type="text/xsl" href="file:///etc/passwd"?>\n' + signed
    refusal = refused(stack, data, "Client.Envelope.ForbiddenConstruct")
    assert_nothing_attributed(refusal.record)


def test_truncated_xml_is_refused_as_malformed(stack) -> None:
    signed = lookup(stack.pki.kruisdorp).signed()
    refusal = refused(stack, signed[: len(signed) // 2], "Client.Envelope.Malformed")
    assert_nothing_attributed(refusal.record)


def test_empty_request_is_refused_as_malformed(stack) -> None:
    refusal = refused(stack, b"", "Client.Envelope.Malformed")
    assert_nothing_attributed(refusal.record)


def test_xml_that_is_not_a_soap_envelope_is_refused_as_malformed(stack) -> None:
    request = build(REQUEST, {"Insz": PERSON.insz, "ReferenceDate": ON})
    refusal = refused(stack, etree.tostring(request), "Client.Envelope.Malformed")
    assert_nothing_attributed(refusal.record)


def test_request_over_one_mebibyte_is_refused_as_too_large(stack) -> None:
    def pad(root: etree._Element) -> None:
        root.find(HEADER).append(etree.Comment("x" * (MAX_BYTES + 1)))  # outside every signed part

    data = signed_after(lookup(stack.pki.kruisdorp), pad)
    assert len(data) > MAX_BYTES
    refusal = refused(stack, data, "Client.Envelope.TooLarge", status=413)
    assert_nothing_attributed(refusal.record)


def test_chunked_request_over_one_mebibyte_is_refused_as_too_large(stack) -> None:
    signed = lookup(stack.pki.kruisdorp).signed()
    padding_comment = b"<!--" + b"x" * (MAX_BYTES + 1) + b"-->"
    data = signed.replace(b"</soapenv:Header>", padding_comment + b"</soapenv:Header>", 1)
    chunks = [data[i:i + 65_536] for i in range(0, len(data), 65_536)]
    response = requests.post(f"{stack.base_url}{TAX_PATH}", data=iter(chunks), timeout=60,
                             headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    refusal = refused(stack, data, "Client.Envelope.TooLarge", status=413, response=response)
    assert_nothing_attributed(refusal.record)


def _nested(levels: int) -> Callable[[etree._Element], None]:
    def nest(root: etree._Element) -> None:
        parent = root.find(f"{BODY}/{REQUEST}")
        for _ in range(levels):
            parent = etree.SubElement(parent, q(ATTACKER, "Nest"))

    return nest


def test_elements_nested_two_hundred_levels_deep_are_refused_as_too_deep(stack) -> None:
    data = signed_after(lookup(stack.pki.kruisdorp), _nested(200))
    refusal = refused(stack, data, "Client.Envelope.TooDeep")
    assert_nothing_attributed(refusal.record)


def test_elements_nested_a_thousand_levels_deep_are_refused_as_too_deep(stack) -> None:
    data = lookup(stack.pki.kruisdorp).signed(after=_nested(1000))  # signxml itself cannot sign this deep
    refusal = refused(stack, data, "Client.Envelope.TooDeep")
    assert_nothing_attributed(refusal.record)


# --- replay ----------------------------------------------------------------------------------------------
def _assert_replay_attributed(record: AuditRecord, stack, request: Request) -> None:
    """A replay is refused after the signature and the kp:Caller header were accepted: both are on record."""
    assert record.certificate == fingerprint(stack.pki.kruisdorp.load_cert())
    assert (record.official, record.purpose, record.message_id) == (OFFICIAL.insz, request.purpose,
                                                                     request.message_id)
    assert record.service == SERVICE_KEY


def test_same_bytes_posted_twice_are_answered_once_then_refused_as_replay(stack) -> None:
    request = lookup(stack.pki.kruisdorp)
    data = request.signed()
    first = answered(stack, data)
    refusal = refused(stack, data, "Client.Security.Replay")
    assert refusal.fault.ticket != first.headers["X-Kruispunt-Ticket"]
    _assert_replay_attributed(refusal.record, stack, request)


def test_same_message_id_with_a_fresh_signature_is_refused_as_replay(stack) -> None:
    message_id = str(uuid.uuid4())
    original = lookup(stack.pki.kruisdorp, message_id=message_id)
    answered(stack, original.signed())
    again = lookup(stack.pki.kruisdorp, person=OTHER_PERSON, message_id=message_id)
    data = again.signed()  # new Timestamp, new Ids, new SignatureValue
    refusal = refused(stack, data, "Client.Security.Replay")
    _assert_replay_attributed(refusal.record, stack, again)


def test_replays_are_refused_whichever_worker_receives_them(stack) -> None:
    pool = [lookup(stack.pki.kruisdorp, person=PERSONS[n % len(PERSONS)]) for n in range(20)]
    messages = [request.signed() for request in pool]
    with ThreadPoolExecutor(max_workers=8) as executor:
        firsts = list(executor.map(lambda data: post_on_new_connection(stack.base_url, data), messages))
        assert [r.status_code for r in firsts] == [200] * len(pool), [r.text[:300] for r in firsts]
        replays = list(executor.map(lambda data: post_on_new_connection(stack.base_url, data), messages))
    codes = [fault_of(r).code if r.status_code != 200 else "ACCEPTED" for r in replays]
    assert codes == ["Client.Security.Replay"] * len(pool)
    for request, data, response in zip(pool, messages, replays, strict=True):
        refusal = refused(stack, data, "Client.Security.Replay", response=response)
        _assert_replay_attributed(refusal.record, stack, request)


def test_simultaneous_copies_of_one_message_are_answered_exactly_once(stack) -> None:
    request = lookup(stack.pki.kruisdorp)
    data = request.signed()
    copies = 8
    start = threading.Barrier(copies)

    def send(_: int) -> requests.Response:
        start.wait(timeout=30)
        return post_on_new_connection(stack.base_url, data)

    with ThreadPoolExecutor(max_workers=copies) as executor:
        responses = list(executor.map(send, range(copies)))
    outcomes = sorted("ACCEPTED" if r.status_code == 200 else fault_of(r).code for r in responses)
    assert outcomes == ["ACCEPTED"] + ["Client.Security.Replay"] * (copies - 1)
    for response in responses:
        if response.status_code != 200:
            _assert_replay_attributed(refused(stack, data, "Client.Security.Replay", response=response).record,
                                      stack, request)


# --- routing ---------------------------------------------------------------------------------------------
def test_unknown_service_path_is_refused_with_a_signed_404_fault(stack) -> None:
    data = lookup(stack.pki.kruisdorp).signed()
    refusal = refused(stack, data, "Client.Service.Unknown", status=404, path="/soap/NoSuchService/v1")
    assert_nothing_attributed(refusal.record, service=None)
