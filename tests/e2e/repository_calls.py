"""Wire helpers for the Metadata and Repository services: a signed request for any body element, the answer
checked (signed by the integrator, valid against the service's XSD) and decoded, grants set up idempotently."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import requests
import xmlschema
from kruispunt_client.xml import build
from lxml import etree

from integrator import commands
from integrator.envelope import EnvelopeLimits, parse_envelope
from integrator.namespaces import KP, q
from integrator.pki import Identity, fingerprint, load_trust_anchors
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import SecurityPolicy, verify_envelope
from services.demo_organisations import BRUGSTEDE, KRUISDORP, OFFICIALS
from tests.support import PROJECT, FaultSeen, audit_record, fault_of

METADATA_NS = "urn:kruispunt:Metadata:v1"
REPOSITORY_NS = "urn:kruispunt:Repository:v1"
METADATA_PATH = "/soap/Metadata/v1"
REPOSITORY_PATH = "/soap/Repository/v1"
DISCOVERY = "SERVICE_DISCOVERY"
REGISTRATION = "SERVICE_REGISTRATION"
OWNER = OFFICIALS[0]  # Kruisdorp, tax office
OTHER = OFFICIALS[2]  # Brugstede, tax office
TAX_XSD = "xsd/TaxExemptionStatus/v1/TaxExemptionStatus.xsd"
COMMON_XSD = "xsd/common/v1/common.xsd"
SCHEMAS = {METADATA_NS: "Metadata/v1/Metadata.xsd", REPOSITORY_NS: "Repository/v1/Repository.xsd"}


def unique_name(prefix: str = "Svc") -> str:
    """A service name no other test uses: the stack's database is shared by every test of a worker."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def grant(stack, enterprise_number: str, insz: str, service: str, purpose: str,  # type: ignore[no-untyped-def]
          valid_from: date | None = None, valid_until: date | None = None) -> None:
    """An access right for the organisation and a grant for the official; harmless when they exist already."""
    with stack.sessions() as session:
        commands.add_access_right(session, enterprise_number, service)
        commands.add_grant(session, enterprise_number, insz, service, purpose, valid_from, valid_until)
        session.commit()


def grant_both_organisations(stack) -> None:  # type: ignore[no-untyped-def]
    """Kruisdorp's and Brugstede's tax officials may discover and register services."""
    for organisation, official in ((KRUISDORP, OWNER), (BRUGSTEDE, OTHER)):
        grant(stack, organisation.enterprise_number, official.insz, "Metadata", DISCOVERY)
        grant(stack, organisation.enterprise_number, official.insz, "Repository", REGISTRATION)


@dataclass(frozen=True)
class Caller:
    identity: Identity
    official: str
    purpose: str


def kruisdorp(stack, purpose: str = REGISTRATION) -> Caller:  # type: ignore[no-untyped-def]
    return Caller(stack.pki.kruisdorp, OWNER.insz, purpose)


def brugstede(stack, purpose: str = REGISTRATION) -> Caller:  # type: ignore[no-untyped-def]
    return Caller(stack.pki.brugstede, OTHER.insz, purpose)


def signed_request(caller: Any, payload: etree._Element, message_id: str | None = None) -> bytes:
    """Any body element under a signed kp:Caller header (a fresh MessageId unless one is given: a retry), signed
    with the caller's certificate (caller: anything with identity, official and purpose)."""
    root, header, body = new_envelope()
    caller_header = build(q(KP, "Caller"), {"Official": caller.official, "Purpose": caller.purpose,
                                            "MessageId": message_id or str(uuid.uuid4())})
    header.append(caller_header)
    body.append(payload)
    sign_envelope(root, SigningKey.from_identity(caller.identity), headers=[caller_header])
    return etree.tostring(root)


def post(stack, path: str, caller: Caller, tag: str, data: dict[str, Any]) -> requests.Response:  # type: ignore[no-untyped-def]
    return requests.post(f"{stack.base_url}{path}", data=signed_request(caller, build(tag, data)), timeout=60,
                         headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})


@cache
def schema(namespace: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(PROJECT / "xsd" / SCHEMAS[namespace]))


@dataclass(frozen=True)
class Answer:
    ticket: str
    body: dict[str, Any]


def answer_of(stack, reply: requests.Response, tag: str) -> Answer:  # type: ignore[no-untyped-def]
    """The answer's body as data, after checking it is signed by the integrator and valid against its XSD."""
    assert reply.status_code == 200, f"HTTP {reply.status_code}: {fault_of(reply).reason}"
    envelope = parse_envelope(reply.content, EnvelopeLimits().scaled(16 * 1024 * 1024))
    trust = TrustStore.from_files(stack.settings.trust_anchor_paths, stack.settings.crl_path)
    verified = verify_envelope(envelope, trust, SecurityPolicy(), datetime.now(UTC))
    integrator_cert = load_trust_anchors([stack.settings.pki_dir / "integrator.crt"])[0]
    assert fingerprint(verified.certificate) == fingerprint(integrator_cert)
    payload = verified.payload
    assert payload is not None and payload.tag == tag
    namespace = etree.QName(tag).namespace or ""
    schema(namespace).validate(payload)
    decoded = schema(namespace).to_dict(payload, strip_namespaces=True)
    answer_header = verified.headers.get(q(KP, "Answer"))
    assert answer_header is not None, "the answer carries no signed kp:Answer header"
    ticket = answer_header.findtext(q(KP, "Ticket")) or ""
    assert ticket == reply.headers["X-Kruispunt-Ticket"]
    return Answer(ticket, decoded if isinstance(decoded, dict) else {})


def call(stack, path: str, caller: Caller, operation: str, data: dict[str, Any]) -> Answer:  # type: ignore[no-untyped-def]
    namespace = METADATA_NS if path == METADATA_PATH else REPOSITORY_NS
    reply = post(stack, path, caller, f"{{{namespace}}}{operation}Request", data)
    return answer_of(stack, reply, f"{{{namespace}}}{operation}Response")


def refused(stack, path: str, caller: Caller, operation: str, data: dict[str, Any],  # type: ignore[no-untyped-def]
            code: str, http_status: int) -> FaultSeen:
    """Send, expect the fault, and find it audited once: the caller, the operation, the code and the reason."""
    namespace = METADATA_NS if path == METADATA_PATH else REPOSITORY_NS
    reply = post(stack, path, caller, f"{{{namespace}}}{operation}Request", data)
    seen = fault_of(reply)
    assert (seen.http_status, seen.code) == (http_status, code), seen.reason
    assert seen.ticket == reply.headers["X-Kruispunt-Ticket"]
    record = audit_record(stack.sessions, seen.ticket)
    assert (record.outcome, record.fault_code, record.detail) == ("FAULT", code, seen.reason)
    assert (record.service, record.operation) == (path.removeprefix("/soap/"), operation)
    assert (record.official, record.purpose) == (caller.official, caller.purpose)
    return seen


# --- the documents of a service version ----------------------------------------------------------------------
def contract_files(name: str, address: str = "http://127.0.0.1:8080/soap/X/v1") -> tuple[str, dict[str, bytes]]:
    """The tax-exemption WSDL and its two schemas, laid out as wsdl/{name}.wsdl and xsd/..., address replaced."""
    wsdl = (PROJECT / "wsdl" / "TaxExemptionStatus-v1.wsdl").read_bytes()
    wsdl = wsdl.replace(b"http://127.0.0.1:8080/soap/TaxExemptionStatus/v1", address.encode())
    files = {f"wsdl/{name}.wsdl": wsdl, COMMON_XSD: (PROJECT / COMMON_XSD).read_bytes(),
             TAX_XSD: (PROJECT / TAX_XSD).read_bytes()}
    return f"wsdl/{name}.wsdl", files


def changed_schema(files: dict[str, bytes], old: str, new: str) -> dict[str, bytes]:
    """The files with one change to the service's schema (which must apply exactly once)."""
    content = files[TAX_XSD].decode()
    assert content.count(old) == 1, old
    return dict(files, **{TAX_XSD: content.replace(old, new).encode()})


REFERENCE_DATE = '<xs:element name="ReferenceDate" type="xs:date"/>\n      </xs:sequence>'
END = '<xs:element name="End" type="xs:date" minOccurs="0"/>'


def with_request_element(files: dict[str, bytes], element: str) -> dict[str, bytes]:
    """Add an element to the request, after ReferenceDate."""
    return changed_schema(files, REFERENCE_DATE, REFERENCE_DATE.replace("\n", f"\n        {element}\n", 1))


def register_request(name: str, version: str, wsdl: str, files: dict[str, bytes], *, federated: bool = False,
                     description: str = "A test service") -> dict[str, Any]:
    return {"Name": name, "Version": version, "Description": description, "Wsdl": wsdl,
            "Document": [{"Path": path, "Content": base64.b64encode(content).decode()}
                         for path, content in files.items()],
            "Federated": federated}


def register(stack, name: str, version: str = "1.0", files: dict[str, bytes] | None = None,  # type: ignore[no-untyped-def]
             caller: Caller | None = None, **kwargs: Any) -> Answer:
    wsdl, default_files = contract_files(name)
    return call(stack, REPOSITORY_PATH, caller or kruisdorp(stack), "RegisterServiceVersion",
                register_request(name, version, wsdl, files or default_files, **kwargs))


def lifecycle(stack, name: str, version: str, status: str, *, sunset: date | None = None,  # type: ignore[no-untyped-def]
              successor: str | None = None, caller: Caller | None = None) -> Answer:
    return call(stack, REPOSITORY_PATH, caller or kruisdorp(stack), "ChangeLifecycle",
                {"Name": name, "Version": version, "Status": status, "Sunset": sunset, "Successor": successor})


def backend_request(service: str, name: str, url: str, certificate: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"Service": service, "Name": name, "Url": url, "Certificate": certificate,
                            "Priority": 0, "Weight": 1, "TimeoutSeconds": 5, "Security": "x509",
                            "IdempotentOperation": []}
    data.update(overrides)
    return data
