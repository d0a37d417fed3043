"""A small real TLS-terminating proxy, as a load balancer in front of the integrator is: it asks for a client
certificate (verified against the citizen CA), and passes it on, URL-encoded PEM, in the one header the portal
trusts from it, after dropping any such header the client sent."""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"}


@contextmanager
def tls_proxy(upstream_port: int, certfile: Path, keyfile: Path, client_ca: Path,
              header: str) -> Iterator[int]:
    """Serve https://127.0.0.1:<port> in front of http://127.0.0.1:<upstream_port>; yields the port."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in HOP and k.lower() != header.lower()}
            der = self.connection.getpeercert(binary_form=True)  # type: ignore[attr-defined]
            if der:
                pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()
                headers[header] = quote(pem)
            headers["X-Forwarded-For"] = self.client_address[0]
            headers["X-Forwarded-Proto"] = "https"
            upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            upstream.close()

        do_GET = do_POST = _forward  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_ca))
    context.load_cert_chain(certfile, keyfile)
    context.verify_mode = ssl.CERT_OPTIONAL
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
