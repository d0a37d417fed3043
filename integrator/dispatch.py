"""Stage: reach the backends registered in the repository: signed, timed out, answers verified and checked."""

from __future__ import annotations

import base64
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from kruispunt_client.xml import build
from lxml import etree
from sqlalchemy.orm import Session, sessionmaker

from integrator.backend_http import BackendHttp, HttpFailure
from integrator.circuit import CircuitBreaker
from integrator.contract import Contract
from integrator.envelope import EnvelopeLimits, parse_envelope
from integrator.faults import (
    BackendFault,
    BackendInvalidAnswer,
    BackendNotRegistered,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    KruispuntFault,
)
from integrator.metrics import backend_call
from integrator.namespaces import KP, SOAP_ENV, q
from integrator.pki import fingerprint
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope, signature_digest
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import SecurityPolicy, verify_envelope
from repository.queries import BackendView, backends_for

RETRY_ATTEMPTS = 3


@dataclass(frozen=True)
class BackendContract:
    """The request and response elements a kind of backend speaks, with their compiled XSD."""

    contract: Contract
    request: str
    response: str


@dataclass(frozen=True)
class BackendOutcome:
    """One backend's answer as plain data, or the fault that says why there is none."""

    backend: str
    answer: dict[str, Any] | None = None
    fault: KruispuntFault | None = None


@dataclass(frozen=True)
class Outgoing:
    """One request made ready once for every backend that receives it: the envelope serialised once, signed once
    where a backend requires it (each answer is then bound to that one signature)."""

    signed: bytes | None = None
    digest: bytes | None = None  # the signature's digest, which a signed answer's kp:InResponseTo must name
    plain: bytes | None = None

    @classmethod
    def of(cls, payload: etree._Element, key: SigningKey, *, signed: bool, plain: bool) -> Outgoing:
        root, _header, body = new_envelope()
        body.append(payload)
        unsigned = etree.tostring(root) if plain else None
        if not signed:
            return cls(plain=unsigned)
        sign_envelope(root, key)
        return cls(etree.tostring(root), signature_digest(root), unsigned)

    def for_backend(self, backend: BackendView) -> tuple[bytes, bytes | None]:
        if backend.security == "x509":
            assert self.signed is not None
            return self.signed, self.digest
        assert self.plain is not None
        return self.plain, None


class Dispatcher:
    """Calls backends over HTTP on a bounded thread pool; one per worker process. Connections to each backend are
    kept open and reused (integrator/backend_http.py); every kind of call honours the backend's circuit."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        circuits: CircuitBreaker,
        signing_key: SigningKey,
        trust: TrustStore,
        policy: SecurityPolicy,
        limits: EnvelopeLimits,
        parallelism: int = 8,
        cache_seconds: float = 30.0,
        backend_ca_file: Path | None = None,
    ) -> None:
        self._cache_seconds = cache_seconds
        self._sessions = sessions
        self.circuits = circuits
        self._key = signing_key
        self._trust = trust
        self._policy = policy
        self._limits = limits
        self._pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="dispatch")
        self._http = BackendHttp(ca_file=backend_ca_file)  # kept-alive connections; what may be retried: below
        self._cache: dict[str, tuple[float, list[BackendView]]] = {}
        self._fingerprints: dict[str, str] = {}  # a backend's registered certificate (PEM) -> its fingerprint
        self._lock = threading.Lock()

    def backends(self, service: str) -> list[BackendView]:
        """The service's backends from the repository, cached for at most cache_seconds per worker."""
        with self._lock:
            hit = self._cache.get(service)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        with self._sessions() as session:
            found = backends_for(session, service)
        with self._lock:
            self._cache[service] = (time.monotonic() + self._cache_seconds, found)
        return found

    def call_all(self, service: str, kind: BackendContract, payload: dict[str, Any]) -> list[BackendOutcome]:
        """Ask every backend of the service in parallel the same question (made and signed once); each outcome
        says answer or fault."""
        backends = self.backends(service)
        if not backends:
            raise BackendNotRegistered(f"No backend is registered for service {service}; the request cannot be served.")
        outgoing = Outgoing.of(build(kind.request, payload), self._key,
                               signed=any(b.security == "x509" for b in backends),
                               plain=any(b.security != "x509" for b in backends))
        futures = [self._pool.submit(self._outcome, b, kind, outgoing) for b in backends]
        return [f.result() for f in futures]

    def _outcome(self, backend: BackendView, kind: BackendContract, outgoing: Outgoing) -> BackendOutcome:
        try:
            return BackendOutcome(backend.name, answer=self._typed(backend, kind, outgoing))
        except KruispuntFault as fault:
            return BackendOutcome(backend.name, fault=fault)

    def call(self, backend: BackendView, kind: BackendContract, payload: dict[str, Any]) -> dict[str, Any]:
        """One backend, one typed read (a dropped keep-alive connection is retried once)."""
        outgoing = Outgoing.of(build(kind.request, payload), self._key, signed=backend.security == "x509",
                               plain=backend.security != "x509")
        return self._typed(backend, kind, outgoing)

    def _typed(self, backend: BackendView, kind: BackendContract, outgoing: Outgoing) -> dict[str, Any]:
        """A read: circuit honoured, answer decoded after its contract check."""
        answer = self._guarded(backend, outgoing, "", attempts=2, retry_on=(BackendUnavailable,))
        if answer.tag != kind.response:
            raise BackendInvalidAnswer(f"Source {backend.name} answered with an unexpected element.",
                                       source=backend.name)
        try:
            return kind.contract.check(answer, fault=BackendInvalidAnswer)
        except BackendInvalidAnswer as fault:
            raise BackendInvalidAnswer(f"Source {backend.name}: {fault.reason}", source=backend.name) from None

    def call_one(self, service: str, operation: str, payload: etree._Element,
                 soap_action: str = "") -> tuple[etree._Element, str]:
        """Generic dispatch: the first endpoint (by priority, then weight) that answers; retries and failover
        where the operation is registered as idempotent, or where the request never left; circuits respected."""
        candidates = failover_order(self.backends(service))
        if not candidates:
            raise BackendNotRegistered(f"No backend is registered for service {service}; the request cannot be served.")
        problems: list[str] = []
        outgoing: Outgoing | None = None
        for backend in candidates:
            idempotent = operation in backend.idempotent
            if outgoing is None or (backend.security == "x509") != (outgoing.signed is not None):
                outgoing = Outgoing.of(payload, self._key, signed=backend.security == "x509",
                                       plain=backend.security != "x509")
            try:
                answer = self._guarded(backend, outgoing, soap_action, RETRY_ATTEMPTS if idempotent else 1)
            except CircuitOpen:
                problems.append(f"{backend.name}: circuit open")
                continue
            except (BackendUnavailable, BackendTimeout, BackendInvalidAnswer) as fault:
                problems.append(f"{backend.name}: {fault.code}")
                if not idempotent and not (isinstance(fault, BackendUnavailable) and not fault.request_sent):
                    raise  # it may have been processed: never sent twice
                continue
            return answer, backend.name
        raise BackendUnavailable(f"No backend of {service} could answer: {'; '.join(problems)}.", source=service)

    def exchange(self, backend: BackendView, payload: etree._Element, soap_action: str = "") -> etree._Element:
        """Send one payload to one backend (signed where it requires), return its answer's payload; the circuit
        is honoured (the outbox's deliveries come here)."""
        outgoing = Outgoing.of(payload, self._key, signed=backend.security == "x509",
                               plain=backend.security != "x509")
        return self._guarded(backend, outgoing, soap_action, attempts=1)

    def _guarded(self, backend: BackendView, outgoing: Outgoing, soap_action: str, attempts: int,
                 retry_on: tuple[type[KruispuntFault], ...] = (BackendUnavailable, BackendTimeout),
                 ) -> etree._Element:
        """One backend call as every kind of call makes it: refused while the circuit is open, retried where
        allowed, its outcome counted towards the circuit (a refusal by the backend is not an outage)."""
        if not self.circuits.allow(backend.id):
            raise CircuitOpen(f"Source {backend.name} is not called: its circuit is open after repeated failures; "
                              "it is tried again after its cool-down.", source=backend.name)
        data, digest = outgoing.for_backend(backend)
        started = time.perf_counter()
        try:
            answer = self._with_retries(backend, data, digest, soap_action, attempts, retry_on)
        except BackendFault:
            self.circuits.success(backend.id)
            backend_call(backend.name, "refused", time.perf_counter() - started)
            raise
        except (BackendUnavailable, BackendTimeout, BackendInvalidAnswer) as fault:
            self.circuits.failure(backend.id, f"{fault.code}: {fault.reason}")
            backend_call(backend.name, fault.code, time.perf_counter() - started)
            raise
        self.circuits.success(backend.id)
        backend_call(backend.name, "answered", time.perf_counter() - started)
        return answer

    def _with_retries(self, backend: BackendView, data: bytes, digest: bytes | None, soap_action: str,
                      attempts: int, retry_on: tuple[type[KruispuntFault], ...]) -> etree._Element:
        for attempt in range(1, attempts + 1):
            try:
                status, content = self._exchange(backend, data, soap_action, repeatable=attempts > 1)
                return self._read_answer(backend, status, content, digest)
            except retry_on:
                if attempt >= attempts:
                    raise
                time.sleep(min(1.0, 0.05 * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")

    def _exchange(self, backend: BackendView, data: bytes, soap_action: str, repeatable: bool) -> tuple[int, bytes]:
        """POST and read the whole answer within the backend's timeout (a deadline, not a per-read limit)."""
        name, limit = backend.name, backend.timeout_seconds
        headers = ["Content-Type: text/xml; charset=utf-8", f'SOAPAction: "{soap_action}"']
        try:
            return self._http.post(backend.url, data, headers, limit, self._limits.max_bytes, repeatable=repeatable)
        except HttpFailure as failure:
            if not failure.sent:  # the request never left: another endpoint may have it
                unsent = BackendUnavailable(
                    f"Source {name} could not be connected to within {limit:g} s." if failure.timed_out
                    else f"Source {name} cannot be reached: {failure.reason}.", source=name)
                unsent.request_sent = False
                raise unsent from None
            if failure.timed_out:
                raise BackendTimeout(f"Source {name} did not answer within {limit:g} s.", source=name) from None
            if failure.too_large:
                raise BackendInvalidAnswer(f"Source {name} answered more than {self._limits.max_bytes} bytes.",
                                           source=name) from None
            raise BackendUnavailable(f"Source {name} closed the connection without answering.", source=name) from None

    def _expected_fingerprint(self, backend: BackendView) -> str:
        with self._lock:
            found = self._fingerprints.get(backend.certificate_pem)
        if found is None:
            found = fingerprint(x509.load_pem_x509_certificate(backend.certificate_pem.encode()))
            with self._lock:
                self._fingerprints[backend.certificate_pem] = found
        return found

    def _read_answer(self, backend: BackendView, status: int, content: bytes,
                     request_digest: bytes | None) -> etree._Element:
        name = backend.name
        try:
            envelope = parse_envelope(content, self._limits)
        except KruispuntFault as fault:
            raise BackendInvalidAnswer(
                f"Source {name} answered HTTP {status} with something that is not a SOAP envelope "
                f"({fault.reason})", source=name,
            ) from None
        fault_node = envelope.body.find(q(SOAP_ENV, "Fault"))
        if fault_node is not None:
            raise BackendFault(
                f"Source {name} refused the request: {fault_node.findtext('faultstring') or 'no reason given'}",
                source=name,
            )
        if request_digest is None:  # a backend registered without message security
            answer = next((c for c in envelope.body if isinstance(c.tag, str)), None)
            if answer is None:
                raise BackendInvalidAnswer(f"Source {name} answered with an empty Body.", source=name)
            return answer
        try:
            verified = verify_envelope(envelope, self._trust, self._policy, datetime.now(UTC))
        except KruispuntFault as fault:
            raise BackendInvalidAnswer(f"Source {name} sent an answer whose signature is refused: {fault.reason}",
                                       source=name) from None
        if verified.fingerprint != self._expected_fingerprint(backend):
            raise BackendInvalidAnswer(
                f"Source {name} answered with a certificate that is not the one registered for it.", source=name
            )
        binding = verified.headers.get(q(KP, "InResponseTo"))
        if binding is None or (binding.text or "").strip() != base64.b64encode(request_digest).decode():
            raise BackendInvalidAnswer(
                f"Source {name} sent an answer that is not bound to this request (signed kp:InResponseTo).",
                source=name,
            )
        answer = verified.payload
        if answer is None:
            raise BackendInvalidAnswer(f"Source {name} answered with an empty Body.", source=name)
        return answer


def failover_order(backends: list[BackendView]) -> list[BackendView]:
    """By priority (lower first); within a priority, a weighted random order (Efraimidis–Spirakis)."""
    keyed = [(b.priority, -(random.random() ** (1.0 / max(b.weight, 1))), b) for b in backends]
    return [b for _, _, b in sorted(keyed, key=lambda k: (k[0], k[1]))]


@dataclass(frozen=True)
class BoundDispatcher:
    """A dispatcher bound to the service a handler serves, so handlers never name the repository."""

    dispatcher: Dispatcher
    service: str

    def call_all(self, kind: BackendContract, payload: dict[str, Any]) -> list[BackendOutcome]:
        return self.dispatcher.call_all(self.service, kind, payload)

    def backend(self, name: str | None = None) -> BackendView:
        """The service's backend of that name (or its first by failover order when no name is given)."""
        backends = self.dispatcher.backends(self.service)
        found = next((b for b in backends if b.name == name), None) if name else next(
            iter(failover_order(backends)), None)
        if found is None:
            raise BackendNotRegistered(
                f"No backend {name or ''} is registered for service {self.service}; the request cannot be served.")
        return found

    def call(self, kind: BackendContract, payload: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        """One typed read from one backend of the service (see backend())."""
        return self.dispatcher.call(self.backend(name), kind, payload)
