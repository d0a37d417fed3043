"""Wire helpers for Applications v1: applicants put in the municipality's files, applications built as data,
signed SubmitApplication / GetReceipt / ListReceipts calls under a kp:Caller header with a chosen MessageId,
answers checked (signed by the integrator, valid against the XSD) and their receipts verified; the client library
for the main flow; what the institutions' intakes filed, read from their own store; the outbox entry of a
submission."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import requests
from kruispunt_client import KruispuntClient
from kruispunt_client.receipt import Receipt, verify_receipt
from kruispunt_client.xml import build
from lxml import etree
from sqlalchemy import select
from zeep.plugins import HistoryPlugin

from integrator.audit import AuditRecord
from integrator.namespaces import SOAP_ENV, q
from integrator.outbox import OutboxEntry
from integrator.pki import load_trust_anchors
from repository.applications import Application
from services.applications import INSTITUTIONS
from services.backends.applications import IntakeStore, store_for
from services.demo_applications import PURPOSE_APPLICATION
from services.demo_organisations import OFFICIALS
from tests.e2e import directory_calls
from tests.e2e.directory_calls import answer_of, new_person, register_person, today
from tests.e2e.generic_calls import refusal_audited
from tests.e2e.repository_calls import Caller, signed_request
from tests.support import PROJECT, FaultSeen, audit_record

NS = "urn:kruispunt:Applications:v1"
PATH = "/soap/Applications/v1"
SERVICE = "Applications/v1"
XSD = str(PROJECT / "xsd" / "Applications" / "v1" / "Applications.xsd")
DISABILITY, PENSION = "DISABILITY_ALLOWANCE", "PENSION"
PDF = b"%PDF-1.4\n% a medical certificate, synthetic\n%%EOF\n"
T = TypeVar("T")


def kruisdorp(stack) -> Caller:  # type: ignore[no-untyped-def]
    return Caller(stack.pki.kruisdorp, OFFICIALS[0].insz, PURPOSE_APPLICATION)


def kruisdorp_colleague(stack) -> Caller:  # type: ignore[no-untyped-def]
    """Kruisdorp's other official, also granted Applications: a colleague, not the submitter."""
    return Caller(stack.pki.kruisdorp, OFFICIALS[1].insz, PURPOSE_APPLICATION)


def brugstede(stack) -> Caller:  # type: ignore[no-untyped-def]
    return Caller(stack.pki.brugstede, OFFICIALS[2].insz, PURPOSE_APPLICATION)


def applicant(stack, caller: Caller) -> str:  # type: ignore[no-untyped-def]
    """A fresh person, put in the caller's organisation's files for applications (through ReferenceDirectory)."""
    insz = new_person()
    files = directory_calls.brugstede(stack) if caller.official == OFFICIALS[2].insz else directory_calls.kruisdorp(
        stack)
    register_person(stack, files, insz, today(), purpose=PURPOSE_APPLICATION)
    return insz


def application(kind: str, insz: str, **changes: Any) -> dict[str, Any]:
    """An application as request fields: the applicant, a household, the municipality's file number, a PDF."""
    fields: dict[str, Any] = {
        "Kind": kind, "Insz": insz, "LastName": "Peeters", "FirstNames": "Marie Louise",
        "BirthDate": date(1958, 3, 14), "FileNumber": f"SOC/{uuid.uuid4().hex[:10]}",
        "Household": {"Member": [{"Insz": new_person(), "Relationship": "SPOUSE"},
                                 {"LastName": "Peeters", "FirstNames": "Jan", "BirthDate": date(2012, 6, 1),
                                  "Relationship": "CHILD"}]},
        "Document": [{"Name": "medisch-attest.pdf", "MimeType": "application/pdf", "Content": PDF}],
    }
    fields.update(changes)
    return fields


def wire(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields as build() writes them (document contents base64-encoded)."""
    documents = [dict(d, Content=base64.b64encode(d["Content"]).decode()) for d in fields.get("Document", [])]
    return dict(fields, Document=documents)


def post(stack, caller: Caller, operation: str, fields: dict[str, Any],  # type: ignore[no-untyped-def]
         message_id: str | None = None, timeout: float = 60) -> requests.Response:
    payload = build(f"{{{NS}}}{operation}Request", fields)
    return requests.post(f"{stack.base_url}{PATH}", data=signed_request(caller, payload, message_id),
                         timeout=timeout,
                         headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}:{operation}"'})


@dataclass(frozen=True)
class Answered:
    ticket: str  # this call's ticket
    body: dict[str, Any]
    record: AuditRecord

    @property
    def signed_receipt(self) -> bytes:
        return base64.b64decode(self.body["SignedReceipt"])

    @property
    def delivery(self) -> dict[str, Any]:
        return self.body["Delivery"]


def call(stack, caller: Caller, operation: str, fields: dict[str, Any],  # type: ignore[no-untyped-def]
         message_id: str | None = None, person: str | None = None) -> Answered:
    """Call, expect an answer (signed by the integrator, XSD-valid) audited OK once with the caller and person."""
    reply = post(stack, caller, operation, fields, message_id)
    ticket, body = answer_of(stack, reply, f"{{{NS}}}{operation}Response", XSD)
    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code) == ("OK", None), record.detail
    assert (record.service, record.operation, record.person) == (SERVICE, operation, person)
    assert (record.official, record.purpose) == (caller.official, caller.purpose)
    return Answered(ticket, body, record)


def submit(stack, caller: Caller, fields: dict[str, Any], message_id: str | None = None) -> Answered:  # type: ignore[no-untyped-def]
    return call(stack, caller, "SubmitApplication", wire(fields), message_id, person=fields["Insz"])


def refused(stack, caller: Caller, operation: str, fields: dict[str, Any], code: str,  # type: ignore[no-untyped-def]
            http_status: int, message_id: str | None = None, person: str | None = None) -> FaultSeen:
    """Expect the fault (signed, with the header's ticket), audited once as a FAULT with its reason."""
    seen, record = refusal_audited(stack, post(stack, caller, operation, fields, message_id), code, http_status)
    assert (record.service, record.operation, record.person) == (SERVICE, operation, person)
    assert (record.official, record.purpose) == (caller.official, caller.purpose)
    return seen


def get_receipt(stack, caller: Caller, ticket: str) -> Answered:  # type: ignore[no-untyped-def]
    return call(stack, caller, "GetReceipt", {"Ticket": ticket})


def list_receipts(stack, caller: Caller, kind: str | None = None, page: int | None = None,  # type: ignore[no-untyped-def]
                  size: int | None = None) -> dict[str, Any]:
    body = call(stack, caller, "ListReceipts", {"Kind": kind, "Page": page, "PageSize": size}).body
    receipts = body.get("Receipt", [])
    return dict(body, Receipt=receipts if isinstance(receipts, list) else [receipts])


def integrator_certificate(stack):  # type: ignore[no-untyped-def]
    return load_trust_anchors([stack.settings.pki_dir / "integrator.crt"])[0]


def verified(stack, data: bytes) -> Receipt:  # type: ignore[no-untyped-def]
    return verify_receipt(data, integrator_certificate(stack))


def library_client(stack, caller: Caller) -> tuple[KruispuntClient, HistoryPlugin]:  # type: ignore[no-untyped-def]
    """The client library for Applications, with zeep's history plugin to see the application as sent."""
    client = KruispuntClient(f"{stack.base_url}{PATH}?wsdl", caller.identity, stack.settings.trust_anchor_paths,
                             integrator_cert=stack.settings.pki_dir / "integrator.crt", crl=stack.settings.crl_path)
    history = HistoryPlugin()
    client.client.plugins.append(history)
    return client, history


def sent_application(history: HistoryPlugin) -> etree._Element:
    envelope = history.last_sent["envelope"]
    found = envelope.find(f"{q(SOAP_ENV, 'Body')}/{{{NS}}}SubmitApplicationRequest")
    assert found is not None
    return found


# --- the institutions' side -------------------------------------------------------------------------------------
def intake(stack, kind: str) -> IntakeStore:  # type: ignore[no-untyped-def]
    """The store of the institution's intake for this kind of application (read directly, as its operator)."""
    return store_for(INSTITUTIONS[kind], Path(stack.env["KRUISPUNT_BACKEND_STATE"]))


def outbox_entry(stack, ticket: str | None = None, *, organisation_id: int | None = None,  # type: ignore[no-untyped-def]
                 message_id: str | None = None) -> OutboxEntry | None:
    """The outbox entry of a submission, by its ticket or by the organisation's MessageId."""
    with stack.sessions() as session:
        query = select(OutboxEntry).join(Application, Application.delivery_id == OutboxEntry.id)
        if ticket is not None:
            query = query.where(Application.ticket == ticket)
        else:
            query = query.where(Application.organisation_id == organisation_id, Application.message_id == message_id)
        return session.execute(query).scalar_one_or_none()


def applications_stored(stack, organisation_id: int, message_id: str) -> int:  # type: ignore[no-untyped-def]
    with stack.sessions() as session:
        return len(session.execute(select(Application.id).where(Application.organisation_id == organisation_id,
                                                                Application.message_id == message_id)).all())


def eventually(check: Callable[[], T | None], what: str, timeout: float = 90.0, every: float = 0.5) -> T:
    """Poll until check() gives something (a bounded wait, never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(every)
