"""The portal's refusals as pages: each portal fault's reason in the official's language (the fault's code in
the log line and, small, on the page), never a traceback."""

from __future__ import annotations

import logging

from flask import Response, render_template
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from integrator.faces.portal.events import event
from integrator.faults import (
    KruispuntFault,
    PortalApplicationNotGranted,
    PortalCertificateRefused,
    PortalCsrfRefused,
    PortalLocked,
    PortalLogOnFailed,
    PortalSessionExpired,
)

MESSAGES = {
    PortalLogOnFailed: _l("The user number, password or code is not right. Try again."),
    PortalLocked: _l("Locked after too many failed log-ons. Try again later, log on with your eID, "
                     "or ask your local administrator."),
    PortalSessionExpired: _l("Your session has ended. Log on again."),
    PortalCsrfRefused: _l("This form was not sent from a page of this portal, or the page is too old. "
                          "Open the page again and send the form once more."),
    PortalCertificateRefused: _l("Your certificate cannot log you on. Insert your eID, or log on with your user "
                                 "number and token."),
    PortalApplicationNotGranted: _l("You hold no grant for this application. Ask your local administrator "
                                    "for one."),
}
HTTP_TITLES = {404: _l("Page not found"), 405: _l("Method not allowed"), 413: _l("The form is too large"),
               400: _l("Bad request")}


def message(fault: KruispuntFault) -> str:
    """The fault's reason for the page, translated."""
    return str(MESSAGES.get(type(fault), fault.reason))


def refused(fault: KruispuntFault) -> tuple[str, int]:
    """errorhandler(KruispuntFault): the refusal page, with the fault's HTTP status; logged with its code."""
    event("refused", fault.code, level=logging.WARNING, reason=fault.reason)
    return render_template("refused.html", message=message(fault), code=fault.code), fault.HTTP_STATUS


def http_error(error: HTTPException) -> tuple[str, int] | Response:
    """errorhandler(HTTPException): Flask's 404, 405, 413 … in the portal's layout."""
    status = error.code or 500
    title = HTTP_TITLES.get(status, _l("The page cannot be shown"))
    return render_template("refused.html", message=str(title), code=f"HTTP {status}"), status
