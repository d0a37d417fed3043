"""The load generators of the benches, both sending pre-built bodies and checking every answer.

* wrk with bench/pool.lua (preferred): each body at most once when unique (signed requests: replays are refused),
  HTTP status and body of every response checked, Server-Timing stages summed in its response() hook;
* otherwise a Python one: processes x threads, one persistent http.client connection per thread, same checks.

Both return the same dict: requests, seconds, good, bad, statuses, socket_errors, exhausted, pool, latency_ms
(mean, p50, p90, p99, max), timed, stage_sum_ms, stage_order, first_bad.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from servers import BENCH, Processes, child_signals, stop_group

HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}


def write_pool(path: Path, bodies: list[bytes]) -> None:
    with path.open("wb") as f:
        for body in bodies:
            f.write(b"%d\n" % len(body))
            f.write(body)


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
            stop_group([process], 2)
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
    with multiprocessing.get_context("fork").Pool(processes, initializer=child_signals) as pool:
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


def add_options(p: argparse.ArgumentParser) -> None:
    """The command-line options LoadGenerator reads (besides --connections)."""
    p.add_argument("--install", action="store_true", help="apt-get install -y wrk if it is missing")
    p.add_argument("--python-client", action="store_true", help="use the Python load generator even if wrk exists")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk -t")
    p.add_argument("--client-processes", type=int, default=2, help="processes of the Python load generator")


class LoadGenerator:
    """The one generator every phase of a bench uses: wrk if available, else the Python one."""

    def __init__(self, args: argparse.Namespace, procs: Processes, work: Path) -> None:
        self.args, self.procs, self.work = args, procs, work
        self.wrk = None if args.python_client else shutil.which("wrk")
        if self.wrk is None and not args.python_client and args.install:
            print("wrk not found; trying apt-get install -y wrk (--install)", flush=True)
            subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, stdout=subprocess.DEVNULL)
            self.wrk = shutil.which("wrk")
        if self.wrk:
            version = subprocess.run([self.wrk, "-v"], capture_output=True, text=True).stdout.splitlines()
            self.name = f"wrk ({(version or ['wrk'])[0].split(' [')[0].strip()}, {self.threads()} thread(s), " \
                        f"Lua response() hook: status, body and Server-Timing of every response)"
        else:
            self.name = f"python http.client ({args.client_processes} processes x threads, persistent connections)"

    def threads(self, connections: int | None = None) -> int:
        return max(1, min(self.args.wrk_threads, connections or self.args.connections))

    def run(self, url: str, bodies: list[bytes], *, unique: bool, expect: str | None, duration: float,
            name: str, connections: int | None = None) -> dict[str, Any]:
        """One run at `connections` (default --connections) connections."""
        connections = connections or self.args.connections
        if self.wrk:
            return run_wrk(url, bodies, unique=unique, expect=expect, connections=connections, duration=duration,
                           threads=self.threads(connections), procs=self.procs, work=self.work, name=name)
        return run_python(url, bodies, unique=unique, expect=expect, connections=connections, duration=duration,
                          processes=self.args.client_processes)
