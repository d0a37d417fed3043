"""Security headers on every portal answer: a content-security policy without inline scripts (the portal has no
JavaScript at all), no framing, no referrer to other sites, no caching of personal pages."""

from __future__ import annotations

from flask import request
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=31536000"


def secure_headers(response: Response) -> Response:
    """after_request."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    if request.scheme == "https":
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response
