"""The personal page's documents and results: what the official's applications put at their disposal — their
receipts and where each delivery stands (Communit-e), the update proposals awaiting their municipality's decision,
the BIS numbers they created (e-Creabis) — each read through its service's own list operation, as the
applications do (ask(): authorised, ticketed and audited like a SOAP call), and only for a service the official
holds a grant for. Those reads are left out of the page's own list of latest transactions, which they would
otherwise fill."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from integrator.faces.portal.apps.communite import DELIVERY_STATES, KINDS  # the words Communit-e's pages use
from integrator.faces.portal.apps.operations import Outcome, ask, new_message_id, purposes
from integrator.faces.portal.context import PortalContext, logged_on, visit
from integrator.service import ServiceDefinition
from services import applications, creabis, proposals

__all__ = ["DELIVERY_STATES", "KINDS", "PAGE_READS", "Panel", "awaiting_decision", "panels"]

SHOWN = 5  # the latest of each: the application's own pages list them all


@dataclass(frozen=True)
class Panel:
    """One section of the personal page: a list operation of the service of one portal application, shown when the
    official may open that application (its pages are where the panel's links go)."""

    key: str  # the template's section
    application: str  # the application's slug
    definition: ServiceDefinition
    namespace: str
    operation: str
    request: dict[str, Any]


PANELS = (
    Panel("receipts", "applications", applications.SERVICE, applications.NS, "ListReceipts", {"PageSize": SHOWN}),
    Panel("proposals", "proposals", proposals.SERVICE, proposals.NS, "ListOverdueProposals", {"OlderThanDays": 0}),
    Panel("bis_numbers", "e-creabis", creabis.SERVICE, creabis.NS, "ListCreatedBisNumbers", {"PageSize": SHOWN}),
)
PAGE_READS = frozenset((panel.definition.key, panel.operation) for panel in PANELS)  # as audit records name them


def panels(context: PortalContext) -> dict[str, Outcome]:
    """The panels of the applications the official may open, read now."""
    granted = {application.slug for application in visit().granted}
    today = date.today()
    found: dict[str, Outcome] = {}
    for panel in PANELS:
        held = purposes(context, panel.definition.name, today) if panel.application in granted else []
        if held:
            found[panel.key] = ask(context, panel.definition.path, f"{{{panel.namespace}}}{panel.operation}Request",
                                   panel.request, purpose=held[0], message_id=new_message_id())
    return found


def awaiting_decision(outcome: Outcome) -> list[dict[str, Any]]:
    """The undecided proposals addressed to the official's own municipality (not those it proposed itself)."""
    if outcome.answer is None:
        return []
    mine = logged_on().organisation
    listed = outcome.answer.get("Proposal") or []
    return [p for p in listed if p["CompetentMunicipality"]["EnterpriseNumber"] == mine][:SHOWN]
