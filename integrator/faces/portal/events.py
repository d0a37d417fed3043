"""One log line per portal log-on, failed log-on, refusal and log-out (logger kruispunt.portal), like the request
log's: key=value in text, the same fields as JSON fields with KRUISPUNT_LOG_FORMAT=json. Passwords and codes are
never logged; the session is named by the first 12 hex digits of its key, never by its cookie's token."""

from __future__ import annotations

import logging
from typing import Any

from flask import request

from integrator.faces.portal.certificates import client_address
from integrator.faces.portal.context import portal_context, visit

log = logging.getLogger("kruispunt.portal")


def event(name: str, outcome: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log `name` (log-on, log-out, refused …) with its outcome and fields, plus the client's address and session."""
    current = visit()
    official = current.official
    values: dict[str, Any] = {"event": name, "outcome": outcome,
                              "address": client_address(request.environ, portal_context().settings.portal),
                              "path": request.script_root + request.path}
    if official is not None:
        values.update(official=official.insz, organisation=official.organisation)
    if current.session_id:
        values.setdefault("session", current.session_id[:12])
    values.update({k: v for k, v in fields.items() if v is not None})
    text = " ".join(f"{k}={v}" for k, v in values.items() if k not in ("event", "outcome"))
    log.log(level, "portal %s %s %s", name, outcome, text, extra={"portal": values})
