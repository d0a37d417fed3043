"""kruispunt demo, call, run: the demonstration set-up, the lookup from the command line, the demo runner."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import date

from kruispunt_client import AnswerRefused, KruispuntClient, fault_detail
from zeep.exceptions import Fault

from integrator import commands
from integrator.config import PROJECT_ROOT, Settings
from integrator.faces.cli.common import sessions
from integrator.pki import Identity
from services import demo
from services.backends.catalogue import BACKENDS


def cmd_demo_load(args: argparse.Namespace, settings: Settings) -> int:
    demo.pki_init(settings)
    if commands.refresh_crl(settings):
        print(f"demo CRL re-issued: {settings.crl_path}")
    commands.db_upgrade(settings)
    with sessions(settings)() as session:
        demo.load(settings, session, {})
    print("demo organisations, officials, grants and backends registered")
    return 0


def cmd_call(args: argparse.Namespace, settings: Settings) -> int:
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
    cmd_demo_load(args, settings)
    env = dict(os.environ, KRUISPUNT_VAR=str(settings.var_dir), KRUISPUNT_DATABASE_URL=settings.database_url)
    gunicorn = [sys.executable, "-m", "gunicorn"]
    children = [
        subprocess.Popen([*gunicorn, "-b", f"127.0.0.1:{spec.port}", "-w", "1", "-k", "gthread", "--threads", "4",
                          "--control-socket", str(settings.var_dir / "run" / f"backend-{spec.name}.ctl"),
                          "services.backends.wsgi:create_app()"], env=dict(env, KRUISPUNT_BACKEND=spec.name),
                         cwd=PROJECT_ROOT)
        for spec in BACKENDS
    ]
    children.append(subprocess.Popen([*gunicorn, "-c", str(PROJECT_ROOT / "gunicorn.conf.py"),
                                      "integrator.faces.wsgi:create_app()"], env=env, cwd=PROJECT_ROOT))
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



def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo_cmd = sub.add_parser("demo", help="demo data").add_subparsers(dest="demo_command", required=True)
    demo_cmd.add_parser("load", help="PKI, schema and demo data (idempotent)").set_defaults(func=cmd_demo_load)

    call = sub.add_parser("call", help="run the tax-exemption status lookup as a demo organisation")
    call.add_argument("--url", default="http://127.0.0.1:8080")
    call.add_argument("--org", required=True, help="enterprise number of a demo organisation")
    call.add_argument("--official", required=True)
    call.add_argument("--purpose", default="MUNICIPAL_TAX_EXEMPTION")
    call.add_argument("--insz", required=True)
    call.add_argument("--date", default=date.today().isoformat())
    call.set_defaults(func=cmd_call)

    sub.add_parser("run", help="demo set-up, reference backends and the integrator").set_defaults(func=cmd_run)
