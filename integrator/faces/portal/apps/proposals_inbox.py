"""The National Register update-proposal inbox on the portal: a municipality's population office sees the proposals
awaiting its decision, opens one (its evidence document downloadable), accepts or rejects it, and follows its
organisation's decided proposals, through UpdateProposals v1's own code (services/proposals.py). Every list, read
and decision is one of that service's operations asked through ask(): authorised, ticketed and audited as the
signed SOAP call is; the rules (who may decide, once, a rejection's reason) are the service's, never the page's.

Which operation fills the inbox: ListOverdueProposals with OlderThanDays 0, i.e. every proposal still undecided
(SUBMITTED or ACKNOWLEDGED) that the organisation proposed or decides, keeping those addressed to it. Not
ListPendingProposals: that is a back office's pull queue and holds only what is not yet acknowledged, so a proposal
the municipality's back office pulled and acknowledged, but has not decided, would vanish from the inbox although
it still awaits a decision. The portal never acknowledges either (AcknowledgeProposals would take proposals out of
the back office's next pull): it only reads, so a back office that also pulls sees exactly what it would have seen
without the portal. The decided list is ListProposals, of the proposals addressed to the municipality (Role
COMPETENT_MUNICIPALITY) or of those the organisation submitted (an institution following its proposals). Overdue
is what the service calls it: undecided for longer than the integrator's proposal_decision_days."""

from __future__ import annotations

import base64
import binascii
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, render_template, request, send_file
from flask_babel import gettext as _

from integrator.faces.portal.apps.operations import Outcome, ServiceOperations, new_message_id
from integrator.faces.portal.context import PortalContext, logged_on
from services.proposals import NS
from services.proposals import SERVICE as DEFINITION

SERVICE = DEFINITION.name
SLUG = "proposals"  # the registry's slug (apps/__init__.py): the blueprint is named after it
PURPOSE = "POPULATION_REGISTER"  # what a population office's grant for UpdateProposals is for (demo_proposals.py)
OPERATIONS = ServiceOperations(DEFINITION, NS, PURPOSE)
DECISIONS = ("ACCEPT", "REJECT")
DECIDED_STATES = ("ACCEPTED", "REJECTED")  # ListProposals filters on one state: the decided list offers each
ROLES = ("COMPETENT_MUNICIPALITY", "PROPOSER")  # ListProposals' Role: addressed to the municipality, or submitted
PAGE_SIZE = 20
REFERENCE = re.compile(r"KP-[0-9]{8}-[0-9a-f]{32}")  # kp:TicketType: a proposal's reference is its ticket
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # what no XML text may hold


def _overdue_before(context: PortalContext) -> datetime:
    """Proposals submitted before this moment and still undecided are overdue (the service's own setting)."""
    return datetime.now(UTC) - timedelta(days=context.settings.proposal_decision_days)


def _reference(reference: str) -> str:
    """The URL's reference, if it can be one (anything else is no page of this application)."""
    if not REFERENCE.fullmatch(reference):
        abort(404)
    return reference


def _document(outcome: Outcome) -> dict[str, Any] | None:
    """The proposal's evidence document (Name, MimeType, Content), None when it has none."""
    if outcome.answer is None:
        return None
    return outcome.answer["Proposal"]["Evidence"].get("Document") or None


def awaiting_decision(listed: Outcome) -> list[dict[str, Any]]:
    """Of ListOverdueProposals' answer (every undecided proposal the organisation proposed or decides), those
    addressed to the official's own municipality."""
    mine = logged_on().organisation
    return [p for p in (listed.answer or {}).get("Proposal", [])
            if p["CompetentMunicipality"]["EnterpriseNumber"] == mine]


def _decide(context: PortalContext, reference: str) -> tuple[Outcome | None, str | None]:
    """The decision the form sends, as DecideProposal; or what is wrong with the form before it can be sent."""
    decision = request.form.get("decision", "")
    reason = request.form.get("reason", "").strip()
    if decision not in DECISIONS:
        return None, _("Choose whether you accept or reject the proposal.")
    if NOT_XML.search(reason):
        return None, _("The reason holds characters that cannot be sent (control characters).")
    decision_values = {"Reference": reference, "Decision": decision, "Reason": reason or None}
    return OPERATIONS.ask(context, "DecideProposal", decision_values, request.form.get("message_id", "")), None


def blueprint(context: PortalContext) -> Blueprint:
    pages = Blueprint(SLUG, __name__)

    @pages.get("/")
    def inbox() -> str:
        """The proposals addressed to the official's municipality that await its decision, oldest first."""
        listed = OPERATIONS.ask(context, "ListOverdueProposals", {"OlderThanDays": 0})
        return render_template("apps/proposals.html", listed=listed, waiting=awaiting_decision(listed),
                               overdue_before=_overdue_before(context),
                               decision_days=f"{context.settings.proposal_decision_days:g}")

    @pages.route("/<reference>", methods=["GET", "POST"])
    def proposal(reference: str) -> tuple[str, int]:
        """One proposal, all its details; its decision (accept, or reject with a reason) while it awaits one."""
        reference = _reference(reference)
        decided: Outcome | None = None
        problem: str | None = None
        form = {"decision": "", "reason": ""}
        if request.method == "POST":
            decided, problem = _decide(context, reference)
            if decided is None or decided.fault is not None:
                form = {"decision": request.form.get("decision", ""), "reason": request.form.get("reason", "")}
        shown = OPERATIONS.ask(context, "GetProposal", {"Reference": reference})
        status = shown.fault.HTTP_STATUS if shown.fault is not None else 200
        return render_template("apps/proposals_proposal.html", reference=reference, shown=shown, decided=decided,
                               problem=problem, form=form, overdue_before=_overdue_before(context),
                               message_id=new_message_id()), status

    @pages.get("/<reference>/document")
    def document(reference: str) -> Response | tuple[str, int]:
        """The proposal's evidence document: the bytes the proposer sent, as an attachment of its own type."""
        reference = _reference(reference)
        shown = OPERATIONS.ask(context, "GetProposal", {"Reference": reference})
        if shown.fault is not None:
            return render_template("apps/proposals_proposal.html", reference=reference, shown=shown, decided=None,
                                   problem=None, form={}, overdue_before=_overdue_before(context),
                                   message_id=new_message_id()), shown.fault.HTTP_STATUS
        attached = _document(shown)
        if attached is None:
            abort(404)
        try:
            content = base64.b64decode(attached["Content"], validate=True)
        except (binascii.Error, ValueError):
            abort(404)
        sent = send_file(io.BytesIO(content), as_attachment=True, download_name=attached["Name"],
                         mimetype=attached["MimeType"], conditional=False, etag=False)
        sent.headers["Content-Type"] = attached["MimeType"]  # exactly the proposal's type (no charset added)
        return sent

    @pages.get("/decided")
    def decided() -> str:
        """The decided proposals (accepted or rejected: one state a page), PAGE_SIZE a page: those addressed to the
        municipality, or with ?role=PROPOSER those the organisation submitted."""
        state = request.args.get("state", DECIDED_STATES[0])
        state = state if state in DECIDED_STATES else DECIDED_STATES[0]
        role = request.args.get("role", ROLES[0])
        role = role if role in ROLES else ROLES[0]
        after = request.args.get("after", "").strip()
        after = after if REFERENCE.fullmatch(after) else ""
        listed = OPERATIONS.ask(context, "ListProposals", {"State": state, "After": after or None,
                                                           "MaxCount": PAGE_SIZE, "Role": role})
        return render_template("apps/proposals_decided.html", listed=listed, state=state, after=after,
                               states=DECIDED_STATES, role=role, roles=ROLES)

    return pages
