"""The tax-exemption lookup on the portal: the social statuses of a person on a date, from every authentic source,
through TaxExemptionStatus v1's own code (services/tax_exemption.py)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from integrator.faces.portal.apps.operations import Outcome, ask, new_message_id, purposes
from integrator.faces.portal.context import PortalContext
from services.tax_exemption import NS
from services.tax_exemption import SERVICE as DEFINITION

SERVICE = DEFINITION.name
REQUEST = f"{{{NS}}}GetTaxExemptionStatusesRequest"


def blueprint(context: PortalContext) -> Blueprint:
    pages = Blueprint("tax-exemption", __name__)

    @pages.route("/", methods=["GET", "POST"])
    def lookup() -> str:
        today = date.today()
        choices = purposes(context, SERVICE, today)
        form = {"insz": "", "on": today.isoformat(), "purpose": choices[0] if choices else "",
                "message_id": new_message_id()}
        outcome: Outcome | None = None
        problem: str | None = None
        if request.method == "POST":
            form.update({k: request.form.get(k, "").strip() for k in ("insz", "on", "purpose", "message_id")})
            try:
                on = date.fromisoformat(form["on"])
            except ValueError:
                problem = _("The reference date is not a date (YYYY-MM-DD).")
            else:
                outcome = ask(context, DEFINITION.path, REQUEST, {"Insz": form["insz"], "ReferenceDate": on},
                              purpose=form["purpose"], message_id=form["message_id"])
            form["message_id"] = new_message_id()  # the next lookup is a new message
        return render_template("apps/tax_lookup.html", form=form, purposes=choices, outcome=outcome,
                               problem=problem)

    return pages
