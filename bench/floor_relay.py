"""The floor of bench/passthrough.py: a relay that does only what no pass-through call can skip.

Under the integrator's own gunicorn.conf.py (same workers, worker class, threads), each request is: one durable
INSERT of a replay key (autocommitted, as integrator/replay.py does before any backend is called), one RSA-2048
signature (the request signed towards the backend), the backend call on the integrator's own client
(integrator/backend_http.py, pycurl), one RSA-2048 signature (the answer signed for the caller) and one durable
INSERT of an audit row (autocommitted). Nothing is parsed, verified, XSD-checked or authorised, and no caller is
looked up: the body the client sent, already signed with the integrator's key as Dispatcher.exchange signs it, goes
to the backend as it came, and the backend's answer comes back as it came.

So the floor does strictly less than the integrator must: whatever throughput and latency it reaches bound what
any pass-through on this machine, database and HTTP server can reach. Environment: FLOOR_BACKEND (the backend's
URL), KRUISPUNT_DATABASE_URL (postgresql:// or sqlite:///), KRUISPUNT_VAR (the integrator's key under pki/).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from integrator.backend_http import BackendHttp, HttpFailure

SIGNED_INFO_BYTES = 700  # about what the integrator's SignedInfo canonicalises to
TABLES = (
    "CREATE TABLE IF NOT EXISTS floor_seen (key VARCHAR(120) PRIMARY KEY, expires_at TIMESTAMP WITH TIME ZONE)",
    "CREATE INDEX IF NOT EXISTS floor_seen_expires ON floor_seen (expires_at)",
    "CREATE TABLE IF NOT EXISTS floor_audit (ticket VARCHAR(40) PRIMARY KEY, at TIMESTAMP WITH TIME ZONE, "
    "request_digest CHAR(64), answer_digest CHAR(64), status INTEGER)",
)


class _Database:
    """One autocommitting DBAPI connection per thread (psycopg or sqlite3): one round trip per INSERT."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = not url.startswith("sqlite")
        self._local = threading.local()
        with self._connect() as connection:  # both workers start at once: on PostgreSQL one creates, under a lock
            if self.postgres:
                connection.execute("SELECT pg_advisory_lock(7242)")
            for statement in TABLES:
                connection.execute(statement)
            if self.postgres:
                connection.execute("SELECT pg_advisory_unlock(7242)")

    def _connect(self) -> Any:
        if not self.postgres:
            connection = sqlite3.connect(self.url.split(":///", 1)[1], isolation_level=None,
                                         check_same_thread=False, timeout=30)
            connection.execute("PRAGMA journal_mode=WAL")  # as integrator/database.py sets SQLite up
            connection.execute("PRAGMA synchronous=NORMAL")
            return connection
        import psycopg

        return psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)

    def insert(self, statement: str, values: tuple[Any, ...]) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        connection.execute(statement if self.postgres else statement.replace("%s", "?"), values)


class FloorRelay:
    def __init__(self, backend: str, database_url: str, key_path: Path) -> None:
        self.backend = backend
        self.database = _Database(database_url)
        self.key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        self.http = BackendHttp()

    def _sign(self, data: bytes) -> bytes:
        return self.key.sign(data[:SIGNED_INFO_BYTES], padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "POST":  # the bench's readiness probe
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
            return [b"floor\n"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        now = datetime.now(UTC)
        self.database.insert("INSERT INTO floor_seen (key, expires_at) VALUES (%s, %s)", (uuid.uuid4().hex, now))
        self._sign(body)
        try:
            status, data = self.http.post(self.backend, body, ["Content-Type: text/xml; charset=utf-8",
                                                               'SOAPAction: ""'], 30.0, 10_000_000, repeatable=True)
        except HttpFailure as failure:
            status, data = 502, str(failure).encode()
        self._sign(data)
        self.database.insert("INSERT INTO floor_audit (ticket, at, request_digest, answer_digest, status) "
                             "VALUES (%s, %s, %s, %s, %s)", (uuid.uuid4().hex, now, hashlib.sha256(body).hexdigest(),
                                                             hashlib.sha256(data).hexdigest(), status))
        start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                       [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(data)))])
        return [data]


def create_app() -> FloorRelay:
    var = Path(os.environ["KRUISPUNT_VAR"])
    return FloorRelay(os.environ["FLOOR_BACKEND"], os.environ["KRUISPUNT_DATABASE_URL"], var / "pki" / "integrator.key")
