"""integrator/backend_http.py against real servers on loopback: answers, kept-alive connections, and each way a
call can fail, with what the dispatcher concludes from it (sent or not, timed out, too large)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from integrator.backend_http import BackendHttp, HttpFailure
from tests.e2e.generic_calls import black_hole

HEADERS = ["Content-Type: text/xml; charset=utf-8", 'SOAPAction: "urn:x"']


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections = 0
        self.requests: list[tuple[dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), Handler)

    def get_request(self):  # type: ignore[no-untyped-def]
        self.connections += 1
        return super().get_request()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
        mode = self.server.mode
        if mode == "drop":
            self.close_connection = True
            return
        if mode == "slow":
            time.sleep(1.0)
            return
        answer = b"<answer>" + body + b"</answer>" if mode != "large" else b"x" * 5000
        self.send_response(200 if mode != "status" else 500)
        if mode == "unsized":  # no Content-Length: read until the connection closes
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"y" * 5000)
            self.close_connection = True
            return
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(mode: str = "echo") -> Iterator[Server]:
    server = Server(mode)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_the_answer_and_status_come_back_and_the_headers_and_body_go_as_given() -> None:
    http = BackendHttp()
    with serving() as server:
        status, answer = http.post(server.url, b"<q/>", HEADERS, 5.0, 10_000, repeatable=True)
        assert (status, answer) == (200, b"<answer><q/></answer>")
        headers, body = server.requests[0]
        assert body == b"<q/>"
        assert (headers["content-type"], headers["soapaction"]) == ("text/xml; charset=utf-8", '"urn:x"')
        big = b"<q>" + b"z" * 1_100_000 + b"</q>"  # libcurl would ask "Expect: 100-continue" first for this
        answer = http.post(server.url, big, HEADERS, 5.0, 2_000_000, repeatable=True)[1]
        assert answer == b"<answer>" + big + b"</answer>"
        assert "expect" not in server.requests[1][0]  # no 100-continue round trip
    with serving("status") as server:
        assert http.post(server.url, b"<q/>", HEADERS, 5.0, 10_000, repeatable=True)[0] == 500


def test_a_repeatable_call_reuses_the_kept_alive_connection_and_one_that_is_not_opens_its_own() -> None:
    http = BackendHttp()
    with serving() as server:
        for _ in range(5):
            assert http.post(server.url, b"<q/>", HEADERS, 5.0, 10_000, repeatable=True)[0] == 200
        assert (len(server.requests), server.connections) == (5, 1)
        for _ in range(3):  # libcurl repeats a request by itself only on a reused connection: never on these
            assert http.post(server.url, b"<q/>", HEADERS, 5.0, 10_000, repeatable=False)[0] == 200
        assert (len(server.requests), server.connections) == (8, 4)


def test_each_thread_has_its_own_handle_and_connection() -> None:
    http = BackendHttp()
    with serving() as server:
        answers: list[bytes] = []

        def call(n: int) -> None:
            for i in range(3):
                answers.append(http.post(server.url, f"<q n='{n}.{i}'/>".encode(), HEADERS, 5.0, 10_000,
                                         repeatable=True)[1])

        threads = [threading.Thread(target=call, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers) == sorted(f"<answer><q n='{n}.{i}'/></answer>".encode()
                                         for n in range(4) for i in range(3))
        assert server.connections == 4


def test_a_refused_connection_was_never_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connecting is refused
        with pytest.raises(HttpFailure) as failure:
            BackendHttp().post(f"http://127.0.0.1:{port}/", b"<q/>", HEADERS, 5.0, 10_000, repeatable=True)
    assert (failure.value.sent, failure.value.timed_out, failure.value.reason) == (False, False,
                                                                                   "connection refused")


def test_a_connect_that_times_out_was_never_sent() -> None:
    with black_hole() as url, pytest.raises(HttpFailure) as failure:
        BackendHttp().post(url, b"<q/>", HEADERS, 0.5, 10_000, repeatable=True)
    assert (failure.value.sent, failure.value.timed_out) == (False, True)


def test_a_slow_answer_times_out_after_the_request_was_sent() -> None:
    with serving("slow") as server, pytest.raises(HttpFailure) as failure:
        began = time.monotonic()
        BackendHttp().post(server.url, b"<q/>", HEADERS, 0.3, 10_000, repeatable=True)
    assert (failure.value.sent, failure.value.timed_out) == (True, True)
    assert time.monotonic() - began < 0.9  # the deadline, not the server's second


def test_a_connection_closed_without_an_answer_was_sent_and_not_repeated() -> None:
    with serving("drop") as server, pytest.raises(HttpFailure) as failure:
        BackendHttp().post(server.url, b"<q/>", HEADERS, 5.0, 10_000, repeatable=False)
    assert (failure.value.sent, failure.value.timed_out, failure.value.too_large) == (True, False, False)
    assert len(server.requests) == 1


@pytest.mark.parametrize("mode", ["large", "unsized"])
def test_an_answer_larger_than_the_limit_is_cut_off(mode: str) -> None:
    http = BackendHttp()
    with serving(mode) as server:
        with pytest.raises(HttpFailure) as failure:
            http.post(server.url, b"<q/>", HEADERS, 5.0, 4096, repeatable=True)
        assert failure.value.too_large
        assert http.post(server.url, b"<q/>", HEADERS, 5.0, 5000, repeatable=True)[1] == (
            b"x" * 5000 if mode == "large" else b"y" * 5000)  # the same handle, within the limit


def test_a_proxy_in_the_environment_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}"
        for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.setenv(variable, nowhere)
        with serving() as server:
            assert BackendHttp().post(server.url, b"<q/>", HEADERS, 5.0, 10_000, repeatable=True)[0] == 200


def self_signed(folder: str, name: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA, and its key."""
    cert, key = Path(folder, f"{name}.pem"), Path(folder, f"{name}-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert), "-days", "1"],
                   check=True, capture_output=True)
    return cert, key


@contextmanager
def serving_tls(cert: Path, key: Path) -> Iterator[tuple[Server, str]]:
    with serving() as server:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        yield server, server.url.replace("http://", "https://")


def test_a_tls_backend_whose_certificate_is_not_trusted_is_refused_before_the_request_leaves() -> None:
    with tempfile.TemporaryDirectory() as folder:
        with serving_tls(*self_signed(folder, "backend")) as (server, url):
            with pytest.raises(HttpFailure) as failure:
                BackendHttp().post(url, b"<q/>", HEADERS, 5.0, 10_000, repeatable=True)
    assert failure.value.sent is False and not failure.value.timed_out
    assert "certificate" in failure.value.reason.lower(), failure.value.reason  # libcurl's own words
    assert server.requests == []


def test_a_backend_ca_file_is_trusted_for_tls_and_then_the_only_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """KRUISPUNT_BACKEND_CA_FILE: a backend whose certificate chains to it is reached; once it is set, what the
    system trusts (here SSL_CERT_FILE, naming the backend's own certificate) no longer counts."""
    with tempfile.TemporaryDirectory() as folder:
        cert, key = self_signed(folder, "backend")
        other, _ = self_signed(folder, "other-ca")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the "system" trusts the backend
        with serving_tls(cert, key) as (server, url):
            status, answer = BackendHttp(ca_file=cert).post(url, b"<q/>", HEADERS, 5.0, 10_000, repeatable=True)
            assert (status, answer) == (200, b"<answer><q/></answer>")
            assert BackendHttp().post(url, b"<q/>", HEADERS, 5.0, 10_000, repeatable=True)[0] == 200
            with pytest.raises(HttpFailure) as failure:
                BackendHttp(ca_file=other).post(url, b"<q/>", HEADERS, 5.0, 10_000, repeatable=True)
    assert failure.value.sent is False and "certificate" in failure.value.reason.lower(), failure.value.reason
    assert len(server.requests) == 2
