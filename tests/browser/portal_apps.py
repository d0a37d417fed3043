"""The integrator as gunicorn serves it in the browser tests, with three trivial portal applications of the tests'
own (the real ones live in integrator/faces/portal/apps/): two the demo official An Verhoeven holds grants for,
one she does not."""

from __future__ import annotations

from flask import Blueprint, render_template_string

from integrator.faces import wsgi
from integrator.faces.portal import PortalApplication
from integrator.faces.portal.context import PortalContext, logged_on

PAGE = """{% extends "layout.html" %}{% block title %}{{ heading }}{% endblock %}{% block content %}
<p id="who">{{ official.name }} · {{ official.insz }} · {{ official.organisation }} · {{ official.method }}</p>
<form method="post">{{ csrf_field() }}<label for="note">Note</label><input id="note" name="note">
<button type="submit">Send</button></form>{% if sent %}<p id="sent">{{ sent }}</p>{% endif %}{% endblock %}"""


def _application(slug: str, heading: str):  # type: ignore[no-untyped-def]
    def blueprint(context: PortalContext) -> Blueprint:
        pages = Blueprint(slug, __name__)

        @pages.route("/", methods=["GET", "POST"])
        def index() -> str:
            from flask import request

            return render_template_string(PAGE, heading=heading, official=logged_on(),
                                          sent=request.form.get("note") if request.method == "POST" else None)

        return pages

    return blueprint


TEST_APPLICATIONS = [
    PortalApplication("lookup", "Tax-exemption lookup", "TaxExemptionStatus", _application("lookup", "Lookup")),
    PortalApplication("intake", "Application intake", "Applications", _application("intake", "Intake")),
    PortalApplication("inbox", "Proposals inbox", "UpdateProposals", _application("inbox", "Inbox")),
]


def create_app() -> wsgi.IntegratorApp:
    return wsgi.create_app(portal_applications=TEST_APPLICATIONS)
