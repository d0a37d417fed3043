#!/usr/bin/env python3
"""How fast is a signed tax-exemption lookup, next to a bare spyne service and next to its RSA work alone?

One run, three measurements, side by side on the same machine (see bench/README.md):

  (a) a bare spyne echo service (bench/bare_service.py), unsigned, under gunicorn with the integrator's own
      gunicorn.conf.py (same workers, worker class, threads, keep-alive);
  (b) the whole stack: the four reference backends under gunicorn and the integrator under
      gunicorn -c gunicorn.conf.py, answering signed GetTaxExemptionStatuses requests that were signed before the
      timed part (one unique request per request sent: replays are refused);
  (c) the RSA-2048 PKCS#1 v1.5 SHA-256 operations one lookup performs on its path, counted during (b) in the
      integrator (kruispunt_rsa_operations_total on /metrics, every worker) and in the backends (their
      /rsa-operations), each timed with `cryptography` alone; code that does not count them (an older checkout)
      is given the 9 signs and 9 verifies of signing every backend request apart. The client's own signing is
      not counted.

(a) and (b) use the same load generator (wrk with bench/pool.lua, else a multi-process http.client generator) at the
same concurrency. Run from the project root:  .venv/bin/python bench/lookup.py [--duration 20] [--connections 16]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
for _path in (BENCH.parent, BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from cpu import CpuMeter  # noqa: E402  (bench/: the modules the benches share)
from demo_stack import audit_outcomes, kruisdorp_key_files, prepare_stack  # noqa: E402
from loadgen import LoadGenerator, add_options, run_python  # noqa: E402
from profiling import PY_SPY_MISSING, PySpy, find_py_spy, profile_lines  # noqa: E402
from report import (  # noqa: E402
    describe_url,
    load_header,
    load_problems,
    load_row,
    result_line,
    stage_lines,
    stage_table,
    summarise,
    write_json,
)
from servers import (  # noqa: E402
    ConnectionSpread,
    Processes,
    Run,
    free_port,
    gunicorn_settings,
    run_bench,
    server_env,
    start_backend,
    start_configured,
    wait_for,
    worker_pids,
)
from signing import KEYS, SignerPool, signed_envelope  # noqa: E402

TAX_PATH = "/soap/TaxExemptionStatus/v1"
TAX_NS = "urn:kruispunt:TaxExemptionStatus:v1"
LOOKUP_EXPECT = "Complete>true</"  # the answer of a lookup where every source was consulted
ECHO_TEXT = "kruispunt-bench"
ECHO_EXPECT = f"echoResult>{ECHO_TEXT}</"
BACKENDS = 4
SIGNS_PER_LOOKUP = 1 + BACKENDS * 2  # integrator: 4 backend requests + the answer; each backend: its answer
VERIFIES_PER_LOOKUP = 1 + BACKENDS * 2  # integrator: the request + 4 backend answers; each backend: our request


# --- requests -------------------------------------------------------------------------------------------------
def _signed_lookup(spec: tuple[str, str, str]) -> bytes:
    """One GetTaxExemptionStatuses request, signed as tests/support.py's Request(...).signed() does."""
    from kruispunt_client.xml import build
    from lxml import etree

    official, insz, on = spec
    payload = build(f"{{{TAX_NS}}}GetTaxExemptionStatusesRequest", {"Insz": insz, "ReferenceDate": on})
    return etree.tostring(signed_envelope(payload, KEYS["caller"], official))


def sign_pool(cert: Path, key: Path, count: int, processes: int) -> tuple[list[bytes], float]:
    """count unique signed lookups (demo official of Kruisdorp, the demo persons in turn), signed in parallel."""
    from services.backends.persons import PERSONS
    from services.demo_organisations import OFFICIALS

    official = OFFICIALS[0].insz
    on = date.today().isoformat()
    specs = [(official, PERSONS[i % len(PERSONS)].insz, on) for i in range(count)]
    started = time.perf_counter()
    with SignerPool({"caller": (cert, key)}, processes) as signer:
        bodies = signer.map(_signed_lookup, specs)
    return bodies, time.perf_counter() - started


# --- (c) crypto -----------------------------------------------------------------------------------------------
def crypto_costs(key_path: Path, cores: int, seconds: float = 2.0) -> dict[str, Any]:
    """Median time of one RSA-2048 PKCS#1 v1.5 SHA-256 sign and verify with `cryptography`."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    public = key.public_key()
    message = os.urandom(900)  # about the size of a canonicalised ds:SignedInfo with three references
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def per_op(op: Any, batch: int) -> float:
        for _ in range(batch // 10 + 1):
            op()
        samples = []
        until = time.perf_counter() + seconds / 2
        while time.perf_counter() < until or len(samples) < 5:
            began = time.perf_counter()
            for _ in range(batch):
                op()
            samples.append((time.perf_counter() - began) / batch)
        return statistics.median(samples)

    sign = per_op(lambda: key.sign(message, padding.PKCS1v15(), hashes.SHA256()), 50)
    verify = per_op(lambda: public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256()), 500)
    return {"key_bits": key.key_size, "sign_ms": sign * 1e3, "verify_ms": verify * 1e3, "cores": cores}


# --- the RSA operations the path really performs ------------------------------------------------------------
def rsa_counts(base: str, backend_ports: list[int]) -> dict[str, int] | None:
    """Signatures made and checked so far by the integrator (its /metrics, every worker) and the backends
    (their /rsa-operations); None where the code under test does not count them (then the assumed figures)."""
    import re
    import urllib.request

    total = {"sign": 0, "verify": 0}
    try:
        page = urllib.request.urlopen(f"{base}/metrics", timeout=30).read().decode()
        found = dict(re.findall(r'^kruispunt_rsa_operations_total\{operation="(\w+)"\} ([0-9.e+]+)$', page, re.M))
        if not found:
            return None
        for operation in total:
            total[operation] += int(float(found.get(operation, 0)))
        for port in backend_ports:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/rsa-operations", timeout=30).read().decode()
            for operation, count in re.findall(r"^(sign|verify) (\d+)$", text, re.M):
                total[operation] += int(count)
    except (OSError, ValueError):
        return None
    return total


def counted_per_lookup(before: dict[str, int] | None, after: dict[str, int] | None, lookups: int) -> dict[str, Any]:
    if before is None or after is None or lookups <= 0:
        return {"counted": False, "signs": float(SIGNS_PER_LOOKUP), "verifies": float(VERIFIES_PER_LOOKUP)}
    return {"counted": True, "signs": (after["sign"] - before["sign"]) / lookups,
            "verifies": (after["verify"] - before["verify"]) / lookups}


def bound(crypto: dict[str, Any], per_lookup: dict[str, Any]) -> dict[str, Any]:
    """(c): the RSA operations per lookup (counted, or the assumed 9 + 9 for code that does not count) at the
    measured cost of one, and the throughput they alone would allow on this machine's cores."""
    ms = per_lookup["signs"] * crypto["sign_ms"] + per_lookup["verifies"] * crypto["verify_ms"]
    return {**crypto, "signs_per_lookup": per_lookup["signs"], "verifies_per_lookup": per_lookup["verifies"],
            "counted": per_lookup["counted"], "per_lookup_ms": ms, "bound_rps": crypto["cores"] * 1e3 / ms}


# --- phases ---------------------------------------------------------------------------------------------------
def phase_bare(args: argparse.Namespace, gconf: dict[str, Any], procs: Processes, load: LoadGenerator) -> dict:
    from bare_service import request_body

    port = free_port()
    process = start_configured(procs, "bare", port, server_env(args, gconf), "--pythonpath", str(BENCH),
                               app="bare_service:application")
    url = f"http://127.0.0.1:{port}/"
    wait_for(f"{url}?wsdl", process, procs, "bare")
    body = request_body(ECHO_TEXT)
    print(f"(a) bare spyne echo on :{port}: warming up {args.warmup:g} s", flush=True)
    load.run(url, [body], unique=False, expect=ECHO_EXPECT, duration=args.warmup, name="a-warmup")
    print(f"(a) measuring {args.duration:g} s at {args.connections} connections", flush=True)
    with CpuMeter({"server": [process.pid]}) as cpu:
        result = load.run(url, [body], unique=False, expect=ECHO_EXPECT, duration=args.duration, name="a-measure")
    procs.stop("bare")
    return summarise(result, cpu)


def phase_lookup(args: argparse.Namespace, gconf: dict[str, Any], procs: Processes, load: LoadGenerator,
                 settings: Any, ports: dict[str, int], database_url: str, work: Path) -> dict:
    env = server_env(args, gconf, KRUISPUNT_VAR=str(settings.var_dir), KRUISPUNT_DATABASE_URL=database_url)
    if args.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(args.pythonpath).resolve()),
                                             *filter(None, [env.get("PYTHONPATH")])])
    backend_pids = [start_backend(procs, name, port, env, app=args.backend_app).pid for name, port in ports.items()]
    port = free_port()
    integrator = start_configured(procs, "integrator", port, env, app=args.integrator_app)
    for name, backend_port in ports.items():
        wait_for(f"http://127.0.0.1:{backend_port}/?wsdl", procs.running[f"backend-{name}"], procs, f"backend-{name}")
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/health/ready", integrator, procs, "integrator")
    url = f"{base}{TAX_PATH}"
    cert, key = kruisdorp_key_files(settings.pki_dir)

    # Warm-up (Python client, unique requests): warms every worker and backend, and tells how big the pool must be.
    warm_bodies, warm_sign = sign_pool(cert, key, args.warmup_pool, args.sign_processes)
    print(f"(b) integrator on :{port}: warming up {args.warmup:g} s with the Python client "
          f"({len(warm_bodies)} requests signed in {warm_sign:.1f} s)", flush=True)
    warm = run_python(url, warm_bodies, unique=True, expect=LOOKUP_EXPECT, connections=args.connections,
                      duration=args.warmup, processes=args.client_processes)
    warm_rps = warm["requests"] / warm["seconds"] if warm["seconds"] else 0.0
    if warm["bad"] or not warm["good"]:
        raise RuntimeError(f"warm-up lookups failed: {warm['good']} good, {warm['bad']} bad "
                           f"{warm['statuses']}; first bad answer:\n{warm['first_bad']}")

    # The measured pool: unique requests, comfortably more than will be sent, signed right before the run.
    size = max(args.min_pool, math.ceil(warm_rps * args.duration * args.pool_factor) + 4 * args.connections)
    bodies, sign_seconds = sign_pool(cert, key, size, args.sign_processes)
    if sign_seconds + args.duration > 240:
        print(f"warning: signing took {sign_seconds:.0f} s; the requests' Timestamps (5 min) may expire mid-run",
              flush=True)
    print(f"(b) warm-up rate {warm_rps:.1f}/s; signed a pool of {size} unique requests in {sign_seconds:.1f} s; "
          f"measuring {args.duration:g} s at {args.connections} connections", flush=True)
    spread = ConnectionSpread(integrator.pid, port, min(5.0, args.duration / 2))
    counted_before = rsa_counts(base, list(ports.values()))
    with CpuMeter({"integrator": [integrator.pid], "backends": backend_pids}) as cpu:
        spread.start()
        try:
            result = load.run(url, bodies, unique=True, expect=LOOKUP_EXPECT, duration=args.duration,
                              name="b-measure")
        finally:
            spread.cancel()
    counted_after = rsa_counts(base, list(ports.values()))
    result = summarise(result, cpu)
    result["rsa_per_lookup"] = counted_per_lookup(counted_before, counted_after, result["requests"])
    result["connections_per_worker"] = spread.found
    result["pool_signed"] = size
    result["pool_sign_seconds"] = sign_seconds
    result["warmup"] = {"requests": warm["requests"], "rps": warm_rps, "good": warm["good"], "bad": warm["bad"]}
    result["stage_breakdown"] = stage_table(result)
    try:
        result["audit_outcomes_incl_warmup"] = audit_outcomes(database_url)
    except Exception as exc:  # informative only
        result["audit_outcomes_incl_warmup"] = {"error": str(exc)}
    if args.profile:
        targets = {"integrator": worker_pids(integrator.pid), "backend": worker_pids(backend_pids[0])}
        result["profile"] = profile_stack(args, load, targets, url, cert, key, work, result["throughput_rps"])
    return result


def profile_stack(args: argparse.Namespace, load: LoadGenerator, targets: dict[str, list[int]], url: str,
                  cert: Path, key: Path, work: Path, rate: float) -> dict[str, Any]:
    """py-spy record (--gil: only the thread holding the GIL, i.e. where the Python CPU goes) on the given worker
    processes during an extra, unmeasured load run; top functions by own and by inclusive samples per target."""
    spy = find_py_spy()
    if spy is None:
        return {"error": PY_SPY_MISSING}
    seconds = max(5.0, args.profile)
    size = max(args.min_pool, math.ceil(rate * (seconds + 2) * args.pool_factor) + 4 * args.connections)
    bodies, _ = sign_pool(cert, key, size, args.sign_processes)
    spies = PySpy(spy, targets, seconds, work, "pyspy")
    print(f"(b) profiling {', '.join(f'{k} ({len(v)} pids)' for k, v in targets.items())} with py-spy "
          f"for {seconds:g} s", flush=True)
    time.sleep(0.5)
    load.run(url, bodies, unique=True, expect=LOOKUP_EXPECT, duration=seconds, name="b-profile")
    return {label: {"samples": s.total, "categories": s.shares(s.categories, 15), "self": s.shares(s.own, 25),
                    "inclusive": s.shares(s.inclusive, 60), "py_spy_stderr": s.errors}
            for label, s in spies.samples().items()}


# --- report ---------------------------------------------------------------------------------------------------
def report(run: dict[str, Any]) -> str:
    a, b, c = run["bare"], run["lookup"], run["crypto"]
    lines = [
        f"kruispunt lookup benchmark  {run['started']}  {run['cores']} cores  python {run['python']}",
        f"gunicorn (both phases): {run['gunicorn']['workers']} workers x {run['gunicorn']['worker_class']} x "
        f"{run['gunicorn']['threads']} threads (gunicorn.conf.py); backends 1 worker x gthread x 4 threads each; "
        f"database {run['database']}",
        f"load generator (both phases): {run['load_generator']}; {run['connections']} connections, "
        f"{run['duration']:g} s measured after {run['warmup']:g} s warm-up",
        "",
        load_header(34, f"{'non-good':>8}"),
    ]
    for label, r in (("(a) bare spyne echo (unsigned)", a), ("(b) signed tax-exemption lookup", b)):
        lines.append(load_row(label, 34, r) + f"{r['bad']:>8}")
    lines += [
        "",
        f"ratio b/a (throughput)              {b['throughput_rps'] / a['throughput_rps']:.4f}   "
        f"(a is {a['throughput_rps'] / b['throughput_rps']:.0f}x b)",
        f"(c) crypto per lookup               {c['signs_per_lookup']:.2f} signs x {c['sign_ms']:.3f} ms + "
        f"{c['verifies_per_lookup']:.2f} verifies x {c['verify_ms']:.3f} ms = {c['per_lookup_ms']:.2f} ms "
        f"(RSA-{c['key_bits']}, PKCS#1 v1.5, SHA-256; "
        f"{'counted in the integrator and the backends' if c['counted'] else 'ASSUMED: this code does not count'})",
        f"crypto-bound throughput             {c['cores']} cores / {c['per_lookup_ms']:.2f} ms = "
        f"{c['bound_rps']:.0f} lookups/s",
        f"efficiency (b / crypto-bound)       {b['throughput_rps'] / c['bound_rps']:.1%}",
    ]
    if "cpu_ms_per_request" in b:
        cpu_b, cpu_a = b["cpu_ms_per_request"], a.get("cpu_ms_per_request", {})
        servers = cpu_b.get("integrator", 0) + cpu_b.get("backends", 0)
        lines += [
            "",
            "CPU per request (user+system, from /proc); machine busy during the run: "
            f"(a) {a.get('machine_busy', math.nan):.0%}, (b) {b.get('machine_busy', math.nan):.0%}; cores kept "
            f"busy by other processes meanwhile: (a) {a.get('other_load_cores', math.nan):.2f}, "
            f"(b) {b.get('other_load_cores', math.nan):.2f}",
            f"  (a) server {cpu_a.get('server', math.nan):.2f} ms, load generator "
            f"{cpu_a.get('load generator', math.nan):.2f} ms",
            f"  (b) integrator {cpu_b.get('integrator', math.nan):.2f} ms + backends "
            f"{cpu_b.get('backends', math.nan):.2f} ms = {servers:.2f} ms (RSA alone: {c['per_lookup_ms']:.2f} ms, "
            f"{c['per_lookup_ms'] / servers if servers else math.nan:.0%}); load generator "
            f"{cpu_b.get('load generator', math.nan):.2f} ms",
            f"  servers' CPU-bound ceiling: {c['cores']} cores / {servers:.2f} ms = "
            f"{c['cores'] * 1e3 / servers if servers else math.nan:.0f} lookups/s",
        ]
    stages = b.get("stage_breakdown") or {}
    if stages:
        how = "wrk Lua response() hook" if run["load_generator"].startswith("wrk") else "the Python client"
        lines += ["", f"where a lookup's time goes: Server-Timing of all {stages['responses']} measured (b) "
                      f"responses (captured by {how})"]
        lines += stage_lines(stages, b["latency_ms"]["mean"], "waiting for a worker thread, HTTP, WSGI, network")
        spread = b.get("connections_per_worker")
        if spread:
            lines.append(f"  client connections per integrator worker (pid: count, sampled once): "
                         f"{', '.join(f'{k}: {v}' for k, v in sorted(spread.items()))}; "
                         f"{run['gunicorn']['threads']} threads each")
        handle = stages["stages"].get("handle")
        if handle:
            lines.append(f"time in the backends as seen from the integrator ('handle': 4 parallel signed calls, "
                         f"sign + HTTP + backend + verify + XSD): {handle['mean_ms']:.2f} ms mean, "
                         f"{handle['share']:.1%} of the pipeline")
    problems = []
    for label, r in (("(a)", a), ("(b)", b)):
        problems += load_problems(label, r, socket_errors="{tag}: socket errors {socket_errors}",
                                  exhausted="{tag}: the request pool ran out ({pool}); the figures are INVALID, "
                                            "raise --pool-factor")
    spread = sorted(b.get("connections_per_worker", {}).values())
    if len(spread) > 1 and spread[-1] > run["gunicorn"]["threads"] and spread[0] < run["gunicorn"]["threads"]:
        lines += ["", f"warning: wrk's connections were spread {'/'.join(map(str, reversed(spread)))} over the "
                      f"integrator's workers (gthread keeps a connection on its worker): one worker had more "
                      "connections than threads while another had spare threads; (b) latency includes that queue"]
    lines += ["", result_line(problems, "every measured response was HTTP 200 with the expected answer "
                                        "(lookups: Complete=true)")]
    for label, profile in (b.get("profile") or {}).items():
        if not profile.get("self"):
            lines += ["", f"py-spy {label}: no samples {profile.get('py_spy_stderr') or profile.get('error', '')}"]
            continue
        lines += profile_lines(label, "worker(s)", profile, 12)
        lines += ["  (inclusive times: in the JSON; raw stacks: bench/results/pyspy-*.txt)"]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--duration", type=float, default=20.0, help="seconds measured per phase")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up per phase")
    p.add_argument("--connections", type=int, default=16, help="concurrent connections, both phases")
    p.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py's)")
    p.add_argument("--threads", type=int, default=None, help="gthread threads (default: gunicorn.conf.py's)")
    p.add_argument("--database-url", default=None,
                   help="SQLAlchemy URL of an existing database (e.g. postgresql://...); default: fresh SQLite")
    p.add_argument("--access-log", action="store_true", help="keep gunicorn's access log on (default: off)")
    add_options(p)  # --install, --python-client, --wrk-threads, --client-processes
    p.add_argument("--sign-processes", type=int, default=os.cpu_count() or 1, help="processes signing the pool")
    p.add_argument("--warmup-pool", type=int, default=600, help="signed requests available to the (b) warm-up")
    p.add_argument("--pool-factor", type=float, default=3.0,
                   help="pool = warm-up rate x duration x this (+ 4 per connection)")
    p.add_argument("--min-pool", type=int, default=500, help="smallest measured pool")
    p.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                   help="after (b), profile the integrator workers and one backend with py-spy under load this long")
    p.add_argument("--integrator-app", default="integrator.faces.wsgi:create_app()",
                   help="gunicorn app of the integrator (to A/B a wrapper module without editing product code)")
    p.add_argument("--backend-app", default="services.backends.wsgi:create_app()", help="gunicorn app of a backend")
    p.add_argument("--pythonpath", default=None, help="prepended to PYTHONPATH of the (b) servers, for such wrappers")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, PKI, database)")
    p.add_argument("--output", type=Path, default=None, help="JSON file (default: bench/results/lookup-<time>.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(args, "kruispunt-bench-", lambda run: bench(args, run), traceback=False)


def bench(args: argparse.Namespace, run: Run) -> int:
    procs, work = run.procs, run.work
    gconf = gunicorn_settings(args)
    cores = os.cpu_count() or 1
    load = LoadGenerator(args, procs, work)
    print(f"work dir {work}; load generator: {load.name}", flush=True)
    settings, ports, database_url = prepare_stack(args, work / "var")
    print("(c) timing RSA sign/verify with cryptography", flush=True)
    crypto = crypto_costs(settings.pki_dir / "integrator.key", cores)
    bare = phase_bare(args, gconf, procs, load)
    lookup = phase_lookup(args, gconf, procs, load, settings, ports, database_url, work)
    crypto = bound(crypto, lookup["rsa_per_lookup"])
    result = {
        "started": run.started.isoformat(timespec="seconds"), "cores": cores, "python": platform.python_version(),
        "gunicorn": gconf, "database": describe_url(database_url), "load_generator": load.name,
        "connections": args.connections, "duration": args.duration, "warmup": args.warmup, "bare": bare,
        "lookup": lookup, "crypto": crypto,
        "derived": {"ratio_b_over_a": lookup["throughput_rps"] / bare["throughput_rps"],
                    "efficiency_b_over_crypto_bound": lookup["throughput_rps"] / crypto["bound_rps"]},
    }
    print("\n" + report(result))
    write_json(result, args.output, "lookup", run.started)
    valid = not (bare["bad"] or lookup["bad"] or lookup["exhausted"])
    return 0 if valid else 2


if __name__ == "__main__":
    sys.exit(main())
