"""Wire helpers for UpdateProposals v1: signed calls under a kp:Caller header (with a MessageId of the test's
choosing, so retries can be sent), answers checked (signed by the integrator, valid against the service's XSD) and
decoded, refusals checked against their audit record; the National Register reference backend asked directly
(with the integrator's key, the only caller it accepts) and its store of applied updates read from disk."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from kruispunt_client.xml import build
from lxml import etree
from sqlalchemy import update

from integrator.audit import AuditRecord
from integrator.envelope import EnvelopeLimits, parse_envelope
from integrator.pki import Identity, fingerprint, load_trust_anchors
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope
from integrator.wssec.verify import SecurityPolicy, verify_envelope
from repository.proposals import Proposal
from services.backends.persons import KRUISDORP_NIS, PERSONS, Person
from services.demo_organisations import BRUGSTEDE, INSTITUTION, KRUISDORP, OFFICIALS
from services.demo_proposals import PURPOSE_POPULATION, PURPOSE_PROPOSAL
from tests.e2e.directory_calls import answer_of
from tests.e2e.generic_calls import refusal_audited, trust_store
from tests.e2e.repository_calls import signed_request
from tests.support import PROJECT, FaultSeen, audit_record

UP = "urn:kruispunt:UpdateProposals:v1"
UP_PATH = "/soap/UpdateProposals/v1"
UP_SERVICE = "UpdateProposals/v1"
UP_XSD = str(PROJECT / "xsd" / "UpdateProposals" / "v1" / "UpdateProposals.xsd")
NR = "urn:kruispunt:backends:NationalRegister:v1"
NR_BACKEND = "national-register"
KRUISDORP_PERSON = next(p for p in PERSONS if p.address.nis_code == KRUISDORP_NIS)
BRUGSTEDE_PERSON = next(p for p in PERSONS if p.address.nis_code != KRUISDORP_NIS)


@dataclass(frozen=True)
class Caller:
    identity: Identity
    official: str
    purpose: str
    enterprise_number: str


def institution(stack) -> Caller:  # type: ignore[no-untyped-def]
    """The institution's file handler: proposes updates (every demo person is in its files for that)."""
    return Caller(stack.pki.org(INSTITUTION.enterprise_number), OFFICIALS[4].insz, PURPOSE_PROPOSAL,
                  INSTITUTION.enterprise_number)


def kruisdorp(stack) -> Caller:  # type: ignore[no-untyped-def]
    """Kruisdorp's population office: competent for persons the National Register registers in Kruisdorp."""
    return Caller(stack.pki.kruisdorp, OFFICIALS[1].insz, PURPOSE_POPULATION, KRUISDORP.enterprise_number)


def brugstede(stack) -> Caller:  # type: ignore[no-untyped-def]
    return Caller(stack.pki.brugstede, OFFICIALS[2].insz, PURPOSE_POPULATION, BRUGSTEDE.enterprise_number)


def competent_for(stack, person: Person) -> Caller:  # type: ignore[no-untyped-def]
    return kruisdorp(stack) if person.address.nis_code == KRUISDORP_NIS else brugstede(stack)


def new_message_id() -> str:
    return str(uuid.uuid4())


def unique(prefix: str) -> str:
    """A proposed value no other test proposes (the National Register's store is shared by the whole session)."""
    return f"{prefix} {uuid.uuid4().hex[:10]}"


# --- the wire -------------------------------------------------------------------------------------------------------
def send(stack, caller: Caller, operation: str, data: dict[str, Any],  # type: ignore[no-untyped-def]
         message_id: str | None = None) -> requests.Response:
    signed = signed_request(caller, build(f"{{{UP}}}{operation}Request", data), message_id or new_message_id())
    return requests.post(f"{stack.base_url}{UP_PATH}", data=signed, timeout=120,
                         headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{UP}:{operation}"'})


@dataclass(frozen=True)
class Answer:
    ticket: str
    body: dict[str, Any]
    record: AuditRecord


def decoded(stack, reply: requests.Response, operation: str) -> tuple[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The ticket and the answer's body as data: signed by the integrator, with the header's ticket, XSD-valid."""
    return answer_of(stack, reply, f"{{{UP}}}{operation}Response", UP_XSD)


def answered(stack, caller: Caller, operation: str, data: dict[str, Any], *,  # type: ignore[no-untyped-def]
             message_id: str | None = None, person: str | None = None) -> Answer:
    """Call, expect the answer, and find it audited once: OK, the caller, the operation, the person."""
    reply = send(stack, caller, operation, data, message_id)
    ticket, body = decoded(stack, reply, operation)
    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code) == ("OK", None), record.detail
    assert (record.service, record.operation, record.person) == (UP_SERVICE, operation, person)
    assert (record.organisation, record.official, record.purpose) == (caller.enterprise_number, caller.official,
                                                                      caller.purpose)
    return Answer(ticket, body, record)


def refused(stack, caller: Caller, operation: str, data: dict[str, Any], code: str,  # type: ignore[no-untyped-def]
            http_status: int, *, person: str | None = None, message_id: str | None = None) -> FaultSeen:
    """Send, expect the fault (signed, with the header's ticket), and find it audited once with its reason."""
    seen, record = refusal_audited(stack, send(stack, caller, operation, data, message_id), code, http_status)
    assert (record.service, record.operation, record.person) == (UP_SERVICE, operation, person)
    assert (record.organisation, record.official, record.purpose) == (caller.enterprise_number, caller.official,
                                                                      caller.purpose)
    return seen


def proposal_data(person: Person | str, field: str, value: str, description: str = "Letter from the person",
                  document: dict[str, str] | None = None) -> dict[str, Any]:
    insz = person if isinstance(person, str) else person.insz
    return {"Insz": insz, "Field": field, "ProposedValue": value,
            "Evidence": {"Description": description, "Document": document}}


def submit(stack, person: Person, field: str, value: str, *, message_id: str | None = None,  # type: ignore[no-untyped-def]
           **evidence: Any) -> Answer:
    return answered(stack, institution(stack), "SubmitProposal", proposal_data(person, field, value, **evidence),
                    message_id=message_id, person=person.insz)


def pending(stack, caller: Caller, after: str | None = None, max_count: int | None = None) -> Answer:  # type: ignore[no-untyped-def]
    return answered(stack, caller, "ListPendingProposals", {"After": after, "MaxCount": max_count})


def all_pending(stack, caller: Caller, page_size: int = 100) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Every pending proposal of the municipality, page after page."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = pending(stack, caller, after, page_size).body
        found.extend(page.get("Proposal", []))
        if not page["More"]:
            return found
        after = page["NextAfter"]


def acknowledge(stack, caller: Caller, *references: str) -> Answer:  # type: ignore[no-untyped-def]
    return answered(stack, caller, "AcknowledgeProposals", {"Reference": list(references)})


def decide(stack, caller: Caller, reference: str, decision: str, reason: str | None = None) -> Answer:  # type: ignore[no-untyped-def]
    return answered(stack, caller, "DecideProposal", {"Reference": reference, "Decision": decision,
                                                      "Reason": reason})


def get_proposal(stack, caller: Caller, reference: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return answered(stack, caller, "GetProposal", {"Reference": reference}).body["Proposal"]


# --- the National Register reference backend ----------------------------------------------------------------------
def nr_person(stack, insz: str) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
    """What the National Register itself answers about a person now (asked with the integrator's key; its answer
    is checked to be signed by the backend's own certificate)."""
    root, _header, body = new_envelope()
    body.append(build(f"{{{NR}}}get_person", {"insz": insz}))
    sign_envelope(root, SigningKey.from_identity(stack.pki.integrator))
    url = f"http://127.0.0.1:{stack.backend_ports[NR_BACKEND]}/"
    reply = requests.post(url, data=etree.tostring(root), timeout=30,
                          headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"get_person"'})
    assert reply.status_code == 200, reply.text[:1000]
    verified = verify_envelope(parse_envelope(reply.content, EnvelopeLimits()), trust_store(stack), SecurityPolicy(),
                               datetime.now(UTC))
    own = load_trust_anchors([stack.settings.pki_dir / f"backend-{NR_BACKEND}.crt"])[0]
    assert fingerprint(verified.certificate) == fingerprint(own)
    assert verified.payload is not None
    result = verified.payload.find(f"{{{NR}}}get_personResult")
    if result is None or len(result) == 0:
        return None
    return {etree.QName(child).localname: child.text for child in result if len(child) == 0}


def nr_deliveries(stack, reference: str) -> int:  # type: ignore[no-untyped-def]
    """How many times the National Register received the update with this reference (0: never)."""
    path = Path(stack.env["KRUISPUNT_BACKEND_STATE"]) / f"{NR_BACKEND}.sqlite"
    with closing(sqlite3.connect(path, timeout=30)) as db:
        row = db.execute("SELECT deliveries FROM updates WHERE reference = ?", (reference,)).fetchone()
    return int(row[0]) if row else 0


def move_submission(stack, reference: str, moment: datetime) -> None:  # type: ignore[no-untyped-def]
    """Move a proposal's submission back in time (time passing, for the overdue listing)."""
    with stack.sessions() as session:
        session.execute(update(Proposal).where(Proposal.reference == reference).values(submitted_at=moment))
        session.commit()
