"""The journey of one request: bytes in, signed bytes out, one audit record, every refusal a fault."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from integrator.answer import fault_payload, signed_answer
from integrator.audit import AuditDraft, write_audit
from integrator.caller import authorise
from integrator.config import Settings
from integrator.contract import Contract, build
from integrator.dispatch import BoundDispatcher, Dispatcher
from integrator.envelope import check_size, parse_envelope
from integrator.faults import (
    AuditUnavailable,
    CallerHeaderMissing,
    ContractViolation,
    InternalError,
    KruispuntFault,
    OperationUnknown,
    ServiceUnknown,
    UnsignedContent,
)
from integrator.namespaces import KP, q
from integrator.pki import fingerprint
from integrator.replay import remember
from integrator.service import CallContext, ServiceDefinition
from integrator.ticket import new_ticket
from integrator.timing import StageClock
from integrator.wssec.sign import SigningKey
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import Verified, verify_envelope

log = logging.getLogger("kruispunt.pipeline")
CALLER = q(KP, "Caller")


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
    ) -> None:
        self.settings = settings
        self.services = {s.path: s for s in services}
        self.contracts = {s.path: Contract(settings.xsd_dir / s.xsd) for s in services}
        self.common = Contract(settings.xsd_dir / "common/v1/common.xsd")
        self.sessions = sessions
        self.signing_key = signing_key
        self.trust = trust
        self.dispatcher = dispatcher

    def handle(self, path: str, data: bytes, declared_length: int = 0) -> Reply:
        received = datetime.now(UTC)
        unread = declared_length > len(data)  # refused on its declared length alone: the body was never read
        draft = AuditDraft(new_ticket(received), received, "unread" if unread else hashlib.sha256(data).hexdigest())
        verified: Verified | None = None
        clock = StageClock()
        try:
            verified, payload = self._serve(path, data, max(declared_length, len(data)), draft, received, clock)
            body = signed_answer(self.signing_key, payload, ticket=draft.ticket, received=received,
                                 message_id=draft.message_id, request_digest=verified.signature_digest)
            status = 200
        except KruispuntFault as fault:
            status, body = self._refusal(fault, draft, received, verified)
        except Exception:
            log.exception("unexpected error, ticket %s", draft.ticket)
            status, body = self._refusal(InternalError(), draft, received, verified)
        clock.mark("answer")
        reply = self._audited(draft, status, body)
        clock.mark("audit")
        return Reply(reply.status, reply.body, reply.ticket, clock.server_timing())

    def _serve(self, path: str, data: bytes, length: int, draft: AuditDraft, now: datetime,
               clock: StageClock) -> tuple[Verified, etree._Element]:
        service = self.services.get(path)
        if service is None:
            raise ServiceUnknown(f"No service is published at {path}; see GET /services for the catalogue.")
        draft.service = service.key
        check_size(length, self.settings.limits)
        envelope = parse_envelope(data, self.settings.limits)
        clock.mark("envelope")
        verified = verify_envelope(envelope, self.trust, self.settings.security, now)
        clock.mark("security")
        draft.certificate = _fingerprint(verified)
        header = self._caller_header(verified, envelope.header)
        draft.official, draft.purpose, draft.message_id = header["Official"], header["Purpose"], header["MessageId"]
        keys = [f"sig:{verified.signature_digest.hex()}", f"mid:{draft.certificate[:32]}:{header['MessageId']}"]
        payload = verified.payload
        if payload is None:
            raise OperationUnknown("The signed Body is empty; it must hold one request element.")
        operation = service.operation_for(payload.tag)
        if operation is None:
            raise OperationUnknown(
                f"{payload.tag} is not an operation of {service.key}; "
                f"expected one of {', '.join(op.request for op in service.operations)}."
            )
        draft.operation = operation.name
        with self.sessions() as session:
            remember(session, keys, verified.expires + self.settings.security.clock_skew, now)
            clock.mark("replay")
            request = self.contracts[path].check(payload)
            if operation.person_field:
                draft.person = request.get(operation.person_field)
            clock.mark("contract")
            caller = authorise(session, draft.certificate, header, service.name, now)
            clock.mark("caller")
        draft.organisation = caller.organisation.enterprise_number
        context = CallContext(draft.ticket, now, caller.organisation, caller.official, caller.purpose,
                              caller.message_id, BoundDispatcher(self.dispatcher, service.key))
        result = operation.handler(request, context)
        clock.mark("handle")
        answer = build(operation.response, result.body)
        self.contracts[path].check(answer, fault=InternalError)
        draft.outcome, draft.detail = result.outcome, result.detail
        return verified, answer

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

    def _refusal(self, fault: KruispuntFault, draft: AuditDraft, received: datetime,
                 verified: Verified | None) -> tuple[int, bytes]:
        draft.outcome, draft.fault_code, draft.detail = "FAULT", fault.code, fault.reason
        body = signed_answer(self.signing_key, fault_payload(fault, draft.ticket), ticket=draft.ticket,
                             received=received, message_id=draft.message_id,
                             request_digest=verified.signature_digest if verified else None)
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


def _fingerprint(verified: Verified) -> str:
    return fingerprint(verified.certificate)
