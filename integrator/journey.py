"""What one request's stages found, in the order they found it; the audit record is read off it once, at the end.

Each stage returns its result and the pipeline keeps it here, once: nothing else writes to a journey, and no
stage reads another's half-filled state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integrator.audit import Channel
from integrator.caller import Calling
from integrator.faults import KruispuntFault, PeerRefused
from integrator.routes import Answer, CodeRoute, RepositoryRoute
from integrator.wssec.verify import Verified
from repository.documents import OperationContract
from repository.queries import CallerFacts


@dataclass
class Journey:
    ticket: str
    received: datetime
    request_digest: str  # SHA-256 of the bytes received ("unread" when refused on the declared length)
    channel: Channel = Channel.SOAP  # a signed envelope, or an official logged on at the portal
    route: CodeRoute | RepositoryRoute | None = None  # envelope: the service the path names
    verified: Verified | None = None  # security: the signed content and the signer
    header: dict[str, str] | None = None  # security: the signed kp:Caller header, decoded
    operation: OperationContract | None = None  # contract: the operation the signed Body asks for
    person: str | None = None  # contract: the person the request concerns
    facts: CallerFacts | None = None  # caller: the certificate's organisation, before any refusal
    calling: Calling | None = None  # caller: who is asking, authorised
    answer: Answer | None = None  # handle / dispatch: what serving the operation produced

    @property
    def signature_digest(self) -> bytes | None:
        """Binds the answer, or the fault, to the request once its signature is known."""
        return self.verified.signature_digest if self.verified is not None else None

    @property
    def message_id(self) -> str | None:
        return self.header["MessageId"] if self.header is not None else None

    def upstream_tickets(self, fault: KruispuntFault | None = None) -> tuple[str, ...]:
        """The tickets of the integrators the request was handed on to (theirs first, then further upstream)."""
        if isinstance(fault, PeerRefused):
            return tuple(fault.tickets)
        return self.answer.upstream_tickets if self.answer is not None else ()

    def audit_values(self, fault: KruispuntFault | None, answered_at: datetime, response_digest: str
                     ) -> dict[str, Any]:
        """The audit record of this transaction: an answer (fault None) or a refusal."""
        route, calling, header = self.route, self.calling, self.header
        caller = calling.caller if calling is not None else None
        organisation = (caller.organisation.enterprise_number if caller is not None
                        else self.facts.organisation.enterprise_number if self.facts is not None else None)
        forwarded = (isinstance(route, RepositoryRoute) and route.peer is not None and calling is not None)
        tickets = self.upstream_tickets(fault)
        answer = self.answer if fault is None else None
        return {
            "ticket": self.ticket,
            "received_at": self.received,
            "answered_at": answered_at,
            "organisation": organisation,
            "certificate": self.verified.fingerprint if self.verified is not None else None,
            "official": caller.official if caller is not None else header["Official"] if header else None,
            "purpose": caller.purpose if caller is not None else header["Purpose"] if header else None,
            "message_id": self.message_id,
            "service": route.key if route is not None else None,
            "operation": self.operation.name if self.operation is not None else None,
            "person": self.person,
            "outcome": answer.outcome if answer is not None else "FAULT",
            "fault_code": fault.code if fault is not None else None,
            "detail": answer.detail if answer is not None else fault.reason if fault is not None else None,
            "request_digest": self.request_digest,
            "response_digest": response_digest,
            "came_from": calling.came_from if calling is not None else None,
            "came_from_ticket": calling.came_from_ticket if calling is not None else None,
            "forwarded_to": route.peer.name if forwarded and route.peer is not None else None,
            "forwarded_tickets": " ".join(tickets) or None,
            "channel": self.channel.value,
        }
