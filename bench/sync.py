#!/usr/bin/env python3
"""How fast does one integrator pull a peer's repository of 10,000 service versions, and how cheap is a later sync?

One run (see bench/README.md, "bench/sync.py"):

  * a source integrator with its own var dir (integrator certificate issued by a fresh network CA) and database,
    filled with --versions (10,000) active service versions open to federation, inserted in bulk through the
    SQLAlchemy models (every version carries the same StatusSource WSDL + 2 XSDs under its own name), and started
    under gunicorn -c gunicorn.conf.py;
  * a target integrator with its own var dir, certificate and database; each registered at the other as a peer;
  * at the target, timed: (i) the first full sync of every version, (ii) an incremental sync after --changed (100)
    versions moved active -> deprecated at the source (repository.registry.set_lifecycle), (iii) a sync with nothing
    new; through integrator.federation.sync_peer in this process (default) or the `kruispunt peer sync` CLI (--cli).

Run from the project root:  .venv/bin/python bench/sync.py [--versions 10000] [--database-url-source postgresql://...]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
for _path in (PROJECT, BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from cpu import MachineLoad, children_cpu, self_cpu, tree_cpu_seconds  # noqa: E402  (bench/: shared modules)
from profiling import short_path  # noqa: E402
from report import STAGES, describe_url, result_line, write_json  # noqa: E402
from servers import Processes, Run, free_port, gunicorn_settings, run_bench, start_configured, wait_for  # noqa: E402

SOURCE_NAME, TARGET_NAME = "bench-source", "bench-target"


# --- databases ------------------------------------------------------------------------------------------------
@contextmanager
def fresh_database(url: str | None, sqlite_path: Path, label: str, keep: bool) -> Iterator[str]:
    """An empty database for one integrator: an SQLite file in the work dir, or a new database created on the
    PostgreSQL server that url names (the database in url is only used to connect; dropped afterwards)."""
    if not url:
        yield f"sqlite:///{sqlite_path}"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        if parsed.get_backend_name() == "sqlite":
            yield url  # an SQLite URL given on purpose: used as it is (it should be empty)
            return
        raise SystemExit(f"--database-url-{label}: only postgresql:// (or sqlite://) URLs are supported")
    name = f"kp_bench_sync_{label}_{uuid.uuid4().hex[:8]}"
    admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"kept PostgreSQL database {name}", file=sys.stderr)
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the two integrators --------------------------------------------------------------------------------------
@dataclass
class Side:
    name: str
    enterprise_number: str
    var_dir: Path
    database_url: str
    port: int
    identity: Any
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def make_side(name: str, number: str, network_pki: Path, var_dir: Path, database_url: str,
              max_bytes: int | None) -> Side:
    """Like tests/federation.py make_integrator: the network's CA and CRL, its own integrator certificate, its own
    database at Alembic head."""
    from integrator import commands
    from integrator.config import Settings
    from integrator.pki import Identity, issue

    own = var_dir / "pki"
    own.mkdir(parents=True, exist_ok=True)
    for file in ("ca.crt", "ca.crl"):
        shutil.copy2(network_pki / file, own / file)
    ca = Identity("ca", network_pki / "ca.crt", network_pki / "ca.key")
    identity = issue(ca, own, "integrator", common_name=f"kruispunt {name}", organization=name, serial_number=number)
    port = free_port()
    env = dict(os.environ, KRUISPUNT_VAR=str(var_dir), KRUISPUNT_DATABASE_URL=database_url, KRUISPUNT_NAME=name,
               KRUISPUNT_ENTERPRISE_NUMBER=number, KRUISPUNT_ACCESS_LOG="", KRUISPUNT_PUBLIC_URL=f"http://127.0.0.1:{port}",
               PYTHONUNBUFFERED="1")
    env.pop("KRUISPUNT_BIND", None)
    if max_bytes:
        env["KRUISPUNT_PEER_ANSWER_MAX_BYTES"] = str(max_bytes)
    commands.db_upgrade(Settings.from_env(env))
    return Side(name, number, var_dir, database_url, port, identity, env)


def peer_up(local: Side, remote: Side) -> None:
    """local knows remote as a federation peer (tests/federation.py peer_up)."""
    from integrator import commands
    from integrator.database import make_engine, session_factory

    engine = make_engine(local.database_url)
    try:
        with session_factory(engine)() as session:
            commands.add_organisation(session, local.enterprise_number, f"integrator {local.name}", "integrator")
            commands.add_peer(session, remote.name, remote.base_url, remote.identity.cert_path.read_bytes(),
                              remote.enterprise_number)
            session.commit()
    finally:
        engine.dispose()


def version_of(i: int, per_name: int) -> tuple[str, int, int]:
    """The i-th bench version: per_name minor versions (1.0, 1.1, ...) of each service name."""
    return f"BenchService{i // per_name:05d}", 1, i % per_name


def populate(source: Side, count: int, per_name: int, sample: int) -> dict[str, Any]:
    """count active, federated versions in bulk (SQLAlchemy ORM bulk INSERT/UPDATE through the models): per version
    its 3 documents and two feed entries, 'created' then 'lifecycle', as register_version + set_lifecycle leave
    them. Before that, `sample` drafts through repository.registry.register_version, timed, for comparison (drafts
    are not in the feed)."""
    from sqlalchemy import func, insert, select, update

    from integrator import commands
    from integrator.database import make_engine, session_factory
    from repository import registry
    from repository.models import Change, ServiceDocument, ServiceVersion

    docs = commands.read_documents(PROJECT / "wsdl" / "StatusSource-v1.wsdl", PROJECT)
    engine = make_engine(source.database_url)
    sessions = session_factory(engine)
    out: dict[str, Any] = {"documents_per_version": len(docs.files),
                           "document_bytes_per_version": sum(len(c) for c in docs.files.values())}
    try:
        if sample:
            began = time.perf_counter()
            with sessions() as session:
                for i in range(sample):
                    registry.register_version(session, f"RegistrySample{i:03d}", "1.0", docs,
                                              owner=source.enterprise_number, description="timing sample")
                    session.commit()
            seconds = time.perf_counter() - began
            out["register_version_sample"] = {"versions": sample, "seconds": seconds, "per_second": sample / seconds}
        began = time.perf_counter()
        now = datetime.now(UTC)
        with sessions() as session:
            rows = []
            for i in range(count):
                name, major, minor = version_of(i, per_name)
                rows.append({"name": name, "major": major, "minor": minor, "description": f"bench version {i}",
                             "owner": source.enterprise_number, "status": "active", "wsdl": docs.wsdl,
                             "federated": True, "origin": "local", "change_seq": 0, "updated_at": now})
            ids = session.execute(insert(ServiceVersion).returning(ServiceVersion.id, sort_by_parameter_order=True),
                                  rows).scalars().all()
            session.execute(insert(ServiceDocument), [{"version_id": v, "path": p, "content": c}
                                                      for v in ids for p, c in docs.files.items()])
            seqs = session.execute(insert(Change).returning(Change.seq, sort_by_parameter_order=True),
                                   [{"version_id": v, "kind": k, "at": now} for v in ids
                                    for k in ("created", "lifecycle")]).scalars().all()
            session.execute(update(ServiceVersion), [{"id": v, "change_seq": seqs[2 * j + 1]}
                                                     for j, v in enumerate(ids)])
            session.commit()
            head = session.execute(select(func.max(Change.seq))).scalar_one()
        out.update(bulk_seconds=time.perf_counter() - began, versions=count, head=int(head or 0))
    finally:
        engine.dispose()
    return out


def change_versions(source: Side, count: int, changed: int, per_name: int) -> dict[str, Any]:
    """Move `changed` versions, spread evenly over the repository, active -> deprecated (with a sunset date)."""
    from integrator.database import make_engine, session_factory
    from repository import registry

    step = max(1, count // max(changed, 1))
    picked = [version_of(i, per_name) for i in range(0, count, step)][:changed]
    engine = make_engine(source.database_url)
    began = time.perf_counter()
    try:
        with session_factory(engine)() as session:
            for name, major, minor in picked:
                registry.set_lifecycle(session, name, f"{major}.{minor}", "deprecated",
                                       sunset=date.today() + timedelta(days=180))
            session.commit()
    finally:
        engine.dispose()
    return {"versions": len(picked), "seconds": time.perf_counter() - began,
            "names": [f"{n} {a}.{b}" for n, a, b in picked]}


def start_source(source: Side, procs: Processes, args: argparse.Namespace) -> Any:
    env = dict(source.env)
    if args.workers:
        env["KRUISPUNT_WORKERS"] = str(args.workers)
    if args.threads:
        env["KRUISPUNT_THREADS"] = str(args.threads)
    if args.worker_timeout:
        env["KRUISPUNT_WORKER_TIMEOUT"] = str(args.worker_timeout)
    process = start_configured(procs, "source", source.port, env)
    wait_for(f"{source.base_url}/health/ready", process, procs, "source")
    return process


# --- instrumented sync ----------------------------------------------------------------------------------------
class Meter:
    """What one sync cost, seen from the target: per page bytes, server stages, and where the client's time went."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.pages: list[dict[str, Any]] = []
        self.read_seconds = 0.0  # PeerClient._read: parse + verify the signed answer, signer and binding checks
        self.db_seconds = 0.0  # the page transactions: apply_page + commit
        self.db_transactions = 0
        self.statements = 0  # SQL statements the target's engine sent (an executemany counts once)
        self.statement_kinds: Counter[str] = Counter()

    def on_statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements += 1
        self.statement_kinds[statement.lstrip().split(None, 1)[0].upper()] += 1

    def on_response(self, reply: Any, *_args: Any, **_kwargs: Any) -> None:
        body = reply.request.body or b""
        stages: dict[str, float] = {}
        for part in (reply.headers.get("Server-Timing") or "").split(","):
            name, _, dur = part.strip().partition(";dur=")
            if name and dur:
                stages[name] = float(dur)
        self.pages.append({"status": reply.status_code, "bytes_out": len(body), "bytes_in": len(reply.content),
                           "server_ms": stages, "elapsed_to_headers": reply.elapsed.total_seconds()})


class TimedSessions:
    """A sessionmaker stand-in that sums the time spent inside `with sessions() as session:` blocks."""

    def __init__(self, factory: Any, meter: Meter) -> None:
        self.factory, self.meter = factory, meter

    def __call__(self) -> _TimedSession:
        return _TimedSession(self.factory(), self.meter)


class _TimedSession:
    def __init__(self, session: Any, meter: Meter) -> None:
        self.session, self.meter = session, meter

    def __enter__(self) -> Any:
        self.began = time.perf_counter()
        return self.session.__enter__()

    def __exit__(self, *exc: object) -> Any:
        try:
            return self.session.__exit__(*exc)
        finally:
            self.meter.db_seconds += time.perf_counter() - self.began
            self.meter.db_transactions += 1


class Target:
    """The syncing integrator: its PeerClient (as `kruispunt peer sync` builds it) and its database."""

    def __init__(self, side: Side, max_bytes: int | None) -> None:
        from integrator.config import Settings
        from integrator.database import make_engine, session_factory
        from integrator.envelope import EnvelopeLimits
        from integrator.federation import PeerClient
        from integrator.wssec.sign import SigningKey
        from integrator.wssec.trust import TrustStore

        self.side = side
        self.settings = Settings.from_env(side.env)
        self.engine = make_engine(side.database_url)
        self.sessions = session_factory(self.engine)
        limits = EnvelopeLimits().scaled(max_bytes) if max_bytes else self.settings.peer_limits
        self.client = PeerClient(SigningKey.from_identity(side.identity),
                                 TrustStore.from_files(self.settings.trust_anchor_paths, self.settings.crl_path),
                                 limits)
        self.meter = Meter()
        self.client.http.hooks["response"].append(self.meter.on_response)
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self.meter.on_statement)
        read = self.client._read

        def timed_read(*a: Any, **k: Any) -> Any:
            began = time.perf_counter()
            try:
                return read(*a, **k)
            finally:
                self.meter.read_seconds += time.perf_counter() - began

        self.client._read = timed_read  # type: ignore[method-assign]  # instance attribute: call() finds it

    def peer(self) -> Any:
        from repository.peers import find_peer

        with self.sessions() as session:
            peer = find_peer(session, SOURCE_NAME)
        assert peer is not None
        return peer

    def sync(self, page: int, profile: bool = False) -> dict[str, Any]:
        from integrator.federation import sync_peer

        peer = self.peer()
        self.meter.reset()
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
        cpu_before = self_cpu()
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        try:
            result = sync_peer(self.client, TimedSessions(self.sessions, self.meter), peer,
                               self.settings.operator_insz, page=page)
        finally:
            if profiler is not None:
                profiler.disable()
        seconds = time.perf_counter() - began
        if profiler is not None:
            self.profile = profile_summary(profiler)
        return {"applied": result.applied, "cursor": result.cursor, "head": result.head,
                "conflicts": len(result.conflicts), "seconds": seconds, "client_cpu_seconds": self_cpu() - cpu_before,
                **self._breakdown(seconds)}

    def sync_cli(self) -> dict[str, Any]:
        """`kruispunt peer sync bench-source --quiet` in its own process (its page size is the product's)."""
        cursor_before = self.peer().cursor
        children = children_cpu()
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "integrator.faces.cli", "peer", "sync", SOURCE_NAME, "--quiet"],
                              env=self.side.env, cwd=PROJECT, capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - began
        cpu = children_cpu() - children
        if done.returncode != 0:
            raise RuntimeError(f"kruispunt peer sync failed ({done.returncode}):\n{done.stderr[-2000:]}")
        peer = self.peer()
        with self.sessions() as session:
            from sqlalchemy import func, select

            from repository.models import ServiceVersion

            learnt = session.execute(select(func.count()).select_from(ServiceVersion)
                                     .where(ServiceVersion.origin_peer_id == peer.id)).scalar_one()
        said = re.search(r": (\d+) change\(s\) applied, cursor (\d+) of (\d+)", done.stdout)
        return {"applied": int(said[1]) if said else None, "cursor": peer.cursor,
                "head": int(said[3]) if said else None, "cursor_moved": peer.cursor - cursor_before,
                "learnt_versions_now": learnt, "seconds": seconds, "client_cpu_seconds": cpu,
                "cli_stdout": done.stdout.strip(), "pages": None}

    def _breakdown(self, seconds: float) -> dict[str, Any]:
        m = self.meter
        pages = m.pages
        server = Counter()
        for p in pages:
            server.update(p["server_ms"])
        server_s = sum(server.values()) / 1e3
        http_s = sum(p["elapsed_to_headers"] for p in pages)
        per_page = [p["elapsed_to_headers"] for p in pages]
        return {
            "pages": len(pages), "bytes_in": sum(p["bytes_in"] for p in pages),
            "bytes_out": sum(p["bytes_out"] for p in pages),
            "largest_answer_bytes": max((p["bytes_in"] for p in pages), default=0),
            "statuses": dict(Counter(str(p["status"]) for p in pages)),
            "server_stage_seconds": {k: v / 1e3 for k, v in server.items()},
            "server_seconds": server_s,
            "http_to_headers_seconds": http_s,
            "client_read_seconds": m.read_seconds,
            "client_db_seconds": m.db_seconds,
            "client_other_seconds": seconds - http_s - m.read_seconds - m.db_seconds,
            "target_sql_statements": m.statements, "target_sql_by_kind": dict(m.statement_kinds),
            "page_seconds": {"min": min(per_page, default=math.nan), "median":
                             statistics.median(per_page) if per_page else math.nan,
                             "max": max(per_page, default=math.nan),
                             "first": per_page[0] if per_page else math.nan,
                             "last": per_page[-1] if per_page else math.nan},
        }

    def verify(self, expected_versions: int, expected_deprecated: int, source_head: int) -> list[str]:
        """The target holds exactly what the source published; the cursor is at the source's head."""
        from sqlalchemy import func, select

        from repository.models import Peer, ServiceVersion

        problems = []
        peer = self.peer()
        with self.sessions() as session:
            counts = dict(session.execute(select(ServiceVersion.status, func.count())
                                          .where(ServiceVersion.origin_peer_id == peer.id)
                                          .group_by(ServiceVersion.status)).all())
            stored = session.get(Peer, peer.id)
            last_error = stored.last_error if stored else "peer missing"
        total = sum(counts.values())
        if total != expected_versions:
            problems.append(f"target holds {total} versions of {SOURCE_NAME}, expected {expected_versions}")
        if counts.get("deprecated", 0) != expected_deprecated:
            problems.append(f"target holds {counts.get('deprecated', 0)} deprecated versions, expected "
                            f"{expected_deprecated}")
        if peer.cursor != source_head:
            problems.append(f"target's cursor is {peer.cursor}, the source's head {source_head}")
        if last_error:
            problems.append(f"target's peer record has last_error: {last_error[:300]}")
        return problems

    def close(self) -> None:
        self.engine.dispose()


def profile_summary(profiler: Any, top: int = 18) -> dict[str, Any]:
    """cProfile of a sync at the target: the functions with the most cumulative and own time."""
    import pstats

    stats = pstats.Stats(profiler)
    total = stats.total_tt or 1e-9  # type: ignore[attr-defined]
    rows = []
    for (path, line, name), (_cc, calls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{name} ({short_path(path)}:{line})", "calls": calls, "own_s": own,
                     "cumulative_s": cumulative})
    product = [r for r in rows if r["function"].split("(", 1)[1].startswith(("integrator/", "repository/"))]
    return {"total_s": total,
            "cumulative": sorted(product, key=lambda r: -r["cumulative_s"])[:top],
            "own": sorted(rows, key=lambda r: -r["own_s"])[:top]}


def source_state(source: Side) -> dict[str, Any]:
    """The source's feed head and how many GetChanges it audited (one audit record per page served)."""
    from sqlalchemy import func, select

    from integrator.audit import AuditRecord
    from integrator.database import make_engine, session_factory
    from repository.models import Change

    engine = make_engine(source.database_url)
    try:
        with session_factory(engine)() as session:
            head = session.execute(select(func.coalesce(func.max(Change.seq), 0))).scalar_one()
            audited = dict(session.execute(select(AuditRecord.outcome, func.count())
                                           .where(AuditRecord.operation == "GetChanges")
                                           .group_by(AuditRecord.outcome)).all())
            faults = [r for r, in session.execute(select(AuditRecord.detail).where(
                AuditRecord.operation == "GetChanges", AuditRecord.outcome == "FAULT").limit(3)).all()]
    finally:
        engine.dispose()
    return {"head": int(head), "getchanges_audited": audited, "fault_details": faults}


# --- phases ---------------------------------------------------------------------------------------------------
def run_phase(label: str, target: Target, source: Side, source_pid: int, args: argparse.Namespace,
              profile: bool = False) -> dict[str, Any]:
    print(f"{label}: syncing", flush=True)
    audited_before = sum(source_state(source)["getchanges_audited"].values())
    machine = MachineLoad()
    source_cpu0 = tree_cpu_seconds([source_pid])
    began = time.monotonic()
    try:
        result = target.sync_cli() if args.cli else target.sync(args.page, profile=profile)
        result["ok"] = True
    except Exception as exc:  # a refused page: reported, and the remaining phases are skipped
        result = {"ok": False, "error": f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}",
                  "seconds": time.monotonic() - began}
        if not args.cli:
            result.update(target._breakdown(result["seconds"]))
    machine.stop()
    result["source_audited_pages"] = sum(source_state(source)["getchanges_audited"].values()) - audited_before
    if result.get("pages") is None:
        result["pages"] = result["source_audited_pages"]
    result["source_cpu_seconds"] = tree_cpu_seconds([source_pid]) - source_cpu0
    result["machine_busy"] = machine.busy
    ours = result["source_cpu_seconds"] + (result.get("client_cpu_seconds") or 0.0)
    result["other_load_cores"] = machine.others(ours)
    return result


def report(run: dict[str, Any]) -> str:
    phases = run["phases"]
    lines = [
        f"kruispunt federation sync benchmark  {run['started']}  {run['cores']} cores  python {run['python']}",
        f"source: {run['source']['database']}, gunicorn -c gunicorn.conf.py ({run['source']['workers']} workers x "
        f"gthread x {run['source']['threads']} threads); target: {run['target']['database']}, "
        f"{'the kruispunt peer sync CLI' if run['cli'] else 'integrator.federation.sync_peer in this process'}",
        f"repository: {run['populate']['versions']} active federated versions ({run['per_name']} minors per name), "
        f"{run['populate']['documents_per_version']} documents ({run['populate']['document_bytes_per_version']} "
        f"bytes) each, bulk-inserted in {run['populate']['bulk_seconds']:.1f} s; feed head "
        f"{run['populate']['head']}; page size {'product default' if run['cli'] else run['page']}, target's "
        f"envelope limit {run['max_bytes']} bytes",
    ]
    sample = run["populate"].get("register_version_sample")
    if sample:
        would = run["populate"]["versions"] / sample["per_second"]
        lines.append(f"  (for comparison: repository.registry.register_version ran at {sample['per_second']:.1f} "
                     f"versions/s on {sample['versions']} drafts: {would:.0f} s for {run['populate']['versions']})")
    lines += ["", f"{'':24}{'versions':>9}{'pages':>7}{'seconds':>9}{'vers/s':>9}{'ms/page':>9}{'MB in':>8}"
                  f"{'MB out':>8}{'src CPU s':>10}{'tgt CPU s':>10}"]
    for key, label in (("first", "(i) first full sync"), ("incremental", "(ii) incremental"),
                       ("nothing", "(iii) nothing new")):
        r = phases.get(key)
        if r is None:
            lines.append(f"{label:24}{'skipped':>9}")
            continue
        applied = r.get("applied")
        if applied is None:
            applied = r.get("cursor_moved")
        pages = r.get("pages")
        rate = (applied / r["seconds"]) if applied and r["seconds"] else math.nan
        per_page = r["seconds"] * 1e3 / pages if pages else math.nan
        lines.append(
            f"{label:24}{applied if applied is not None else '?':>9}{pages if pages is not None else '?':>7}"
            f"{r['seconds']:9.2f}{rate:9.0f}{per_page:9.1f}{_mb(r.get('bytes_in'), 8, 2)}"
            f"{_mb(r.get('bytes_out'), 8, 3)}{r['source_cpu_seconds']:10.2f}"
            f"{(r.get('client_cpu_seconds') or math.nan):10.2f}"
            + ("" if r.get("ok") else f"   FAILED: {r.get('error')}"))
    first, inc, nothing = phases.get("first"), phases.get("incremental"), phases.get("nothing")
    if first and inc and first.get("ok") and inc.get("ok"):
        lines += ["", f"ratio (ii)/(i) seconds: {inc['seconds'] / first['seconds']:.4f}  "
                      f"({run['changed']['versions']} of {run['populate']['versions']} versions = "
                      f"{run['changed']['versions'] / run['populate']['versions']:.4f})"]
        if nothing and nothing.get("ok"):
            lines.append(f"(iii) nothing new: {nothing['seconds'] * 1e3:.1f} ms for one empty page; "
                         f"ratio (iii)/(i) {nothing['seconds'] / first['seconds']:.4f}")
        if inc.get("applied") and first.get("applied"):
            per_first = first["seconds"] / first["applied"]
            per_inc = inc["seconds"] / inc["applied"]
            lines.append(f"per version: (i) {per_first * 1e3:.2f} ms, (ii) {per_inc * 1e3:.2f} ms")
    lines += ["", "where the time goes (seconds; server = the source's Server-Timing stages of its GetChanges "
                  "answers; client = this process)"]
    header = f"  {'':20}" + "".join(f"{s:>9}" for s in STAGES) + f"{'HTTP':>9}{'read':>9}{'apply':>9}{'other':>9}"
    lines.append(header)
    for key, label in (("first", "(i) first"), ("incremental", "(ii) incremental"), ("nothing", "(iii) nothing")):
        r = phases.get(key)
        if not r or "server_stage_seconds" not in r:
            continue
        stages = r["server_stage_seconds"]
        lines.append(f"  {label:20}" + "".join(f"{stages.get(s, 0.0):9.3f}" for s in STAGES)
                     + f"{r['http_to_headers_seconds']:9.3f}{r['client_read_seconds']:9.3f}"
                     f"{r['client_db_seconds']:9.3f}{r['client_other_seconds']:9.3f}")
    lines += ["  HTTP: request sent until the answer's headers arrived (includes every server stage); read: parse + "
              "verify the signed answer; apply: apply_page + commit at the target; other: signing the request, "
              "reading the body, decoding the items"]
    for key, label in (("first", "(i)"), ("incremental", "(ii)")):
        r = phases.get(key)
        if r and r.get("target_sql_statements") and r.get("applied"):
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["target_sql_by_kind"].items(), key=lambda kv: -kv[1]))
            lines.append(f"{label} target SQL statements: {r['target_sql_statements']} "
                         f"({r['target_sql_statements'] / r['applied']:.1f} per version: {kinds})")
    if first and first.get("page_seconds"):
        ps = first["page_seconds"]
        lines.append(f"(i) HTTP time per page: first {ps['first'] * 1e3:.0f} ms, median {ps['median'] * 1e3:.0f} ms, "
                     f"max {ps['max'] * 1e3:.0f} ms, last {ps['last'] * 1e3:.0f} ms; largest answer "
                     f"{first.get('largest_answer_bytes', 0) / 1e6:.2f} MB")
    for key in ("first", "incremental", "nothing"):
        r = phases.get(key)
        if r:
            lines.append(f"{key}: machine busy {r['machine_busy']:.0%}, cores kept busy by other processes "
                         f"{r['other_load_cores']:.2f}")
    state = run.get("source_state") or {}
    if state:
        lines.append(f"source audited GetChanges: {state.get('getchanges_audited')}"
                     + (f"; faults: {state['fault_details']}" if state.get("fault_details") else ""))
    probe = run.get("probe")
    if probe:
        lines += ["", f"probe at the product defaults (page {probe['page']}, envelope limit {probe['max_bytes']} "
                      f"bytes): " + ("ok" if probe["ok"] else f"REFUSED: {probe['error']}")
                  + f"; answer {probe['bytes_in'] / 1e6:.2f} MB"]
    prof = run.get("profile")
    if prof:
        lines += ["", f"cProfile of (i) at the target ({prof['total_s']:.1f} s profiled; timings above inflated by "
                      "the profiler): product functions by cumulative time"]
        lines += [f"  {r['cumulative_s']:8.2f} s {r['cumulative_s'] / prof['total_s']:6.1%} {r['calls']:>8} calls  "
                  f"{r['function']}" for r in prof["cumulative"]]
        lines += ["by own time (any function)"]
        lines += [f"  {r['own_s']:8.2f} s {r['own_s'] / prof['total_s']:6.1%} {r['calls']:>8} calls  {r['function']}"
                  for r in prof["own"]]
    problems = run.get("problems") or []
    lines += ["", result_line(problems, "every sync succeeded and the target holds exactly the source's versions, "
                                        "with the changed ones deprecated, its cursor at the source's head")]
    return "\n".join(lines)


def _mb(value: int | None, width: int, digits: int) -> str:
    return f"{'?':>{width}}" if value is None else f"{value / 1e6:{width}.{digits}f}"


def probe_defaults(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """One GetChanges page at the product's defaults (PAGE items, the default envelope limit), unapplied: does
    the first page of a large repository fit?"""
    from kruispunt_client.xml import build

    from integrator.federation import FD, FEDERATION_PATH, PAGE, SYNC_PURPOSE
    from integrator.namespaces import KP, q

    limits = target.client.limits
    target.client.limits = target.settings.peer_limits
    target.meter.reset()
    request = build(f"{{{FD}}}GetChangesRequest", {"Cursor": 0, "Limit": PAGE})
    caller = build(q(KP, "Caller"), {"Official": target.settings.operator_insz, "Purpose": SYNC_PURPOSE,
                                     "MessageId": str(uuid.uuid4())})
    out: dict[str, Any] = {"page": PAGE, "max_bytes": target.settings.peer_limits.max_bytes}
    try:
        answer = target.client.call(target.peer(), FEDERATION_PATH, request, [caller], f"{FD}:GetChanges")
        out.update(ok=True, items=len(answer.payload.findall(f"{{{FD}}}Change")))
    except Exception as exc:
        out.update(ok=False, error=f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")
    finally:
        target.client.limits = limits
    page = target.meter.pages[-1] if target.meter.pages else {}
    out.update(bytes_in=page.get("bytes_in", 0), http_seconds=page.get("elapsed_to_headers"),
               server_ms=page.get("server_ms"))
    return out


# --- main -----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from integrator.federation import PAGE

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--versions", type=int, default=10_000, help="versions open to federation at the source")
    p.add_argument("--per-name", type=int, default=5, help="minor versions per service name (1.0, 1.1, ...)")
    p.add_argument("--changed", type=int, default=100, help="versions moved active -> deprecated before (ii)")
    p.add_argument("--page", type=int, default=PAGE, help="sync_peer's page size (GetChanges Limit, at most 1000)")
    p.add_argument("--max-bytes", type=int, default=0,
                   help="the target's limit for peer answers; 0: the product's default "
                        "(KRUISPUNT_PEER_ANSWER_MAX_BYTES, 64 MiB; a feed page carries at most 8 MiB of documents)")
    p.add_argument("--database-url-source", default=None,
                   help="PostgreSQL server for the source (a fresh database is created there and dropped after), "
                        "e.g. postgresql://postgres@127.0.0.1:5432/postgres; default: a fresh SQLite file")
    p.add_argument("--database-url-target", default=None, help="the same for the target")
    p.add_argument("--cli", action="store_true", help="sync with `kruispunt peer sync` (a subprocess) instead of "
                                                      "sync_peer in this process (no per-stage breakdown)")
    p.add_argument("--profile", action="store_true",
                   help="run the first sync under cProfile (slower: its timings are not comparable) and print the "
                        "functions the target spends its time in")
    p.add_argument("--no-probe", action="store_true", help="skip the probe at the product's default limits")
    p.add_argument("--registry-sample", type=int, default=20,
                   help="also time register_version on this many drafts (not in the feed), for comparison")
    p.add_argument("--workers", type=int, default=None, help="source gunicorn workers (default gunicorn.conf.py's)")
    p.add_argument("--threads", type=int, default=None, help="source gthread threads (default gunicorn.conf.py's)")
    p.add_argument("--worker-timeout", type=int, default=None, help="source gunicorn worker timeout (default 60)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, PKI, SQLite files) and databases")
    p.add_argument("--output", type=Path, default=None, help="JSON file (default: bench/results/sync-<time>.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(args, "kruispunt-bench-sync-", lambda bench_run: bench(args, bench_run))


def bench(args: argparse.Namespace, bench_run: Run) -> int:
    from integrator import commands
    from integrator.config import Settings
    from services.demo_organisations import enterprise_number

    procs, work = bench_run.procs, bench_run.work
    gconf = gunicorn_settings(args)
    network = Settings.from_env({"KRUISPUNT_VAR": str(work / "network")})
    commands.pki_init(network, [], [])
    max_bytes = args.max_bytes or network.peer_answer_max_bytes
    with fresh_database(args.database_url_source, work / "source.db", "source", args.keep) as source_url, \
            fresh_database(args.database_url_target, work / "target.db", "target", args.keep) as target_url:
        print(f"work dir {work}; source {describe_url(source_url)}, target {describe_url(target_url)}", flush=True)
        source = make_side(SOURCE_NAME, enterprise_number(2000010), network.pki_dir, work / "source",
                           source_url, None)
        target_side = make_side(TARGET_NAME, enterprise_number(2000030), network.pki_dir, work / "target",
                                target_url, max_bytes)
        peer_up(source, target_side)  # the source answers GetChanges only to a registered peer
        peer_up(target_side, source)
        print(f"populating the source with {args.versions} versions", flush=True)
        populated = populate(source, args.versions, args.per_name, args.registry_sample)
        print(f"  bulk insert {populated['bulk_seconds']:.1f} s; starting the source under gunicorn", flush=True)
        source_process = start_source(source, procs, args)
        target = Target(target_side, max_bytes)
        bench_run.cleanups.append(target.close)
        run: dict[str, Any] = {
            "started": bench_run.started.isoformat(timespec="seconds"), "cores": os.cpu_count(),
            "python": platform.python_version(), "cli": args.cli, "page": args.page, "max_bytes": max_bytes,
            "per_name": args.per_name, "populate": populated,
            "source": {"database": describe_url(source_url), "workers": gconf["workers"],
                       "threads": gconf["threads"]},
            "target": {"database": describe_url(target_url)}, "phases": {},
        }
        if not args.no_probe:
            run["probe"] = probe_defaults(target, args)
            print(f"probe at product defaults: {'ok' if run['probe']['ok'] else run['probe']['error']}", flush=True)
        problems: list[str] = []
        first = run["phases"]["first"] = run_phase("(i) first full sync", target, source, source_process.pid, args,
                                                   profile=args.profile)
        if args.profile and getattr(target, "profile", None):
            run["profile"] = target.profile
        if first["ok"]:
            run["changed"] = change_versions(source, args.versions, args.changed, args.per_name)
            print(f"  moved {run['changed']['versions']} versions to deprecated in "
                  f"{run['changed']['seconds']:.2f} s", flush=True)
            inc = run["phases"]["incremental"] = run_phase("(ii) incremental sync", target, source,
                                                           source_process.pid, args)
            if inc["ok"]:
                run["phases"]["nothing"] = run_phase("(iii) nothing new", target, source, source_process.pid, args)
        run["source_state"] = source_state(source)
        for key, r in run["phases"].items():
            if not r["ok"]:
                problems.append(f"{key}: {r['error']}")
        if not problems:
            problems += target.verify(args.versions, run["changed"]["versions"], run["source_state"]["head"])
        run["problems"] = problems
        print("\n" + report(run))
        write_json(run, args.output, "sync", bench_run.started)
        target.close()  # before the databases are dropped, with the source stopped
        bench_run.cleanups.remove(target.close)
        procs.stop_all()
    return 0 if not problems else 2


if __name__ == "__main__":
    sys.exit(main())
