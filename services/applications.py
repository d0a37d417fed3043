"""Applications v1 (Communit-e): a municipality submits a citizen's application for a disability allowance or a
pension; the integrator stores it with a receipt it signed and forwards it (store and forward) to the competent
institution's intake. The official who submitted it can fetch the receipt again and list their own receipts.

Submission is retry-safe: the caller's MessageId (per organisation) is the idempotency key. The application row,
its receipt and the outbox entry are one transaction; the integrator's ticket is the reference the institution
dedupes on, so the application reaches it exactly once however often it is delivered."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from kruispunt_client.receipt import FORWARDING_PENDING, Receipt, application_digest
from kruispunt_client.xml import build
from lxml import etree

from integrator import outbox
from integrator.config import PROJECT_ROOT
from integrator.contract import Contract, check_insz
from integrator.faults import ClientFault, ContractViolation, IdempotencyConflict, InternalError
from integrator.service import CallContext, HandlerResult, ServiceDefinition, operation
from repository import applications
from repository.applications import Application
from repository.base import aware
from services.application_receipts import sign_receipt

NS = "urn:kruispunt:Applications:v1"
SUBMIT = f"{{{NS}}}SubmitApplicationRequest"
INTAKE_NS = "urn:kruispunt:backends:ApplicationIntake:v1"
INTAKE_XSD = "backends/ApplicationIntake/v1/ApplicationIntake.xsd"
INSTITUTIONS = {"DISABILITY_ALLOWANCE": "disability-applications", "PENSION": "pension-applications"}
PAGE_SIZE = 20
FIRST_TRY = timedelta(seconds=5)  # how long the background forwarders leave a new submission to its own worker


# --- this service's faults (one fault family: integrator/faults.py) ---------------------------------------
class ReceiptUnknown(ClientFault):
    CODE = "Client.Application.ReceiptUnknown"
    HTTP_STATUS = 404


@cache
def intake_contract() -> Contract:
    """The contract every institution's intake speaks (compiled once per worker)."""
    return Contract(PROJECT_ROOT / "xsd" / INTAKE_XSD)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def intake_request(request: dict[str, Any], ticket: str, municipality: str, born: date) -> etree._Element:
    """The element the institution receives: the application under the integrator's ticket as reference."""
    household = [{"insz": m.get("Insz"), "last_name": m.get("LastName"), "first_names": m.get("FirstNames"),
                  "relationship": m["Relationship"]}
                 for m in _as_list((request.get("Household") or {}).get("Member"))]
    documents = [{"name": d["Name"], "mime_type": d["MimeType"], "content": d["Content"]}
                 for d in _as_list(request.get("Document"))]
    payload = build(f"{{{INTAKE_NS}}}receive_application", {
        "reference": ticket, "kind": request["Kind"], "insz": request["Insz"], "last_name": request["LastName"],
        "first_names": request["FirstNames"], "birth_date": born,
        "file_number": request["FileNumber"], "municipality": municipality,
        "household": {"IntakeMember": household} if household else None,
        "documents": {"IntakeDocument": documents} if documents else None,
    })
    intake_contract().validate(payload, fault=InternalError)
    return payload


def institution_reference(delivery: outbox.Delivery) -> str | None:
    if delivery.answer is None:
        return None
    return delivery.answer.findtext(f".//{{{INTAKE_NS}}}file_reference")


def _delivery(delivery: outbox.Delivery) -> dict[str, Any]:
    return {"State": delivery.state, "InstitutionReference": institution_reference(delivery),
            "DeliveredAt": delivery.delivered_at}


def _answer(row: Application, delivery: outbox.Delivery) -> dict[str, Any]:
    return {"Ticket": row.ticket, "SignedReceipt": base64.b64encode(row.receipt.encode()).decode(),
            "Delivery": _delivery(delivery)}


def _state(ctx: CallContext, row: Application) -> outbox.Delivery:
    return outbox.state_of(ctx.session, row.delivery_id)


def _retry(row: Application, digest: str, ctx: CallContext) -> HandlerResult:
    """The same MessageId again: the first submission's receipt if it is the same application by the same
    official, else a conflict."""
    if row.digest != digest or row.official != ctx.official:
        raise IdempotencyConflict(
            f"MessageId {ctx.message_id} was already used by your organisation for another application "
            f"(ticket {row.ticket}); a retry must repeat the application unchanged, a new application needs a "
            "new MessageId.")
    delivery = _state(ctx, row)
    return HandlerResult(_answer(row, delivery), detail=f"retry of {row.ticket}: {delivery.state}")


def submit_application(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """Store the application, its signed receipt and its outbox entry in the request's transaction; once that
    committed, the institution is tried at once (an after-commit step). The receipt attests what was received
    and that its forwarding is pending; where the delivery stands is in Delivery, next to it, on every GetReceipt.
    A retry with the same MessageId answers the first submission."""
    assert ctx.signing_key is not None and ctx.payload is not None
    insz = check_insz(request["Insz"])
    born = request["BirthDate"]
    if born > ctx.received_at.date():
        raise ContractViolation(f"BirthDate {born} lies in the future; correct the applicant's birth date.")
    digest = application_digest(ctx.payload)  # the application as received, as its signature covered it
    session = ctx.session
    earlier = applications.by_message_id(session, ctx.organisation.id, ctx.message_id)
    if earlier is not None:  # a retry (also when a concurrent one won: the pipeline serves the loser again)
        return _retry(earlier, digest, ctx)

    kind = request["Kind"]
    institution = ctx.backends.backend(INSTITUTIONS[kind]).name  # refused when its intake is not registered
    payload = intake_request(request, ctx.ticket, ctx.organisation.enterprise_number, born)
    attested = Receipt(ticket=ctx.ticket, received_at=ctx.received_at, signed_at=datetime.now(UTC), kind=kind,
                       organisation=ctx.organisation.enterprise_number, official=ctx.official,
                       institution=institution, file_number=request["FileNumber"], insz=insz,
                       application_digest=digest, forwarding=FORWARDING_PENDING)
    entry = outbox.enqueue(session, kind="application", service=SERVICE.key, backend=institution,
                           payload=payload, ticket=ctx.ticket, now=ctx.received_at)
    # this worker tries first (after the commit); the background forwarders take over only if it could not
    entry.next_attempt_at = ctx.received_at + FIRST_TRY
    row = Application(ticket=ctx.ticket, kind=kind, organisation_id=ctx.organisation.id,
                      official=ctx.official, message_id=ctx.message_id, insz=insz,
                      file_number=request["FileNumber"], institution=institution,
                      received_at=ctx.received_at, digest=digest,
                      receipt=sign_receipt(attested, ctx.signing_key).decode(), delivery_id=entry.id)
    session.add(row)
    session.flush()
    entry_id = entry.id
    ctx.deliver_after_commit(entry_id)
    current = outbox.delivery(entry)
    return HandlerResult(_answer(row, current), detail=f"{kind} to {institution}: {current.state}")


def get_receipt(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    ticket = request["Ticket"]
    session = ctx.session
    row = applications.receipt_of(session, ticket, ctx.organisation.id, ctx.official)
    if row is None:
        raise ReceiptUnknown(f"You have no receipt with ticket {ticket}: only the official who submitted an "
                             "application can fetch its receipt; check the ticket.")
    delivery = outbox.state_of(session, row.delivery_id)
    return HandlerResult(_answer(row, delivery), detail=f"{ticket}: {delivery.state}")


def list_receipts(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    page, size = int(request.get("Page") or 1), int(request.get("PageSize") or PAGE_SIZE)
    session = ctx.session
    total, rows = applications.receipts_of(session, ctx.organisation.id, ctx.official, request.get("Kind"),
                                           page, size)
    found = [{"Ticket": a.ticket, "ReceivedAt": aware(a.received_at), "Kind": a.kind,
              "Institution": a.institution, "FileNumber": a.file_number, "Insz": a.insz,
              "Delivery": _delivery(outbox.delivery(e))} for a, e in rows]
    return HandlerResult({"Total": total, "Page": page, "PageSize": size, "Receipt": found},
                         detail=f"{len(found)} of {total} receipt(s)")


SERVICE = ServiceDefinition(
    name="Applications",
    version="v1",
    title="Applications with a signed receipt (Communit-e)",
    description=("Submit a citizen's application for a disability allowance or a pension: the integrator "
                 "forwards it to the competent institution and answers a receipt it signed; fetch a receipt "
                 "again and list your own receipts."),
    wsdl="Applications-v1.wsdl",
    xsd="Applications/v1/Applications.xsd",
    operations=(
        operation(NS, "SubmitApplication", submit_application, person_field="Insz", person_in_files=True,
                   retry_safe=True),
        operation(NS, "GetReceipt", get_receipt),
        operation(NS, "ListReceipts", list_receipts),
    ),
)
