"""The journey of one request: bytes in, signed bytes out, one audit record, every refusal a fault."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any

from lxml import etree
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from integrator.answer import fault_payload, signed_answer
from integrator.audit import Channel, write_audit
from integrator.caller import (
    Caller,
    Calling,
    authorise,
    authorise_forwarded,
    authorise_peer,
    identify,
    identify_logged_on,
)
from integrator.config import Settings
from integrator.contract import Contract
from integrator.dispatch import BoundDispatcher, Dispatcher
from integrator.envelope import check_understood, parse_envelope
from integrator.faults import (
    AuditUnavailable,
    BackendInvalidAnswer,
    CallerHeaderMissing,
    ContractViolation,
    DatabaseUnavailable,
    InternalError,
    KruispuntFault,
    OperationUnknown,
    PeerInvalidAnswer,
    ServiceRetired,
    UnsignedContent,
)
from integrator.federation import Forwarded, PeerClient, forward
from integrator.journey import Journey
from integrator.namespaces import KP, WSSE, q
from integrator.outbox import Forwarder
from integrator.replay import remember
from integrator.routes import Answer, CodeRoute, RepositoryRoute, Routes
from integrator.service import CallContext, ServiceDefinition
from integrator.ticket import new_ticket
from integrator.timing import StageClock
from integrator.transaction import until_no_conflict
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
AFTER_COMMIT_THREADS = 4
PORTAL_FORM_WINDOW = timedelta(days=1)  # a portal form (its message id) sent again within this is refused


@dataclass(frozen=True)
class Reply:
    """The answer to send, and what the operators' log line and metrics say about it."""

    status: int
    body: bytes
    ticket: str
    timing: str = ""
    service: str | None = None
    operation: str | None = None
    organisation: str | None = None
    outcome: str = "FAULT"  # OK, PARTIAL or FAULT
    fault_code: str | None = None
    seconds: float = 0.0  # the whole handling time
    stages: tuple[tuple[str, float], ...] = ()  # (stage, seconds), in order


@dataclass(frozen=True)
class LoggedOn:
    """An official logged on at the portal, asking for one operation: who, for which purpose, and the message id
    the page's form carries (a form sent twice is the same message)."""

    enterprise_number: str
    official: str  # INSZ
    purpose: str
    message_id: str


@dataclass(frozen=True)
class PortalReply:
    """What a portal page shows: the answer element, or the fault (with the ticket either way)."""

    reply: Reply  # status, ticket, the log line's fields
    answer: Answer | None
    fault: KruispuntFault | None

    @property
    def ticket(self) -> str:
        return self.reply.ticket


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
        self.services = tuple(services)
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
        self._after_commit = ThreadPoolExecutor(max_workers=AFTER_COMMIT_THREADS, thread_name_prefix="after-commit")

    def handle(self, path: str, data: bytes, declared_length: int = 0, base_url: str = "") -> Reply:
        """One signed SOAP request, one transaction (see _transaction); the answer or the fault signed."""
        started = perf_counter()
        received = datetime.now(UTC)
        unread = declared_length > len(data)  # refused on its declared length alone: the body was never read
        journey = Journey(new_ticket(received), received, "unread" if unread else hashlib.sha256(data).hexdigest())
        clock = StageClock()

        def serve(session: Session, steps: list[Callable[[], None]]) -> bytes:
            answer, notice = self._serve(session, path, data, max(declared_length, len(data)), journey, clock,
                                         base_url, steps)
            return signed_answer(self.signing_key, answer.payload, ticket=journey.ticket, received=received,
                                 message_id=journey.message_id, request_digest=journey.signature_digest,
                                 deprecation=notice, upstream_tickets=answer.upstream_tickets)

        fault, body, record = self._transaction(journey, clock, serve, lambda refused: self._refused(refused, journey))
        return Reply(fault.HTTP_STATUS if fault is not None else 200, body, journey.ticket, clock.server_timing(),
                     service=record["service"], operation=record["operation"], organisation=record["organisation"],
                     outcome=record["outcome"], fault_code=record["fault_code"], seconds=perf_counter() - started,
                     stages=tuple(clock.stages))

    def serve_official(self, asking: LoggedOn, path: str, request: etree._Element, base_url: str = "") -> PortalReply:
        """An operation asked by an official logged on at the portal: the same route, contract, authorisation,
        reference-directory, service code, ticket and audit record as the signed SOAP call, in one transaction;
        only how the caller is known differs (the portal's log-on instead of a signature). The request element
        is what the page's form built; the answer element is what the page shows."""
        started = perf_counter()
        received = datetime.now(UTC)
        journey = Journey(new_ticket(received), received, hashlib.sha256(etree.tostring(request)).hexdigest(),
                          channel=Channel.PORTAL)
        journey.header = {"Official": asking.official, "Purpose": asking.purpose, "MessageId": asking.message_id}
        clock = StageClock()
        served: list[Answer] = []

        def serve(session: Session, steps: list[Callable[[], None]]) -> bytes:
            journey.route = route = self.routes.resolve(path)
            operation = route.operation(request.tag)
            if not isinstance(route, CodeRoute) or operation is None:
                raise OperationUnknown(f"{request.tag} of {path} is not offered on the portal.")
            journey.operation = operation
            if not _retry_safe(route, request.tag):  # a form sent twice is refused, as a re-used MessageId is
                remember(session, [f"portal:{asking.enterprise_number}:{asking.official}:{asking.message_id}"],
                         received + PORTAL_FORM_WINDOW, received)
            clock.mark("replay")
            answer, _ = self._operate(session, route, operation, request, journey, clock, base_url, steps, asking)
            served.append(answer)
            return etree.tostring(answer.payload)

        fault, body, record = self._transaction(
            journey, clock, serve, lambda refused: etree.tostring(fault_payload(refused, journey.ticket)))
        reply = Reply(fault.HTTP_STATUS if fault is not None else 200, body, journey.ticket, clock.server_timing(),
                      service=record["service"], operation=record["operation"],
                      organisation=record["organisation"], outcome=record["outcome"],
                      fault_code=record["fault_code"], seconds=perf_counter() - started, stages=tuple(clock.stages))
        return PortalReply(reply, served[0] if served and fault is None else None, fault)

    def _transaction(self, journey: Journey, clock: StageClock,
                     serve: Callable[[Session, list[Callable[[], None]]], bytes],
                     refuse: Callable[[KruispuntFault], bytes]) -> tuple[KruispuntFault | None, bytes, dict[str, Any]]:
        """One request, one transaction: the caller checks, the service's effects and the audit record commit
        together (the replay memory commits first); a refusal rolls back and is audited on its own; the
        after-commit steps run only once the commit succeeded."""
        steps: list[Callable[[], None]] = []
        fault: KruispuntFault | None = None
        with self._request_session() as session:
            try:
                body = serve(session, steps)
            except KruispuntFault as refused:
                fault = refused
            except (OperationalError, InterfaceError) as lost:  # the database went away under the request
                log.warning("database unavailable, ticket %s: %s", journey.ticket, lost.orig)
                fault = DatabaseUnavailable()
            except Exception:
                log.exception("unexpected error, ticket %s", journey.ticket)
                fault = InternalError()
            if fault is not None:
                _roll_back(session)  # nothing of a refused transaction stays but its audit record
                steps.clear()
                body = refuse(fault)
            clock.mark("answer")
            fault, body, record = self._commit(session, journey, fault, body, refuse)
            clock.mark("audit")
        for step in steps if fault is None else ():
            self._after_commit.submit(_after_commit, step, journey.ticket)
        return fault, body, record

    @contextmanager
    def _request_session(self) -> Iterator[Session]:
        """The request's session on one database connection from start to end (the replay memory's commit, then
        the effects and the audit record): one pool checkout and one liveness ping per request, not one per
        commit. When the database cannot be reached, a session that fails at its first statement, inside the
        request's fault handling (Server.DatabaseUnavailable, then the audit's own fault)."""
        engine = self.sessions.kw["bind"]
        try:
            connection = engine.connect()
        except (OperationalError, InterfaceError):
            with self.sessions() as session:
                yield session
            return
        with connection, self.sessions(bind=connection) as session:
            yield session

    def _serve(self, session: Session, path: str, data: bytes, length: int, journey: Journey, clock: StageClock,
               base_url: str, steps: list[Callable[[], None]]) -> tuple[Answer, dict[str, Any] | None]:
        now = journey.received
        journey.route = route = self.routes.resolve(path)
        check_size(length, self.settings.limits)
        envelope = parse_envelope(data, self.settings.limits)
        check_understood(envelope, UNDERSTOOD)
        clock.mark("envelope")
        journey.verified = verified = verify_envelope(envelope, self.trust, self.settings.security, now,
                                                      self.certificates)
        clock.mark("security")
        journey.header = header = self._caller_header(verified, envelope.header)
        payload = verified.payload
        if payload is None:
            raise OperationUnknown("The signed Body is empty; it must hold one request element.")
        operation = route.operation(payload.tag)
        if operation is None:
            raise OperationUnknown(f"{payload.tag} is not an operation of {route.key}; see its WSDL.")
        journey.operation = operation
        keys = [f"sig:{verified.signature_digest.hex()}"]
        if not _retry_safe(route, payload.tag):
            keys.append(f"mid:{verified.fingerprint[:32]}:{header['MessageId']}")
        if isinstance(route, RepositoryRoute) and route.status == "retired":
            successor = f"; use {route.successor} instead" if route.successor else ""
            raise ServiceRetired(f"{route.name} {route.version} is retired{successor}.")
        remember(session, keys, verified.expires + self.settings.security.clock_skew, now)  # commits at once
        clock.mark("replay")
        return self._operate(session, route, operation, payload, journey, clock, base_url, steps)

    def _operate(self, session: Session, route: CodeRoute | RepositoryRoute, operation: OperationContract,
                 payload: etree._Element, journey: Journey, clock: StageClock, base_url: str,
                 steps: list[Callable[[], None]], logged_on: LoggedOn | None = None
                 ) -> tuple[Answer, dict[str, Any] | None]:
        """From the contract on, whichever way the request came: decode, authorise, serve, check the answer."""
        request = route.contract.check(payload)
        person_field, must_be_in_files = _person_setting(route, payload.tag)
        journey.person = _text_field(request, person_field) if person_field else None
        clock.mark("contract")
        person = journey.person if must_be_in_files else None
        if logged_on is None:
            journey.calling = calling = self._caller(session, route, payload.tag, journey, person)
        else:
            journey.calling = calling = self._logged_on_caller(session, route, payload.tag, journey, person,
                                                               logged_on)
        clock.mark("caller")
        answer, answer_fault = self._invoke(session, route, operation, payload, request, journey, calling,
                                            base_url, steps)
        journey.answer = answer
        clock.mark("handle")
        if answer.payload.tag != operation.response:
            raise answer_fault(f"The answer is {answer.payload.tag}, not {operation.response}.")
        route.contract.validate(answer.payload, fault=answer_fault)
        notice = None
        if isinstance(route, RepositoryRoute) and route.status == "deprecated" and route.sunset is not None:
            notice = {"Sunset": route.sunset, "Successor": route.successor}
        return answer, notice

    def _caller(self, session: Session, route: CodeRoute | RepositoryRoute, tag: str, journey: Journey,
                person: str | None) -> Calling:
        """Who is asking: an official of the certificate's organisation, a peer itself, or a caller a peer
        vouches for (then also the integrators the request passed through; their files were checked by the
        caller's own integrator)."""
        assert journey.verified is not None and journey.header is not None
        fingerprint, header = journey.verified.fingerprint, journey.header
        behalf = journey.verified.headers.get(ON_BEHALF_OF)
        if behalf is not None:
            vouched = self.common.check(behalf)
            caller, peer = authorise_forwarded(
                session, fingerprint, vouched, own_enterprise_number=self.settings.enterprise_number,
                max_hops=self.settings.max_hops, service=route.name,
                federated=isinstance(route, RepositoryRoute) and route.federated)
            return Calling(caller, tuple(vouched["Via"]), peer.name, vouched["Ticket"])
        if isinstance(route, CodeRoute) and route.handler(tag).audience == "peers":
            peer, organisation = authorise_peer(session, fingerprint)
            return Calling(Caller(organisation, header["Official"], header["Purpose"], header["MessageId"]),
                           came_from=peer.name)
        right = (route.handler(tag).access if isinstance(route, CodeRoute) else None) or route.name
        journey.facts = facts = identify(session, fingerprint, header, right, journey.received, person)
        return Calling(authorise(facts, header, right, journey.received, person))

    def _logged_on_caller(self, session: Session, route: CodeRoute | RepositoryRoute, tag: str, journey: Journey,
                          person: str | None, logged_on: LoggedOn) -> Calling:
        """An official logged on at the portal: their organisation's access right, their grant and the
        reference directory, checked as for a signed call (peer-only operations are not offered)."""
        assert journey.header is not None
        if isinstance(route, CodeRoute) and route.handler(tag).audience == "peers":
            raise OperationUnknown(f"{tag} is for peer integrators only; it is not offered on the portal.")
        right = (route.handler(tag).access if isinstance(route, CodeRoute) else None) or route.name
        journey.facts = facts = identify_logged_on(session, logged_on.enterprise_number, journey.header, right,
                                                   journey.received, person)
        return Calling(authorise(facts, journey.header, right, journey.received, person))

    def _invoke(self, session: Session, route: CodeRoute | RepositoryRoute, operation: OperationContract,
                payload: etree._Element, request: dict[str, Any], journey: Journey, calling: Calling,
                base_url: str, steps: list[Callable[[], None]]) -> tuple[Answer, type[KruispuntFault]]:
        """Serve the operation: the service's own code, the owning peer, or a backend; and which fault an
        off-contract answer is."""
        if isinstance(route, RepositoryRoute):
            if route.origin_peer_id is not None:
                return self._forward(route, operation, payload, journey.ticket, calling), PeerInvalidAnswer
            return self._generic(route, operation, payload), BackendInvalidAnswer
        caller = calling.caller
        context = CallContext(journey.ticket, journey.received, caller.organisation, caller.official,
                              caller.purpose, caller.message_id, BoundDispatcher(self.dispatcher, route.key),
                              session, steps.append, base_url, self.settings.name, self.forwarder,
                              self.signing_key, self.settings, payload, self.services)
        answer = until_no_conflict(session, lambda: route.invoke(payload.tag, request, context), operation.name,
                                   rolled_back=steps.clear)
        return answer, InternalError

    def _forward(self, route: RepositoryRoute, operation: OperationContract, payload: etree._Element, ticket: str,
                 calling: Calling) -> Answer:
        """The service belongs to another integrator: hand the request on, vouching for the caller."""
        peer = route.peer
        if peer is None:
            raise InternalError(f"The integrator that owns {route.key} is no longer registered as a peer.")
        caller = calling.caller
        vouched = Forwarded(caller.organisation.enterprise_number, caller.official, caller.purpose,
                            caller.message_id, ticket, (*calling.via, self.settings.enterprise_number))
        answer = forward(self.peer_client, peer, f"/soap/{route.name}/v{route.major}", payload,
                         operation.soap_action, vouched)
        return Answer(answer.payload, detail=f"forwarded to {peer.name}",
                      upstream_tickets=(answer.ticket, *answer.upstream))

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
        """What the operators should know but does not take this host out of rotation: open circuits (nothing
        when the database cannot say: readiness_problems names that)."""
        try:
            circuits = self.dispatcher.circuits.open_circuits()
        except Exception:
            return []
        return [f"circuit {c.state}: {c.service} backend {c.backend} after {c.failures} failure(s)"
                + (f", until {c.until:%H:%M:%S}Z" if c.until else "") + (f" ({c.last_error})" if c.last_error else "")
                for c in circuits]

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

    def _refused(self, fault: KruispuntFault, journey: Journey) -> bytes:
        """The signed fault; should writing it fail, a signed Server.Internal fault all the same (never gunicorn's
        unsigned error page, never an answer without its audit record)."""
        try:
            return self._signed_fault(fault, journey)
        except Exception:
            log.exception("the refusal %s could not be written, ticket %s", fault.code, journey.ticket)
            return self._signed_fault(InternalError(), journey)

    def _signed_fault(self, fault: KruispuntFault, journey: Journey) -> bytes:
        return signed_answer(self.signing_key, fault_payload(fault, journey.ticket), ticket=journey.ticket,
                             received=journey.received, message_id=journey.message_id,
                             request_digest=journey.signature_digest,
                             upstream_tickets=journey.upstream_tickets(fault))

    def _commit(self, session: Session, journey: Journey, fault: KruispuntFault | None, body: bytes,
                refuse: Callable[[KruispuntFault], bytes]) -> tuple[KruispuntFault | None, bytes, dict[str, Any]]:
        """No answer leaves without its audit record: if the record cannot be written with the transaction's
        effects, nothing of the transaction stays and the answer is a fault."""
        record = journey.audit_values(fault, datetime.now(UTC), hashlib.sha256(body).hexdigest())
        try:
            write_audit(session, record)
            session.commit()
        except Exception:
            log.exception("audit record could not be written, ticket %s", journey.ticket)
            _roll_back(session)
            unavailable = AuditUnavailable()
            return unavailable, refuse(unavailable), {**record, "outcome": "FAULT",
                                                                           "fault_code": unavailable.code}
        return fault, body, record



def _roll_back(session: Session) -> None:
    """Roll the request's transaction back; a database that is gone is the audit's problem, reported there."""
    try:
        session.rollback()
    except Exception:
        log.warning("rollback failed (the database connection is gone)", exc_info=True)


def _after_commit(step: Callable[[], None], ticket: str) -> None:
    """An after-commit step (an immediate delivery): its failure is logged; the outbox owes the work anyway."""
    try:
        step()
    except Exception:
        log.exception("after-commit step of ticket %s failed; the background forwarder takes over", ticket)



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
