#!/usr/bin/env python3
"""What does the portal add to the SOAP path of the same service? One run, side by side, on one stack: the demo
official An Verhoeven's tax-exemption lookup
  (s) as a signed SOAP call (GetTaxExemptionStatuses, signed before the timed part, one unique request each), and
  (p) as the portal's form (POST /portal/tax-exemption/ in a logged-on session: the page's HTML comes back),
alternating one of each, unloaded (one request at a time, kept-alive connections), so both meet the same machine.
Both run the same service code against the four reference backends, with one audit record each. Issue 10's
target: the portal adds at most half the SOAP path's latency ((p) - (s) <= 0.5 x (s), at the median).
Run from the project root:  .venv/bin/python bench/portal.py [--requests 300] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
for _path in (BENCH.parent, BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import requests  # noqa: E402
from demo_stack import audit_outcomes, kruisdorp_key_files, prepare_stack  # noqa: E402
from loadgen import percentile  # noqa: E402
from lookup import TAX_PATH, sign_pool  # noqa: E402
from report import describe_url, write_json  # noqa: E402
from servers import (  # noqa: E402
    Run,
    free_port,
    gunicorn_settings,
    run_bench,
    server_env,
    start_backend,
    start_configured,
    wait_for,
)

APP = "/portal/tax-exemption/"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
POSITION = re.compile(r'data-position="(\d+)"')


def log_on(base: str) -> tuple[requests.Session, str]:
    """The demo log-on of An Verhoeven (user number, password, the code of her demo card asked for): a session
    and its CSRF token."""
    from services.demo_portal import LOG_ONS

    an = next(entry for entry in LOG_ONS if entry.user_number == "10000001")
    browser = requests.Session()
    page = browser.get(f"{base}/portal/log-on").text
    page = browser.post(f"{base}/portal/log-on", data={"csrf_token": _csrf(page), "next": "",
                                                            "user_number": an.user_number}).text
    position = POSITION.search(page)
    if position is None:
        raise RuntimeError("the log-on did not ask for a card code")
    page = browser.post(f"{base}/portal/log-on/code", data={
        "csrf_token": _csrf(page), "next": "", "password": an.password, "code": an.code(int(position[1]))}).text
    token = _csrf(browser.get(f"{base}{APP}").text)
    return browser, token


def _csrf(page: str) -> str:
    found = CSRF.search(page)
    if found is None:
        raise RuntimeError("no CSRF token on the page")
    return found[1]


def measure(base: str, bodies: list[bytes], insz: list[str], rounds: int) -> dict[str, Any]:
    soap, portal = requests.Session(), None
    portal, token = log_on(base)
    on = date.today().isoformat()
    times: dict[str, list[float]] = {"soap": [], "portal": []}
    bad = {"soap": 0, "portal": 0}
    for i in range(rounds):
        started = time.perf_counter()
        answer = soap.post(f"{base}{TAX_PATH}", data=bodies[i], headers={"Content-Type": "text/xml; charset=utf-8"})
        times["soap"].append(time.perf_counter() - started)
        bad["soap"] += answer.status_code != 200 or "Complete>true</" not in answer.text
        started = time.perf_counter()
        page = portal.post(f"{base}{APP}", data={"csrf_token": token, "insz": insz[i % len(insz)], "on": on,
                                                 "purpose": "MUNICIPAL_TAX_EXEMPTION",
                                                 "message_id": str(uuid.uuid4())})
        times["portal"].append(time.perf_counter() - started)
        bad["portal"] += page.status_code != 200 or 'id="ticket"' not in page.text or 'id="refusal"' in page.text
    return {kind: {"p50_ms": percentile(sorted(t), 50) * 1e3, "p90_ms": percentile(sorted(t), 90) * 1e3,
                   "mean_ms": statistics.fmean(t) * 1e3, "requests": len(t), "bad": bad[kind]}
            for kind, t in times.items()}


def bench(args: argparse.Namespace, run: Run) -> int:
    procs, work = run.procs, run.work
    gconf = gunicorn_settings(args)
    settings, ports, database_url = prepare_stack(args, work / "var")
    env = server_env(args, gconf, KRUISPUNT_VAR=str(settings.var_dir), KRUISPUNT_DATABASE_URL=database_url,
                     KRUISPUNT_PORTAL_COOKIE_SECURE="0")  # plain http on loopback: requests sends no Secure cookie
    for name, port in ports.items():
        start_backend(procs, name, port, env)
    port = free_port()
    integrator = start_configured(procs, "integrator", port, env)
    for name, backend_port in ports.items():
        wait_for(f"http://127.0.0.1:{backend_port}/?wsdl", procs.running[f"backend-{name}"], procs, f"backend-{name}")
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/health/ready", integrator, procs, "integrator")
    from services.backends.persons import PERSONS

    cert, key = kruisdorp_key_files(settings.pki_dir)
    total = args.warmup + args.requests
    bodies, _ = sign_pool(cert, key, total, 2)
    persons = [p.insz for p in PERSONS]
    print(f"warming up: {args.warmup} of each", flush=True)
    measure(base, bodies[:args.warmup], persons, args.warmup)
    print(f"measuring: {args.requests} of each, alternating, one at a time", flush=True)
    result = measure(base, bodies[args.warmup:], persons, args.requests)
    soap, portal = result["soap"], result["portal"]
    added = portal["p50_ms"] - soap["p50_ms"]
    run_result = {"started": run.started.isoformat(timespec="seconds"), "database": describe_url(database_url),
                  "gunicorn": gconf, "soap": soap, "portal": portal,
                  "derived": {"added_p50_ms": added, "added_over_soap_p50": added / soap["p50_ms"],
                              "portal_over_soap_p50": portal["p50_ms"] / soap["p50_ms"]},
                  "audit": audit_outcomes(database_url)}
    lines = [f"kruispunt portal benchmark  {run_result['started']}  database {run_result['database']}",
             f"{'':38}{'p50 ms':>9}{'p90 ms':>9}{'mean ms':>9}{'bad':>6}"]
    for label, r in (("(s) signed SOAP lookup", soap), ("(p) the portal's lookup form", portal)):
        lines.append(f"{label:38}{r['p50_ms']:9.2f}{r['p90_ms']:9.2f}{r['mean_ms']:9.2f}{r['bad']:6d}")
    lines += [f"the portal adds {added:+.2f} ms to the SOAP path's {soap['p50_ms']:.2f} ms at the median: "
              f"{added / soap['p50_ms']:+.1%} (target: at most +50%)",
              f"audit records (incl. warm-up): {run_result['audit']}"]
    print("\n" + "\n".join(lines))
    write_json(run_result, args.output, "portal", run.started)
    return 0 if not (soap["bad"] or portal["bad"]) else 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--requests", type=int, default=300, help="measured requests of each kind")
    p.add_argument("--warmup", type=int, default=30, help="warm-up requests of each kind")
    p.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py's)")
    p.add_argument("--threads", type=int, default=None, help="gthread threads (default: gunicorn.conf.py's)")
    p.add_argument("--database-url", default=None, help="SQLAlchemy URL of an existing database; default: SQLite")
    p.add_argument("--access-log", action="store_true", help="keep gunicorn's access log on")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, PKI, database)")
    p.add_argument("--output", type=Path, default=None, help="JSON file (default: bench/results/portal-<time>.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(args, "kruispunt-bench-portal-", lambda run: bench(args, run), traceback=True)


if __name__ == "__main__":
    sys.exit(main())
