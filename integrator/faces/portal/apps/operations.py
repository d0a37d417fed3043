"""What every portal application does with an operation: build its request element from the form's values, ask
the pipeline for it as the logged-on official, and decode the answer with the service's own contract."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from kruispunt_client.xml import build
from sqlalchemy import select

from integrator.faces.portal.context import PortalContext, logged_on
from integrator.faults import KruispuntFault
from integrator.pipeline import LoggedOn
from integrator.service import ServiceDefinition
from repository.models import Grant


@dataclass(frozen=True)
class Outcome:
    """What the page shows: the decoded answer, or the refusal; the ticket either way."""

    ticket: str
    answer: dict[str, Any] | None
    fault: KruispuntFault | None


def new_message_id() -> str:
    """The message id a form carries: sent twice, the form is the same message (a replay, or its first outcome)."""
    return str(uuid.uuid4())


def purposes(context: PortalContext, service: str, on: date) -> list[str]:
    """The purposes the logged-on official holds a grant in effect for, for the service (the form's choices)."""
    official = logged_on()
    with context.sessions() as session:
        found = session.execute(select(Grant.purpose).where(Grant.official_id == official.official_id,
                                                            Grant.service == service, Grant.in_effect(on))
                                .distinct().order_by(Grant.purpose)).scalars().all()
    return list(found)


def ask(context: PortalContext, path: str, request_tag: str, values: dict[str, Any], *, purpose: str,
        message_id: str, base_url: str = "") -> Outcome:
    """One operation as the logged-on official: authorised, served and audited as its SOAP call is."""
    official = logged_on()
    asking = LoggedOn(official.organisation, official.insz, purpose, message_id)
    reply = context.pipeline.serve_official(asking, path, build(request_tag, values), base_url)
    if reply.answer is None:
        return Outcome(reply.ticket, None, reply.fault)
    contract = context.pipeline.routes.resolve(path).contract
    return Outcome(reply.ticket, contract.check(reply.answer.payload), None)


@dataclass(frozen=True)
class ServiceOperations:
    """One service's operations as a portal application asks them: the request element named after the operation,
    the purpose the official holds the service's grant for (the application's usual one when they hold it), and a
    new message id unless the form carries one."""

    definition: ServiceDefinition
    namespace: str
    usual_purpose: str = ""

    def purpose(self, context: PortalContext) -> str:
        held = purposes(context, self.definition.name, date.today())
        return self.usual_purpose if self.usual_purpose in held or not held else held[0]

    def ask(self, context: PortalContext, operation: str, values: dict[str, Any], message_id: str | None = None,
            *, purpose: str | None = None) -> Outcome:
        return ask(context, self.definition.path, f"{{{self.namespace}}}{operation}Request", values,
                   purpose=purpose or self.purpose(context), message_id=message_id or new_message_id())
