"""Stage: reach the backends registered in the repository: signed, timed out, answers verified and checked."""

from __future__ import annotations

import base64
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from cryptography import x509
from lxml import etree
from requests.adapters import HTTPAdapter
from sqlalchemy.orm import Session, sessionmaker
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from urllib3.exceptions import ReadTimeoutError

from integrator.circuit import CircuitBreaker
from integrator.contract import Contract, build
from integrator.envelope import EnvelopeLimits, parse_envelope
from integrator.faults import (
    BackendFault,
    BackendInvalidAnswer,
    BackendNotRegistered,
    BackendTimeout,
    BackendUnavailable,
    KruispuntFault,
)
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


class Dispatcher:
    """Calls backends over HTTP on a bounded thread pool; one per worker process."""

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
    ) -> None:
        self._cache_seconds = cache_seconds
        self._sessions = sessions
        self.circuits = circuits
        self._key = signing_key
        self._trust = trust
        self._policy = policy
        self._limits = limits
        self._pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="dispatch")
        self._http = requests.Session()
        # backends are reached directly: without this, requests re-reads the whole environment for proxy
        # settings on every call (5 ms of CPU per lookup, measured)
        self._http.trust_env = False
        self._http.mount("http://", HTTPAdapter(pool_connections=16, pool_maxsize=parallelism * 4))
        self._http.mount("https://", HTTPAdapter(pool_connections=16, pool_maxsize=parallelism * 4))
        self._cache: dict[str, tuple[float, list[BackendView]]] = {}
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
        """Ask every backend of the service in parallel; each outcome says answer or fault."""
        backends = self.backends(service)
        if not backends:
            raise BackendNotRegistered(f"No backend is registered for service {service}; the request cannot be served.")
        futures = [self._pool.submit(self._outcome, b, kind, payload) for b in backends]
        return [f.result() for f in futures]

    def _outcome(self, backend: BackendView, kind: BackendContract, payload: dict[str, Any]) -> BackendOutcome:
        try:
            return BackendOutcome(backend.name, answer=self.call(backend, kind, payload))
        except KruispuntFault as fault:
            return BackendOutcome(backend.name, fault=fault)

    def call(self, backend: BackendView, kind: BackendContract, payload: dict[str, Any]) -> dict[str, Any]:
        """One backend, one typed read: a dropped keep-alive connection is retried once; the answer is decoded
        after its contract check."""
        answer = self._with_retries(backend, build(kind.request, payload), "", attempts=2,
                                    retry_on=(BackendUnavailable,))
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
        for backend in candidates:
            if not self.circuits.allow(backend.id):
                problems.append(f"{backend.name}: circuit open")
                continue
            idempotent = operation in backend.idempotent
            try:
                answer = self._with_retries(backend, payload, soap_action, RETRY_ATTEMPTS if idempotent else 1)
            except BackendFault:
                self.circuits.success(backend.id)  # it answered: a refusal is not an outage
                raise
            except (BackendUnavailable, BackendTimeout, BackendInvalidAnswer) as fault:
                self.circuits.failure(backend.id, f"{fault.code}: {fault.reason}")
                problems.append(f"{backend.name}: {fault.code}")
                if not idempotent and not (isinstance(fault, BackendUnavailable) and not fault.request_sent):
                    raise  # it may have been processed: never sent twice
                continue
            self.circuits.success(backend.id)
            return answer, backend.name
        raise BackendUnavailable(f"No backend of {service} could answer: {'; '.join(problems)}.", source=service)

    def _with_retries(self, backend: BackendView, payload: etree._Element, soap_action: str, attempts: int,
                      retry_on: tuple[type[KruispuntFault], ...] = (BackendUnavailable, BackendTimeout),
                      ) -> etree._Element:
        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.05, max=1.0),
            retry=retry_if_exception_type(retry_on),
            reraise=True,
        )
        return retrying(self.exchange, backend, payload, soap_action)

    def exchange(self, backend: BackendView, payload: etree._Element, soap_action: str = "") -> etree._Element:
        """Send one payload to one backend (signed where it requires), return its answer's payload."""
        root, _header, body = new_envelope()
        body.append(deepcopy(payload))
        signed = backend.security == "x509"
        if signed:
            sign_envelope(root, self._key)
        status, content = self._exchange(backend, etree.tostring(root), soap_action)
        return self._read_answer(backend, status, content, signature_digest(root) if signed else None)

    def _exchange(self, backend: BackendView, data: bytes, soap_action: str = "") -> tuple[int, bytes]:
        """POST and read the whole answer within the backend's timeout (a deadline, not a per-read limit)."""
        name, limit = backend.name, backend.timeout_seconds
        deadline = time.monotonic() + limit
        timeout = BackendTimeout(f"Source {name} did not answer within {limit:g} s.", source=name)
        try:
            headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{soap_action}"'}
            with self._http.post(backend.url, data=data, timeout=limit, stream=True, headers=headers) as reply:
                chunks, size = [], 0
                for chunk in reply.iter_content(chunk_size=16_384):
                    size += len(chunk)
                    if time.monotonic() > deadline:
                        raise timeout
                    if size > self._limits.max_bytes:
                        raise BackendInvalidAnswer(f"Source {name} answered more than {self._limits.max_bytes} bytes.",
                                                   source=name)
                    chunks.append(chunk)
                return reply.status_code, b"".join(chunks)
        except requests.ConnectTimeout:
            unsent = BackendUnavailable(f"Source {name} could not be connected to within {limit:g} s.", source=name)
            unsent.request_sent = False  # the request never left: another endpoint may have it
            raise unsent from None
        except requests.Timeout:
            raise timeout from None
        except requests.RequestException as exc:
            # requests reports a read timeout while streaming the body as a ConnectionError
            if isinstance(exc.args[0] if exc.args else None, ReadTimeoutError) or time.monotonic() >= deadline:
                raise timeout from None
            unavailable = BackendUnavailable(f"Source {name} cannot be reached: {type(exc).__name__}.", source=name)
            unavailable.request_sent = not isinstance(exc, requests.ConnectionError) or _sent(exc)
            raise unavailable from None

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
        expected = x509.load_pem_x509_certificate(backend.certificate_pem.encode())
        if verified.fingerprint != fingerprint(expected):
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


def _sent(exc: requests.RequestException) -> bool:
    """Whether the request may have reached the backend (anything but a refused or unresolvable connection)."""
    text = str(exc)
    return not any(marker in text for marker in ("Connection refused", "NewConnectionError", "Name or service"))


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
