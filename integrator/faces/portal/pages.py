"""The portal's own pages: the personal page (the applications the official may open, the documents and results
they put at the official's disposal — personal.py —, the official's latest transactions) and the language switch."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from integrator.audit import recent_transactions
from integrator.faces.portal.context import logged_on, login_required, portal_context
from integrator.faces.portal.i18n import LANGUAGES
from integrator.faces.portal.personal import DELIVERY_STATES, KINDS, PAGE_READS, awaiting_decision, panels
from integrator.faces.portal.redirects import safe_next
from integrator.faces.portal.visits import set_language_cookie

blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
@login_required
def home() -> str:
    """The official's personal page: the applications they may open, their receipts, the proposals awaiting their
    municipality, the BIS numbers they created, and their latest transactions' tickets."""
    official, context = logged_on(), portal_context()
    found = panels(context)
    with context.sessions() as session:
        transactions = recent_transactions(session, official.organisation, official.insz, leaving_out=PAGE_READS)
    proposals = awaiting_decision(found["proposals"]) if "proposals" in found else None
    return render_template("home.html", transactions=transactions, panels=found, proposals=proposals,
                           kinds=KINDS, states=DELIVERY_STATES)


@blueprint.get("/language/<language>")
def language(language: str) -> Response:
    """Switch the language (remembered in a cookie) and go back to the page it was switched on."""
    if language not in LANGUAGES:
        raise NotFound()
    back = safe_next(request.args.get("next"), request.script_root or "/") or url_for("pages.home")
    return set_language_cookie(redirect(back), language)
