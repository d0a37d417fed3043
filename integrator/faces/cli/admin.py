"""kruispunt db, pki, org, backend, directory: the administration of one integrator (officials, grants, access
rights and administrators: integrator/faces/cli/access.py)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from integrator import commands
from integrator.acts import audit_act
from integrator.config import Settings
from integrator.faces.cli.common import published_keys, sessions
from services import demo


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    commands.db_upgrade(settings, args.revision)
    print(f"database at revision {args.revision}: {settings.database_url}")
    return 0


def cmd_pki_init(args: argparse.Namespace, settings: Settings) -> int:
    pki = demo.pki_init(settings, force=args.force)
    print(f"demo PKI in {settings.pki_dir} (CA {pki.ca.cert_path})")
    return 0


def cmd_pki_revoke(args: argparse.Namespace, settings: Settings) -> int:
    commands.revoke(settings, Path(args.cert))
    print(f"revoked {args.cert}; CRL {settings.crl_path}")
    return 0


def cmd_org_add(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        commands.add_organisation(session, args.enterprise_number, args.name, args.kind, args.nis_code)
        if args.cert:
            commands.register_certificate(session, args.enterprise_number, Path(args.cert).read_bytes())
        ticket = audit_act(session, actor, "AddOrganisation", f"registered {args.kind} {args.name} "
                           f"(NIS {args.nis_code or '-'}){' with a certificate' if args.cert else ''}",
                           command=args.command_line, organisation=args.enterprise_number)
        session.commit()
    print(f"organisation {args.enterprise_number} registered; ticket {ticket}")
    return 0


def cmd_org_list(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        for org in commands.list_organisations(session):
            print(f"{org.enterprise_number}  {org.kind:<13} {org.nis_code or '-':<6} {org.name}")
    return 0


def cmd_backend_add(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        commands.add_backend(session, args.service, args.name, args.url, Path(args.cert).read_bytes(), args.timeout,
                             priority=args.priority, weight=args.weight, security=args.security,
                             idempotent=args.idempotent, code_backed=published_keys())
        ticket = audit_act(session, actor, "RegisterBackend", f"backend {args.name} at {args.url}",
                           command=args.command_line, service=args.service)
        session.commit()
    print(f"backend {args.name} of {args.service} registered; ticket {ticket}")
    return 0


def cmd_backend_end(args: argparse.Namespace, settings: Settings) -> int:
    actor = commands.operator()
    with sessions(settings)() as session:
        commands.end_backend(session, args.service, args.name)
        ticket = audit_act(session, actor, "EndBackend", f"backend {args.name} no longer called; reason: "
                           f"{args.reason}", command=args.command_line, service=args.service)
        session.commit()
    print(f"backend {args.name} of {args.service} is no longer called; ticket {ticket}")
    return 0


def cmd_backend_list(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        for b in commands.list_backends(session, args.service):
            print(f"{b.service:<28} {b.name:<24} {'active' if b.active else 'ended':<7} priority {b.priority} "
                  f"weight {b.weight} {b.security:<5} {b.url}")
    return 0


def cmd_directory_add(args: argparse.Namespace, settings: Settings) -> int:
    with sessions(settings)() as session:
        created = commands.add_directory_entry(session, args.org, args.insz, args.purpose,
                                               date.fromisoformat(args.start),
                                               date.fromisoformat(args.end) if args.end else None)
        session.commit()
    print(f"{args.insz} {'registered' if created else 'already registered'} for {args.purpose}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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

    org = sub.add_parser("org", help="organisations").add_subparsers(dest="org_command", required=True)
    org_add = org.add_parser("add", help="register or update an organisation")
    org_add.add_argument("--enterprise-number", required=True)
    org_add.add_argument("--name", required=True)
    org_add.add_argument("--kind", required=True, choices=commands.KINDS)
    org_add.add_argument("--nis-code")
    org_add.add_argument("--cert", help="PEM certificate to register to the organisation")
    org_add.set_defaults(func=cmd_org_add)
    org.add_parser("list", help="every organisation").set_defaults(func=cmd_org_list)

    backend = sub.add_parser("backend", help="backends").add_subparsers(dest="backend_command", required=True)
    backend_add = backend.add_parser("add", help="register a backend for a service version")
    backend_add.add_argument("--service", required=True, help="for example TaxExemptionStatus/v1")
    backend_add.add_argument("--name", required=True)
    backend_add.add_argument("--url", required=True)
    backend_add.add_argument("--cert", required=True, help="PEM certificate the backend signs with")
    backend_add.add_argument("--timeout", type=float, default=5.0, help="seconds for the whole answer")
    backend_add.add_argument("--priority", type=int, default=0, help="lower is tried first (failover order)")
    backend_add.add_argument("--weight", type=int, default=1, help="share of calls within one priority")
    backend_add.add_argument("--security", choices=["x509", "none"], default="x509",
                             help="x509: signed both ways (default); none: plain SOAP on a trusted network")
    backend_add.add_argument("--idempotent", nargs="*", default=[], metavar="OPERATION",
                             help="operations safe to retry and to send to the next endpoint")
    backend_add.set_defaults(func=cmd_backend_add)
    backend_end = backend.add_parser("end", help="stop calling a backend endpoint (it stays registered)")
    backend_end.add_argument("--service", required=True, help="for example TaxExemptionStatus/v1")
    backend_end.add_argument("--name", required=True)
    backend_end.add_argument("--reason", required=True, help="why: recorded with the act")
    backend_end.set_defaults(func=cmd_backend_end)
    backend_list = backend.add_parser("list", help="the backends registered, per service version")
    backend_list.add_argument("--service", help="one service version only, for example TaxExemptionStatus/v1")
    backend_list.set_defaults(func=cmd_backend_list)

    directory = sub.add_parser("directory", help="reference directory").add_subparsers(dest="directory_command",
                                                                                         required=True)
    directory_add = directory.add_parser("add", help="declare that an organisation has a file on a person")
    directory_add.add_argument("--org", required=True, help="enterprise number")
    directory_add.add_argument("--insz", required=True)
    directory_add.add_argument("--purpose", required=True, help="the legal context (quality) of the file")
    directory_add.add_argument("--start", default=date.today().isoformat())
    directory_add.add_argument("--end")
    directory_add.set_defaults(func=cmd_directory_add)
