"""The local administrators' pages: an organisation's (co-)administrators register, deactivate and reactivate its
officials, issue or reset their log-on credentials, and grant, approve, end and revoke their access, through
AccessManagement v1's own code (services/access_management.py). Every act and every list is one of that service's
operations asked through ask(): authorised, ticketed and audited as the signed SOAP call is; the rules are the
service's, never the page's."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from integrator.faces.portal.apps.operations import Outcome, ServiceOperations, new_message_id
from integrator.faces.portal.context import PortalContext
from services.access_management import NS
from services.access_management import SERVICE as DEFINITION

SERVICE = DEFINITION.name
PURPOSE = "ACCESS_MANAGEMENT"  # what the administrators' grant for AccessManagement is for (services/demo_access.py)
OPERATIONS = ServiceOperations(DEFINITION, NS, PURPOSE)


def _form(*fields: str) -> dict[str, str]:
    return {field: request.form.get(field, "").strip() for field in fields}


def _date(value: str, *, optional: bool = False) -> date | None:
    """The form's date, None for an optional blank one; ValueError if it is not a date."""
    if optional and not value:
        return None
    return date.fromisoformat(value)


def blueprint(context: PortalContext) -> Blueprint:
    pages = Blueprint("administration", __name__)

    @pages.route("/", methods=["GET", "POST"])
    def officials() -> str:
        """The organisation's officials; register one; deactivate or reactivate one (with a reason)."""
        register = {"insz": "", "name": "", "email": "", "department": ""}
        outcome: Outcome | None = None
        act: str | None = None
        if request.method == "POST":
            act = request.form.get("action", "")
            message_id = request.form.get("message_id", "")
            if act == "register":
                register = _form("insz", "name", "email", "department")
                outcome = OPERATIONS.ask(context, "RegisterOfficial", {
                    "Insz": register["insz"], "Name": register["name"], "Email": register["email"] or None,
                    "Department": register["department"] or None}, message_id)
                if outcome.fault is None:
                    register = {"insz": "", "name": "", "email": "", "department": ""}
            elif act in ("deactivate", "reactivate"):
                chosen = _form("insz", "reason")
                outcome = OPERATIONS.ask(context, f"{act.capitalize()}Official",
                                         {"Insz": chosen["insz"], "Reason": chosen["reason"]}, message_id)
        listed = OPERATIONS.ask(context, "ListOfficials", {})
        return render_template("apps/administration.html", act=act, outcome=outcome, listed=listed,
                               register=register, new_message_id=new_message_id)

    @pages.route("/grants", methods=["GET", "POST"])
    def grants() -> str:
        """The organisation's grants (of one official with ?insz=); grant; approve, end or revoke a grant."""
        of = request.values.get("of", "").strip()
        grant = {"insz": of, "service": "", "purpose": "", "start": date.today().isoformat(), "end": "",
                 "reason": ""}
        outcome: Outcome | None = None
        problem: str | None = None
        act: str | None = None
        if request.method == "POST":
            act = request.form.get("action", "")
            message_id = request.form.get("message_id", "")
            if act == "grant":
                grant = _form("insz", "service", "purpose", "start", "end", "reason")
                try:
                    start, end = _date(grant["start"]), _date(grant["end"], optional=True)
                except ValueError:
                    problem = _("The start and end dates must be dates (YYYY-MM-DD).")
                else:
                    outcome = OPERATIONS.ask(context, "GrantAccess", {
                        "Insz": grant["insz"], "Service": grant["service"], "Purpose": grant["purpose"],
                        "Start": start, "End": end, "Reason": grant["reason"]}, message_id)
                    if outcome.fault is None:
                        grant.update(service="", purpose="", end="", reason="")
            elif act in ("approve", "end", "revoke"):
                chosen = _form("grant_id", "end", "reason")
                if act == "approve":
                    outcome = OPERATIONS.ask(context, "ApproveGrant", {"GrantId": chosen["grant_id"]}, message_id)
                elif act == "revoke":
                    outcome = OPERATIONS.ask(context, "RevokeGrant", {"GrantId": chosen["grant_id"],
                                                                      "Reason": chosen["reason"]}, message_id)
                else:
                    try:
                        end = _date(chosen["end"])
                    except ValueError:
                        problem = _("The end date must be a date (YYYY-MM-DD).")
                    else:
                        outcome = OPERATIONS.ask(context, "EndGrant", {"GrantId": chosen["grant_id"], "End": end,
                                                                       "Reason": chosen["reason"]}, message_id)
        listed = OPERATIONS.ask(context, "ListGrants", {"Insz": of or None})
        return render_template("apps/administration_grants.html", act=act, outcome=outcome, problem=problem,
                               listed=listed, grant=grant, of=of, today=date.today().isoformat(),
                               new_message_id=new_message_id)

    @pages.route("/credentials", methods=["GET", "POST"])
    def credentials() -> str:
        """Issue or reset one official's fallback log-on (?insz=); the secrets are shown on this answer only."""
        chosen = _form("insz", "token", "reason") if request.method == "POST" else {
            "insz": request.args.get("insz", "").strip(), "token": "CARD", "reason": ""}
        outcome: Outcome | None = None
        if request.method == "POST":
            issue = {"Insz": chosen["insz"], "Token": chosen["token"], "Reason": chosen["reason"]}
            outcome = OPERATIONS.ask(context, "IssueCredentials", issue, request.form.get("message_id", ""))
        return render_template("apps/administration_credentials.html", chosen=chosen, outcome=outcome,
                               new_message_id=new_message_id)

    return pages
