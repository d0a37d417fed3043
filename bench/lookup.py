#!/usr/bin/env python3
"""How fast is a signed tax-exemption lookup, next to a bare spyne service and next to its RSA work alone?

One run, three measurements, side by side on the same machine (see bench/README.md):

  (a) a bare spyne echo service (bench/bare_service.py), unsigned, under gunicorn with the integrator's own
      gunicorn.conf.py (same workers, worker class, threads, keep-alive);
  (b) the whole stack: the four reference backends under gunicorn and the integrator under
      gunicorn -c gunicorn.conf.py, answering signed GetTaxExemptionStatuses requests that were signed before the
      timed part (one unique request per request sent: replays are refused);
  (c) the RSA-2048 PKCS#1 v1.5 SHA-256 operations one lookup needs on its path, timed with `cryptography` alone:
      9 signs and 9 verifies (integrator verifies the request; per backend: integrator signs, backend verifies,
      backend signs, integrator verifies; integrator signs the answer). The client's own signing is not counted.

(a) and (b) use the same load generator (wrk with bench/pool.lua, else a multi-process http.client generator) at the
same concurrency. Run from the project root:  .venv/bin/python bench/lookup.py [--duration 20] [--connections 16]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import platform
import re
import resource
import runpy
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
RESULTS = BENCH / "results"
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

TAX_PATH = "/soap/TaxExemptionStatus/v1"
TAX_NS = "urn:kruispunt:TaxExemptionStatus:v1"
STAGES = ("envelope", "security", "replay", "contract", "caller", "handle", "answer", "audit")
LOOKUP_EXPECT = "Complete>true</"  # the answer of a lookup where every source was consulted
ECHO_TEXT = "kruispunt-bench"
ECHO_EXPECT = f"echoResult>{ECHO_TEXT}</"
BACKENDS = 4
SIGNS_PER_LOOKUP = 1 + BACKENDS * 2  # integrator: 4 backend requests + the answer; each backend: its answer
VERIFIES_PER_LOOKUP = 1 + BACKENDS * 2  # integrator: the request + 4 backend answers; each backend: our request
HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}


class Interrupted(Exception):
    """SIGTERM/SIGHUP: stop like on Ctrl-C, cleaning up on the way out."""


def _on_signal(signum: int, _frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


# --- processes ------------------------------------------------------------------------------------------------
class Processes:
    """Every server and load generator this run starts, each in its own process group, all stopped at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("ab")
        try:
            process = subprocess.Popen(argv, env=env, cwd=PROJECT, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        self.running[name] = process
        return process

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, name: str, grace: float = 20.0) -> None:
        process = self.running.pop(name, None)
        if process is not None:
            _stop_group([process], grace)

    def stop_all(self, grace: float = 20.0) -> None:
        """Last started first: the load generator, then the integrator (its in-flight lookups still reach the
        backends), then the backends."""
        processes, self.running = list(self.running.values()), {}
        for process in reversed(processes):
            _stop_group([process], grace)


def _stop_group(processes: list[subprocess.Popen], grace: float) -> None:
    for process in processes:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)
        _signal_group(process, signal.SIGKILL)  # stray workers of a master that died first


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)  # start_new_session: the group id is the process id
    except (ProcessLookupError, PermissionError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen, procs: Processes, name: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{procs.log_tail(name)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout:.0f} s:\n{procs.log_tail(name)}")


def gunicorn_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The integrator's gunicorn settings (gunicorn.conf.py as the environment makes it), with our overrides."""
    conf = runpy.run_path(str(PROJECT / "gunicorn.conf.py"))
    return {"workers": args.workers or int(conf["workers"]), "worker_class": str(conf["worker_class"]),
            "threads": args.threads or int(conf["threads"]), "keepalive": conf.get("keepalive"),
            "config": str(PROJECT / "gunicorn.conf.py")}


def server_env(args: argparse.Namespace, gconf: dict[str, Any], **extra: str) -> dict[str, str]:
    env = dict(os.environ, KRUISPUNT_WORKERS=str(gconf["workers"]), KRUISPUNT_THREADS=str(gconf["threads"]),
               PYTHONUNBUFFERED="1")
    env.pop("KRUISPUNT_BIND", None)
    if not args.access_log:
        env["KRUISPUNT_ACCESS_LOG"] = ""  # off for every server of both phases (gunicorn.conf.py logs to stdout)
    env.update(extra)
    return env


# --- CPU accounting -------------------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(roots: list[int]) -> float:
    """User + system CPU of the given processes and all their descendants (live ones), from /proc."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                line = f.read()
        except OSError:
            continue
        rest = line[line.rindex(")") + 2:].split()
        parents[int(entry)] = int(rest[1])
        cpu[int(entry)] = (int(rest[11]) + int(rest[12])) / _TICK
    wanted, frontier = set(), list(roots)
    while frontier:
        pid = frontier.pop()
        if pid in wanted or pid not in cpu:
            continue
        wanted.add(pid)
        frontier.extend(child for child, parent in parents.items() if parent == pid)
    return sum(cpu[p] for p in wanted)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU used by named process trees, by this script's finished children (the load generator) and the machine."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups

    def __enter__(self) -> CpuMeter:
        self.before = {name: tree_cpu_seconds(pids) for name, pids in self.groups.items()}
        self.children_before = children_cpu()
        self.machine_before = machine_cpu()
        self.wall_before = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        self.used = {name: tree_cpu_seconds(pids) - self.before[name] for name, pids in self.groups.items()}
        self.used["load generator"] = children_cpu() - self.children_before
        busy, total = machine_cpu()
        self.machine_busy = (busy - self.machine_before[0]) / max(1, total - self.machine_before[1])
        self.wall = time.monotonic() - self.wall_before
        cores = os.cpu_count() or 1
        # cores kept busy by everything else on this (shared) machine meanwhile
        self.others = max(0.0, self.machine_busy * cores - sum(self.used.values()) / max(self.wall, 1e-9))


# --- requests -------------------------------------------------------------------------------------------------
_SIGNING: dict[str, Any] = {}


def _child_signals() -> None:
    """In pool processes: the parent handles Ctrl-C and SIGTERM (it terminates the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _signer_init(cert_path: str, key_path: str) -> None:
    _child_signals()
    from integrator.pki import Identity
    from integrator.wssec.sign import SigningKey

    _SIGNING["key"] = SigningKey.from_identity(Identity("caller", Path(cert_path), Path(key_path)))


def _signed_lookup(spec: tuple[str, str, str]) -> bytes:
    """One GetTaxExemptionStatuses request, signed as tests/support.py's Request(...).signed() does."""
    from lxml import etree

    from integrator.contract import build
    from integrator.namespaces import KP, q
    from integrator.wssec.sign import new_envelope, sign_envelope
    from services.demo import PURPOSE_TAX

    official, insz, on = spec
    root, header, body = new_envelope()
    caller = build(q(KP, "Caller"), {"Official": official, "Purpose": PURPOSE_TAX, "MessageId": str(uuid.uuid4())})
    header.append(caller)
    body.append(build(f"{{{TAX_NS}}}GetTaxExemptionStatusesRequest", {"Insz": insz, "ReferenceDate": on}))
    sign_envelope(root, _SIGNING["key"], headers=[caller], now=datetime.now(UTC))
    return etree.tostring(root)


def sign_pool(cert: Path, key: Path, count: int, processes: int) -> tuple[list[bytes], float]:
    """count unique signed lookups (demo official of Kruisdorp, the demo persons in turn), signed in parallel."""
    from services.backends.persons import PERSONS
    from services.demo import OFFICIALS

    official = OFFICIALS[0].insz
    on = date.today().isoformat()
    specs = [(official, PERSONS[i % len(PERSONS)].insz, on) for i in range(count)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes, initializer=_signer_init,
                                                  initargs=(str(cert), str(key))) as pool:
        bodies = pool.map(_signed_lookup, specs, chunksize=max(1, min(64, count // (4 * processes) or 1)))
    return bodies, time.perf_counter() - started


def write_pool(path: Path, bodies: list[bytes]) -> None:
    with path.open("wb") as f:
        for body in bodies:
            f.write(b"%d\n" % len(body))
            f.write(body)


# --- load generators ------------------------------------------------------------------------------------------
def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return math.nan
    rank = max(0, min(len(sorted_values) - 1, math.ceil(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


def describe_bad(text: str) -> str:
    """The status line of a bad answer with its fault or partial-answer reasons (the whole body is mostly wsse)."""
    reasons = [r.strip() for r in re.findall(r"(?:Reason|faultstring)>([^<]*)<", text) if r.strip()]
    return text.splitlines()[0] + ("; " + " | ".join(dict.fromkeys(reasons)) if reasons else "\n" + text[:1500])


def run_wrk(url: str, bodies: list[bytes], *, unique: bool, expect: str | None, connections: int, duration: float,
            threads: int, procs: Processes, work: Path, name: str) -> dict[str, Any]:
    """wrk -c connections -d duration with bench/pool.lua; returns its counts, latencies and Server-Timing sums."""
    pool_file = work / f"{name}.pool"
    write_pool(pool_file, bodies)
    out = work / f"{name}.json"
    threads = max(1, min(threads, connections))
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "60s",
            "-s", str(BENCH / "pool.lua"), url, "--", str(pool_file), expect or "-", "1" if unique else "0",
            str(threads)]
    process = procs.start(name, argv, dict(os.environ, BENCH_WRK_OUT=str(out)))
    try:
        process.wait(timeout=duration + 120)
    finally:
        procs.running.pop(name, None)
        if process.poll() is None:
            _stop_group([process], 2)
    if process.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{procs.log_tail(name)}")
    raw = json.loads(out.read_text())
    bad_file = Path(f"{out}.bad")
    lat = raw["latency_us"]
    errors = {k: int(v) for k, v in (raw.get("errors") or {}).items()}
    order = raw.get("stage_order") or []
    return {
        "requests": int(raw["requests"]), "seconds": raw["duration_us"] / 1e6,
        "good": int(raw["good"]), "bad": int(raw["bad"]),
        "statuses": {str(k): int(v) for k, v in (raw.get("statuses") or {}).items()},
        "socket_errors": errors, "exhausted": bool(raw.get("exhausted")), "pool": int(raw.get("pool", 0)),
        "latency_ms": {"mean": lat["mean"] / 1e3, "p50": lat["p50"] / 1e3, "p90": lat["p90"] / 1e3,
                       "p99": lat["p99"] / 1e3, "max": lat["max"] / 1e3},
        "timed": int(raw.get("timed", 0)),
        "stage_sum_ms": {k: float(v) for k, v in (raw.get("stage_sum_ms") or {}).items()},
        "stage_order": list(order) if isinstance(order, list) else [],
        "first_bad": describe_bad(bad_file.read_text(errors="replace")) if bad_file.exists() else None,
    }


def _client_process(host: str, port: int, path: str, bodies: list[bytes], unique: bool, connections: int,
                    start_at: float, deadline: float | None, limit: int | None, expect: bytes | None) -> dict:
    """One load-generator process: `connections` threads, each with one persistent http.client connection."""
    lock = threading.Lock()
    cursor = [0]
    out: dict[str, Any] = {"lat": [], "good": 0, "bad": 0, "statuses": Counter(), "errors": 0, "exhausted": False,
                           "stages": Counter(), "order": [], "timed": 0, "first_bad": None, "last": start_at}

    def take() -> bytes | None:
        with lock:
            i = cursor[0]
            cursor[0] += 1
        if limit is not None and i >= limit:
            return None
        if i >= len(bodies):
            if unique:
                out["exhausted"] = True
                return None
            i %= len(bodies)
        return bodies[i]

    def run() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        time.sleep(max(0.0, start_at - time.time()))
        while deadline is None or time.time() < deadline:
            body = take()
            if body is None:
                break
            began = time.perf_counter()
            try:
                conn.request("POST", path, body, HEADERS)
                reply = conn.getresponse()
                data = reply.read()
            except (OSError, http.client.HTTPException):
                with lock:
                    out["errors"] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
                continue
            elapsed = time.perf_counter() - began
            ended = time.time()
            if deadline is not None and ended > deadline:
                break  # as wrk: what completes after the end is not counted
            timing = reply.getheader("Server-Timing")
            with lock:
                out["lat"].append(elapsed)
                out["last"] = max(out["last"], ended)
                if reply.status == 200 and (expect is None or expect in data):
                    out["good"] += 1
                else:
                    out["bad"] += 1
                    out["statuses"][str(reply.status)] += 1
                    if out["first_bad"] is None:
                        out["first_bad"] = describe_bad(f"HTTP {reply.status}\n{data.decode(errors='replace')}")
                if timing:
                    out["timed"] += 1
                    for part in timing.split(","):
                        name, _, dur = part.strip().partition(";dur=")
                        if name not in out["stages"] and name not in out["order"]:
                            out["order"].append(name)
                        out["stages"][name] += float(dur)
        conn.close()

    workers = [threading.Thread(target=run, daemon=True) for _ in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return out


def run_python(url: str, bodies: list[bytes], *, unique: bool, expect: str | None, connections: int,
               duration: float | None, limit: int | None = None, processes: int = 2) -> dict[str, Any]:
    """The fallback load generator: processes x threads, one persistent http.client connection per thread."""
    parsed = urllib.request.urlparse(url)
    processes = max(1, min(processes, connections))
    share = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    start_at = time.time() + 0.5
    deadline = start_at + duration if duration else None
    jobs = []
    for i in range(processes):
        part = bodies[i::processes] if unique else bodies
        part_limit = None if limit is None else limit // processes + (1 if i < limit % processes else 0)
        jobs.append((parsed.hostname, parsed.port, parsed.path or "/", part, unique, share[i], start_at, deadline,
                     part_limit, expect.encode() if expect else None))
    with multiprocessing.get_context("fork").Pool(processes, initializer=_child_signals) as pool:
        outs = pool.starmap(_client_process, jobs)
    lat = sorted(x * 1000 for o in outs for x in o["lat"])
    seconds = (deadline or max(o["last"] for o in outs)) - start_at
    stages: Counter[str] = Counter()
    order: list[str] = []
    statuses: Counter[str] = Counter()
    for o in outs:
        stages.update(o["stages"])
        statuses.update(o["statuses"])
        order = o["order"] if len(o["order"]) > len(order) else order
    return {
        "requests": len(lat), "seconds": seconds, "good": sum(o["good"] for o in outs),
        "bad": sum(o["bad"] for o in outs), "statuses": dict(statuses),
        "socket_errors": {"errors": sum(o["errors"] for o in outs)},
        "exhausted": any(o["exhausted"] for o in outs), "pool": len(bodies),
        "latency_ms": {"mean": statistics.fmean(lat) if lat else math.nan, "p50": percentile(lat, 50),
                       "p90": percentile(lat, 90), "p99": percentile(lat, 99), "max": lat[-1] if lat else math.nan},
        "timed": sum(o["timed"] for o in outs), "stage_sum_ms": dict(stages), "stage_order": order,
        "first_bad": next((o["first_bad"] for o in outs if o["first_bad"]), None),
    }


class LoadGenerator:
    """The one generator both phases use: wrk if available, else the Python one."""

    def __init__(self, args: argparse.Namespace, procs: Processes, work: Path) -> None:
        self.args, self.procs, self.work = args, procs, work
        self.wrk = None if args.python_client else shutil.which("wrk")
        if self.wrk is None and not args.python_client and args.install:
            print("wrk not found; trying apt-get install -y wrk (--install)", flush=True)
            subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, stdout=subprocess.DEVNULL)
            self.wrk = shutil.which("wrk")
        if self.wrk:
            version = subprocess.run([self.wrk, "-v"], capture_output=True, text=True).stdout.splitlines()
            self.name = f"wrk ({(version or ['wrk'])[0].split(' [')[0].strip()}, {self.threads} thread(s), " \
                        f"Lua response() hook: status, body and Server-Timing of every response)"
        else:
            self.name = f"python http.client ({args.client_processes} processes x threads, persistent connections)"

    @property
    def threads(self) -> int:
        return max(1, min(self.args.wrk_threads, self.args.connections))

    def run(self, url: str, bodies: list[bytes], *, unique: bool, expect: str | None, duration: float,
            name: str) -> dict[str, Any]:
        if self.wrk:
            return run_wrk(url, bodies, unique=unique, expect=expect, connections=self.args.connections,
                           duration=duration, threads=self.threads, procs=self.procs, work=self.work, name=name)
        return run_python(url, bodies, unique=unique, expect=expect, connections=self.args.connections,
                          duration=duration, processes=self.args.client_processes)


# --- (c) crypto -----------------------------------------------------------------------------------------------
def crypto_costs(key_path: Path, cores: int, seconds: float = 2.0) -> dict[str, Any]:
    """Median time of one RSA-2048 PKCS#1 v1.5 SHA-256 sign and verify with `cryptography`, and what 9 + 9 cost."""
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
    per_lookup = SIGNS_PER_LOOKUP * sign + VERIFIES_PER_LOOKUP * verify
    return {"key_bits": key.key_size, "sign_ms": sign * 1e3, "verify_ms": verify * 1e3,
            "signs_per_lookup": SIGNS_PER_LOOKUP, "verifies_per_lookup": VERIFIES_PER_LOOKUP,
            "per_lookup_ms": per_lookup * 1e3, "cores": cores, "bound_rps": cores / per_lookup}


# --- phases ---------------------------------------------------------------------------------------------------
def stage_table(result: dict[str, Any]) -> dict[str, Any]:
    timed = result.get("timed", 0)
    if not timed:
        return {}
    sums = result["stage_sum_ms"]
    order = [s for s in STAGES if s in sums] + [s for s in result.get("stage_order", []) if s not in STAGES]
    order += [s for s in sums if s not in order]
    means = {s: sums[s] / timed for s in order}
    total = sum(means.values())
    return {"responses": timed, "total_ms": total,
            "stages": {s: {"mean_ms": means[s], "share": means[s] / total if total else math.nan} for s in order}}


def summarise(result: dict[str, Any], cpu: CpuMeter | None) -> dict[str, Any]:
    result = dict(result)
    result["throughput_rps"] = result["requests"] / result["seconds"] if result["seconds"] else math.nan
    result["good_rps"] = result["good"] / result["seconds"] if result["seconds"] else math.nan
    if cpu is not None:
        served = max(1, result["requests"])
        result["cpu_seconds"] = cpu.used
        result["cpu_ms_per_request"] = {k: v * 1e3 / served for k, v in cpu.used.items()}
        result["machine_busy"] = cpu.machine_busy
        result["other_load_cores"] = cpu.others
    return result


def phase_bare(args: argparse.Namespace, gconf: dict[str, Any], procs: Processes, load: LoadGenerator) -> dict:
    from bare_service import request_body

    port = free_port()
    process = procs.start("bare", [sys.executable, "-m", "gunicorn", "-c", gconf["config"], "--pythonpath",
                                   str(BENCH), "bare_service:application"],
                          server_env(args, gconf, KRUISPUNT_BIND=f"127.0.0.1:{port}"))
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


def prepare_stack(args: argparse.Namespace, var: Path) -> tuple[Any, dict[str, int], str]:
    """Demo PKI, schema and demo data in a fresh KRUISPUNT_VAR, backends registered on free ports."""
    from integrator import commands
    from integrator.config import Settings
    from integrator.database import make_engine, session_factory
    from services import demo
    from services.backends.status_source import SOURCES

    database_url = args.database_url or f"sqlite:///{var / 'kruispunt.db'}"
    settings = Settings.from_env({"KRUISPUNT_VAR": str(var), "KRUISPUNT_DATABASE_URL": database_url})
    demo.pki_init(settings)
    commands.db_upgrade(settings)
    ports = {spec.name: free_port() for spec in SOURCES}
    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        demo.load(settings, session, {name: f"http://127.0.0.1:{port}/" for name, port in ports.items()})
    engine.dispose()
    return settings, ports, database_url


def connections_per_worker(port: int) -> dict[str, int]:
    """How the client's keep-alive connections are spread over the integrator's workers (ss, sampled once)."""
    try:
        out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: Counter[str] = Counter()
    for line in out.splitlines():
        pids = set(re.findall(r"pid=(\d+)", line))
        found[",".join(sorted(pids)) or "?"] += 1
    return dict(found)


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


def phase_lookup(args: argparse.Namespace, gconf: dict[str, Any], procs: Processes, load: LoadGenerator,
                 settings: Any, ports: dict[str, int], database_url: str, work: Path) -> dict:
    from services.demo import KRUISDORP

    env = server_env(args, gconf, KRUISPUNT_VAR=str(settings.var_dir), KRUISPUNT_DATABASE_URL=database_url)
    if args.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(args.pythonpath).resolve()),
                                             *filter(None, [env.get("PYTHONPATH")])])
    backend_pids = []
    for name, port in ports.items():
        process = procs.start(f"backend-{name}", [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w",
                                                  "1", "-k", "gthread", "--threads", "4", args.backend_app],
                              dict(env, KRUISPUNT_BACKEND=name))
        backend_pids.append(process.pid)
    port = free_port()
    integrator = procs.start("integrator", [sys.executable, "-m", "gunicorn", "-c", gconf["config"],
                                            args.integrator_app], dict(env, KRUISPUNT_BIND=f"127.0.0.1:{port}"))
    for name, backend_port in ports.items():
        wait_for(f"http://127.0.0.1:{backend_port}/?wsdl", procs.running[f"backend-{name}"], procs, f"backend-{name}")
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/health/ready", integrator, procs, "integrator")
    url = f"{base}{TAX_PATH}"
    pki = settings.pki_dir
    cert, key = pki / f"org-{KRUISDORP.enterprise_number}.crt", pki / f"org-{KRUISDORP.enterprise_number}.key"

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
    spread: dict[str, int] = {}
    workers = {str(pid): 0 for pid in _children(integrator.pid)}
    sampler = threading.Timer(min(5.0, args.duration / 2),
                              lambda: spread.update({**workers, **connections_per_worker(port)}))
    sampler.daemon = True
    with CpuMeter({"integrator": [integrator.pid], "backends": backend_pids}) as cpu:
        sampler.start()
        try:
            result = load.run(url, bodies, unique=True, expect=LOOKUP_EXPECT, duration=args.duration,
                              name="b-measure")
        finally:
            sampler.cancel()
    result = summarise(result, cpu)
    result["connections_per_worker"] = spread
    result["pool_signed"] = size
    result["pool_sign_seconds"] = sign_seconds
    result["warmup"] = {"requests": warm["requests"], "rps": warm_rps, "good": warm["good"], "bad": warm["bad"]}
    result["stage_breakdown"] = stage_table(result)
    try:
        result["audit_outcomes_incl_warmup"] = audit_outcomes(database_url)
    except Exception as exc:  # informative only
        result["audit_outcomes_incl_warmup"] = {"error": str(exc)}
    if args.profile:
        targets = {"integrator": _children(integrator.pid), "backend": _children(backend_pids[0])}
        result["profile"] = profile_stack(args, load, targets, url, cert, key, work, result["throughput_rps"])
    return result


def profile_stack(args: argparse.Namespace, load: LoadGenerator, targets: dict[str, list[int]], url: str,
                  cert: Path, key: Path, work: Path, rate: float) -> dict[str, Any]:
    """py-spy record (--gil: only the thread holding the GIL, i.e. where the Python CPU goes) on the given worker
    processes during an extra, unmeasured load run; top functions by own and by inclusive samples per target."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {"error": "py-spy not installed (.venv/bin/pip install py-spy)"}
    seconds = max(5.0, args.profile)
    size = max(args.min_pool, math.ceil(rate * (seconds + 2) * args.pool_factor) + 4 * args.connections)
    bodies, _ = sign_pool(cert, key, size, args.sign_processes)
    spies = []
    for label, pids in targets.items():
        for pid in pids:
            out = work / f"pyspy-{label}-{pid}.txt"
            spies.append((label, out, subprocess.Popen(
                [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250", "--gil",
                 "--format", "raw", "--nonblocking", "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
    print(f"(b) profiling {', '.join(f'{k} ({len(v)} pids)' for k, v in targets.items())} with py-spy "
          f"for {seconds:g} s", flush=True)
    time.sleep(0.5)
    load.run(url, bodies, unique=True, expect=LOOKUP_EXPECT, duration=seconds, name="b-profile")
    found: dict[str, Any] = {}
    for label in targets:
        self_time: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        categories: Counter[str] = Counter()
        total = 0
        for _, out, spy_process in (s for s in spies if s[0] == label):
            try:
                spy_process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy_process.kill()
            if not out.exists():
                continue
            shutil.copy(out, RESULTS / f"pyspy-{label}-{out.stem.rsplit('-', 1)[1]}.txt")
            for line in out.read_text(errors="replace").splitlines():
                stack, _, count = line.rpartition(" ")
                if not count.isdigit():
                    continue
                frames = [_frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
                if not frames:
                    continue
                n = int(count)
                total += n
                self_time[frames[-1]] += n
                categories[_category(frames)] += n
                for frame in set(frames):
                    inclusive[frame] += n
        errors = [s[2].stderr.read().decode(errors="replace")[-300:] for s in spies if s[0] == label and s[2].stderr]
        found[label] = {"samples": total,
                        "categories": [(c, n / total) for c, n in categories.most_common(15)] if total else [],
                        "self": [(f, n / total) for f, n in self_time.most_common(25)] if total else [],
                        "inclusive": [(f, n / total) for f, n in inclusive.most_common(60)] if total else [],
                        "py_spy_stderr": [e for e in errors if e.strip()]}
    return found


# What a py-spy stack is spent on: the first matching category wins (frames as _frame() writes them).
PROFILE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("spyne gc.collect() (MethodContext.close)", ("MethodContext.close (spyne",)),
    ("XSD decode (xmlschema, Contract.check)", ("(xmlschema/",)),
    ("XML signature verify (signxml)", ("XMLVerifier.",)),
    ("XML signature make (signxml)", ("XMLSigner.",)),
    ("wssec: rest of verify_envelope", ("verify_envelope (",)),
    ("wssec: rest of sign_envelope", ("sign_envelope (",)),
    ("HTTP client to backends (requests/urllib3)", ("(requests/", "(urllib3/")),
    ("database (SQLAlchemy)", ("(sqlalchemy/",)),
    ("envelope parsing (parse_envelope)", ("parse_envelope (",)),
    ("thread hand-offs (futures, Condition)", ("Condition.", "Future.")),
    ("spyne (rest)", ("(spyne/",)),
    ("gunicorn (HTTP parsing, loop)", ("(gunicorn/",)),
)


def _category(frames: list[str]) -> str:
    for name, needles in PROFILE_CATEGORIES:
        if any(needle in frame for frame in frames for needle in needles):
            return name
    return "other: " + frames[-1]


def _frame(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(rest[1]) == pid:
                found.append(int(entry))
    return found


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
        f"{'':34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}  {'good/sent':>13}  {'non-good':>8}",
    ]
    for label, r in (("(a) bare spyne echo (unsigned)", a), ("(b) signed tax-exemption lookup", b)):
        lat = r["latency_ms"]
        lines.append(f"{label:34}{r['throughput_rps']:9.1f}{lat['p50']:9.1f}{lat['p99']:9.1f}{lat['mean']:9.1f}  "
                     f"{r['good']:>6}/{r['requests']:<6}  {r['bad']:>8}")
    lines += [
        "",
        f"ratio b/a (throughput)              {b['throughput_rps'] / a['throughput_rps']:.4f}   "
        f"(a is {a['throughput_rps'] / b['throughput_rps']:.0f}x b)",
        f"(c) crypto per lookup               {c['signs_per_lookup']} signs x {c['sign_ms']:.3f} ms + "
        f"{c['verifies_per_lookup']} verifies x {c['verify_ms']:.3f} ms = {c['per_lookup_ms']:.2f} ms "
        f"(RSA-{c['key_bits']}, PKCS#1 v1.5, SHA-256)",
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
                      f"responses (captured by {how})",
                  f"  {'stage':10}{'mean ms':>10}{'share':>8}"]
        for name, s in stages["stages"].items():
            lines.append(f"  {name:10}{s['mean_ms']:10.2f}{s['share']:8.1%}")
        lines.append(f"  {'total':10}{stages['total_ms']:10.2f}{1:8.0%}   (client-side mean latency "
                     f"{b['latency_ms']['mean']:.2f} ms: {b['latency_ms']['mean'] - stages['total_ms']:.2f} ms "
                     "outside the pipeline: waiting for a worker thread, HTTP, WSGI, network)")
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
        if r["bad"]:
            problems.append(f"{label}: {r['bad']} responses were not good {r['statuses']}; first:\n"
                            f"{(r.get('first_bad') or '')[:600]}")
        if any(r.get("socket_errors", {}).values()):
            problems.append(f"{label}: socket errors {r['socket_errors']}")
        if r.get("exhausted"):
            problems.append(f"{label}: the request pool ran out ({r['pool']}); the figures are INVALID, raise "
                            "--pool-factor")
    spread = sorted(b.get("connections_per_worker", {}).values())
    if len(spread) > 1 and spread[-1] > run["gunicorn"]["threads"] and spread[0] < run["gunicorn"]["threads"]:
        lines += ["", f"warning: wrk's connections were spread {'/'.join(map(str, reversed(spread)))} over the "
                      f"integrator's workers (gthread keeps a connection on its worker): one worker had more "
                      "connections than threads while another had spare threads; (b) latency includes that queue"]
    lines += ["", "RESULT: " + ("INVALID\n  " + "\n  ".join(problems) if problems else
                                "valid: every measured response was HTTP 200 with the expected answer "
                                "(lookups: Complete=true)")]
    for label, profile in (b.get("profile") or {}).items():
        if not profile.get("self"):
            lines += ["", f"py-spy {label}: no samples {profile.get('py_spy_stderr') or profile.get('error', '')}"]
            continue
        lines += ["", f"py-spy --gil, {label} worker(s), {profile['samples']} samples: by category"]
        lines += [f"  {share:6.1%}  {name}" for name, share in profile["categories"]]
        lines += [f"py-spy --gil, {label}: top own time"]
        lines += [f"  {share:6.1%}  {frame}" for frame, share in profile["self"][:12]]
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
    p.add_argument("--install", action="store_true", help="apt-get install -y wrk if it is missing")
    p.add_argument("--python-client", action="store_true", help="use the Python load generator even if wrk exists")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk -t")
    p.add_argument("--client-processes", type=int, default=2, help="processes of the Python load generator")
    p.add_argument("--sign-processes", type=int, default=os.cpu_count() or 1, help="processes signing the pool")
    p.add_argument("--warmup-pool", type=int, default=600, help="signed requests available to the (b) warm-up")
    p.add_argument("--pool-factor", type=float, default=3.0,
                   help="pool = warm-up rate x duration x this (+ 4 per connection)")
    p.add_argument("--min-pool", type=int, default=500, help="smallest measured pool")
    p.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                   help="after (b), profile the integrator workers and one backend with py-spy under load this long")
    p.add_argument("--integrator-app", default="integrator.wsgi:create_app()",
                   help="gunicorn app of the integrator (to A/B a wrapper module without editing product code)")
    p.add_argument("--backend-app", default="services.backends.wsgi:create_app()", help="gunicorn app of a backend")
    p.add_argument("--pythonpath", default=None, help="prepended to PYTHONPATH of the (b) servers, for such wrappers")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, PKI, database)")
    p.add_argument("--output", type=Path, default=None, help="JSON file (default: bench/results/lookup-<time>.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background (SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="kruispunt-bench-"))
    (work / "logs").mkdir()
    procs = Processes(work / "logs")
    gconf = gunicorn_settings(args)
    cores = os.cpu_count() or 1
    started = datetime.now(UTC)
    code = 1
    try:
        load = LoadGenerator(args, procs, work)
        print(f"work dir {work}; load generator: {load.name}", flush=True)
        settings, ports, database_url = prepare_stack(args, work / "var")
        print("(c) timing RSA sign/verify with cryptography", flush=True)
        crypto = crypto_costs(settings.pki_dir / "integrator.key", cores)
        bare = phase_bare(args, gconf, procs, load)
        lookup = phase_lookup(args, gconf, procs, load, settings, ports, database_url, work)
        run = {
            "started": started.isoformat(timespec="seconds"), "cores": cores, "python": platform.python_version(),
            "gunicorn": gconf, "database": database_url.split("@")[-1] if "@" in database_url else
            database_url.split(":")[0], "load_generator": load.name, "connections": args.connections,
            "duration": args.duration, "warmup": args.warmup, "bare": bare, "lookup": lookup, "crypto": crypto,
            "derived": {"ratio_b_over_a": lookup["throughput_rps"] / bare["throughput_rps"],
                        "efficiency_b_over_crypto_bound": lookup["throughput_rps"] / crypto["bound_rps"]},
        }
        text = report(run)
        print("\n" + text)
        output = args.output or RESULTS / f"lookup-{started:%Y%m%d-%H%M%S}.json"
        output.write_text(json.dumps(run, indent=2, default=str))
        print(f"\nJSON: {output}")
        valid = not (bare["bad"] or lookup["bad"] or lookup["exhausted"])
        code = 0 if valid else 2
    except (KeyboardInterrupt, Interrupted) as exc:
        print(f"\ninterrupted ({str(exc) or 'Ctrl-C'}); stopping everything", file=sys.stderr)
        code = 130
    except Exception as exc:
        print(f"\nbenchmark failed: {exc}\nlogs: {work / 'logs'}", file=sys.stderr)
        args.keep = True
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave servers behind
        procs.stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
