"""Fixtures: a demo PKI with hostile certificates, a database on SQLite and on PostgreSQL, and the whole stack
(integrator under gunicorn, the four reference backends) over real sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from integrator import commands
from integrator.config import Settings
from integrator.database import make_engine, session_factory
from integrator.pki import Identity, create_ca, issue, write_crl
from services import demo, demo_organisations
from services.backends.catalogue import BACKENDS
from services.backends.status_source import SOURCES
from tests.federation import SERVICE as FEDERATED_SERVICE
from tests.federation import Integrator, make_integrator, municipality_at, peer_up, register_federal_service
from tests.support import free_port, gunicorn, wait_for

PG_ADMIN_URL = os.environ.get("KRUISPUNT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
LOOPBACK = ("127.", "::1", "localhost")

OUTBOX_LEASE_SECONDS = 8  # a worker killed while delivering is taken over after this long


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to this machine only (as zeep's own test suite does)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if isinstance(address, tuple) and not str(address[0]).startswith(LOOPBACK):
            raise RuntimeError(f"test tried to reach {address}; only loopback is allowed")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@dataclass(frozen=True)
class Pki:
    """The demo PKI plus certificates an attacker or an unlucky caller would present."""

    var_dir: Path
    ca: Identity
    integrator: Identity
    kruisdorp: Identity
    brugstede: Identity
    untrusted: Identity  # issued by a CA nobody trusts
    expired: Identity
    revoked: Identity
    no_signature_usage: Identity

    def org(self, enterprise_number: str) -> Identity:
        return Identity(enterprise_number, self.var_dir / "pki" / f"org-{enterprise_number}.crt",
                        self.var_dir / "pki" / f"org-{enterprise_number}.key")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    var_dir = tmp_path_factory.mktemp("var")
    settings = Settings.from_env({"KRUISPUNT_VAR": str(var_dir)})
    made = demo.pki_init(settings)
    pki_dir = settings.pki_dir
    rogue_ca = create_ca(tmp_path_factory.mktemp("rogue"), common_name="kruispunt demo CA")  # same name, other key
    kruisdorp = demo_organisations.KRUISDORP
    untrusted = issue(rogue_ca, pki_dir, "untrusted", common_name=kruisdorp.name,
                      serial_number=kruisdorp.enterprise_number)
    now = datetime.now(UTC)
    expired = issue(made.ca, pki_dir, "expired", common_name=kruisdorp.name, serial_number=kruisdorp.enterprise_number,
                    not_before=now - timedelta(days=400), not_after=now - timedelta(days=1))
    revoked = issue(made.ca, pki_dir, "revoked", common_name=kruisdorp.name, serial_number=kruisdorp.enterprise_number)
    no_usage = issue(made.ca, pki_dir, "no-usage", common_name=kruisdorp.name, digital_signature=False)
    write_crl(made.ca, settings.crl_path, [revoked.load_cert()], next_update_days=30)
    org = lambda n: Identity(n, pki_dir / f"org-{n}.crt", pki_dir / f"org-{n}.key")  # noqa: E731
    return Pki(var_dir, made.ca, made.integrator, org(kruisdorp.enterprise_number),
               org(demo_organisations.BRUGSTEDE.enterprise_number), untrusted, expired, revoked, no_usage)


@contextmanager
def new_database(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database: an SQLite file, or a new database on the local PostgreSQL server (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'kruispunt.db'}"
        return
    name = f"kp_test_{uuid.uuid4().hex[:12]}"
    admin = make_url(PG_ADMIN_URL)
    with psycopg.connect(admin.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin.set(drivername="postgresql").render_as_string(hide_password=False),
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's database, on SQLite and on PostgreSQL: every test that uses it runs on both."""
    with new_database(request.param, tmp_path_factory) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def own_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database for one test alone (for tests that break it on purpose)."""
    with new_database(request.param, tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="session")
def sessions(database_url: str) -> sessionmaker[Session]:
    return session_factory(make_engine(database_url))


@dataclass
class Stack:
    """The integrator and the reference backends, running as real gunicorn servers."""

    pki: Pki
    settings: Settings
    database_url: str
    sessions: sessionmaker[Session]
    base_url: str
    env: dict[str, str]
    log_dir: Path
    backend_ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start_backend(self, name: str, wait: bool = True) -> None:
        port = self.backend_ports[name]
        self.processes[name] = gunicorn("services.backends.wsgi:create_app()", port,
                                        dict(self.env, KRUISPUNT_BACKEND=name), log=self.log_dir / f"{name}.log")
        if wait:
            wait_for(f"http://127.0.0.1:{port}/?wsdl")

    def stop_backend(self, name: str) -> None:
        process = self.processes.pop(name)
        process.terminate()
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(timeout=30)
        self.processes.clear()


@pytest.fixture(scope="session")
def stack(pki: Pki, database_url: str, sessions: sessionmaker[Session],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = dict(os.environ, KRUISPUNT_VAR=str(pki.var_dir), KRUISPUNT_DATABASE_URL=database_url,
               KRUISPUNT_REPOSITORY_CACHE_SECONDS="0", KRUISPUNT_ACCESS_LOG="",
               KRUISPUNT_BACKEND_STATE=str(tmp_path_factory.mktemp("backend-state")),
               KRUISPUNT_OUTBOX_INTERVAL_SECONDS="0.5", KRUISPUNT_OUTBOX_LEASE_SECONDS=str(OUTBOX_LEASE_SECONDS),
               # every browser test logs on from 127.0.0.1, and the log-on tests fail there on purpose: failures are
               # counted per address in the shared database, so the default 20 would lock the others out
               KRUISPUNT_PORTAL_ADDRESS_FAILURES="100")
    settings = Settings.from_env(env)
    commands.db_upgrade(settings)
    ports = {spec.name: free_port() for spec in BACKENDS}
    with sessions() as session:
        demo.load(settings, session, {name: f"http://127.0.0.1:{port}/" for name, port in ports.items()})
        for hostile in (pki.untrusted, pki.expired, pki.revoked, pki.no_signature_usage):
            commands.register_certificate(session, demo_organisations.KRUISDORP.enterprise_number,
                                          hostile.cert_path.read_bytes())
        session.commit()
    port = free_port()
    log_dir = tmp_path_factory.mktemp("logs")
    running = Stack(pki, settings, database_url, sessions, f"http://127.0.0.1:{port}", env, log_dir, ports)
    try:
        for name in ports:
            running.start_backend(name, wait=False)
        running.processes["integrator"] = gunicorn("integrator.faces.wsgi:create_app()", port, env, workers=2,
                                                   log=log_dir / "integrator.log")
        for backend_port in ports.values():
            wait_for(f"http://127.0.0.1:{backend_port}/?wsdl")
        wait_for(f"{running.base_url}/health/ready")
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="session")
def migrated(database_url: str, sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions on a database whose schema is at Alembic head."""
    commands.db_upgrade(Settings.from_env({"KRUISPUNT_DATABASE_URL": database_url}))
    return sessions


@dataclass
class Federation:
    federal: Integrator
    social: Integrator  # on PostgreSQL
    regional: Integrator
    backend_port: int
    log_dir: Path
    regional_identity: Identity  # Kruisdorp's certificate, a customer of the regional integrator
    backend: subprocess.Popen | None = None


@pytest.fixture(scope="session")
def federation(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """Federal, social-security and regional integrators in a chain, the federal one owning FederalStatus."""
    pki_dir = pki.var_dir / "pki"
    with new_database("postgresql", tmp_path_factory) as social_url:
        federal = make_integrator("federal", demo_organisations.enterprise_number(2000010), pki_dir,
                                  tmp_path_factory.mktemp("federal"),
                                  f"sqlite:///{tmp_path_factory.mktemp('fdb') / 'federal.db'}")
        social = make_integrator("social-security", demo_organisations.enterprise_number(2000020), pki_dir,
                                 tmp_path_factory.mktemp("social"), social_url)
        regional = make_integrator("regional", demo_organisations.enterprise_number(2000030), pki_dir,
                                   tmp_path_factory.mktemp("regional"),
                                   f"sqlite:///{tmp_path_factory.mktemp('rdb') / 'regional.db'}")
        for local, remote in ((social, federal), (federal, social), (regional, social), (social, regional)):
            peer_up(local, remote)
        backend_port = free_port()
        register_federal_service(federal, f"http://127.0.0.1:{backend_port}/")
        municipality_at(regional, (FEDERATED_SERVICE,))
        log_dir = tmp_path_factory.mktemp("federation-logs")
        running = Federation(federal, social, regional, backend_port, log_dir, pki.kruisdorp)
        try:
            running.backend = gunicorn("services.backends.wsgi:create_app()", backend_port,
                                       dict(federal.env, KRUISPUNT_BACKEND=SOURCES[0].name),
                                       log=log_dir / "backend.log")
            for integrator in (federal, social, regional):
                integrator.start(log_dir)
            wait_for(f"http://127.0.0.1:{backend_port}/?wsdl")
            yield running
        finally:
            for integrator in (federal, social, regional):
                integrator.stop()
            if running.backend is not None:
                running.backend.terminate()
                running.backend.wait(timeout=30)
