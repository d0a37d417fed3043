"""Wire helpers for AccessManagement v1: signed calls by an organisation's (co-)administrator under a kp:Caller
header (purpose ACCESS_MANAGEMENT), answers checked (signed by the integrator, valid against the service's XSD) and
decoded and found audited, refusals checked against their audit record; fresh officials; the tax-exemption lookup
by an official, answered or refused for want of a grant."""

from __future__ import annotations

from datetime import date
from typing import Any

import requests
from kruispunt_client.xml import build

from integrator import commands
from services.demo_access import PURPOSE_ACCESS, SERVICE
from services.demo_organisations import ADMINISTRATORS, BRUGSTEDE, KRUISDORP, PURPOSE_TAX
from tests.e2e.directory_calls import Answer, answer_of, lookup, new_person
from tests.e2e.generic_calls import signed_by_integrator
from tests.e2e.repository_calls import Caller, signed_request
from tests.support import PROJECT, FaultSeen, audit_record, fault_of

AM_NS = "urn:kruispunt:AccessManagement:v1"
AM_PATH = "/soap/AccessManagement/v1"
AM_SERVICE = "AccessManagement/v1"
AM_XSD = PROJECT / "xsd" / "AccessManagement" / "v1" / "AccessManagement.xsd"
LOCAL, CO, BRUGSTEDE_LOCAL = ADMINISTRATORS  # Fien De Smet and Geert Wouters (Kruisdorp), Hilde Claes (Brugstede)
TAX_SERVICE, TAX_OPERATION = "TaxExemptionStatus/v1", "GetTaxExemptionStatuses"


def administrator(stack, insz: str = LOCAL.insz) -> Caller:  # type: ignore[no-untyped-def]
    """A Kruisdorp official (by default its local administrator) calling AccessManagement for its purpose."""
    return Caller(stack.pki.kruisdorp, insz, PURPOSE_ACCESS)


def co_administrator(stack) -> Caller:  # type: ignore[no-untyped-def]
    return administrator(stack, CO.insz)


def official(stack, insz: str, purpose: str = PURPOSE_TAX) -> Caller:  # type: ignore[no-untyped-def]
    """A Kruisdorp official calling for another purpose (the tax lookup's by default)."""
    return Caller(stack.pki.kruisdorp, insz, purpose)


def organisation_of(caller: Caller) -> str:
    return BRUGSTEDE.enterprise_number if caller.official == BRUGSTEDE_LOCAL.insz else KRUISDORP.enterprise_number


def access_post(stack, caller: Caller, operation: str, data: dict[str, Any]) -> requests.Response:  # type: ignore[no-untyped-def]
    payload = build(f"{{{AM_NS}}}{operation}Request", data)
    return requests.post(f"{stack.base_url}{AM_PATH}", data=signed_request(caller, payload), timeout=60,
                         headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{AM_NS}:{operation}"'})


def access_call(stack, caller: Caller, operation: str, data: dict[str, Any],  # type: ignore[no-untyped-def]
                person: str | None = None) -> Answer:
    """Call, expect the answer, and find it audited once (OK, the caller, the operation, the official concerned)."""
    reply = access_post(stack, caller, operation, data)
    ticket, body = answer_of(stack, reply, f"{{{AM_NS}}}{operation}Response", str(AM_XSD))
    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code) == ("OK", None), record.detail
    assert (record.service, record.operation, record.person) == (AM_SERVICE, operation, person), record.person
    assert (record.organisation, record.official, record.purpose) == (organisation_of(caller), caller.official,
                                                                      caller.purpose)
    return Answer(ticket, body, record)


def access_refused(stack, caller: Caller, operation: str, data: dict[str, Any], code: str,  # type: ignore[no-untyped-def]
                   http_status: int, person: str | None) -> FaultSeen:
    """Send, expect the fault (signed, with the header's ticket), and find it audited once with its reason, the
    caller's organisation (the refusals here come after the caller was authorised) and the official concerned."""
    reply = access_post(stack, caller, operation, data)
    seen = fault_of(reply)
    assert (seen.http_status, seen.code) == (http_status, code), seen.reason
    ticket, _header, _payload = signed_by_integrator(stack, reply)
    assert seen.ticket == ticket
    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code, record.detail) == ("FAULT", code, seen.reason)
    assert (record.service, record.operation, record.person) == (AM_SERVICE, operation, person), record.person
    assert (record.organisation, record.official, record.purpose) == (organisation_of(caller), caller.official,
                                                                      caller.purpose)
    return seen


# --- the operations ------------------------------------------------------------------------------------------------
def register_official(stack, caller: Caller, insz: str | None = None, name: str = "Test Official",  # type: ignore[no-untyped-def]
                      **details: Any) -> Answer:
    insz = insz or new_person()
    return access_call(stack, caller, "RegisterOfficial", {"Insz": insz, "Name": name, **details}, person=insz)


def grant_access(stack, caller: Caller, insz: str, service: str, purpose: str, start: date,  # type: ignore[no-untyped-def]
                 end: date | None = None, reason: str = "needs it for the job") -> Answer:
    return access_call(stack, caller, "GrantAccess", {"Insz": insz, "Service": service, "Purpose": purpose,
                                                      "Start": start, "End": end, "Reason": reason}, person=insz)


def grant_request(insz: str, service: str, purpose: str, start: date,
                  reason: str = "needs it for the job") -> dict[str, Any]:
    return {"Insz": insz, "Service": service, "Purpose": purpose, "Start": start, "Reason": reason}


def approve_grant(stack, caller: Caller, grant_id: int) -> Answer:  # type: ignore[no-untyped-def]
    return access_call(stack, caller, "ApproveGrant", {"GrantId": grant_id})


def revoke_grant(stack, caller: Caller, grant_id: int, reason: str) -> Answer:  # type: ignore[no-untyped-def]
    return access_call(stack, caller, "RevokeGrant", {"GrantId": grant_id, "Reason": reason})


def end_grant(stack, caller: Caller, grant_id: int, end: date, reason: str) -> Answer:  # type: ignore[no-untyped-def]
    return access_call(stack, caller, "EndGrant", {"GrantId": grant_id, "End": end, "Reason": reason})


def list_grants(stack, caller: Caller, insz: str | None = None) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The grants ListGrants answers, each as decoded (dates as ISO strings)."""
    found = access_call(stack, caller, "ListGrants", {"Insz": insz}, person=insz).body.get("Grant", [])
    return found if isinstance(found, list) else [found]


def list_officials(stack, caller: Caller) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    found = access_call(stack, caller, "ListOfficials", {}).body.get("Official", [])
    return found if isinstance(found, list) else [found]


# --- set up as the service desk -------------------------------------------------------------------------------------
def plain_official_with_access_management(stack) -> str:  # type: ignore[no-untyped-def]
    """A fresh Kruisdorp official who is no administrator but holds a grant for AccessManagement/ACCESS_MANAGEMENT
    (given by the service desk, as the CLI does)."""
    insz = new_person()
    with stack.sessions() as session:
        commands.add_official(session, KRUISDORP.enterprise_number, insz, "Plain Official", department="tax office")
        commands.add_grant(session, KRUISDORP.enterprise_number, insz, SERVICE, PURPOSE_ACCESS,
                           reason="a test: not an administrator")
        session.commit()
    return insz


# --- the tax-exemption lookup by an official -------------------------------------------------------------------------
def lookup_grant_missing(stack, caller: Caller, insz: str) -> FaultSeen:  # type: ignore[no-untyped-def]
    """The lookup is refused Client.Caller.GrantMissing (HTTP 403, a signed fault), audited once as a FAULT with
    the caller's official and the person."""
    reply = lookup(stack, caller, insz)
    seen = fault_of(reply)
    assert (seen.http_status, seen.code) == (403, "Client.Caller.GrantMissing"), seen.reason
    ticket, _header, _payload = signed_by_integrator(stack, reply)
    assert seen.ticket == ticket
    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code, record.detail) == ("FAULT", "Client.Caller.GrantMissing", seen.reason)
    assert (record.service, record.operation, record.person) == (TAX_SERVICE, TAX_OPERATION, insz)
    assert (record.official, record.purpose) == (caller.official, PURPOSE_TAX)
    return seen
