"""The WSGI face: SOAP endpoints, WSDL/XSD documents, the catalogue, liveness, readiness and metrics; the officials'
portal (a Flask app, integrator/faces/portal) under /portal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from datetime import timedelta
from time import perf_counter
from typing import Any
from urllib.parse import parse_qs

from integrator import metrics
from integrator.circuit import CircuitBreaker
from integrator.config import Settings, SettingsError
from integrator.database import make_engine, session_factory
from integrator.dispatch import Dispatcher
from integrator.faces.catalogue import code_entry, html_page, repository_entries, wsdl_list
from integrator.faces.documents import (
    published_wsdl,
    repository_document,
    repository_wsdl,
    static_file,
)
from integrator.faces.portal import PortalApplication, create_portal, is_portal, mounted
from integrator.maintenance import Maintenance
from integrator.outbox import Forwarder
from integrator.pipeline import Pipeline, Reply
from integrator.pki import Identity
from integrator.routes import PATH
from integrator.service import ServiceDefinition
from integrator.wssec.dsig import RSA_OPERATIONS
from integrator.wssec.sign import SigningKey
from integrator.wssec.trust import TrustStore
from services import PUBLISHED

log = logging.getLogger("kruispunt.wsgi")
request_log = logging.getLogger("kruispunt.request")  # one line per SOAP request
StartResponse = Callable[..., Any]
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           413: "Payload Too Large", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


class IntegratorApp:
    """Routes requests; all SOAP work happens in the pipeline."""

    def __init__(self, settings: Settings, services: list[ServiceDefinition], pipeline: Pipeline,
                 portal: Callable[[dict[str, Any], StartResponse], Iterable[bytes]] | None = None) -> None:
        self.settings = settings
        self.portal = portal  # the officials' portal, mounted under /portal
        self.services = services
        self.by_path = {s.path: s for s in services}
        self.pipeline = pipeline
        self.exposition = metrics.Exposition(pipeline.sessions)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if self.portal is not None and is_portal(environ.get("PATH_INFO", "/")):
            return self.portal(environ, start_response)
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if path.startswith("/soap/"):
            if method == "POST":
                return self._soap(environ, path, start_response)
            wsdl = self._wsdl(path, self._base_url(environ)) if method == "GET" else None
            if wsdl is not None and "wsdl" in {k.lower() for k in query}:
                return _send(start_response, 200, wsdl, "text/xml; charset=utf-8")
            return _send(start_response, 405 if wsdl is not None else 404,
                         b"POST a signed SOAP envelope here, or GET ?wsdl\n", "text/plain; charset=utf-8")
        if method != "GET":
            return _send(start_response, 405, b"method not allowed\n", "text/plain; charset=utf-8")
        return self._document(environ, path, query, start_response)

    def _soap(self, environ: dict[str, Any], path: str, start_response: StartResponse) -> Iterable[bytes]:
        limit = self.settings.limits.max_bytes
        declared = int(environ.get("CONTENT_LENGTH") or 0)
        stream = environ["wsgi.input"]
        started = perf_counter()
        data = b"" if declared > limit else stream.read(declared) if declared else stream.read(limit + 1)
        reply = self.pipeline.handle(path, data, declared_length=declared, base_url=self._base_url(environ))
        _account(reply, reply.seconds or perf_counter() - started)
        return _send(start_response, reply.status, reply.body, "text/xml; charset=utf-8",
                     [("X-Kruispunt-Ticket", reply.ticket), ("Server-Timing", reply.timing)])

    def _document(self, environ: dict[str, Any], path: str, query: dict[str, list[str]],
                  start_response: StartResponse) -> Iterable[bytes]:
        base = self._base_url(environ)
        if path == "/services":
            entries = [code_entry(s) for s in self.services] + repository_entries(self.pipeline.sessions)
            if query.get("formatted") == ["false"] and "wsdlList" in query:
                return _send(start_response, 200, wsdl_list(entries, base).encode(), "text/plain; charset=utf-8")
            return _send(start_response, 200, html_page(entries, base).encode(), "text/html; charset=utf-8")
        if path.startswith("/repository/") and path.count("/") >= 4:
            _, _, name, version, relative = path.split("/", 4)
            document = repository_document(self.pipeline.sessions, name, version, relative)
            if document is not None:
                return _send(start_response, 200, document, "text/xml; charset=utf-8")
        if path.startswith("/xsd/") or path.startswith("/wsdl/"):
            root = self.settings.xsd_dir if path.startswith("/xsd/") else self.settings.wsdl_dir
            relative = path.split("/", 2)[2]
            service = next((s for s in self.services if path == f"/wsdl/{s.wsdl}"), None)
            content = published_wsdl(root, service, base) if service else static_file(root, relative)
            if content is not None:
                return _send(start_response, 200, content, "text/xml; charset=utf-8")
        if path == "/metrics":
            return _send(start_response, 200, self.exposition.render(), metrics.CONTENT_TYPE)
        if path == "/health/live":
            return _send(start_response, 200, b"live\n", "text/plain; charset=utf-8")
        if path == "/health/ready":
            problems = self.pipeline.readiness_problems()
            notes = "".join(f"{note}\n" for note in self.pipeline.readiness_notes())
            body = (("ready\n" if not problems else "not ready: " + "; ".join(problems) + "\n") + notes).encode()
            return _send(start_response, 503 if problems else 200, body, "text/plain; charset=utf-8")
        if path == "/":
            return _send(start_response, 200, b"kruispunt: see /services\n", "text/plain; charset=utf-8")
        return _send(start_response, 404, b"not found; see /services\n", "text/plain; charset=utf-8")

    def _wsdl(self, path: str, base_url: str) -> bytes | None:
        if path in self.by_path:
            return published_wsdl(self.settings.wsdl_dir, self.by_path[path], base_url)
        match = PATH.match(path)
        if match is None:
            return None
        return repository_wsdl(self.pipeline.sessions, match["name"], int(match["major"]), base_url)

    def _base_url(self, environ: dict[str, Any]) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}"


def _account(reply: Reply, seconds: float) -> None:
    """The request's log line and its metrics; counting never fails the request it counts."""
    try:
        metrics.request(reply.service, reply.operation, reply.outcome, reply.fault_code, seconds, reply.stages)
    except Exception:
        log.exception("request %s not counted in the metrics", reply.ticket)
    stages: dict[str, float] = {}
    for stage, stage_seconds in reply.stages:
        stages[stage] = round(stages.get(stage, 0.0) + stage_seconds * 1000, 3)
    fields = {"ticket": reply.ticket, "service": reply.service, "operation": reply.operation,
              "organisation": reply.organisation, "outcome": reply.outcome, "fault_code": reply.fault_code,
              "status": reply.status, "duration_ms": round(seconds * 1000, 3), "stages": stages}
    request_log.log(logging.WARNING if reply.status >= 500 else logging.INFO,
                    "%s service=%s operation=%s organisation=%s outcome=%s%s status=%d duration_ms=%.3f",
                    reply.ticket, reply.service or "-", reply.operation or "-", reply.organisation or "-",
                    reply.outcome, f" fault_code={reply.fault_code}" if reply.fault_code else "", reply.status,
                    seconds * 1000, extra=fields)


def _send(start_response: StartResponse, status: int, body: bytes, content_type: str,
          extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *(extra or [])]
    start_response(f"{status} {REASONS.get(status, 'Error')}", headers)
    return [body]


def create_app(settings: Settings | None = None,
               portal_applications: list[PortalApplication] | None = None) -> IntegratorApp:
    """Build one worker's application: database, keys, trust anchors, contracts, dispatcher; the portal with its
    applications (default: those of integrator/faces/portal/apps)."""
    if settings is None:
        try:
            settings = Settings.from_env()
        except SettingsError as error:  # gunicorn.conf.py refuses these first; another server: one line, no trace
            print(f"kruispunt: {error}", file=sys.stderr)
            raise SystemExit(4) from None  # gunicorn's "App failed to load": the master stops, no restarts
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    pki = settings.pki_dir
    key = SigningKey.from_identity(Identity("integrator", pki / "integrator.crt", pki / "integrator.key"))
    trust = TrustStore.from_files(settings.trust_anchor_paths, settings.crl_path)
    dispatcher = Dispatcher(sessions, CircuitBreaker(sessions, settings.circuit), key, trust, settings.security,
                            settings.limits,
                            parallelism=settings.backend_parallelism,
                            cache_seconds=settings.repository_cache_seconds,
                            backend_ca_file=settings.backend_ca_file)
    forwarder = Forwarder(sessions, dispatcher, timedelta(seconds=settings.outbox_lease_seconds),
                          settings.outbox_interval_seconds)
    pipeline = Pipeline(settings, PUBLISHED, sessions, key, trust, dispatcher, forwarder=forwarder)
    RSA_OPERATIONS.listener = metrics.rsa_operation
    # no database round trip here: a worker (re)started while the database is down must boot all the same (else
    # gunicorn halts the whole instance); /health/ready reports the database until it is back
    forwarder.start()
    Maintenance(sessions).start()  # replay pruning, audit partitions; like the forwarder, after the fork
    portal = mounted(create_portal(settings, pipeline, portal_applications))
    return IntegratorApp(settings, PUBLISHED, pipeline, portal)
