"""`kruispunt`: a thin command line over integrator.commands (and the demo runner)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from integrator import commands
from integrator.config import PROJECT_ROOT, Settings
from integrator.database import make_engine, session_factory


def _sessions(settings: Settings):  # type: ignore[no-untyped-def]
    return session_factory(make_engine(settings.database_url))


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    commands.db_upgrade(settings, args.revision)
    print(f"database at revision {args.revision}: {settings.database_url}")
    return 0


def cmd_pki_init(args: argparse.Namespace, settings: Settings) -> int:
    from services import demo

    pki = demo.pki_init(settings, force=args.force)
    print(f"demo PKI in {settings.pki_dir} (CA {pki.ca.cert_path})")
    return 0


def cmd_pki_revoke(args: argparse.Namespace, settings: Settings) -> int:
    commands.revoke(settings, Path(args.cert))
    print(f"revoked {args.cert}; CRL {settings.crl_path}")
    return 0


def cmd_demo_load(args: argparse.Namespace, settings: Settings) -> int:
    from services import demo

    demo.pki_init(settings)
    if commands.refresh_crl(settings):
        print(f"demo CRL re-issued: {settings.crl_path}")
    commands.db_upgrade(settings)
    with _sessions(settings)() as session:
        demo.load(settings, session, {})
    print("demo organisations, officials, grants and backends registered")
    return 0


def cmd_org_add(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        commands.add_organisation(session, args.enterprise_number, args.name, args.kind, args.nis_code)
        if args.cert:
            commands.register_certificate(session, args.enterprise_number, Path(args.cert).read_bytes())
        session.commit()
    return 0


def cmd_official_add(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        commands.add_official(session, args.org, args.insz, args.name)
        session.commit()
    return 0


def cmd_grant_add(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        commands.add_grant(session, args.org, args.official, args.service, args.purpose,
                           date.fromisoformat(args.valid_from) if args.valid_from else None,
                           date.fromisoformat(args.valid_until) if args.valid_until else None)
        session.commit()
    return 0


def cmd_backend_add(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        commands.add_backend(session, args.service, args.name, args.url, Path(args.cert).read_bytes(), args.timeout)
        session.commit()
    return 0


def cmd_call(args: argparse.Namespace, settings: Settings) -> int:
    from zeep.exceptions import Fault

    from integrator.client import AnswerRefused, KruispuntClient, fault_detail
    from integrator.pki import Identity

    pki = settings.pki_dir
    identity = Identity(args.org, pki / f"org-{args.org}.crt", pki / f"org-{args.org}.key")
    client = KruispuntClient(f"{args.url.rstrip('/')}/soap/TaxExemptionStatus/v1?wsdl", identity,
                             settings.trust_anchor_paths, integrator_cert=pki / "integrator.crt",
                             crl=settings.crl_path)
    try:
        answer = client.tax_exemption_statuses(args.insz, date.fromisoformat(args.date), official=args.official,
                                               purpose=args.purpose)
    except Fault as fault:
        try:
            detail = fault_detail(fault)
        except AnswerRefused:
            print(f"refused: {fault.code}: {fault.message}")
            return 2
        print(f"refused: {detail.get('Code')}: {detail.get('Reason')} (ticket {detail.get('Ticket')})")
        return 2
    except AnswerRefused as refused:
        print(f"answer refused by the client library: {refused}")
        return 3
    body = answer.body
    print(f"ticket {answer.ticket}; person {body.Insz} on {body.ReferenceDate}; complete: {body.Complete}")
    for status in body.Status:
        print(f"  {status.Code:<28} {status.Source:<20} {status.Start} .. {status.End or ''}")
    for source in body.Sources.Source:
        print(f"  source {source.Name:<20} {source.Outcome} {source.Reason or ''}")
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Set up the demo (PKI, schema, data) and run the reference backends and the integrator until stopped."""
    from services.backends.status_source import SOURCES

    cmd_demo_load(args, settings)
    env = dict(os.environ, KRUISPUNT_VAR=str(settings.var_dir), KRUISPUNT_DATABASE_URL=settings.database_url)
    gunicorn = [sys.executable, "-m", "gunicorn"]
    children = [
        subprocess.Popen([*gunicorn, "-b", f"127.0.0.1:{spec.port}", "-w", "1", "-k", "gthread", "--threads", "4",
                          "services.backends.wsgi:create_app()"], env=dict(env, KRUISPUNT_BACKEND=spec.name),
                         cwd=PROJECT_ROOT)
        for spec in SOURCES
    ]
    children.append(subprocess.Popen([*gunicorn, "-c", str(PROJECT_ROOT / "gunicorn.conf.py"),
                                      "integrator.wsgi:create_app()"], env=env, cwd=PROJECT_ROOT))
    stop = {"now": False}

    def _stop(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stop["now"] and all(c.poll() is None for c in children):
            time.sleep(0.5)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kruispunt", description="SOAP/XML service integrator")
    sub = top.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    upgrade = db.add_parser("upgrade", help="create or migrate the schema (Alembic)")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(func=cmd_db_upgrade)

    pki = sub.add_parser("pki", help="demo PKI").add_subparsers(dest="pki_command", required=True)
    init = pki.add_parser("init", help="make the demo CA and certificates under var/pki")
    init.add_argument("--force", action="store_true", help="replace an existing demo PKI")
    init.set_defaults(func=cmd_pki_init)
    revoke = pki.add_parser("revoke", help="put a certificate on the demo CRL")
    revoke.add_argument("cert")
    revoke.set_defaults(func=cmd_pki_revoke)

    demo = sub.add_parser("demo", help="demo data").add_subparsers(dest="demo_command", required=True)
    demo.add_parser("load", help="PKI, schema and demo data (idempotent)").set_defaults(func=cmd_demo_load)

    org = sub.add_parser("org", help="organisations").add_subparsers(dest="org_command", required=True)
    org_add = org.add_parser("add", help="register or update an organisation")
    org_add.add_argument("--enterprise-number", required=True)
    org_add.add_argument("--name", required=True)
    org_add.add_argument("--kind", required=True, choices=["municipality", "pcsw", "institution", "integrator"])
    org_add.add_argument("--nis-code")
    org_add.add_argument("--cert", help="PEM certificate to register to the organisation")
    org_add.set_defaults(func=cmd_org_add)

    official = sub.add_parser("official", help="officials").add_subparsers(dest="official_command", required=True)
    official_add = official.add_parser("add", help="register an official of an organisation")
    official_add.add_argument("--org", required=True, help="enterprise number")
    official_add.add_argument("--insz", required=True)
    official_add.add_argument("--name", required=True)
    official_add.set_defaults(func=cmd_official_add)

    grant = sub.add_parser("grant", help="grants").add_subparsers(dest="grant_command", required=True)
    grant_add = grant.add_parser("add", help="grant an official a service for a purpose")
    grant_add.add_argument("--org", required=True)
    grant_add.add_argument("--official", required=True, help="INSZ of the official")
    grant_add.add_argument("--service", required=True)
    grant_add.add_argument("--purpose", required=True)
    grant_add.add_argument("--valid-from")
    grant_add.add_argument("--valid-until")
    grant_add.set_defaults(func=cmd_grant_add)

    backend = sub.add_parser("backend", help="backends").add_subparsers(dest="backend_command", required=True)
    backend_add = backend.add_parser("add", help="register a backend for a service version")
    backend_add.add_argument("--service", required=True, help="for example TaxExemptionStatus/v1")
    backend_add.add_argument("--name", required=True)
    backend_add.add_argument("--url", required=True)
    backend_add.add_argument("--cert", required=True, help="PEM certificate the backend signs with")
    backend_add.add_argument("--timeout", type=float, default=5.0)
    backend_add.set_defaults(func=cmd_backend_add)

    call = sub.add_parser("call", help="run the tax-exemption status lookup as a demo organisation")
    call.add_argument("--url", default="http://127.0.0.1:8080")
    call.add_argument("--org", required=True, help="enterprise number of a demo organisation")
    call.add_argument("--official", required=True)
    call.add_argument("--purpose", default="MUNICIPAL_TAX_EXEMPTION")
    call.add_argument("--insz", required=True)
    call.add_argument("--date", default=date.today().isoformat())
    call.set_defaults(func=cmd_call)

    sub.add_parser("run", help="demo set-up, reference backends and the integrator").set_defaults(func=cmd_run)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args, Settings.from_env()))
    except (LookupError, ValueError) as exc:
        print(f"kruispunt: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
