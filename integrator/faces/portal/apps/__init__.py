"""The portal's applications (integrator/faces/portal/applications.py is the registry they plug into). Each runs
the same service code as its SOAP service, through Pipeline.serve_official: no second implementation."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from integrator.faces.portal.applications import PortalApplication
from integrator.faces.portal.apps import administration, communite, e_creabis, proposals_inbox, tax_lookup

APPLICATIONS = (
    PortalApplication(communite.SLUG, _l("Communit-e: applications"), communite.SERVICE, communite.blueprint),
    PortalApplication(e_creabis.SLUG, _l("e-Creabis: BIS numbers"), e_creabis.SERVICE, e_creabis.blueprint),
    PortalApplication(proposals_inbox.SLUG, _l("Update proposals"), proposals_inbox.SERVICE, proposals_inbox.blueprint),
    PortalApplication("tax-exemption", _l("Tax-exemption lookup"), tax_lookup.SERVICE, tax_lookup.blueprint),
    PortalApplication("administration", _l("Administration"), administration.SERVICE, administration.blueprint),
)
