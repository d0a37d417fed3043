"""KruispuntClient over HTTP against a stand-in integrator on the loopback interface: it serves a WSDL, checks each
request's signature independently and answers as the integrator does (or, when told, does not)."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lxml import etree
from zeep.exceptions import Fault

import independent
from conftest import Network
from independent import AnswerSpec
from kruispunt_client import AnswerRefused, KruispuntClient, ReceiptInvalid, fault_detail
from kruispunt_client.namespaces import DS, KP, SOAP_ENV, q

WSDL = (Path(__file__).parent / "data" / "Echo.wsdl").read_text()
ECHO = "urn:kruispunt:Echo:v1"


@dataclass
class StandIn:
    """What the stand-in integrator answers next, and what it saw."""

    network: Network
    mode: str = "answer"  # answer, fault, unbound, tampered, foreign
    requests: list[dict[str, etree._Element]] = field(default_factory=list)

    def reply(self, data: bytes) -> tuple[int, bytes]:
        signed = independent.check_request(data)  # raises unless Body, Timestamp and Caller verify
        self.requests.append(signed)
        value = etree.fromstring(data).findtext(f".//{q(DS, 'SignatureValue')}") or ""
        digest = base64.b64encode(hashlib.sha256(base64.b64decode(value)).digest()).decode()
        text = signed[q(SOAP_ENV, "Body")].findtext(f".//{{{ECHO}}}Text") or ""
        payload = etree.Element(f"{{{ECHO}}}EchoResponse", nsmap={"ec": ECHO})
        etree.SubElement(payload, f"{{{ECHO}}}Text").text = text.upper()
        status, spec = 200, AnswerSpec(digest, payload)
        if self.mode == "unbound":
            spec.request_digest = base64.b64encode(b"\0" * 32).decode()
        elif self.mode == "fault":
            status, spec.payload = 500, self._fault()
        party = self.network.colleague if self.mode == "foreign" else self.network.integrator
        envelope = independent.answer(party.key.key, party.certificate, spec)
        if self.mode == "tampered":
            envelope.find(f".//{{{ECHO}}}Text").text = "TAMPERED"  # type: ignore[union-attr]
        return status, etree.tostring(envelope)

    @staticmethod
    def _fault() -> etree._Element:
        fault = etree.Element(q(SOAP_ENV, "Fault"))
        etree.SubElement(fault, "faultcode").text = "soapenv:Client.Caller.GrantMissing"
        etree.SubElement(fault, "faultstring").text = "no grant (ticket KP-1)"
        detail = etree.SubElement(etree.SubElement(fault, "detail"), q(KP, "FaultDetail"), nsmap={"kp": KP})
        for name, value in (("Code", "Client.Caller.GrantMissing"), ("Reason", "no grant"), ("Ticket", "KP-1")):
            etree.SubElement(detail, q(KP, name)).text = value
        return fault


@pytest.fixture
def stand_in(network: Network) -> Iterator[tuple[StandIn, str]]:
    state = StandIn(network)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._send(200, WSDL.replace("http://127.0.0.1:1/", f"http://127.0.0.1:{server.server_port}/").encode())

        def do_POST(self) -> None:
            status, data = state.reply(self.rfile.read(int(self.headers["Content-Length"])))
            self._send(status, data)

        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_port}/soap/Echo/v1?wsdl"
    finally:
        server.shutdown()
        server.server_close()


def client(network: Network, url: str, pinned: bool = True) -> KruispuntClient:
    return KruispuntClient(url, network.municipality.identity, [network.ca.identity.cert_path],
                           integrator_cert=network.integrator.identity.cert_path if pinned else None,
                           crl=network.crl, timeout=10)


def test_a_call_is_signed_and_its_answer_read_with_the_ticket(network: Network, stand_in: tuple[StandIn, str]) -> None:
    state, url = stand_in
    answer = client(network, url).call("Echo", official="75041214531", purpose="TESTING", message_id="m-1",
                                       Text="hello")
    assert (answer.body.Text, answer.ticket) == ("HELLO", "KP-20261201-0123456789abcdef0123456789abcdef")
    caller = state.requests[0][q(KP, "Caller")]
    assert [(etree.QName(c).localname, c.text) for c in caller] == [
        ("Official", "75041214531"), ("Purpose", "TESTING"), ("MessageId", "m-1")]


def test_a_refusal_is_a_zeep_fault_with_its_detail(network: Network, stand_in: tuple[StandIn, str]) -> None:
    state, url = stand_in
    state.mode = "fault"
    with pytest.raises(Fault) as raised:
        client(network, url).call("Echo", official="75041214531", purpose="TESTING", Text="hello")
    assert fault_detail(raised.value) == {"Code": "Client.Caller.GrantMissing", "Reason": "no grant",
                                          "Ticket": "KP-1"}


@pytest.mark.parametrize(("mode", "reason"), [("unbound", "RequestSignatureDigest"),
                                               ("tampered", "not validly signed"),
                                               ("foreign", "not the integrator's")])
def test_an_answer_that_does_not_verify_is_refused(network: Network, stand_in: tuple[StandIn, str], mode: str,
                                                   reason: str) -> None:
    state, url = stand_in
    state.mode = mode
    with pytest.raises(AnswerRefused, match=reason):
        client(network, url).call("Echo", official="75041214531", purpose="TESTING", Text="hello")


def test_receipts_need_the_integrator_certificate(network: Network, stand_in: tuple[StandIn, str]) -> None:
    _state, url = stand_in
    with pytest.raises(ReceiptInvalid, match="integrator_cert"):
        client(network, url, pinned=False).verify_receipt(b"<x/>")
