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
from integrator.faults import KruispuntFault
from repository import registry
from repository.peers import find_peer, list_peers
from repository.registry import RegistrationRefused


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


def cmd_access_add(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        commands.add_access_right(session, args.org, args.service)
        session.commit()
    return 0


def cmd_backend_add(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        commands.add_backend(session, args.service, args.name, args.url, Path(args.cert).read_bytes(), args.timeout,
                             priority=args.priority, weight=args.weight, security=args.security,
                             idempotent=args.idempotent)
        session.commit()
    return 0


def cmd_service_register(args: argparse.Namespace, settings: Settings) -> int:
    docs = commands.read_documents(Path(args.wsdl), Path(args.root) if args.root else None)
    with _sessions(settings)() as session:
        try:
            row = commands.register_service(session, args.name, args.version, docs, args.owner, args.description,
                                            args.federated)
        except RegistrationRefused as refused:
            print(f"refused: {args.name} {args.version}:", file=sys.stderr)
            for problem in refused.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 1
        session.commit()
        print(f"registered {row.name} {row.version} as draft ({len(docs.files)} documents)")
    return 0


def cmd_service_lifecycle(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        try:
            row = registry.set_lifecycle(session, args.name, args.version, args.status,
                                         sunset=date.fromisoformat(args.sunset) if args.sunset else None,
                                         successor=args.successor)
        except RegistrationRefused as refused:
            print(f"refused: {refused}", file=sys.stderr)
            return 1
        session.commit()
        print(f"{row.name} {row.version}: {row.status}" + (f", sunset {row.sunset}" if row.sunset else ""))
    return 0


def cmd_service_federate(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        row = registry.set_federated(session, args.name, args.version, not args.withdraw)
        session.commit()
        print(f"{row.name} {row.version}: {'open to federation' if row.federated else 'withdrawn from federation'}")
    return 0


def cmd_service_list(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        for row in registry.list_versions(session):
            flags = " federated" if row.federated else ""
            print(f"{row.name:<32} {row.version:<6} {row.status:<10} origin {row.origin}{flags}")
    return 0


def cmd_peer_add(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        commands.add_peer(session, args.name, args.url, Path(args.cert).read_bytes(), args.enterprise_number)
        session.commit()
    print(f"peer {args.name} registered at {args.url}")
    return 0


def cmd_peer_list(args: argparse.Namespace, settings: Settings) -> int:
    with _sessions(settings)() as session:
        for peer in list_peers(session):
            last = f"{peer.last_sync_at:%Y-%m-%d %H:%M:%S}" if peer.last_sync_at else "never"
            print(f"{peer.name:<20} {peer.url:<32} cursor {peer.cursor:<8} versions {peer.synced_versions:<7} "
                  f"last sync {last}" + (f"  last error: {peer.last_error}" if peer.last_error else ""))
    return 0


def cmd_peer_sync(args: argparse.Namespace, settings: Settings) -> int:
    """Pull a peer's changes since our cursor, with a progress bar."""
    from tqdm import tqdm

    from integrator.federation import PeerClient, sync_peer
    from integrator.pki import Identity
    from integrator.wssec.sign import SigningKey
    from integrator.wssec.trust import TrustStore

    sessions = _sessions(settings)
    with sessions() as session:
        peers = [p for p in (find_peer(session, n) for n in args.names) if p is not None]
    if len(peers) != len(args.names):
        print("unknown peer; see kruispunt peer list", file=sys.stderr)
        return 1
    pki = settings.pki_dir
    client = PeerClient(SigningKey.from_identity(Identity("integrator", pki / "integrator.crt",
                                                          pki / "integrator.key")),
                        TrustStore.from_files(settings.trust_anchor_paths, settings.crl_path), settings.peer_limits)
    status = 0
    for peer in peers:
        with tqdm(desc=f"sync {peer.name}", unit="change", disable=args.quiet, file=sys.stderr) as bar:
            def progress(cursor: int, head: int, bar=bar, start=peer.cursor) -> None:  # type: ignore[no-untyped-def]
                bar.total = max(head - start, 1)
                bar.n = cursor - start
                bar.refresh()
            try:
                result = sync_peer(client, sessions, peer, settings.operator_insz, progress)
            except KruispuntFault as fault:
                print(f"sync {peer.name} failed: {fault.code}: {fault.reason} (resumes from cursor "
                      f"{_cursor(sessions, peer.name)})", file=sys.stderr)
                status = 2
                continue
        print(f"{peer.name}: {result.applied} change(s) applied, cursor {result.cursor} of {result.head}"
              + (f"; {len(result.conflicts)} conflict(s): {'; '.join(result.conflicts[:5])}" if result.conflicts
                 else ""))
    return status


def _cursor(sessions, name: str) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        peer = find_peer(session, name)
        return peer.cursor if peer else 0


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

    access = sub.add_parser("access", help="organisation access rights").add_subparsers(dest="access_command",
                                                                                         required=True)
    access_add = access.add_parser("add", help="let an organisation use a service (grants must fall within)")
    access_add.add_argument("--org", required=True, help="enterprise number")
    access_add.add_argument("--service", required=True, help="service name, for example TaxExemptionStatus")
    access_add.set_defaults(func=cmd_access_add)

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

    service = sub.add_parser("service", help="the services repository").add_subparsers(dest="service_command",
                                                                                        required=True)
    register = service.add_parser("register", help="register a service version (draft) with its WSDL and XSDs")
    register.add_argument("--name", required=True)
    register.add_argument("--version", required=True, help="major.minor, e.g. 1.0")
    register.add_argument("--wsdl", required=True, help="the WSDL file; its imports are read from disk")
    register.add_argument("--root", help="folder the document paths are relative to (default: the WSDL's "
                                         "folder's parent)")
    register.add_argument("--owner", required=True, help="enterprise number of the owning organisation")
    register.add_argument("--description", default="")
    register.add_argument("--federated", action="store_true", help="open the version to federation")
    register.set_defaults(func=cmd_service_register)
    lifecycle = service.add_parser("lifecycle", help="move a version: active, deprecated (--sunset), retired")
    lifecycle.add_argument("--name", required=True)
    lifecycle.add_argument("--version", required=True)
    lifecycle.add_argument("status", choices=["active", "deprecated", "retired"])
    lifecycle.add_argument("--sunset", help="date a deprecated version stops (YYYY-MM-DD)")
    lifecycle.add_argument("--successor", help="what to use instead, e.g. 'Name v2'")
    lifecycle.set_defaults(func=cmd_service_lifecycle)
    federate = service.add_parser("federate", help="open a version to federation (or --withdraw it)")
    federate.add_argument("--name", required=True)
    federate.add_argument("--version", required=True)
    federate.add_argument("--withdraw", action="store_true")
    federate.set_defaults(func=cmd_service_federate)
    service.add_parser("list", help="every version in the repository").set_defaults(func=cmd_service_list)

    peer = sub.add_parser("peer", help="federation peers").add_subparsers(dest="peer_command", required=True)
    peer_add = peer.add_parser("add", help="register another integrator as a peer")
    peer_add.add_argument("--name", required=True)
    peer_add.add_argument("--url", required=True, help="its base URL, e.g. https://integrator.example.org")
    peer_add.add_argument("--cert", required=True, help="the PEM certificate it signs with")
    peer_add.add_argument("--enterprise-number", required=True, help="its organisation's enterprise number")
    peer_add.set_defaults(func=cmd_peer_add)
    peer.add_parser("list", help="sync state per peer").set_defaults(func=cmd_peer_list)
    peer_sync = peer.add_parser("sync", help="pull the peers' changes since the last sync")
    peer_sync.add_argument("names", nargs="+")
    peer_sync.add_argument("--quiet", action="store_true", help="no progress bar")
    peer_sync.set_defaults(func=cmd_peer_sync)

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
