"""Wire helpers for ReferenceDirectory v1 (the persons repertory): signed RegisterPerson / UnregisterPerson /
ListPersons calls under a kp:Caller header (purpose FILE_MANAGEMENT), answers checked (signed by the integrator,
valid against the service's XSD) and decoded, refusals checked against their audit record; fresh persons that are
not demo persons; and the tax-exemption lookup about them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import requests
import xmlschema
from kruispunt_client.xml import build
from stdnum.be import bis, nn

from integrator.audit import AuditRecord
from services.backends.persons import PERSONS, make_insz
from services.demo_organisations import BRUGSTEDE, KRUISDORP, OFFICIALS, PURPOSE_FILES, PURPOSE_TAX
from tests.e2e.generic_calls import signed_by_integrator
from tests.e2e.repository_calls import Caller, signed_request
from tests.support import PROJECT, TAX_NS, TAX_PATH, FaultSeen, Request, audit_record, fault_of, post

RD_NS = "urn:kruispunt:ReferenceDirectory:v1"
RD_PATH = "/soap/ReferenceDirectory/v1"
RD_SERVICE = "ReferenceDirectory/v1"
RD_XSD = PROJECT / "xsd" / "ReferenceDirectory" / "v1" / "ReferenceDirectory.xsd"
TAX_XSD = PROJECT / "xsd" / "TaxExemptionStatus" / "v1" / "TaxExemptionStatus.xsd"
TAX_SERVICE = "TaxExemptionStatus/v1"
TAX_OPERATION = "GetTaxExemptionStatuses"
KRUISDORP_OFFICIAL = OFFICIALS[0]  # Kruisdorp, tax office
BRUGSTEDE_OFFICIAL = OFFICIALS[2]  # Brugstede, tax office
DEMO_PERSONS = {p.insz for p in PERSONS}


def today() -> date:
    """The integrator's today: it checks the files on the UTC date the request was received."""
    return datetime.now(UTC).date()


def yesterday() -> date:
    return today() - timedelta(days=1)


def new_person() -> str:
    """A valid INSZ no demo organisation has a file on and no other test uses (derived from a uuid)."""
    while True:
        n = uuid.uuid4().int
        insz = make_insz(date(1930, 1, 1) + timedelta(days=n % 25_000), 1 + (n >> 20) % 997)
        if insz not in DEMO_PERSONS and nn.is_valid(insz):
            return insz


def wrong_check_digits(insz: str) -> str:
    """The same first nine digits with check digits that make neither a National Register nor a BIS number."""
    for delta in range(1, 100):
        candidate = f"{insz[:9]}{(int(insz[9:]) + delta) % 100:02d}"
        if not nn.is_valid(candidate) and not bis.is_valid(candidate):
            return candidate
    raise AssertionError(f"no invalid check digits for {insz}")


def kruisdorp(stack, purpose: str = PURPOSE_FILES) -> Caller:  # type: ignore[no-untyped-def]
    return Caller(stack.pki.kruisdorp, KRUISDORP_OFFICIAL.insz, purpose)


def brugstede(stack, purpose: str = PURPOSE_FILES) -> Caller:  # type: ignore[no-untyped-def]
    return Caller(stack.pki.brugstede, BRUGSTEDE_OFFICIAL.insz, purpose)


def enterprise_number(caller: Caller) -> str:
    return BRUGSTEDE.enterprise_number if caller.official == BRUGSTEDE_OFFICIAL.insz else KRUISDORP.enterprise_number


# --- ReferenceDirectory -----------------------------------------------------------------------------------------
@cache
def schema(path: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(path)


def directory_post(stack, caller: Caller, operation: str, data: dict[str, Any]) -> requests.Response:  # type: ignore[no-untyped-def]
    payload = build(f"{{{RD_NS}}}{operation}Request", data)
    return requests.post(f"{stack.base_url}{RD_PATH}", data=signed_request(caller, payload), timeout=60,
                         headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{RD_NS}:{operation}"'})


@dataclass(frozen=True)
class Answer:
    ticket: str
    body: dict[str, Any]
    record: AuditRecord


def answer_of(stack, reply: requests.Response, tag: str, xsd: str) -> tuple[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The ticket and the answer's body as data: signed by the integrator, with the header's ticket, XSD-valid."""
    if reply.status_code != 200:
        seen = fault_of(reply)
        raise AssertionError(f"expected an answer, got HTTP {seen.http_status} {seen.code}: {seen.reason}")
    ticket, _header, payload = signed_by_integrator(stack, reply)
    assert payload.tag == tag, payload.tag
    schema(xsd).validate(payload)
    decoded = schema(xsd).to_dict(payload, strip_namespaces=True)
    if decoded is None and len(payload) == 0:  # an empty sequence (ListPersons without entries)
        decoded = {}
    assert isinstance(decoded, dict), decoded
    return ticket, decoded


def directory_call(stack, caller: Caller, operation: str, data: dict[str, Any],  # type: ignore[no-untyped-def]
                   person: str | None = None) -> Answer:
    """Call, expect the answer, and find it audited once (OK, the caller, the operation, the person)."""
    reply = directory_post(stack, caller, operation, data)
    ticket, body = answer_of(stack, reply, f"{{{RD_NS}}}{operation}Response", str(RD_XSD))
    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code) == ("OK", None), record.detail
    assert (record.service, record.operation, record.person) == (RD_SERVICE, operation, person), record.person
    assert (record.organisation, record.official, record.purpose) == (enterprise_number(caller), caller.official,
                                                                      caller.purpose)
    return Answer(ticket, body, record)


def directory_refused(stack, caller: Caller, operation: str, data: dict[str, Any], code: str,  # type: ignore[no-untyped-def]
                      http_status: int, person: str | None, authorised: bool = True) -> FaultSeen:
    """Send, expect the fault (signed, with the header's ticket), and find it audited once with its reason (and the
    caller's organisation, when the refusal comes after the caller was authorised)."""
    reply = directory_post(stack, caller, operation, data)
    seen = fault_of(reply)
    assert (seen.http_status, seen.code) == (http_status, code), seen.reason
    ticket, _header, _payload = signed_by_integrator(stack, reply)
    assert seen.ticket == ticket
    record = audit_record(stack.sessions, seen.ticket)
    assert (record.outcome, record.fault_code, record.detail) == ("FAULT", code, seen.reason)
    assert (record.service, record.operation, record.person) == (RD_SERVICE, operation, person), record.person
    organisation = enterprise_number(caller) if authorised else None
    assert (record.organisation, record.official, record.purpose) == (organisation, caller.official, caller.purpose)
    return seen


def register_person(stack, caller: Caller, insz: str, start: date, end: date | None = None,  # type: ignore[no-untyped-def]
                    purpose: str = PURPOSE_TAX) -> Answer:
    return directory_call(stack, caller, "RegisterPerson",
                          {"Insz": insz, "Purpose": purpose, "Start": start, "End": end}, person=insz)


def unregister_person(stack, caller: Caller, insz: str, end: date,  # type: ignore[no-untyped-def]
                      purpose: str = PURPOSE_TAX) -> Answer:
    return directory_call(stack, caller, "UnregisterPerson", {"Insz": insz, "Purpose": purpose, "End": end},
                          person=insz)


def list_persons(stack, caller: Caller, insz: str | None = None,  # type: ignore[no-untyped-def]
                 purpose: str | None = None) -> list[dict[str, Any]]:
    """The entries ListPersons answers, each as {Insz, Purpose, Start, End?} (dates as ISO strings)."""
    answer = directory_call(stack, caller, "ListPersons", {"Insz": insz, "Purpose": purpose})
    entries = answer.body.get("Entry", [])
    return entries if isinstance(entries, list) else [entries]


def entry(insz: str, start: date, end: date | None = None, purpose: str = PURPOSE_TAX) -> dict[str, Any]:
    """An entry as ListPersons / RegisterPerson decode it."""
    found: dict[str, Any] = {"Insz": insz, "Purpose": purpose, "Start": start.isoformat()}
    if end is not None:
        found["End"] = end.isoformat()
    return found


# --- the tax-exemption lookup -----------------------------------------------------------------------------------
def lookup(stack, caller: Caller, insz: str) -> requests.Response:  # type: ignore[no-untyped-def]
    """A tax-exemption lookup about the person on today, by the caller's identity and official."""
    request = Request(caller.identity, caller.official, insz, on=today(), purpose=PURPOSE_TAX)
    return post(stack.base_url, request.signed(), path=TAX_PATH)


def lookup_answered(stack, caller: Caller, insz: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The lookup answers (HTTP 200, complete, every source consulted) and is audited OK with the person."""
    reply = lookup(stack, caller, insz)
    ticket, body = answer_of(stack, reply, f"{{{TAX_NS}}}{TAX_OPERATION}Response", str(TAX_XSD))
    assert body["Insz"] == insz and body["Complete"] is True, body
    sources = body["Sources"]["Source"]
    assert sources and all(s["Outcome"] == "CONSULTED" for s in sources), sources
    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code, record.person) == ("OK", None, insz), record.detail
    assert (record.service, record.operation, record.organisation) == (TAX_SERVICE, TAX_OPERATION,
                                                                       enterprise_number(caller))
    return body


def lookup_refused(stack, caller: Caller, insz: str) -> FaultSeen:  # type: ignore[no-untyped-def]
    """The lookup is refused: Client.Caller.PersonNotInFiles, HTTP 403, a signed fault (no answer, so no Sources)
    whose reason names the person, the organisation and the purpose; audited once as a FAULT about the person."""
    reply = lookup(stack, caller, insz)
    seen = fault_of(reply)
    assert (seen.http_status, seen.code) == (403, "Client.Caller.PersonNotInFiles"), seen.reason
    ticket, _header, payload = signed_by_integrator(stack, reply)
    assert seen.ticket == ticket
    assert payload.find(f".//{{{TAX_NS}}}Sources") is None
    organisation = enterprise_number(caller)
    for named in (insz, organisation, PURPOSE_TAX, "RegisterPerson"):
        assert named in seen.reason, (named, seen.reason)
    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code, record.detail) == ("FAULT", "Client.Caller.PersonNotInFiles",
                                                                  seen.reason)
    assert (record.service, record.operation, record.person) == (TAX_SERVICE, TAX_OPERATION, insz)
    assert (record.organisation, record.official, record.purpose) == (organisation, caller.official, PURPOSE_TAX)
    return seen
