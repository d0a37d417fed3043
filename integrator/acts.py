"""An administrative act done outside the request path (the operator's command line): one ticket and one audit
record — who, what, to whom, why — added to the act's own transaction, so the act and its record commit together."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from integrator.audit import Channel, write_audit
from integrator.ticket import new_ticket
from repository.actors import Actor


def audit_act(session: Session, actor: Actor, operation: str, detail: str, *, command: str,
              organisation: str | None = None, person: str | None = None, service: str | None = None) -> str:
    """Record the act (operation: the same word as the SOAP operation where there is one; person: the official
    concerned; detail: what was done, by whom, and why) and return its ticket; the caller commits."""
    now = datetime.now(UTC)
    ticket = new_ticket(now)
    summary = f"by {actor.label}: {detail}"
    write_audit(session, {
        "ticket": ticket, "received_at": now, "answered_at": now, "organisation": organisation, "certificate": None,
        "official": actor.insz, "purpose": None, "message_id": None, "service": service, "operation": operation,
        "person": person, "outcome": "OK", "fault_code": None, "detail": summary,
        "request_digest": hashlib.sha256(command.encode()).hexdigest(),
        "response_digest": hashlib.sha256(summary.encode()).hexdigest(),
        "came_from": None, "came_from_ticket": None, "forwarded_to": None, "forwarded_tickets": None,
        "channel": Channel.CLI.value,
    })
    return ticket
