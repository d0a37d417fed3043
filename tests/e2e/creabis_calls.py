"""Wire helpers for e-Creabis v1 and BisRegister v1: signed requests under a kp:Caller header with the purpose
IDENTIFICATION (and a chosen MessageId, for retries), answers checked (signed by the integrator, XSD-valid) and
decoded, refusals checked against their audit record; fresh identities no other test uses."""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import requests
import xmlschema
from kruispunt_client import KruispuntClient
from kruispunt_client.xml import build

from integrator.audit import AuditRecord
from integrator.pki import Identity
from services.demo_creabis import PURPOSE_IDENTIFICATION
from services.demo_organisations import BRUGSTEDE, KRUISDORP, OCMW, OFFICIALS
from tests.e2e.directory_calls import answer_of
from tests.e2e.generic_calls import refusal_audited
from tests.e2e.repository_calls import signed_request
from tests.support import PROJECT, FaultSeen, audit_record

CB_NS = "urn:kruispunt:Creabis:v1"
BR_NS = "urn:kruispunt:BisRegister:v1"
PATHS = {CB_NS: "/soap/Creabis/v1", BR_NS: "/soap/BisRegister/v1"}
SERVICES = {CB_NS: "Creabis/v1", BR_NS: "BisRegister/v1"}
XSDS = {CB_NS: PROJECT / "xsd" / "Creabis" / "v1" / "Creabis.xsd",
        BR_NS: PROJECT / "xsd" / "BisRegister" / "v1" / "BisRegister.xsd"}


@dataclass(frozen=True)
class Caller:
    identity: Identity
    official: str
    organisation: str  # enterprise number
    purpose: str = PURPOSE_IDENTIFICATION


def population_office(stack) -> Caller:  # type: ignore[no-untyped-def]
    """Kruisdorp's population office: may search, create, consult and update."""
    return Caller(stack.pki.kruisdorp, OFFICIALS[1].insz, KRUISDORP.enterprise_number)


def ocmw(stack) -> Caller:  # type: ignore[no-untyped-def]
    """The OCMW's social worker: may search, create, consult and update."""
    number = OCMW.enterprise_number
    pki_dir = stack.settings.pki_dir
    return Caller(Identity(number, pki_dir / f"org-{number}.crt", pki_dir / f"org-{number}.key"),
                  OFFICIALS[3].insz, number)


def brugstede(stack) -> Caller:  # type: ignore[no-untyped-def]
    """Brugstede's official: may search and consult, not update (no access right BisRegister.Update)."""
    return Caller(stack.pki.brugstede, OFFICIALS[2].insz, BRUGSTEDE.enterprise_number)


def fresh_name(prefix: str = "Test") -> str:
    """A last name no other test (nor any demo person) resembles."""
    return prefix + "".join(random.choices(string.ascii_lowercase, k=10))


def fresh_identity(**overrides: Any) -> dict[str, Any]:
    """A CreateBisNumber Person no other test uses (random names, a random full birth date)."""
    rng = random.Random(uuid.uuid4().int)
    person = {"LastName": fresh_name("Zq"), "FirstNames": fresh_name("Yx").title(),
              "BirthDate": date(1950, 1, 1).fromordinal(date(1950, 1, 1).toordinal() + rng.randrange(25_000))
              .isoformat(), "Gender": rng.choice("MF"), "Nationality": "PL"}
    person.update(overrides)
    return {key: value for key, value in person.items() if value is not None}


def evidence(number: str | None = None) -> dict[str, str]:
    return {"DocumentType": "PASSPORT", "DocumentNumber": number or uuid.uuid4().hex[:9].upper(),
            "IssuingCountry": "PL"}


def send(stack, caller: Caller, namespace: str, operation: str, data: dict[str, Any],  # type: ignore[no-untyped-def]
         message_id: str | None = None) -> requests.Response:
    payload = build(f"{{{namespace}}}{operation}Request", data)
    return requests.post(f"{stack.base_url}{PATHS[namespace]}", timeout=60,
                         data=signed_request(caller, payload, message_id),
                         headers={"Content-Type": "text/xml; charset=utf-8",
                                  "SOAPAction": f'"{namespace}:{operation}"'})


@cache
def schema(namespace: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSDS[namespace]))


@dataclass(frozen=True)
class Answer:
    ticket: str
    body: dict[str, Any]
    record: AuditRecord


def answered(stack, caller: Caller, namespace: str, operation: str, data: dict[str, Any],  # type: ignore[no-untyped-def]
             message_id: str | None = None, outcome: str = "OK") -> Answer:
    """Call; expect a signed, XSD-valid answer audited once with the caller and the operation."""
    reply = send(stack, caller, namespace, operation, data, message_id)
    ticket, body = answer_of(stack, reply, f"{{{namespace}}}{operation}Response", str(XSDS[namespace]))
    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code) == (outcome, None), record.detail
    assert (record.service, record.operation, record.organisation, record.official, record.purpose) == (
        SERVICES[namespace], operation, caller.organisation, caller.official, caller.purpose)
    return Answer(ticket, body, record)


def refused(stack, caller: Caller, namespace: str, operation: str, data: dict[str, Any], code: str,  # type: ignore[no-untyped-def]
            http_status: int, message_id: str | None = None) -> tuple[FaultSeen, AuditRecord]:
    """Send; expect the signed fault, audited once as a FAULT with its code, reason and the caller."""
    reply = send(stack, caller, namespace, operation, data, message_id)
    seen, record = refusal_audited(stack, reply, code, http_status)
    assert (record.service, record.operation, record.official, record.purpose) == (
        SERVICES[namespace], operation, caller.official, caller.purpose)
    return seen, record


# --- e-Creabis ----------------------------------------------------------------------------------------------------
def search(stack, caller: Caller, **asked: Any) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """SearchPersons: the candidates, best first (the search must be complete)."""
    answer = answered(stack, caller, CB_NS, "SearchPersons", asked)
    assert answer.body["Complete"] is True, answer.body["Source"]
    return answer.body.get("Candidate", [])


def create(stack, caller: Caller, person: dict[str, Any], message_id: str | None = None,  # type: ignore[no-untyped-def]
           address: dict[str, Any] | None = None, proof: dict[str, str] | None = None) -> Answer:
    return answered(stack, caller, CB_NS, "CreateBisNumber",
                    {"Person": person, "Evidence": proof or evidence(), "Address": address}, message_id)


def create_refused(stack, caller: Caller, person: dict[str, Any], code: str, http_status: int,  # type: ignore[no-untyped-def]
                   message_id: str | None = None, proof: dict[str, str] | None = None) -> FaultSeen:
    seen, _record = refused(stack, caller, CB_NS, "CreateBisNumber",
                            {"Person": person, "Evidence": proof or evidence()}, code, http_status, message_id)
    return seen


# --- BIS register -------------------------------------------------------------------------------------------------
def consult(stack, caller: Caller, insz: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    answer = answered(stack, caller, BR_NS, "ConsultPerson", {"Insz": insz})
    assert answer.record.person == insz
    return answer.body


def address(street: str, number: str = "1") -> dict[str, str]:
    return {"Street": street, "HouseNumber": number, "Postcode": "9000", "Municipality": "Kruisdorp",
            "Country": "BE"}


def client(stack, caller: Caller, service: str) -> KruispuntClient:  # type: ignore[no-untyped-def]
    """The project's client library for a service, as the caller's organisation."""
    return KruispuntClient(f"{stack.base_url}/soap/{service}/v1?wsdl", caller.identity,
                           stack.settings.trust_anchor_paths, integrator_cert=stack.settings.pki_dir / "integrator.crt",
                           crl=stack.settings.crl_path)
