#!/usr/bin/env python3
"""What does idling between calls cost a backend? The same reference backend, called one request at a time,
back to back and with a pause between calls, in alternating slices of one run.

Unloaded, a pass-through call wakes each process on its way several times (integrator, PostgreSQL three times,
backend, integrator again), and each of them idles in between; a direct call to the backend keeps one process
busy back to back. This bench shows what the idling alone does to one process on this machine: the backend's CPU
per call (from /proc) and the client's p50 latency, with --gap ms of sleep between calls against none. Signed as
bench/passthrough.py's direct calls. Run from the project root:  .venv/bin/python bench/idle_gap.py [--gap 8]
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import time
from datetime import date
from pathlib import Path

BENCH = Path(__file__).resolve().parent
for _path in (BENCH.parent, BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from cpu import tree_cpu_seconds  # noqa: E402
from demo_stack import prepare_stack  # noqa: E402
from passthrough import signed_request  # noqa: E402
from report import write_json  # noqa: E402
from servers import Run, run_bench, start_backend, wait_for  # noqa: E402


def measure(run: Run, args: argparse.Namespace) -> int:
    from integrator.pki import Identity
    from integrator.wssec.sign import SigningKey
    from services.backends.persons import PERSONS
    from services.backends.status_source import SOURCES

    settings, ports, database_url = prepare_stack(argparse.Namespace(database_url=None), run.work / "var")
    name = SOURCES[0].name
    env = dict(os.environ, KRUISPUNT_VAR=str(settings.var_dir), KRUISPUNT_DATABASE_URL=database_url)
    backend = start_backend(run.procs, name, ports[name], env)
    wait_for(f"http://127.0.0.1:{ports[name]}/?wsdl", backend, run.procs, f"backend-{name}")
    pki = settings.pki_dir
    key = SigningKey.from_identity(Identity("integrator", pki / "integrator.crt", pki / "integrator.key"))
    on = date.today().isoformat()
    total = args.warmup + 2 * args.rounds * args.calls
    bodies = [signed_request("direct", "", PERSONS[i % len(PERSONS)].insz, on, key)[0] for i in range(total)]
    connection = http.client.HTTPConnection("127.0.0.1", ports[name], timeout=30)

    def slice_of(chunk: list[bytes], gap: float) -> tuple[float, float]:
        before = tree_cpu_seconds([backend.pid])
        latencies = []
        for body in chunk:
            began = time.perf_counter()
            connection.request("POST", "/", body, {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"the backend answered HTTP {answer.status}")
            latencies.append(time.perf_counter() - began)
            if gap:
                time.sleep(gap)
        latencies.sort()
        return (tree_cpu_seconds([backend.pid]) - before) / len(chunk) * 1000, latencies[len(latencies) // 2] * 1000

    slice_of(bodies[:args.warmup], 0.0)
    rows = []
    offset = args.warmup
    for round_ in range(args.rounds):
        for gap in ((0.0, args.gap / 1000) if round_ % 2 == 0 else (args.gap / 1000, 0.0)):
            cpu, p50 = slice_of(bodies[offset:offset + args.calls], gap)
            offset += args.calls
            rows.append({"gap_ms": gap * 1000, "backend_cpu_ms_per_call": cpu, "p50_ms": p50})
            print(f"round {round_ + 1}: gap {gap * 1000:4.1f} ms  backend CPU {cpu:5.2f} ms/call  p50 {p50:5.2f} ms")
    for gap in (0.0, args.gap):
        mine = [r for r in rows if r["gap_ms"] == gap]
        cpus = ", ".join(f"{r['backend_cpu_ms_per_call']:.2f}" for r in mine)
        p50s = ", ".join(f"{r['p50_ms']:.2f}" for r in mine)
        print(f"gap {gap:4.1f} ms: backend CPU per call {cpus} ms; p50 {p50s} ms")
    write_json({"gap_ms": args.gap, "calls_per_slice": args.calls, "slices": rows}, args.output, "idle_gap",
               run.started)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--gap", type=float, default=8.0, help="ms of sleep between calls in the idling slices")
    parser.add_argument("--calls", type=int, default=250, help="calls per slice")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of slices (back to back, with the gap)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured calls first")
    parser.add_argument("--output", type=Path, default=None, help="JSON file (default: bench/results/)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    return run_bench(args, "kruispunt-bench-idle-", lambda run: measure(run, args))


if __name__ == "__main__":
    sys.exit(main())
