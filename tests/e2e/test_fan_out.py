"""A lookup asks its sources the same question once: one request made and signed for all of them, each answer still
bound to it; and a source whose circuit is open is not called at all. Real sockets: the reference backends, and
recording servers standing in for some of them on their ports."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lxml import etree

from integrator.namespaces import DS, SOAP_ENV, q
from services.backends.persons import PERSONS
from services.demo_organisations import OFFICIALS
from tests.support import TAX_NS, TAX_PATH, Request, audit_record, post, reset_circuits

TX = f"{{{TAX_NS}}}"
NOT_SOAP = b"not a SOAP envelope"


class _Recorder(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


@contextmanager
def recording(stack, names: list[str]) -> Iterator[dict[str, list[bytes]]]:  # type: ignore[no-untyped-def]
    """The named backends replaced by servers on their ports that keep every request body and answer garbage."""
    seen: dict[str, list[bytes]] = {name: [] for name in names}
    servers = []
    for name in names:
        bodies = seen[name]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self, bodies: list[bytes] = bodies) -> None:
                bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self.send_response(200)
                self.send_header("Content-Length", str(len(NOT_SOAP)))
                self.end_headers()
                self.wfile.write(NOT_SOAP)

            def log_message(self, *args: object) -> None:
                pass

        stack.stop_backend(name)
        server = _Recorder(("127.0.0.1", stack.backend_ports[name]), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((name, server))
    try:
        yield seen
    finally:
        for name, server in servers:
            server.shutdown()
            server.server_close()
            stack.start_backend(name)
        reset_circuits(stack.sessions, "TaxExemptionStatus/v1", names)


def lookup(stack) -> tuple[str, dict[str, tuple[str, str]]]:  # type: ignore[no-untyped-def]
    reply = post(stack.base_url, Request(stack.pki.kruisdorp, OFFICIALS[0].insz, PERSONS[0].insz,
                                         date.today()).signed(), path=TAX_PATH)
    assert reply.status_code == 200, reply.text[:500]
    response = etree.fromstring(reply.content).find(f"{q(SOAP_ENV, 'Body')}/{TX}GetTaxExemptionStatusesResponse")
    return reply.headers["X-Kruispunt-Ticket"], {
        s.findtext(f"{TX}Name"): (s.findtext(f"{TX}Outcome"), s.findtext(f"{TX}Reason") or "")
        for s in response.iter(f"{TX}Source") if s.find(f"{TX}Name") is not None}


def test_the_sources_receive_one_request_signed_once(stack) -> None:  # type: ignore[no-untyped-def]
    with recording(stack, ["disability", "pension-service"]) as seen:
        _, sources = lookup(stack)
    first, second = seen["disability"], seen["pension-service"]
    assert len(first) == len(second) == 1
    assert first[0] == second[0], "the same bytes: one request built, signed and serialised for both"
    signature = etree.fromstring(first[0]).find(f".//{q(DS, 'SignatureValue')}")
    assert signature is not None and signature.text
    # and the real sources, asked the same question, answered it bound to that one signature
    assert {name: outcome for name, (outcome, _) in sources.items()
            if name not in seen} == {"health-insurance": "CONSULTED", "social-integration": "CONSULTED"}


def test_a_source_whose_circuit_is_open_is_not_called(stack) -> None:  # type: ignore[no-untyped-def]
    threshold = stack.settings.circuit.threshold
    with recording(stack, ["disability"]) as seen:
        for _ in range(threshold):  # garbage answers, one after the other: the circuit opens
            _, sources = lookup(stack)
            assert sources["disability"][1].startswith("Server.Backend.InvalidAnswer")
        calls = len(seen["disability"])
        time.sleep(stack.settings.circuit.cache_seconds + 0.5)  # every worker's view of the circuits is that fresh
        ticket, sources = lookup(stack)
        assert len(seen["disability"]) == calls == threshold, "not called while its circuit is open"
    outcome, reason = sources["disability"]
    assert outcome == "UNAVAILABLE" and reason.startswith("Server.Backend.CircuitOpen"), reason
    assert "Server.Backend.CircuitOpen" in (audit_record(stack.sessions, ticket).detail or "")
