"""The journey of one request: bytes in, signed bytes out, one audit record, every refusal a fault."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lxml import etree
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from integrator.answer import fault_payload, signed_answer
from integrator.audit import AuditDraft, write_audit
from integrator.caller import Caller, authorise, authorise_forwarded, authorise_peer
from integrator.config import Settings
from integrator.contract import Contract
from integrator.dispatch import BoundDispatcher, Dispatcher
from integrator.envelope import check_understood, parse_envelope
from integrator.faults import (
    AuditUnavailable,
    BackendInvalidAnswer,
    CallerHeaderMissing,
    ContractViolation,
    InternalError,
    KruispuntFault,
    OperationUnknown,
    PeerInvalidAnswer,
    PeerRefused,
    ServiceRetired,
    UnsignedContent,
)
from integrator.federation import Forwarded, PeerClient, forward
from integrator.namespaces import KP, WSSE, q
from integrator.outbox import Forwarder
from integrator.replay import remember
from integrator.routes import Answer, CodeRoute, RepositoryRoute, Routes
from integrator.service import CallContext, ServiceDefinition
from integrator.ticket import new_ticket
from integrator.timing import StageClock
from integrator.wssec.registered import RegisteredCertificates
from integrator.wssec.sign import SigningKey
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import Verified, verify_envelope
from integrator.xmlparse import check_size
from repository.documents import OperationContract

log = logging.getLogger("kruispunt.pipeline")
CALLER = q(KP, "Caller")
ON_BEHALF_OF = q(KP, "OnBehalfOf")
UNDERSTOOD = frozenset({q(WSSE, "Security"), CALLER, ON_BEHALF_OF})  # header blocks this integrator processes


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    ticket: str
    timing: str = ""


class Pipeline:
    """Built once per worker: compiled contracts, keys, trust store, dispatcher."""

    def __init__(
        self,
        settings: Settings,
        services: list[ServiceDefinition],
        sessions: sessionmaker[Session],
        signing_key: SigningKey,
        trust: TrustStore,
        dispatcher: Dispatcher,
        peer_client: PeerClient | None = None,
        forwarder: Forwarder | None = None,
    ) -> None:
        self.settings = settings
        self.routes = Routes(services, settings.xsd_dir, sessions, settings.var_dir / "cache" / "contracts",
                             settings.repository_cache_seconds)
        self.common = Contract(settings.xsd_dir / "common/v1/common.xsd")
        self.sessions = sessions
        self.signing_key = signing_key
        self.trust = trust
        self.certificates = RegisteredCertificates(sessions, settings.repository_cache_seconds)
        self.dispatcher = dispatcher
        self.peer_client = peer_client or PeerClient(signing_key, trust, settings.peer_limits)
        self.forwarder = forwarder

    def handle(self, path: str, data: bytes, declared_length: int = 0, base_url: str = "") -> Reply:
        received = datetime.now(UTC)
        unread = declared_length > len(data)  # refused on its declared length alone: the body was never read
        draft = AuditDraft(new_ticket(received), received, "unread" if unread else hashlib.sha256(data).hexdigest())
        clock = StageClock()
        try:
            answer, notice = self._serve(path, data, max(declared_length, len(data)), draft, received, clock,
                                         base_url)
            body = signed_answer(self.signing_key, answer.payload, ticket=draft.ticket, received=received,
                                 message_id=draft.message_id, request_digest=draft.request_signature_digest,
                                 deprecation=notice, upstream_tickets=answer.upstream_tickets)
            status = 200
        except KruispuntFault as fault:
            status, body = self._refused(fault, draft, received)
        except Exception:
            log.exception("unexpected error, ticket %s", draft.ticket)
            status, body = self._refused(InternalError(), draft, received)
        clock.mark("answer")
        reply = self._audited(draft, status, body)
        clock.mark("audit")
        return Reply(reply.status, reply.body, reply.ticket, clock.server_timing())

    def _serve(self, path: str, data: bytes, length: int, draft: AuditDraft, now: datetime,
               clock: StageClock, base_url: str) -> tuple[Answer, dict[str, Any] | None]:
        route = self.routes.resolve(path)
        draft.service = route.key
        check_size(length, self.settings.limits)
        envelope = parse_envelope(data, self.settings.limits)
        check_understood(envelope, UNDERSTOOD)
        clock.mark("envelope")
        verified = verify_envelope(envelope, self.trust, self.settings.security, now, self.certificates)
        draft.request_signature_digest = verified.signature_digest  # from here on, even a fault is bound to it
        clock.mark("security")
        draft.certificate = verified.fingerprint
        header = self._caller_header(verified, envelope.header)
        draft.official, draft.purpose, draft.message_id = header["Official"], header["Purpose"], header["MessageId"]
        payload = verified.payload
        if payload is None:
            raise OperationUnknown("The signed Body is empty; it must hold one request element.")
        operation = route.operation(payload.tag)
        if operation is None:
            raise OperationUnknown(f"{payload.tag} is not an operation of {route.key}; see its WSDL.")
        draft.operation = operation.name
        keys = [f"sig:{verified.signature_digest.hex()}"]
        if not _retry_safe(route, payload.tag):
            keys.append(f"mid:{draft.certificate[:32]}:{header['MessageId']}")
        if isinstance(route, RepositoryRoute) and route.status == "retired":
            successor = f"; use {route.successor} instead" if route.successor else ""
            raise ServiceRetired(f"{route.name} {route.version} is retired{successor}.")
        with self.sessions() as session:
            remember(session, keys, verified.expires + self.settings.security.clock_skew, now)
            clock.mark("replay")
            request = route.contract.check(payload)
            person_field, must_be_in_files = _person_setting(route, payload.tag)
            if person_field:
                draft.person = _text_field(request, person_field)
            clock.mark("contract")
            person = draft.person if must_be_in_files else None
            caller, via = self._caller(session, route, payload.tag, header, verified, draft, now, person)
            clock.mark("caller")
        draft.organisation = caller.organisation.enterprise_number
        draft.official, draft.purpose = caller.official, caller.purpose
        answer, answer_fault = self._invoke(route, operation, payload, request, caller, draft, now, base_url, via)
        clock.mark("handle")
        if answer.payload.tag != operation.response:
            raise answer_fault(f"The answer is {answer.payload.tag}, not {operation.response}.")
        route.contract.validate(answer.payload, fault=answer_fault)
        draft.outcome, draft.detail = answer.outcome, answer.detail
        notice = None
        if isinstance(route, RepositoryRoute) and route.status == "deprecated" and route.sunset is not None:
            notice = {"Sunset": route.sunset, "Successor": route.successor}
        return answer, notice

    def _caller(self, session: Session, route: CodeRoute | RepositoryRoute, tag: str, header: dict[str, str],
                verified: Verified, draft: AuditDraft, now: datetime,
                person: str | None) -> tuple[Caller, tuple[str, ...]]:
        """Who is asking: an official of the certificate's organisation, a peer itself, or a caller a peer
        vouches for (then also the integrators the request passed through; their files were checked by the
        caller's own integrator)."""
        behalf = verified.headers.get(ON_BEHALF_OF)
        if behalf is not None:
            vouched = self.common.check(behalf)
            caller, peer = authorise_forwarded(
                session, draft.certificate or "", vouched, own_enterprise_number=self.settings.enterprise_number,
                max_hops=self.settings.max_hops, service=route.name,
                federated=isinstance(route, RepositoryRoute) and route.federated)
            draft.came_from, draft.came_from_ticket = peer.name, vouched["Ticket"]
            return caller, tuple(vouched["Via"])
        if isinstance(route, CodeRoute) and route.handler(tag).audience == "peers":
            peer, organisation = authorise_peer(session, draft.certificate or "")
            draft.came_from = peer.name
            return Caller(organisation, header["Official"], header["Purpose"], header["MessageId"]), ()
        right = route.handler(tag).access if isinstance(route, CodeRoute) else None
        return authorise(session, draft.certificate or "", header, right or route.name, now,
                         on_organisation=lambda number: setattr(draft, "organisation", number), person=person), ()

    def _invoke(self, route: CodeRoute | RepositoryRoute, operation: OperationContract, payload: etree._Element,
                request: dict[str, Any], caller: Caller, draft: AuditDraft, now: datetime, base_url: str,
                via: tuple[str, ...]) -> tuple[Answer, type[KruispuntFault]]:
        """Serve the operation: the service's own code, the owning peer, or a backend; and which fault an
        off-contract answer is."""
        if isinstance(route, CodeRoute):
            context = CallContext(draft.ticket, now, caller.organisation, caller.official, caller.purpose,
                                  caller.message_id, BoundDispatcher(self.dispatcher, route.key), self.sessions,
                                  base_url, self.settings.name, self.forwarder, self.signing_key, self.settings,
                                  payload)
            return route.invoke(payload.tag, request, context), InternalError
        if route.origin_peer_id is not None:
            return self._forward(route, operation, payload, caller, draft, via), PeerInvalidAnswer
        return self._generic(route, operation, payload), BackendInvalidAnswer

    def _forward(self, route: RepositoryRoute, operation: OperationContract, payload: etree._Element,
                 caller: Caller, draft: AuditDraft, via: tuple[str, ...]) -> Answer:
        """The service belongs to another integrator: hand the request on, vouching for the caller."""
        peer = route.peer
        if peer is None:
            raise InternalError(f"The integrator that owns {route.key} is no longer registered as a peer.")
        draft.forwarded_to = peer.name
        vouched = Forwarded(caller.organisation.enterprise_number, caller.official, caller.purpose,
                            caller.message_id, draft.ticket, (*via, self.settings.enterprise_number))
        try:
            answer = forward(self.peer_client, peer, f"/soap/{route.name}/v{route.major}", payload,
                             operation.soap_action, vouched)
        except PeerRefused as refused:
            draft.forwarded_tickets = " ".join(refused.tickets) or None
            raise
        tickets = (answer.ticket, *answer.upstream)
        draft.forwarded_tickets = " ".join(tickets)
        return Answer(answer.payload, detail=f"forwarded to {peer.name}", upstream_tickets=tickets)

    def _generic(self, route: RepositoryRoute, operation: OperationContract, payload: etree._Element) -> Answer:
        """Generic dispatch: the payload goes as signed to the first backend that can answer it."""
        answer, backend = self.dispatcher.call_one(route.key, operation.name, payload, operation.soap_action)
        return Answer(answer, detail=f"answered by {backend}")

    def readiness_problems(self) -> list[str]:
        """What keeps this worker from serving: an unreachable database, an unreadable CRL."""
        problems = []
        try:
            with self.sessions() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:
            problems.append(f"database: {type(exc).__name__}")
        try:
            next_update = self.trust.crl_next_update()
        except Exception as exc:
            problems.append(f"CRL: {exc}")
        else:
            if next_update is not None and next_update < datetime.now(UTC):
                problems.append(f"CRL: stale since {next_update:%Y-%m-%d %H:%M}Z; publish a fresh CRL")
        return problems

    def readiness_notes(self) -> list[str]:
        """What the operators should know but does not take this host out of rotation: open circuits."""
        return [f"circuit {c.state}: {c.service} backend {c.backend} after {c.failures} failure(s)"
                + (f", until {c.until:%H:%M:%S}Z" if c.until else "") + (f" ({c.last_error})" if c.last_error else "")
                for c in self.dispatcher.circuits.open_circuits()]

    def _caller_header(self, verified: Verified, header_node: etree._Element | None) -> dict[str, str]:
        if header_node is not None and len(header_node.findall(CALLER)) > 1:
            raise ContractViolation("The request carries more than one kp:Caller header; send exactly one.")
        signed = verified.headers.get(CALLER)
        if signed is None:
            if header_node is not None and header_node.find(CALLER) is not None:
                raise UnsignedContent("The kp:Caller header is not covered by the signature; sign it.")
            raise CallerHeaderMissing(
                "The kp:Caller header (official, purpose, message id) is missing; every request must carry it."
            )
        return self.common.check(signed)

    def _refused(self, fault: KruispuntFault, draft: AuditDraft, received: datetime) -> tuple[int, bytes]:
        """The signed fault; should writing it fail, a signed Server.Internal fault all the same (never gunicorn's
        unsigned error page, never an answer without its audit record)."""
        try:
            return self._refusal(fault, draft, received)
        except Exception:
            log.exception("the refusal %s could not be written, ticket %s", fault.code, draft.ticket)
            return self._refusal(InternalError(), draft, received)

    def _refusal(self, fault: KruispuntFault, draft: AuditDraft, received: datetime) -> tuple[int, bytes]:
        draft.outcome, draft.fault_code, draft.detail = "FAULT", fault.code, fault.reason
        body = signed_answer(self.signing_key, fault_payload(fault, draft.ticket), ticket=draft.ticket,
                             received=received, message_id=draft.message_id,
                             request_digest=draft.request_signature_digest,
                             upstream_tickets=tuple((draft.forwarded_tickets or "").split()))
        return fault.HTTP_STATUS, body

    def _audited(self, draft: AuditDraft, status: int, body: bytes) -> Reply:
        """No answer leaves without its audit record: if the record cannot be written, the answer is a fault."""
        try:
            with self.sessions() as session:
                write_audit(session, draft, datetime.now(UTC), hashlib.sha256(body).hexdigest())
                session.commit()
        except Exception:
            log.exception("audit record could not be written, ticket %s", draft.ticket)
            fault = AuditUnavailable()
            return Reply(fault.HTTP_STATUS, signed_answer(self.signing_key, fault_payload(fault, draft.ticket),
                                            ticket=draft.ticket, received=draft.received_at, message_id=None,
                                            request_digest=None), draft.ticket)
        return Reply(status, body, draft.ticket)



def _person_setting(route: CodeRoute | RepositoryRoute, tag: str) -> tuple[str | None, bool]:
    """Which request field names the person concerned, and whether they must be in the caller's files."""
    if isinstance(route, CodeRoute):
        op = route.handler(tag)
        return op.person_field, op.person_in_files
    return route.person_element, route.person_element is not None


def _retry_safe(route: CodeRoute | RepositoryRoute, tag: str) -> bool:
    """Whether the operation takes the MessageId as an idempotency key (its own code answers a retry)."""
    return isinstance(route, CodeRoute) and route.handler(tag).retry_safe


def _text_field(request: dict[str, Any], name: str) -> str | None:
    value = request.get(name)
    return value if isinstance(value, str) else None
