"""UpdateProposals v1: institutions propose corrections of a person's National Register data; the integrator routes
each to the competent municipality (where the National Register registers the person), which pulls, acknowledges and
decides it; an accepted proposal's update reaches the National Register through the outbox, applied once."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from kruispunt_client.xml import build
from sqlalchemy.orm import Session

from integrator.config import PROJECT_ROOT
from integrator.contract import Contract
from integrator.dispatch import BackendContract
from integrator.faults import ClientFault, ContractViolation, IdempotencyConflict, KruispuntFault
from integrator.outbox import PENDING, enqueue, state_of
from integrator.service import CallContext, HandlerResult, ServiceDefinition, operation
from repository import proposals as store
from repository.base import aware
from repository.models import Organisation
from repository.proposals import ACCEPTED, REJECTED, SUBMITTED, Proposal

NS = "urn:kruispunt:UpdateProposals:v1"
NR_NS = "urn:kruispunt:backends:NationalRegister:v1"
NR_XSD = "backends/NationalRegister/v1/NationalRegister.xsd"
NR_BACKEND = "national-register"
SERVICE_KEY = "UpdateProposals/v1"
COMPETENT_MUNICIPALITY = "COMPETENT_MUNICIPALITY"  # ListProposals' Role: the proposals addressed to the caller
DEFAULT_PAGE = 50


# --- this service's faults (one fault family: integrator/faults.py) ---------------------------------------
class ProposalPersonUnknown(ClientFault):
    CODE = "Client.Proposal.PersonUnknown"
    HTTP_STATUS = 404


class ProposalUnknown(ClientFault):
    CODE = "Client.Proposal.Unknown"
    HTTP_STATUS = 404


class ProposalNotCompetent(ClientFault):
    CODE = "Client.Proposal.NotCompetent"
    HTTP_STATUS = 403


class ProposalAlreadyDecided(ClientFault):
    CODE = "Client.Proposal.AlreadyDecided"
    HTTP_STATUS = 409


class MunicipalityNotConnected(KruispuntFault):
    """The National Register names a municipality that is not (yet) an organisation of this network."""

    CODE = "Server.Proposal.MunicipalityNotConnected"
    HTTP_STATUS = 503


@cache
def nr_person() -> BackendContract:
    """get_person of the National Register reference backend (compiled once per worker)."""
    return BackendContract(contract=Contract(PROJECT_ROOT / "xsd" / NR_XSD), request=f"{{{NR_NS}}}get_person",
                           response=f"{{{NR_NS}}}get_personResponse")


# --- answers ------------------------------------------------------------------------------------------------------
def _organisation(org: Organisation) -> dict[str, Any]:
    return {"EnterpriseNumber": org.enterprise_number, "Name": org.name}


def _municipality(org: Organisation) -> dict[str, Any]:
    return {"EnterpriseNumber": org.enterprise_number, "Name": org.name, "NisCode": org.nis_code}


def _update_state(session: Session, proposal: Proposal) -> str | None:
    return state_of(session, proposal.update_id).state if proposal.update_id is not None else None


def _proposal(session: Session, proposal: Proposal, orgs: dict[int, Organisation]) -> dict[str, Any]:
    """A proposal as the ProposalType of the contract."""
    document = None
    if proposal.document is not None:
        document = {"Name": proposal.document_name, "MimeType": proposal.document_type,
                    "Content": base64.b64encode(proposal.document).decode()}
    decision = {ACCEPTED: "ACCEPT", REJECTED: "REJECT"}.get(proposal.state)
    return {
        "Reference": proposal.reference,
        "Insz": proposal.insz,
        "Field": proposal.field,
        "ProposedValue": proposal.proposed_value,
        "Evidence": {"Description": proposal.evidence, "Document": document},
        "Proposer": _organisation(orgs[proposal.proposer_id]),
        "ProposerOfficial": proposal.proposer_official,
        "CompetentMunicipality": _municipality(orgs[proposal.competent_id]),
        "State": proposal.state,
        "SubmittedAt": aware(proposal.submitted_at),
        "AcknowledgedAt": aware(proposal.acknowledged_at),
        "DecidedAt": aware(proposal.decided_at),
        "Decision": decision,
        "RejectReason": proposal.reject_reason,
        "DecisionTicket": proposal.decision_ticket,
        "DecidedBy": proposal.decided_by,
        "NationalRegisterUpdate": _update_state(session, proposal),
    }


def _proposals(session: Session, found: list[Proposal]) -> list[dict[str, Any]]:
    orgs = store.organisations(session, {p.proposer_id for p in found} | {p.competent_id for p in found})
    return [_proposal(session, p, orgs) for p in found]


def _page(session: Session, page: store.Page) -> dict[str, Any]:
    last = page.proposals[-1].reference if page.proposals else None
    return {"Proposal": _proposals(session, page.proposals), "More": page.more, "NextAfter": last}


def _max_count(request: dict[str, Any]) -> int:
    return int(request.get("MaxCount") or DEFAULT_PAGE)


def _visible(session: Session, reference: str, ctx: CallContext) -> Proposal:
    """The proposal, if the caller proposed it or decides it; to anyone else it does not exist."""
    proposal = store.by_reference(session, reference)
    if proposal is None or ctx.organisation.id not in (proposal.proposer_id, proposal.competent_id):
        raise ProposalUnknown(f"No proposal {reference} submitted by or addressed to organisation "
                              f"{ctx.organisation.enterprise_number}.")
    return proposal


def _addressed(session: Session, reference: str, ctx: CallContext, verb: str) -> Proposal:
    """The proposal, if the caller is its competent municipality (only it may acknowledge or decide it)."""
    proposal = store.by_reference(session, reference)
    if proposal is None:
        raise ProposalUnknown(f"There is no proposal {reference}.")
    if proposal.competent_id != ctx.organisation.id:
        competent = session.get_one(Organisation, proposal.competent_id)
        raise ProposalNotCompetent(
            f"Organisation {ctx.organisation.enterprise_number} may not {verb} proposal {proposal.reference}: only "
            f"the competent municipality {competent.name} ({competent.enterprise_number}, NIS {competent.nis_code}) "
            "may.")
    return proposal


# --- SubmitProposal -------------------------------------------------------------------------------------------------
def _document(evidence: dict[str, Any]) -> tuple[str | None, str | None, bytes | None]:
    document = evidence.get("Document")
    if not document:
        return None, None, None
    try:
        content = base64.b64decode(str(document["Content"]), validate=False)
    except (binascii.Error, ValueError):
        raise ContractViolation("Evidence/Document/Content is not valid base64.") from None
    return document["Name"], document["MimeType"], content


def _digest(insz: str, field: str, value: str, description: str, document: tuple[Any, Any, bytes | None]) -> str:
    """What the proposal says, as a SHA-256: a retry under the same MessageId must say the same."""
    name, mime, content = document
    said = [insz, field, value, description, name, mime, hashlib.sha256(content).hexdigest() if content else None]
    return hashlib.sha256(json.dumps(said).encode()).hexdigest()


def _submitted(proposal: Proposal, municipality: Organisation, repeated: bool) -> dict[str, Any]:
    return {"Reference": proposal.reference, "CompetentMunicipality": _municipality(municipality),
            "State": proposal.state, "SubmittedAt": aware(proposal.submitted_at), "Repeated": repeated}


def _repeat(session: Session, first: Proposal, digest: str, ctx: CallContext) -> HandlerResult:
    """A retry: the first outcome when it says the same, a conflict when it does not."""
    if first.request_digest != digest:
        raise IdempotencyConflict(
            f"MessageId {ctx.message_id} already submitted proposal {first.reference} with different content; a "
            "retry must repeat the request unchanged, a new proposal needs a new MessageId.")
    municipality = session.get_one(Organisation, first.competent_id)
    return HandlerResult(_submitted(first, municipality, True),
                         detail=f"repeated submission of {first.reference} (MessageId {ctx.message_id})")


def submit_proposal(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    insz, field, value = request["Insz"], request["Field"], request["ProposedValue"]
    evidence = request["Evidence"]
    document = _document(evidence)
    digest = _digest(insz, field, value, evidence["Description"], document)
    session = ctx.session
    first = store.by_message(session, ctx.organisation.id, ctx.message_id)
    if first is not None:
        return _repeat(session, first, digest, ctx)
    answer = ctx.backends.call(nr_person(), {"insz": insz}, name=NR_BACKEND)
    person = answer.get("get_personResult")
    if not person:
        raise ProposalPersonUnknown(f"Person {insz} is not in the National Register: there is no municipality to "
                                    "propose an update to.", source=NR_BACKEND)
    address = person["address"]
    nis = address["nis_code"]
    municipality = store.competent_municipality(session, nis)
    if municipality is None:
        raise MunicipalityNotConnected(
            f"The National Register registers {insz} in {address['municipality']} (NIS {nis}), which is not "
            "connected to this network; the proposal cannot be routed.")
    proposal = Proposal(reference=ctx.ticket, proposer_id=ctx.organisation.id, proposer_official=ctx.official,
                        message_id=ctx.message_id, request_digest=digest, insz=insz, field=field,
                        proposed_value=value, evidence=evidence["Description"], document_name=document[0],
                        document_type=document[1], document=document[2], competent_id=municipality.id,
                        state=SUBMITTED, submitted_at=ctx.received_at)
    stored = store.submit(session, proposal)  # a concurrent retry that stored it first: the pipeline serves again
    return HandlerResult(_submitted(stored, municipality, False),
                         detail=f"proposal {stored.reference}: {field} of {insz} to {municipality.name} "
                                f"(NIS {nis})")


# --- the competent municipality -------------------------------------------------------------------------------------
def list_pending(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    session = ctx.session
    try:
        page = store.pending(session, ctx.organisation.id, request.get("After"), _max_count(request))
    except store.CursorUnknown as unknown:
        raise ContractViolation(f"After {unknown} is not a proposal addressed to your organisation; pass the "
                                "NextAfter of the previous page.") from None
    body = _page(session, page)
    return HandlerResult(body, detail=f"{len(page.proposals)} pending proposal(s), more: {page.more}")


def acknowledge(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    given = request["Reference"]
    references = list(dict.fromkeys(given if isinstance(given, list) else [given]))  # each once, in given order
    results, new = [], 0
    session = ctx.session
    for reference in references:
        proposal = _addressed(session, reference, ctx, "acknowledge")
        done = store.acknowledge(session, proposal, ctx.received_at)
        new += done
        session.refresh(proposal)
        results.append({"Reference": reference, "State": proposal.state, "AlreadyAcknowledged": not done})
    return HandlerResult({"Acknowledged": results},
                         detail=f"{new} acknowledged, {len(references) - new} already: {' '.join(references)}")


def _already_decided(session: Session, proposal_id: int, reference: str) -> ProposalAlreadyDecided:
    """The refusal of a second decision, naming the first (read after the losing transaction ended)."""
    first = session.get_one(Proposal, proposal_id, populate_existing=True)
    decided_at = aware(first.decided_at)
    when = f" on {decided_at:%Y-%m-%d %H:%M:%S}Z" if decided_at else ""
    because = f", reason: {first.reject_reason}" if first.reject_reason else ""
    return ProposalAlreadyDecided(f"Proposal {reference} was already decided: {first.state}{when} (ticket "
                                  f"{first.decision_ticket}){because}.")


def decide(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """Accept or reject once; an acceptance owes the National Register its update (outbox, same transaction)."""
    reference, decision, reason = str(request["Reference"]), request["Decision"], request.get("Reason")
    if decision == "REJECT" and not reason:
        raise ContractViolation("A REJECT needs a Reason: the proposer reads it.")
    state, reason = (ACCEPTED, None) if decision == "ACCEPT" else (REJECTED, reason)
    session = ctx.session
    proposal = _addressed(session, reference, ctx, "decide")
    proposal_id, insz, field, value = proposal.id, proposal.insz, proposal.field, proposal.proposed_value
    if not store.decide(session, proposal_id, state, now=ctx.received_at, ticket=ctx.ticket,
                        official=ctx.official, reason=reason):  # a conditional UPDATE: one decision wins
        raise _already_decided(session, proposal_id, reference)
    entry_id = None
    if state == ACCEPTED:
        payload = build(f"{{{NR_NS}}}update_person", {"reference": reference, "insz": insz, "field": field,
                                                      "value": value, "municipality": ctx.organisation.nis_code})
        entry_id = enqueue(session, kind="nr-update", service=SERVICE_KEY, backend=NR_BACKEND, payload=payload,
                           ticket=ctx.ticket, now=ctx.received_at, soap_action="update_person").id
        store.owe_update(session, proposal_id, entry_id)
    body: dict[str, Any] = {"Reference": reference, "State": state, "DecidedAt": ctx.received_at}
    if entry_id is None:
        return HandlerResult(body, detail=f"{reference} rejected: {reason}")
    ctx.deliver_after_commit(entry_id)
    body["NationalRegisterUpdate"] = PENDING  # delivered once the decision is committed
    return HandlerResult(body, detail=f"{reference} accepted; National Register update {PENDING} "
                                      f"(outbox {entry_id})")


# --- the proposer and both -----------------------------------------------------------------------------------------
def get_proposal(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    session = ctx.session
    proposal = _visible(session, str(request["Reference"]), ctx)
    body = {"Proposal": _proposals(session, [proposal])[0]}
    return HandlerResult(body, detail=f"{proposal.reference}: {proposal.state}")


def list_proposals(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    session = ctx.session
    try:
        addressed = request.get("Role") == COMPETENT_MUNICIPALITY
        page = store.of_organisation(session, ctx.organisation.id, request.get("State"), request.get("After"),
                                     _max_count(request), addressed=addressed)
    except store.CursorUnknown as unknown:
        listed = "addressed to your organisation" if addressed else "your organisation submitted"
        raise ContractViolation(f"After {unknown} is not a proposal {listed}; pass the NextAfter of the previous "
                                "page.") from None
    body = _page(session, page)
    return HandlerResult(body, detail=f"{len(page.proposals)} proposal(s), more: {page.more}")


def list_overdue(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    assert ctx.settings is not None
    days = Decimal(str(request["OlderThanDays"])) if request.get("OlderThanDays") is not None else \
        Decimal(str(ctx.settings.proposal_decision_days))
    before = ctx.received_at - timedelta(days=float(days))
    session = ctx.session
    found = store.overdue(session, before, ctx.organisation.id)
    body = {"OlderThanDays": days, "Proposal": _proposals(session, found)}
    return HandlerResult(body, detail=f"{len(found)} proposal(s) undecided for more than {days} day(s)")


SERVICE = ServiceDefinition(
    name="UpdateProposals",
    version="v1",
    title="National Register update proposals",
    description=(
        "Propose a correction of a person's National Register data (address, civil status, nationality, names) "
        "with evidence; the competent municipality pulls, acknowledges and decides it; accepted updates reach the "
        "National Register."
    ),
    wsdl="UpdateProposals-v1.wsdl",
    xsd="UpdateProposals/v1/UpdateProposals.xsd",
    operations=(
        operation(NS, "SubmitProposal", submit_proposal, person_field="Insz", person_in_files=True, retry_safe=True),
        operation(NS, "ListPendingProposals", list_pending),
        operation(NS, "AcknowledgeProposals", acknowledge),
        operation(NS, "DecideProposal", decide),
        operation(NS, "GetProposal", get_proposal),
        operation(NS, "ListProposals", list_proposals),
        operation(NS, "ListOverdueProposals", list_overdue),
    ),
)
