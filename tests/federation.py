"""Three integrators (federal, social-security, regional) as separate gunicorn processes with separate
databases, one of them on PostgreSQL, federated in a chain: regional ↔ social-security ↔ federal."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from integrator import commands
from integrator.config import Settings
from integrator.database import make_engine, session_factory
from integrator.pki import Identity, issue
from repository import registry
from services import demo_organisations
from services.backends.status_source import SOURCES
from tests.support import PROJECT, free_port, gunicorn, wait_for

SERVICE = "FederalStatus"  # owned by the federal integrator, served by generic dispatch
PURPOSE = demo_organisations.PURPOSE_TAX


@dataclass
class Integrator:
    name: str
    enterprise_number: str
    var_dir: Path
    database_url: str
    port: int
    env: dict[str, str]
    sessions: sessionmaker[Session]
    identity: Identity
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def start(self, log_dir: Path) -> None:
        self.processes["integrator"] = gunicorn("integrator.faces.wsgi:create_app()", self.port, self.env, workers=2,
                                                log=log_dir / f"{self.name}.log")
        wait_for(f"{self.base_url}/health/ready")

    def stop(self) -> None:
        """Stop the integrator (and anything else it runs), as a crash or a maintenance window would."""
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(timeout=30)
        self.processes.clear()


def make_integrator(name: str, number: str, pki_dir: Path, var_dir: Path, database_url: str) -> Integrator:
    """Its own var dir: the network's CA and CRL, its own integrator certificate, the demo backends' keys."""
    own = var_dir / "pki"
    own.mkdir(parents=True, exist_ok=True)
    for file in ("ca.crt", "ca.crl", *(f"backend-{s.name}.{e}" for s in SOURCES for e in ("crt", "key")),
                 *(p.name for p in pki_dir.glob("org-*"))):
        shutil.copy2(pki_dir / file, own / file)
    ca = Identity("ca", pki_dir / "ca.crt", pki_dir / "ca.key")
    identity = issue(ca, own, "integrator", common_name=f"kruispunt {name}", organization=name,
                     serial_number=number)
    port = free_port()
    env = dict(os.environ, KRUISPUNT_VAR=str(var_dir), KRUISPUNT_DATABASE_URL=database_url, KRUISPUNT_NAME=name,
               KRUISPUNT_ENTERPRISE_NUMBER=number, KRUISPUNT_REPOSITORY_CACHE_SECONDS="0",
               KRUISPUNT_ACCESS_LOG="", KRUISPUNT_PUBLIC_URL=f"http://127.0.0.1:{port}")
    settings = Settings.from_env(env)
    commands.db_upgrade(settings)
    return Integrator(name, number, var_dir, database_url, port, env, session_factory(make_engine(database_url)),
                      identity)


def peer_up(local: Integrator, remote: Integrator) -> None:
    """local knows remote as a federation peer (to pull from it, and to accept requests it forwards)."""
    with local.sessions() as session:
        commands.add_peer(session, remote.name, remote.base_url, remote.identity.cert_path.read_bytes(),
                          remote.enterprise_number)
        session.commit()


def register_federal_service(federal: Integrator, backend_url: str) -> None:
    """The federal integrator owns FederalStatus v1.0, open to federation, served by one reference backend."""
    docs = commands.read_documents(PROJECT / "wsdl" / "StatusSource-v1.wsdl", PROJECT)
    source = SOURCES[0]
    with federal.sessions() as session:
        commands.add_organisation(session, federal.enterprise_number, f"integrator {federal.name}", "integrator")
        commands.register_service(session, SERVICE, "1.0", docs, federal.enterprise_number,
                                  "Status periods held by the federal source", federated=True)
        registry.set_lifecycle(session, SERVICE, "1.0", "active")
        commands.add_backend(session, f"{SERVICE}/v1", source.name, backend_url,
                             (federal.var_dir / "pki" / f"backend-{source.name}.crt").read_bytes(),
                             idempotent=["get_statuses"])
        session.commit()


def municipality_at(integrator: Integrator, services: tuple[str, ...]) -> None:
    """Kruisdorp and its tax official are customers of this integrator, with grants for the services."""
    org = demo_organisations.KRUISDORP
    official = demo_organisations.OFFICIALS[0]
    with integrator.sessions() as session:
        commands.add_organisation(session, org.enterprise_number, org.name, org.kind, org.nis_code)
        commands.register_certificate(session, org.enterprise_number,
                                      (integrator.var_dir / "pki" / f"org-{org.enterprise_number}.crt").read_bytes())
        commands.add_official(session, org.enterprise_number, official.insz, official.name)
        for service in services:
            commands.add_access_right(session, org.enterprise_number, service)
            commands.add_grant(session, org.enterprise_number, official.insz, service, PURPOSE)
        session.commit()
