"""WS-Security around a reference backend: only the integrator's signed requests reach spyne; every answer
leaves signed with the backend's own certificate."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from lxml import etree

from integrator.envelope import EnvelopeLimits, parse_envelope
from integrator.faults import ClientFault, KruispuntFault
from integrator.namespaces import KP, SOAP_ENV, WSSE, q
from integrator.wssec.dsig import RSA_OPERATIONS
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import SecurityPolicy, verify_envelope

log = logging.getLogger("kruispunt.backend")
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SecuredBackend:
    """WSGI middleware: verify the caller (integrator certificates only), strip wsse, call spyne, sign."""

    def __init__(self, app: WsgiApp, key: SigningKey, trust: TrustStore, allowed: set[str],
                 limits: EnvelopeLimits | None = None) -> None:
        self.app, self.key, self.trust, self.allowed = app, key, trust, allowed
        self.limits = limits or EnvelopeLimits()
        self.policy = SecurityPolicy()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            if environ.get("PATH_INFO") == "/rsa-operations":  # for the benches: the RSA work really done
                counts = RSA_OPERATIONS.counts()
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [f"sign {counts['sign']}\nverify {counts['verify']}\n".encode()]
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(min(length, self.limits.max_bytes + 1))
        try:
            inner, request_digest = self._verified_request(data)
        except KruispuntFault as fault:
            return self._reply(start_response, fault.HTTP_STATUS, self._fault(fault))
        environ = dict(environ, CONTENT_LENGTH=str(len(inner)))
        environ["wsgi.input"] = BytesIO(inner)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"] = status
            return lambda _chunk: None

        body = b"".join(self.app(environ, capture))
        status = int(str(captured.get("status", "500")).split()[0])
        try:
            root = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError:
            log.error("spyne answered something that is not XML (HTTP %s)", status)
            return self._reply(start_response, 500, self._fault(KruispuntFault("backend error")))
        header = root.find(q(SOAP_ENV, "Header"))
        if header is None:
            header = etree.Element(q(SOAP_ENV, "Header"))
            root.insert(0, header)
        binding = etree.SubElement(header, q(KP, "InResponseTo"))
        binding.text = base64.b64encode(request_digest).decode()
        sign_envelope(root, self.key, headers=[binding])
        return self._reply(start_response, status, etree.tostring(root))

    def _verified_request(self, data: bytes) -> tuple[bytes, bytes]:
        envelope = parse_envelope(data, self.limits)
        verified = verify_envelope(envelope, self.trust, self.policy, datetime.now(UTC))
        if verified.fingerprint not in self.allowed:
            raise ClientFault("Only the integrator may call this authentic source.")
        root, _header, body = new_envelope()
        root.remove(_header)
        for child in verified.body:
            body.append(child)
        return etree.tostring(root), verified.signature_digest

    def _fault(self, fault: KruispuntFault) -> bytes:
        root, _header, body = new_envelope()
        node = etree.SubElement(body, q(SOAP_ENV, "Fault"))
        etree.SubElement(node, "faultcode").text = f"soapenv:{fault.code}"
        etree.SubElement(node, "faultstring").text = fault.reason
        sign_envelope(root, self.key)
        return etree.tostring(root)

    @staticmethod
    def _reply(start_response: Callable[..., Any], status: int, body: bytes) -> list[bytes]:
        reason = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}.get(status, "Error")
        start_response(f"{status} {reason}", [("Content-Type", "text/xml; charset=utf-8"),
                                               ("Content-Length", str(len(body)))])
        return [body]


__all__ = ["WSSE", "SecuredBackend"]
