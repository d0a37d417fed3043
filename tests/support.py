"""Test helpers that speak the wire: build and sign requests by hand, post them, read faults and audit records."""

from __future__ import annotations

import itertools
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from kruispunt_client.xml import build
from lxml import etree
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from integrator.audit import AuditRecord
from integrator.namespaces import KP, SOAP_ENV, q
from integrator.pki import Identity
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope
from repository.models import Backend, Circuit

TAX_NS = "urn:kruispunt:TaxExemptionStatus:v1"
TAX_PATH = "/soap/TaxExemptionStatus/v1"
PROJECT = Path(__file__).resolve().parent.parent


_PORTS = itertools.count()


def free_port() -> int:
    """A free loopback port for a server a test starts. Each xdist worker draws from its own range below the
    kernel's ephemeral ports, so two workers (or an outgoing connection) never get the same port between our
    check and the server's bind."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    low, span = 10_000 + 2_500 * (worker % 8), 2_500
    start = random.randrange(span)
    for step in range(span):
        port = low + (start + next(_PORTS) + step) % span
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}..{low + span}")


def wait_for(url: str, timeout: float = 60.0, verify: str | bool = True) -> None:
    """Until url answers below 500 (verify: the CA file for an https server of a test's own CA)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1, verify=verify).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


def gunicorn(app: str, port: int, env: dict[str, str], *, workers: int = 1, log: Path) -> subprocess.Popen:
    """A real gunicorn server on 127.0.0.1:port, logging to a file, with a control socket of its own beside it
    (not the one default path every master on the machine would share)."""
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", str(workers), "-k", "gthread",
         "--threads", "4", "--graceful-timeout", "2", "--control-socket", str(log.parent / f"gunicorn-{port}.ctl"),
         app],
        env=env, cwd=PROJECT, stdout=handle, stderr=subprocess.STDOUT,
    )


@dataclass
class Request:
    """The pieces of a lookup request; sign() turns it into bytes, mutating hooks model attackers."""

    identity: Identity
    official: str
    insz: str
    on: date = field(default_factory=date.today)
    purpose: str = "MUNICIPAL_TAX_EXEMPTION"
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    organisation: str | None = None
    now: datetime | None = None
    ttl: timedelta = timedelta(minutes=5)
    sign_caller: bool = True

    def envelope(self) -> tuple[etree._Element, etree._Element]:
        root, header, body = new_envelope()
        caller = build(q(KP, "Caller"), {"Official": self.official, "Purpose": self.purpose,
                                         "MessageId": self.message_id, "Organisation": self.organisation})
        header.append(caller)
        body.append(build(f"{{{TAX_NS}}}GetTaxExemptionStatusesRequest",
                          {"Insz": self.insz, "ReferenceDate": self.on}))
        return root, caller

    def signed(self, after: Callable[[etree._Element], None] | None = None) -> bytes:
        root, caller = self.envelope()
        sign_envelope(root, SigningKey.from_identity(self.identity), headers=[caller] if self.sign_caller else [],
                      now=self.now or datetime.now(UTC), ttl=self.ttl)
        if after is not None:
            after(root)
        return etree.tostring(root)


def post(base_url: str, data: bytes, path: str = TAX_PATH) -> requests.Response:
    return requests.post(f"{base_url}{path}", data=data, timeout=30,
                         headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})


@dataclass(frozen=True)
class FaultSeen:
    http_status: int
    code: str
    reason: str
    ticket: str
    source: str | None
    faultstring: str


def fault_of(response: requests.Response) -> FaultSeen:
    root = etree.fromstring(response.content)
    fault = root.find(f"{q(SOAP_ENV, 'Body')}/{q(SOAP_ENV, 'Fault')}")
    assert fault is not None, f"expected a SOAP fault, got HTTP {response.status_code}: {response.text[:500]}"
    detail = fault.find(f"detail/{q(KP, 'FaultDetail')}")
    assert detail is not None
    return FaultSeen(
        http_status=response.status_code,
        code=detail.findtext(q(KP, "Code")) or "",
        reason=detail.findtext(q(KP, "Reason")) or "",
        ticket=detail.findtext(q(KP, "Ticket")) or "",
        source=detail.findtext(q(KP, "Source")),
        faultstring=fault.findtext("faultstring") or "",
    )


def reset_circuits(sessions: sessionmaker[Session], service: str, names: list[str]) -> None:
    """Forget what a test's stand-in made the named backends of the service fail: every backend call honours its
    circuit, so a test that makes a source fail three times would otherwise leave it open for the next tests."""
    with sessions() as session:
        ids = select(Backend.id).where(Backend.service == service, Backend.name.in_(names))
        session.execute(delete(Circuit).where(Circuit.backend_id.in_(ids)))
        session.commit()


def audit_record(sessions: sessionmaker[Session], ticket: str) -> AuditRecord:
    """The one audit record of a ticket (fails if there is none or more than one)."""
    with sessions() as session:
        rows = session.execute(select(AuditRecord).where(AuditRecord.ticket == ticket)).scalars().all()
    assert len(rows) == 1, f"expected exactly one audit record for {ticket}, found {len(rows)}"
    return rows[0]


@contextmanager
def answering_server(answer: Callable[[bytes], bytes]) -> Iterator[tuple[str, list[bytes]]]:
    """A real HTTP server on loopback that answers every POST with answer(request); yields its URL and the
    requests it received."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(data)
            body = answer(data)
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
