"""The demo stack of bench/lookup.py and bench/passthrough.py: a fresh temporary KRUISPUNT_VAR with the demo PKI,
the schema via Alembic and the demo data, the reference backends registered on free ports; and what the
integrator audited."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from servers import free_port


def prepare_stack(args: argparse.Namespace, var: Path,
                  extra_backends: tuple[str, ...] = ()) -> tuple[Any, dict[str, int], str]:
    """Demo PKI, schema and demo data in a fresh KRUISPUNT_VAR, backends registered on free ports: the status
    sources, and the reference backends named in extra_backends (e.g. "disability-applications")."""
    from integrator import commands
    from integrator.config import Settings
    from integrator.database import make_engine, session_factory
    from services import demo
    from services.backends.status_source import SOURCES

    database_url = args.database_url or f"sqlite:///{var / 'kruispunt.db'}"
    settings = Settings.from_env({"KRUISPUNT_VAR": str(var), "KRUISPUNT_DATABASE_URL": database_url})
    demo.pki_init(settings)
    commands.db_upgrade(settings)
    ports = {name: free_port() for name in (*(spec.name for spec in SOURCES), *extra_backends)}
    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        demo.load(settings, session, {name: f"http://127.0.0.1:{port}/" for name, port in ports.items()})
    engine.dispose()
    return settings, ports, database_url


def kruisdorp_key_files(pki: Path) -> tuple[Path, Path]:
    """Certificate and key of the demo organisation Gemeente Kruisdorp, whose demo official the benches sign as."""
    from services.demo_organisations import KRUISDORP

    org = f"org-{KRUISDORP.enterprise_number}"
    return pki / f"{org}.crt", pki / f"{org}.key"


def audit_outcomes(database_url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from integrator.audit import AuditRecord
    from integrator.database import make_engine, session_factory

    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(select(AuditRecord.outcome, AuditRecord.fault_code, func.count())
                                   .group_by(AuditRecord.outcome, AuditRecord.fault_code)).all()
    finally:
        engine.dispose()
    return {f"{outcome}{'/' + code if code else ''}": int(n) for outcome, code, n in rows}
