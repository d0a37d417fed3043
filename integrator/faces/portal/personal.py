"""The personal page's documents and results: what the official's applications put at their disposal — their
receipts and where each delivery stands (Communit-e), the update proposals awaiting their municipality's decision,
the BIS numbers they created (e-Creabis) — each read through its service's own list operation, as the
applications do (ask(): authorised, ticketed and audited like a SOAP call), and only for a service the official
holds a grant for. Those reads are left out of the page's own list of latest transactions, which they would
otherwise fill."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrator.faces.portal.apps import communite, e_creabis, proposals_inbox
from integrator.faces.portal.apps.communite import DELIVERY_STATES, KINDS  # the words Communit-e's pages use
from integrator.faces.portal.apps.operations import Outcome, ServiceOperations
from integrator.faces.portal.context import PortalContext, visit

__all__ = ["DELIVERY_STATES", "KINDS", "PAGE_READS", "Panel", "awaiting_decision", "panels"]

SHOWN = 5  # the latest of each: the application's own pages list them all


@dataclass(frozen=True)
class Panel:
    """One section of the personal page: a list operation of the service of one portal application, shown when the
    official may open that application (its pages are where the panel's links go)."""

    key: str  # the template's section
    application: str  # the application's slug
    operations: ServiceOperations  # the application's own
    operation: str
    request: dict[str, Any]


PANELS = (
    Panel("receipts", communite.SLUG, communite.OPERATIONS, "ListReceipts", {"PageSize": SHOWN}),
    Panel("proposals", proposals_inbox.SLUG, proposals_inbox.OPERATIONS, "ListOverdueProposals", {"OlderThanDays": 0}),
    Panel("bis_numbers", e_creabis.SLUG, e_creabis.OPERATIONS, "ListCreatedBisNumbers", {"PageSize": SHOWN}),
)
PAGE_READS = frozenset((panel.operations.definition.key, panel.operation) for panel in PANELS)  # as audited


def panels(context: PortalContext) -> dict[str, Outcome]:
    """The panels of the applications the official may open (a grant for the service opens one), read now."""
    granted = {application.slug for application in visit().granted}
    return {panel.key: panel.operations.ask(context, panel.operation, panel.request)
            for panel in PANELS if panel.application in granted}


def awaiting_decision(outcome: Outcome) -> list[dict[str, Any]]:
    """The latest undecided proposals addressed to the official's own municipality (the inbox's, shortened)."""
    return proposals_inbox.awaiting_decision(outcome)[:SHOWN]
