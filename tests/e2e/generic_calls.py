"""Wire helpers for generic dispatch: a StatusSource-v1 service of a test's own (registered, activated, with its
own backend endpoints, an access right and a grant), signed get_statuses calls, the integrator's signed answer
checked, a reference backend asked directly, and small HTTP servers standing in for backend endpoints."""

from __future__ import annotations

import base64
import hashlib
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from kruispunt_client.xml import build
from lxml import etree
from sqlalchemy import delete, select

from integrator import commands
from integrator.audit import AuditRecord
from integrator.envelope import EnvelopeLimits, parse_envelope
from integrator.namespaces import DS, KP, q
from integrator.pki import fingerprint, load_trust_anchors
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import SecurityPolicy, verify_envelope
from repository import registry
from repository.models import Backend, Circuit
from services.demo_organisations import KRUISDORP, OFFICIALS, PURPOSE_TAX
from tests.support import PROJECT, FaultSeen, Request, audit_record, fault_of, post

SS = "urn:kruispunt:backends:StatusSource:v1"
WSDL = PROJECT / "wsdl" / "StatusSource-v1.wsdl"
SOURCE_XSD = "xsd/backends/StatusSource/v1/StatusSource.xsd"
OPERATION = "get_statuses"
SOURCE = "health-insurance"  # the reference backend the endpoints of these tests are (or stand in for)
GRANTED = OFFICIALS[0]  # Kruisdorp, tax office


def unique_name() -> str:
    """A service name no other test uses: the stack's database is shared by every test of a worker."""
    return f"Status{uuid.uuid4().hex[:12]}"


# --- the service ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    """A backend endpoint of a test's service, as commands.add_backend registers it."""

    name: str
    url: str
    priority: int = 0
    weight: int = 1
    timeout: float = 5.0
    idempotent: bool = True


def source_certificate(stack) -> bytes:  # type: ignore[no-untyped-def]
    return (stack.settings.pki_dir / f"backend-{SOURCE}.crt").read_bytes()


def register_generic(stack, endpoints: list[Endpoint], *, status: str = "active",  # type: ignore[no-untyped-def]
                     name: str | None = None, granted: bool = True) -> str:
    """StatusSource-v1's documents registered as <name> 1.0 owned by the integrator, moved to `status`, with the
    endpoints as backends of <name>/v1, and Kruisdorp's tax official granted the service."""
    name = name or unique_name()
    docs = commands.read_documents(WSDL, PROJECT)
    with stack.sessions() as session:
        commands.register_service(session, name, "1.0", docs, stack.settings.enterprise_number,
                                  "Status periods, served by generic dispatch (test)")
        if status != "draft":
            registry.set_lifecycle(session, name, "1.0", "active")
        for endpoint in endpoints:
            commands.add_backend(session, f"{name}/v1", endpoint.name, endpoint.url, source_certificate(stack),
                                 endpoint.timeout, priority=endpoint.priority, weight=endpoint.weight,
                                 idempotent=[OPERATION] if endpoint.idempotent else [])
        if granted:
            commands.add_access_right(session, KRUISDORP.enterprise_number, name)
            commands.add_grant(session, KRUISDORP.enterprise_number, GRANTED.insz, name, PURPOSE_TAX)
        session.commit()
    return name


def backend_ids(stack, name: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with stack.sessions() as session:
        return dict(session.execute(select(Backend.name, Backend.id).where(Backend.service == f"{name}/v1")).all())


def circuits(stack, name: str) -> dict[str, Circuit]:  # type: ignore[no-untyped-def]
    """The circuit rows of the service's backends, by backend name."""
    with stack.sessions() as session:
        rows = session.execute(select(Circuit, Backend.name).join(Backend, Backend.id == Circuit.backend_id)
                               .where(Backend.service == f"{name}/v1")).all()
        session.expunge_all()
    return {backend: circuit for circuit, backend in rows}


def forget_circuits(stack, name: str) -> None:  # type: ignore[no-untyped-def]
    """Remove the circuit rows of the service's backends (an open circuit would show in every readiness check)."""
    with stack.sessions() as session:
        ids = select(Backend.id).where(Backend.service == f"{name}/v1").scalar_subquery()
        session.execute(delete(Circuit).where(Circuit.backend_id.in_(ids)))
        session.commit()


# --- the call --------------------------------------------------------------------------------------------------
@dataclass
class StatusCall(Request):
    """A signed get_statuses request (the StatusSource contract), with optional extra request elements."""

    official: str = GRANTED.insz
    insz: str = ""
    on: date = date(2026, 1, 1)
    purpose: str = PURPOSE_TAX
    extra: dict[str, Any] = field(default_factory=dict)

    def envelope(self):  # type: ignore[no-untyped-def]
        root, caller = super().envelope()
        body = root[1]
        body.remove(body[0])
        body.append(build(f"{{{SS}}}{OPERATION}", {"insz": self.insz, "reference_date": self.on, **self.extra}))
        return root, caller


def call(stack, name: str, request: StatusCall) -> tuple[requests.Response, bytes]:  # type: ignore[no-untyped-def]
    data = request.signed()
    return post(stack.base_url, data, path=f"/soap/{name}/v1"), data


@dataclass(frozen=True)
class SignedAnswer:
    ticket: str
    payload: etree._Element
    header: etree._Element  # kp:Answer


def signed_by_integrator(stack, reply: requests.Response) -> tuple[str, etree._Element, etree._Element]:  # type: ignore[no-untyped-def]
    """The ticket, the signed kp:Answer header and the Body's element of an answer or a fault, after checking it is
    signed by the integrator and its kp:Answer carries the ticket of the X-Kruispunt-Ticket header."""
    envelope = parse_envelope(reply.content, EnvelopeLimits().scaled(16 * 1024 * 1024))
    verified = verify_envelope(envelope, trust_store(stack), SecurityPolicy(), datetime.now(UTC))
    integrator_cert = load_trust_anchors([stack.settings.pki_dir / "integrator.crt"])[0]
    assert fingerprint(verified.certificate) == fingerprint(integrator_cert)
    header = verified.headers.get(q(KP, "Answer"))
    assert header is not None, "the answer carries no signed kp:Answer header"
    ticket = header.findtext(q(KP, "Ticket")) or ""
    assert ticket and ticket == reply.headers["X-Kruispunt-Ticket"]
    assert verified.payload is not None
    return ticket, header, verified.payload


def refusal_audited(stack, reply: requests.Response, code: str, http_status: int) -> tuple[FaultSeen, AuditRecord]:  # type: ignore[no-untyped-def]
    """The fault with its code and HTTP status, signed by the integrator with the header's ticket, and its one audit
    record: a FAULT with that code and the reason the caller read."""
    seen = fault_of(reply)
    assert (seen.http_status, seen.code) == (http_status, code), seen.reason
    ticket, _header, _payload = signed_by_integrator(stack, reply)
    assert seen.ticket == ticket
    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code, record.detail) == ("FAULT", code, seen.reason)
    return seen, record


def integrator_answer(stack, reply: requests.Response, request: bytes) -> SignedAnswer:  # type: ignore[no-untyped-def]
    """The answer, signed by the integrator (see signed_by_integrator) and bound to the request's signature."""
    if reply.status_code != 200:
        seen = fault_of(reply)
        raise AssertionError(f"expected an answer, got HTTP {seen.http_status} {seen.code}: {seen.reason}")
    ticket, header, payload = signed_by_integrator(stack, reply)
    sent = etree.fromstring(request).find(f".//{q(DS, 'SignatureValue')}")
    assert sent is not None
    digest = base64.b64encode(hashlib.sha256(base64.b64decode(sent.text or "")).digest()).decode()
    assert header.findtext(q(KP, "RequestSignatureDigest")) == digest
    return SignedAnswer(ticket, payload, header)


def trust_store(stack) -> TrustStore:  # type: ignore[no-untyped-def]
    return TrustStore.from_files(stack.settings.trust_anchor_paths, stack.settings.crl_path)


def backend_answer(stack, url: str, insz: str, on: date) -> etree._Element:  # type: ignore[no-untyped-def]
    """What a reference backend itself answers, asked directly with the integrator's key (the only caller it
    accepts); its signature is checked to be the backend's own."""
    root, _header, body = new_envelope()
    body.append(build(f"{{{SS}}}{OPERATION}", {"insz": insz, "reference_date": on}))
    sign_envelope(root, SigningKey.from_identity(stack.pki.integrator))
    reply = requests.post(url, data=etree.tostring(root), timeout=30,
                          headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{OPERATION}"'})
    assert reply.status_code == 200, reply.text[:1000]
    verified = verify_envelope(parse_envelope(reply.content, EnvelopeLimits()), trust_store(stack), SecurityPolicy(),
                               datetime.now(UTC))
    own = load_trust_anchors([stack.settings.pki_dir / f"backend-{SOURCE}.crt"])[0]
    assert fingerprint(verified.certificate) == fingerprint(own)
    assert verified.payload is not None
    return verified.payload


def periods(payload: etree._Element) -> list[tuple[str, str, str | None]]:
    """(code, start, end) of every StatusPeriod of a get_statusesResponse."""
    assert payload.tag == f"{{{SS}}}get_statusesResponse", payload.tag
    return sorted((p.findtext(f"{{{SS}}}code") or "", p.findtext(f"{{{SS}}}start") or "",
                   p.findtext(f"{{{SS}}}end")) for p in payload.iter(f"{{{SS}}}StatusPeriod"))


def canonical(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True)


# --- stand-in endpoints ------------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True


class FakeEndpoint:
    """A small HTTP server standing in for a backend endpoint. It counts the requests it receives, then:
    drops the connection without answering (`drop`); or, while `slow`, keeps the caller waiting `delay` s and
    gives up without answering; or passes the request on to `upstream` (a real backend) and its answer back."""

    def __init__(self, upstream: str | None = None, *, slow: bool = False, drop: bool = False,
                 delay: float = 3.0) -> None:
        self.upstream, self.slow, self.drop, self.delay = upstream, slow, drop, delay
        self._hits = 0
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server: _Server | None = None

    @property
    def hits(self) -> int:
        with self._lock:
            return self._hits

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with fake._lock:
                    fake._hits += 1
                if fake.drop or fake.upstream is None:
                    self.close_connection = True  # accepted, read, closed: no answer at all
                    return
                if fake.slow:
                    fake._released.wait(fake.delay)
                    self.close_connection = True
                    return
                reply = requests.post(fake.upstream, data=data, timeout=30, headers={
                    "Content-Type": self.headers.get("Content-Type", "text/xml; charset=utf-8"),
                    "SOAPAction": self.headers.get("SOAPAction", '""')})
                self.send_response(reply.status_code)
                self.send_header("Content-Type", reply.headers.get("Content-Type", "text/xml; charset=utf-8"))
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[FakeEndpoint]:
        self._server = _Server(("127.0.0.1", 0), self._handler())
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._released.set()
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=10)


@contextmanager
def black_hole() -> Iterator[str]:
    """The URL of a port that accepts no connection in time (its listen backlog is full, so the kernel drops
    further SYNs), as a host that drops packets: connecting times out; no request can ever be sent."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield f"http://127.0.0.1:{port}/"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


# --- the command line ----------------------------------------------------------------------------------------------
def kruispunt(stack, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    """The `kruispunt` console script as an operator runs it, against the stack's database."""
    script = Path(sys.executable).parent / "kruispunt"
    return subprocess.run([str(script), *args], env=stack.env, cwd=PROJECT, capture_output=True, text=True,
                          timeout=120, check=False)


def contract_copy(root: Path, *changes: tuple[str, str]) -> Path:
    """StatusSource-v1's WSDL and schemas copied below root (wsdl/, xsd/), with changes (old, new) to the source's
    XSD, each of which must apply exactly once; returns the WSDL's path."""
    docs = commands.read_documents(WSDL, PROJECT)
    for path, content in docs.files.items():
        if path == SOURCE_XSD:
            text = content.decode()
            for old, new in changes:
                assert text.count(old) == 1, old
                text = text.replace(old, new)
            content = text.encode()
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root / docs.wsdl
