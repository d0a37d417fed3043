#!/usr/bin/env python3
"""Does the integrator's throughput stay flat as its data grows?

One run on PostgreSQL, side by side (see bench/README.md, "bench/growth.py"):

  (E) an integrator on an empty database (kp_growth_empty, made afresh each run);
  (F) an integrator on a database holding 10 million audit records spread over the 13 months before it was built
      and 1 million live replay keys (kp_growth_full, filled in SQL with generate_series, cached between runs and
      checked by counting);

both under gunicorn -c gunicorn.conf.py, in front of the same reference backend, answering the generic pass-through
call of bench/passthrough.py (StatusSource/v1 get_statuses, signed by Gemeente Kruisdorp, pools signed before the
timed part). The measured time is split into alternating rounds, E F, F E, ... so that the machine's drift hits both.
Then, on (F): a window's worth of expired replay keys is added and pruned the way the maintenance step prunes them
(bounded batches), once unloaded and once under load; and what partitioning the audit table changed is measured
against a plain copy of the same 10 million records: retiring the oldest month, one-row inserts, lookups by ticket.

Run from the project root:  .venv/bin/python bench/growth.py [--rounds 6] [--slice 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
for _path in (BENCH.parent, BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import growth_db as gdb  # noqa: E402  (bench/: the modules the benches share)
from demo_stack import kruisdorp_key_files  # noqa: E402
from loadgen import LoadGenerator, add_options, run_python  # noqa: E402
from passthrough import EXPECT, PASS_PATH, Signer, combine, measure, sanity  # noqa: E402
from report import load_header, load_problems, load_row, result_line, write_json  # noqa: E402
from servers import (  # noqa: E402
    Processes,
    Run,
    free_port,
    gunicorn_settings,
    run_bench,
    server_env,
    start_backend,
    start_configured,
    wait_for,
)

DATABASES = {"empty": "kp_growth_empty", "full": "kp_growth_full"}
MIGRATE = "kp_growth_migrate"  # made, migrated and dropped again by the migration measurement
TARGET = 0.9


# --- the stack ------------------------------------------------------------------------------------------------
class Side:
    """One integrator on its database, with what passthrough.measure() and passthrough.sanity() read of a stack."""

    def __init__(self, label: str, database: str, url: str, integrator: Any, port: int, backend: Any,
                 settings: Any, source: Any, backend_port: int) -> None:
        self.label, self.database, self.database_url = label, database, url
        self.integrator, self.port, self.backend = integrator, port, backend
        self.settings, self.source = settings, source
        self.urls = {"direct": f"http://127.0.0.1:{backend_port}/", "pass": f"http://127.0.0.1:{port}{PASS_PATH}"}

    def keys(self) -> dict[str, tuple[Path, Path]]:
        pki = self.settings.pki_dir
        return {"org": kruisdorp_key_files(pki), "integrator": (pki / "integrator.crt", pki / "integrator.key")}


def upgrade(url: str) -> None:
    from integrator import commands
    from integrator.config import Settings

    commands.db_upgrade(Settings.from_env({"KRUISPUNT_DATABASE_URL": url}))


def prepare(var: Path, urls: list[str], backend_port: int) -> Any:
    """One demo PKI for both integrators; schema, demo data (the backend on backend_port) and the coming audit
    months in each database."""
    from integrator import partitions
    from integrator.config import Settings
    from integrator.database import make_engine, session_factory
    from services import demo
    from services.backends.status_source import SOURCES

    settings = Settings.from_env({"KRUISPUNT_VAR": str(var), "KRUISPUNT_DATABASE_URL": urls[0]})
    demo.pki_init(settings)
    for url in urls:
        upgrade(url)
        engine = make_engine(url)
        with session_factory(engine)() as session:
            demo.load(settings, session, {SOURCES[0].name: f"http://127.0.0.1:{backend_port}/"})
            partitions.ensure_ahead(session, datetime.now(UTC), 3)
        engine.dispose()
    return settings


def start(args: argparse.Namespace, procs: Processes, work: Path, server: gdb.Server) -> dict[str, Side]:
    from services.backends.status_source import SOURCES

    source = SOURCES[0]  # StatusSource/v1's backend (services/demo.py _generic_demo)
    backend_port = free_port()
    urls = {kind: server.url(name) for kind, name in DATABASES.items()}
    settings = prepare(work / "var", list(urls.values()), backend_port)
    gconf = gunicorn_settings(args)
    env = server_env(args, gconf, KRUISPUNT_VAR=str(settings.var_dir))
    backend = start_backend(procs, source.name, backend_port, env, workers=args.backend_workers,
                            threads=args.backend_threads)
    sides = {}
    for kind, url in urls.items():
        port = free_port()
        integrator = start_configured(procs, f"integrator-{kind}", port, dict(env, KRUISPUNT_DATABASE_URL=url),
                                      *shlex.split(args.integrator_gunicorn_args or ""))
        sides[kind] = Side(kind, DATABASES[kind], url, integrator, port, backend, settings, source, backend_port)
    wait_for(f"http://127.0.0.1:{backend_port}/?wsdl", backend, procs, f"backend-{source.name}")
    for kind, side in sides.items():
        wait_for(f"http://127.0.0.1:{side.port}/health/ready", side.integrator, procs, f"integrator-{kind}")
    return sides


# --- load -----------------------------------------------------------------------------------------------------
def warm_up(side: Side, signer: Signer, args: argparse.Namespace, warnings: list[str]) -> float:
    """Warm every worker (routes, contracts, connection pools) and learn the rate that sizes the pools."""
    bodies, seconds = signer.sign("pass", args.warmup_pool)
    print(f"{side.label}: warming up with {len(bodies)} requests (signed in {seconds:.1f} s)", flush=True)
    began = time.time()
    warm = run_python(side.urls["pass"], bodies, unique=True, expect=EXPECT, connections=args.connections,
                      duration=None, limit=len(bodies), processes=args.client_processes)
    if not warm["good"] or warm["bad"] > 0.05 * warm["requests"]:
        raise RuntimeError(f"{side.label} warm-up failed: {warm['good']} good, {warm['bad']} bad {warm['statuses']}; "
                           f"first bad answer:\n{warm['first_bad']}")
    if warm["bad"]:
        warnings.append(f"{side.label} warm-up: {warm['bad']} of {warm['requests']} answers not good "
                        f"{warm['statuses']}: {(warm['first_bad'] or '')[:300]}")
    return warm["requests"] / max(1e-3, time.time() - began - 0.5)


class PruneDuringLoad:
    """A signer for passthrough.measure() that, once the slice's pool is signed (the load starts right after),
    starts on a thread what a worker's maintenance thread does with a backlog of expired keys: rounds of
    Maintenance.run_once() (the product's policy: bounded batches, resting between them), one after the other while
    a round reaches its batch limit."""

    def __init__(self, signer: Signer, side: Side) -> None:
        self.signer, self.side = signer, side
        self.thread: threading.Thread | None = None
        self.result: dict[str, Any] = {}

    def sign(self, kind: str, count: int) -> tuple[list[bytes], float]:
        signed = self.signer.sign(kind, count)
        self.thread = threading.Thread(target=self._rounds, daemon=True)
        self.thread.start()
        return signed

    def _rounds(self) -> None:
        from integrator.database import make_engine, session_factory
        from integrator.maintenance import Maintenance, MaintenancePolicy

        time.sleep(1.0)  # into the load
        engine = make_engine(self.side.database_url)
        policy = MaintenancePolicy.from_env()
        step = Maintenance(session_factory(engine), policy)
        began = time.perf_counter()
        deleted = batches = rounds = 0
        longest = 0.0
        try:
            while True:
                done = step.run_once().pruned
                deleted, batches, rounds = deleted + done.deleted, batches + done.batches, rounds + 1
                longest = max(longest, done.longest_batch_seconds)
                if not done.more:
                    break
        finally:
            engine.dispose()
        self.result = {"deleted": deleted, "batches": batches, "rounds": rounds, "more": False,
                       "seconds": time.perf_counter() - began, "longest_batch_seconds": longest,
                       "policy": vars(policy)}

    def wait(self) -> tuple[dict[str, Any], float]:
        """The rounds' figures and how long after the slice they went on (0: done within it)."""
        ended = time.monotonic()
        assert self.thread is not None
        self.thread.join()
        return self.result, max(0.0, time.monotonic() - ended)


def prune_phase(sides: dict[str, Side], server: gdb.Server, signer: Signer, args: argparse.Namespace,
                load: LoadGenerator, rate: float) -> dict[str, Any]:
    """On (F): a window's worth of expired keys, pruned unloaded; again, pruned during a loaded slice."""
    from integrator import replay
    from integrator.database import make_engine, session_factory

    full = sides["full"]
    out: dict[str, Any] = {"expired_keys": args.prune_keys, "batch": args.prune_batch}
    out["insert_seconds"] = gdb.add_expired(server, full.database, args.prune_keys)
    print(f"(F) {args.prune_keys:,} expired keys added in {out['insert_seconds']:.1f} s; pruning, unloaded, as "
          "`kruispunt maintenance prune` does", flush=True)
    engine = make_engine(full.database_url)
    done = replay.prune(session_factory(engine), batch=args.prune_batch)
    engine.dispose()
    out["unloaded"] = vars(done)
    out["after_unloaded"] = gdb.counts(server, full.database)
    gdb.add_expired(server, full.database, args.prune_keys)
    print(f"(F) {args.prune_keys:,} expired keys added again; a {args.prune_slice:g} s slice at {args.connections} "
          "connections while maintenance rounds prune them", flush=True)
    pruner = PruneDuringLoad(signer, full)
    out["slice"] = measure("pass", full, pruner, args, load, rate, args.prune_slice, args.connections,
                           "full-prune")  # type: ignore[arg-type]
    result, overrun = pruner.wait()
    out["loaded"] = result
    out["loaded_overran_slice_seconds"] = overrun
    out["vacuum_seconds"] = gdb.vacuum(server, full.database, "seen_messages")
    out["after_loaded"] = gdb.counts(server, full.database)
    return out


def partitioning(server: gdb.Server, fill: gdb.Fill, args: argparse.Namespace) -> dict[str, Any]:
    full, empty = DATABASES["full"], DATABASES["empty"]
    out: dict[str, Any] = {"plain_copy_seconds": gdb.plain_copy(server, full, fill, print)}
    print("retiring the oldest month: DETACH + DROP of its partition against DELETE from the plain table "
          "(each rolled back)", flush=True)
    out["retire_month"] = gdb.remove_oldest_month(server, full)
    print(f"one-row audit inserts: {args.insert_rows} x {args.insert_rounds} rounds per table", flush=True)
    size = f"{fill.audit_rows / 1e6:g}M"
    out["inserts"] = gdb.insert_rates(server, [("empty, partitioned", empty, "audit_records"),
                                               (f"{size}, partitioned", full, "audit_records"),
                                               (f"{size}, plain", full, gdb.PLAIN)], args.insert_rows,
                                      args.insert_rounds)
    out["lookups"] = gdb.ticket_lookups(server, full, args.lookup_samples)
    if args.migration_rows > 0:
        out["migration"] = gdb.migration(server, MIGRATE, args.migration_rows, args.months, print)
    return out


# --- report ---------------------------------------------------------------------------------------------------
def pair_ratios(e: dict[str, Any], f: dict[str, Any]) -> list[float]:
    return [fr / er for er, fr in zip(e["throughput_per_round"], f["throughput_per_round"], strict=True)]


def geometric(ratios: list[float]) -> tuple[float, float]:
    """The geometric mean of the round pairs' ratios and its standard error, as a factor (x/ this)."""
    logs = [math.log(r) for r in ratios]
    spread = statistics.stdev(logs) / math.sqrt(len(logs)) if len(logs) > 1 else math.nan
    return math.exp(statistics.fmean(logs)), math.exp(spread)


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def table_line(tag: str, t: dict[str, Any]) -> str:
    return (f"  {tag} audit_records {t['audit_rows']:>12,} rows {mib(t['audit_bytes']):>11} in {t['audit_partitions']} "
            f"partitions (largest {mib(t['audit_largest_partition_bytes'])}); seen_messages {t['replay_rows']:>10,} "
            f"rows ({t['replay_live']:,} live) {mib(t['replay_bytes'])}; database {mib(t['database_bytes'])}")


def report(run: dict[str, Any]) -> str:
    e, f = run["loaded"]["empty"], run["loaded"]["full"]
    g, fill = run["gunicorn"], run["fill"]
    ratio = f["throughput_rps"] / e["throughput_rps"]
    pairs = run["derived"]["pair_ratios"]
    mean, error = geometric(pairs)
    lines = [
        f"kruispunt growth benchmark  {run['started']}  {run['cores']} cores  python {run['python']}",
        f"integrators: gunicorn.conf.py, {g['workers']} workers x {g['worker_class']} x {g['threads']} threads, one "
        f"per database; the same backend {run['backend']} (1 worker x gthread x 4 threads) behind both",
        f"databases on {run['server']}: (E) {DATABASES['empty']}, made afresh; (F) {DATABASES['full']}, "
        f"{fill['audit_rows']:,} audit records over {fill['months']} months and {fill['replay_rows']:,} live replay "
        f"keys, {run['fill_state']}, filled in {fill['build_seconds']:.0f} s at {fill['built_at']}",
        f"load generator: {run['load_generator']}; {run['connections']} connections; {run['rounds']} alternating "
        f"rounds of {run['slice']:g} s per database (E F, F E, ...) after a warm-up of each",
        "prewarmed into the OS cache (pg_prewarm 'read': the replay table, the current audit partition, their "
        "indexes): " + (", ".join(f"{k} {sum(v.values()) * 8 / 1024:,.0f} MiB"
                                  for k, v in run["prewarmed_blocks"].items()) or "no"),
        "",
        load_header(44, f"{'CPU ms/call':>28}"),
    ]
    for kind, r in (("empty", e), ("full", f)):
        c = r.get("cpu_ms_per_request") or {}
        lines.append(load_row(LABEL[kind], 44, r) + f"integrator {c.get('integrator', 0):5.2f} + backend "
                                                   f"{c.get('backend', 0):5.2f}")
        lines.append(f"{'   per round req/s':44}" + "  ".join(f"{x:.1f}" for x in r["throughput_per_round"]))
    stages = {k: (r.get("stage_breakdown") or {}).get("stages", {}) for k, r in (("E", e), ("F", f))}

    def stage(side: str, name: str) -> float:
        return float(stages[side].get(name, {}).get("mean_ms", 0.0))

    lines += [
        "",
        f"ratio F/E throughput        {ratio:.3f} (pooled); target >= {TARGET}: "
        + ("met" if ratio >= TARGET else "NOT met"),
        "  per round pair            " + " ".join(f"{x:.2f}" for x in pairs)
        + f"; median {statistics.median(pairs):.3f}, geometric mean {mean:.3f} (standard error x/ {error:.3f})",
        f"ratio F/E latency           p50 {f['latency_ms']['p50'] / e['latency_ms']['p50']:.2f}   p99 "
        f"{f['latency_ms']['p99'] / e['latency_ms']['p99']:.2f}",
        "database stages (Server-Timing means, ms)  " + "   ".join(
            f"{name} E {stage('E', name):.2f} F {stage('F', name):.2f}" for name in ("replay", "caller", "audit")),
        f"machine busy: E {e['machine_busy']:.0%}, F {f['machine_busy']:.0%}; cores kept busy by other processes "
        f"meanwhile: E {e['other_load_cores']:.2f}, F {f['other_load_cores']:.2f} (the database server is one of them)",
        "",
        "tables after the rounds (rows counted; bytes with indexes)",
    ]
    for kind in ("empty", "full"):
        lines.append(table_line(LABEL[kind][:3], run["tables"][kind]))
    p = run.get("prune")
    if p:
        u, lo = p["unloaded"], p["loaded"]
        pol = lo["policy"]
        during = p["slice"]["throughput_rps"]
        lines += [
            "",
            f"prune of {p['expired_keys']:,} expired keys (added in {p['insert_seconds']:.1f} s), each batch its own "
            "transaction:",
            f"  unloaded, batches of {p['batch']:,} back to back (kruispunt maintenance prune): {u['deleted']:,} "
            f"deleted in {u['batches']} batches, {u['seconds']:.1f} s ({u['deleted'] / max(u['seconds'], 1e-9):,.0f} "
            f"keys/s), longest batch {u['longest_batch_seconds'] * 1e3:.0f} ms; live keys kept "
            f"{p['after_unloaded']['replay_live']:,}",
            f"  under load, maintenance rounds (batches of {pol['prune_batch']:,}, {pol['prune_max_batches']} a round,"
            f" resting {pol['prune_rest']:g}x a batch's time after it): {lo['deleted']:,} deleted "
            f"in {lo['batches']} batches over {lo['rounds']} rounds, {lo['seconds']:.1f} s, longest batch "
            f"{lo['longest_batch_seconds'] * 1e3:.0f} ms"
            + (f" (ran {p['loaded_overran_slice_seconds']:.1f} s past the slice)"
               if p["loaded_overran_slice_seconds"] > 0.05 else ""),
            f"  (F) during the prune {during:.1f} req/s, p50 {p['slice']['latency_ms']['p50']:.1f} ms, p99 "
            f"{p['slice']['latency_ms']['p99']:.1f} ms: {during / f['throughput_rps']:.2f} of (F)'s rounds, "
            f"{during / e['throughput_rps']:.2f} of (E)'s",
            f"  then VACUUM ANALYZE seen_messages {p['vacuum_seconds']:.1f} s (autovacuum's work); after it:",
            table_line("(F)", p["after_loaded"]),
        ]
    q = run.get("partitioning")
    if q:
        rm, ins, lk = q["retire_month"], q["inserts"], q["lookups"]
        plain = lk[gdb.PLAIN]
        lines += [
            "",
            f"what partitioning changed, on (F)'s {fill['audit_rows']:,} records against a plain copy keyed by ticket "
            f"({gdb.PLAIN}, copied in {q['plain_copy_seconds']:.0f} s):",
            f"  retiring the oldest month ({rm['month']}, {rm['rows']:,} records): DETACH + DROP PARTITION "
            f"{rm['partitioned_seconds'] * 1e3:.0f} ms; DELETE from the plain table {rm['plain_seconds']:.1f} s "
            f"({rm['plain_deleted']:,} rows, {rm['plain_seconds'] / max(rm['partitioned_seconds'], 1e-9):,.0f}x; "
            "then VACUUM to reuse the space)",
            "  one-row audit insert + commit (median round): " + ", ".join(
                f"{label} {r['median_round']:,.0f}/s" for label, r in ins.items()),
            f"  one record by its ticket alone: partitioned median {lk['audit_records']['median_us']:.0f} us "
            f"(p99 {lk['audit_records']['p99_us']:.0f}; {lk['audit_records']['plan']['buffers_hit']} buffers), plain "
            f"{plain['median_us']:.0f} us (p99 {plain['p99_us']:.0f}; {plain['plan']['buffers_hit']} buffers)",
        ]
        m = q.get("migration")
        if m:
            lines.append(f"  migration 0009 of a populated database: {m['rows']:,} records copied into "
                         f"{m['partitions']} partitions in {m['seconds']:.1f} s "
                         f"({m['rows_per_second']:,.0f} records/s), {m['kept']:,} kept")
    for warning in run.get("warnings") or []:
        lines += ["", f"warning (not measured): {warning}"]
    lines += ["", result_line(run["problems"], "every measured response was HTTP 200 carrying a get_statusesResponse")]
    return "\n".join(lines)


LABEL = {"empty": "(E) empty database", "full": "(F) the full database"}


def label_full(fill: gdb.Fill) -> str:
    return f"(F) {fill.audit_rows / 1e6:g}M audit records, {fill.replay_rows / 1e6:g}M live keys"


def problems_of(run: dict[str, Any]) -> list[str]:
    found = []
    groups = dict(run["loaded"])
    if run.get("prune"):
        groups["full, during the prune"] = run["prune"]["slice"]
    for tag, r in groups.items():
        found += load_problems(str(tag), r, socket_errors="{tag}: {n} socket errors",
                               exhausted="{tag}: the request pool ran out; raise --pool-factor")
    return found


# --- main -----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres",
                   help="the PostgreSQL server (the database named is only used to connect)")
    p.add_argument("--audit-rows", type=int, default=10_000_000, help="audit records in (F)")
    p.add_argument("--replay-rows", type=int, default=1_000_000, help="live replay keys in (F)")
    p.add_argument("--months", type=int, default=13, help="months the audit records of (F) are spread over")
    p.add_argument("--fill-workers", type=int, default=2, help="connections filling (F) in parallel")
    p.add_argument("--rebuild", action="store_true", help="fill (F) again even if the cached one is good")
    p.add_argument("--no-prewarm", action="store_true",
                   help="do not read the replay table and the current audit partition into the OS cache first")
    p.add_argument("--rounds", type=int, default=10, help="alternating rounds per database")
    p.add_argument("--slice", type=float, default=10.0, help="seconds per round and database")
    p.add_argument("--connections", type=int, default=16, help="concurrent connections")
    p.add_argument("--workers", type=int, default=None, help="integrator gunicorn workers (gunicorn.conf.py's)")
    p.add_argument("--threads", type=int, default=None, help="integrator gthread threads (gunicorn.conf.py's)")
    p.add_argument("--integrator-gunicorn-args", default="", metavar="ARGS", help="extra gunicorn options")
    p.add_argument("--backend-workers", type=int, default=1)
    p.add_argument("--backend-threads", type=int, default=4)
    p.add_argument("--access-log", action="store_true", help="keep gunicorn's access log on")
    add_options(p)  # --install, --python-client, --wrk-threads, --client-processes
    p.add_argument("--sign-processes", type=int, default=os.cpu_count() or 1)
    p.add_argument("--warmup-pool", type=int, default=400, help="requests sent to warm up each integrator")
    p.add_argument("--pool-factor", type=float, default=3.0, help="pool = warm-up rate x slice x this")
    p.add_argument("--min-pool", type=int, default=300, help="smallest pool")
    p.add_argument("--prune-keys", type=int, default=1_000_000, help="expired keys pruned (0: skip the prune)")
    p.add_argument("--prune-batch", type=int, default=5000, help="keys per prune statement")
    p.add_argument("--prune-slice", type=float, default=20.0, help="seconds of load while pruning")
    p.add_argument("--no-partitioning", action="store_true", help="skip the partitioned-vs-plain measurements")
    p.add_argument("--insert-rows", type=int, default=2000, help="one-row inserts per table per round")
    p.add_argument("--insert-rounds", type=int, default=5, help="measured rounds, after one unmeasured")
    p.add_argument("--lookup-samples", type=int, default=500, help="tickets looked up per round")
    p.add_argument("--migration-rows", type=int, default=1_000_000,
                   help="audit records of the database migration 0009 is timed on (0: skip)")
    p.add_argument("--keep", action="store_true", help="keep the work dir and (E)'s database")
    p.add_argument("--output", type=Path, default=None, help="JSON (default bench/results/growth-<time>.json)")
    args = p.parse_args(argv)
    args.direct_pool = 0  # read by passthrough.measure() for direct calls only
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(args, "kruispunt-bench-growth-", lambda bench_run: bench(args, bench_run))


def full_database(server: gdb.Server, args: argparse.Namespace) -> tuple[gdb.Fill, str]:
    name = DATABASES["full"]
    fill, why = (None, "--rebuild") if args.rebuild else gdb.cached(server, name)
    if fill is not None and fill.matches(args.audit_rows, args.replay_rows, args.months, gdb.head_revision()):
        print(f"(F) {name}: cached, built {fill.built_at:%Y-%m-%d %H:%M} UTC; counted {fill.audit_rows:,} audit "
              f"records and {fill.replay_rows:,} filler keys", flush=True)
        return fill, "cached"
    if fill is not None:
        why = f"cached with {fill.audit_rows:,} / {fill.replay_rows:,} / {fill.months} months, asked otherwise"
    print(f"(F) {name}: filling ({why})", flush=True)
    fill = gdb.build(server, name, upgrade, audit_rows=args.audit_rows, replay_rows=args.replay_rows,
                     months=args.months, workers=args.fill_workers, say=lambda s: print(s, flush=True))
    return fill, "built in this run"


def bench(args: argparse.Namespace, bench_run: Run) -> int:
    procs, work = bench_run.procs, bench_run.work
    server = gdb.Server(args.server)
    load = LoadGenerator(args, procs, work)
    print(f"work dir {work}; load generator: {load.name}", flush=True)
    fill, fill_state = full_database(server, args)
    LABEL["full"] = label_full(fill)
    forgotten = gdb.forget_traffic(server, DATABASES["full"], fill)
    server.create(DATABASES["empty"])
    if not args.keep:
        bench_run.cleanups.append(lambda: server.drop(DATABASES["empty"]))
    sides = start(args, procs, work, server)
    warmed = {} if args.no_prewarm else {kind: gdb.prewarm(server, name) for kind, name in DATABASES.items()}
    for side in sides.values():
        checked = sanity(side)  # type: ignore[arg-type]
        print(f"{side.label}: sanity checked, statuses {checked['pass']['codes']}", flush=True)
    signer = Signer(sides["empty"].keys(), args.sign_processes)
    bench_run.cleanups.append(signer.close)
    warnings: list[str] = []
    rates = {kind: warm_up(side, signer, args, warnings) for kind, side in sides.items()}
    print("warm-up rates: " + ", ".join(f"{k} {v:.1f}/s" for k, v in rates.items()), flush=True)
    rate = min(rates.values())
    slices: dict[str, list[dict[str, Any]]] = {"empty": [], "full": []}
    for round_no in range(args.rounds):
        for kind in (("empty", "full") if round_no % 2 == 0 else ("full", "empty")):
            print(f"round {round_no + 1}/{args.rounds}: {LABEL[kind]}, {args.slice:g} s", flush=True)
            slices[kind].append(measure("pass", sides[kind], signer, args, load, max(rate, rates[kind]), args.slice,
                                        args.connections, f"{kind}-{round_no}"))  # type: ignore[arg-type]
    run: dict[str, Any] = {
        "started": bench_run.started.isoformat(timespec="seconds"), "cores": os.cpu_count(),
        "python": platform.python_version(), "gunicorn": gunicorn_settings(args), "backend": sides["full"].source.name,
        "server": server.url("").rsplit("@", 1)[-1], "fill": vars(fill) | {"built_at": fill.built_at.isoformat()},
        "fill_state": fill_state, "forgotten_before": forgotten, "prewarmed_blocks": warmed,
        "load_generator": load.name,
        "connections": args.connections, "rounds": args.rounds, "slice": args.slice, "warmup_rates": rates,
        "warnings": warnings, "slices": slices, "loaded": {k: combine(v) for k, v in slices.items()},
    }
    run["derived"] = {"ratio_full_over_empty": run["loaded"]["full"]["throughput_rps"]
                      / run["loaded"]["empty"]["throughput_rps"],
                      "pair_ratios": pair_ratios(run["loaded"]["empty"], run["loaded"]["full"])}
    run["tables"] = {kind: gdb.counts(server, name) for kind, name in DATABASES.items()}
    if args.prune_keys > 0:
        run["prune"] = prune_phase(sides, server, signer, args, load, rates["full"])
    if not args.no_partitioning:
        run["partitioning"] = partitioning(server, fill, args)
    run["problems"] = problems_of(run)
    print("\n" + report(run))
    write_json(run, args.output, "growth", bench_run.started)
    return 0 if not run["problems"] else 2


if __name__ == "__main__":
    sys.exit(main())
