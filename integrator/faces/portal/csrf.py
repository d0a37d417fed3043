"""CSRF: every form carries its session's token (csrf_field), every POST is checked against it; a POST without
it (or without a session) is refused with Client.Portal.CsrfRefused, a 403 page."""

from __future__ import annotations

import hmac

from flask import request
from markupsafe import Markup, escape

from integrator.faces.portal.context import visit
from integrator.faults import PortalCsrfRefused

FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token() -> str:
    """The session's CSRF token ("" without a session: a form built from it will be refused)."""
    return visit().csrf_token or ""


def csrf_field() -> Markup:
    """The hidden input every form of the portal (and of its applications) carries: {{ csrf_field() }}."""
    return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(csrf_token())}">')


def check_csrf() -> None:
    """before_request, after the session is loaded: refuse a state-changing request without the right token."""
    if request.method in SAFE_METHODS:
        return
    expected = visit().csrf_token
    sent = request.form.get(FIELD, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PortalCsrfRefused()
