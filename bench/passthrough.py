#!/usr/bin/env python3
"""What does a generic pass-through call cost, next to calling the same backend directly?

One run, side by side on the same machine (see bench/README.md, "bench/passthrough.py"):

  (D) direct: client -> the health-insurance reference backend (gunicorn -w 1 -k gthread --threads 4, as
      `kruispunt run` starts it), each request a get_statuses envelope signed with the integrator's key exactly as
      integrator/dispatch.py Dispatcher.exchange signs it (Body + Timestamp); the backend verifies it and signs its
      answer (kp:InResponseTo);
  (P) pass-through: client -> integrator (gunicorn -c gunicorn.conf.py) -> the same backend process: a get_statuses
      request to POST /soap/StatusSource/v1 signed by Gemeente Kruisdorp (Body, Timestamp, kp:Caller); the
      integrator parses, verifies, refuses replays, checks the XSD, authorises the official's grant, signs the Body
      towards the backend, verifies and XSD-checks its answer, signs its own answer and writes the audit record;
  (F) floor: client -> bench/floor_relay.py under the same gunicorn.conf.py -> the same backend process: only what
      no pass-through can skip (a durable replay INSERT, one RSA signature, the backend call on the integrator's
      pycurl client, one RSA signature, a durable audit INSERT), the (D) requests relayed as they came. It does
      strictly less than (P) must, so F/D bounds what any pass-through reaches on this machine (--no-floor: skip).

Same load generator (wrk with bench/pool.lua, else the Python one), same connections, same backend process; every
request pool is signed before the timed part. The measured time is split into --rounds alternating slices (D P, then
P D, ...) so that drift in the machine's other load hits both alike; then one unloaded slice of each at one
connection. Run from the project root:  .venv/bin/python bench/passthrough.py [--duration 20] [--connections 16]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import math
import os
import platform
import shlex
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
for _path in (BENCH.parent, BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from cpu import CpuMeter  # noqa: E402  (bench/: the modules the benches share)
from demo_stack import audit_outcomes, kruisdorp_key_files, prepare_stack  # noqa: E402
from loadgen import HEADERS, LoadGenerator, add_options, run_python  # noqa: E402
from profiling import PROFILE_CATEGORIES, PY_SPY_MISSING, PySpy, find_py_spy, profile_lines  # noqa: E402
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

SS = "urn:kruispunt:backends:StatusSource:v1"
PASS_PATH = "/soap/StatusSource/v1"
EXPECT = "get_statusesResponse"  # HTTP 200 and the backend's answer element (a fault never carries it)
LABELS = {"direct": "(D) direct signed call of the backend", "pass": "(P) generic pass-through via integrator",
          "floor": "(F) floor relay: 2 INSERTs + 2 signs"}
SIGNED_AS = {"direct": "direct", "pass": "pass", "floor": "direct"}  # which requests each kind is sent


# --- signing --------------------------------------------------------------------------------------------------
def signed_request(kind: str, official: str, insz: str, on: str, key: Any) -> tuple[bytes, bytes]:
    """(envelope bytes, SHA-256 of its SignatureValue). kind "pass": as tests/e2e/test_federation.py StatusRequest
    (kp:Caller signed too); kind "direct": as Dispatcher.exchange (Body + Timestamp, the integrator's key)."""
    from kruispunt_client.xml import build
    from lxml import etree

    from integrator.wssec.sign import signature_digest

    payload = build(f"{{{SS}}}get_statuses", {"insz": insz, "reference_date": on})
    root = signed_envelope(payload, key, official if kind == "pass" else None)
    return etree.tostring(root), signature_digest(root)


def _signed(spec: tuple[str, str, str, str]) -> bytes:
    kind, official, insz, on = spec
    return signed_request(kind, official, insz, on, KEYS["org" if kind == "pass" else "integrator"])[0]


class Signer:
    """A pool of processes that sign requests of both kinds (the persons in turn, today's date)."""

    def __init__(self, keys: dict[str, tuple[Path, Path]], processes: int) -> None:
        from services.backends.persons import PERSONS
        from services.demo_organisations import OFFICIALS

        self.persons = [p.insz for p in PERSONS]
        self.official = OFFICIALS[0].insz  # An Verhoeven, Kruisdorp: granted StatusSource for PURPOSE_TAX
        self.pool = SignerPool(keys, processes)

    def sign(self, kind: str, count: int) -> tuple[list[bytes], float]:
        on = date.today().isoformat()
        specs = [(kind, self.official, self.persons[i % len(self.persons)], on) for i in range(count)]
        began = time.perf_counter()
        bodies = self.pool.map(_signed, specs)
        return bodies, time.perf_counter() - began

    def close(self) -> None:
        self.pool.close()


# --- the stack ------------------------------------------------------------------------------------------------
class Stack:
    def __init__(self, args: argparse.Namespace, procs: Processes, work: Path) -> None:
        from services.backends.status_source import SOURCES

        self.args, self.procs = args, procs
        self.gconf = gunicorn_settings(args)
        self.settings, ports, self.database_url = prepare_stack(args, work / "var")
        self.source = SOURCES[0]  # StatusSource/v1's backend (services/demo.py _generic_demo)
        self.backend_port = ports[self.source.name]
        self.port = free_port()
        env = server_env(args, self.gconf, KRUISPUNT_VAR=str(self.settings.var_dir),
                         KRUISPUNT_DATABASE_URL=self.database_url)
        self.backend = start_backend(procs, self.source.name, self.backend_port, env, workers=args.backend_workers,
                                     threads=args.backend_threads)
        self.integrator = start_configured(procs, "integrator", self.port, env,
                                           *shlex.split(args.integrator_gunicorn_args or ""))
        wait_for(f"http://127.0.0.1:{self.backend_port}/?wsdl", self.backend, procs, f"backend-{self.source.name}")
        wait_for(f"http://127.0.0.1:{self.port}/health/ready", self.integrator, procs, "integrator")
        self.urls = {"direct": f"http://127.0.0.1:{self.backend_port}/", "pass": f"http://127.0.0.1:{self.port}{PASS_PATH}"}
        self.servers = {"direct": self.backend, "pass": self.integrator}  # the process in front, by kind
        if args.floor:
            floor_port = free_port()
            floor = start_configured(procs, "floor", floor_port, dict(env, FLOOR_BACKEND=self.urls["direct"]),
                                     "--pythonpath", str(BENCH), app="floor_relay:create_app()")
            wait_for(f"http://127.0.0.1:{floor_port}/", floor, procs, "floor")
            self.urls["floor"] = f"http://127.0.0.1:{floor_port}/"
            self.servers["floor"] = floor

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.urls)

    def keys(self) -> dict[str, tuple[Path, Path]]:
        pki = self.settings.pki_dir
        return {"org": kruisdorp_key_files(pki),
                "integrator": (pki / "integrator.crt", pki / "integrator.key")}


def sanity(stack: Stack) -> dict[str, Any]:
    """One request of each kind, answers checked as their receivers would: the pass-through answer signed by the
    integrator and bound to our request (kp:Answer), the direct one by the backend (kp:InResponseTo); both carry
    the same get_statusesResponse."""
    from lxml import etree

    from integrator.envelope import EnvelopeLimits, parse_envelope
    from integrator.namespaces import KP, q
    from integrator.pki import Identity, fingerprint
    from integrator.wssec.sign import SigningKey
    from integrator.wssec.trust import TrustStore
    from integrator.wssec.verify import SecurityPolicy, verify_envelope
    from services.backends.persons import PERSONS
    from services.demo_organisations import OFFICIALS

    trust = TrustStore.from_files(stack.settings.trust_anchor_paths, stack.settings.crl_path)
    keys = {k: SigningKey.from_identity(Identity(k, c, p)) for k, (c, p) in stack.keys().items()}
    pki = stack.settings.pki_dir
    signers = {"pass": fingerprint(Identity("i", pki / "integrator.crt", pki / "integrator.key").load_cert()),
               "direct": fingerprint(Identity("b", pki / f"backend-{stack.source.name}.crt",
                                              pki / f"backend-{stack.source.name}.key").load_cert())}
    person = PERSONS[0].insz  # holds INCREASED_REIMBURSEMENT at the health-insurance source
    payloads: dict[str, bytes] = {}
    out: dict[str, Any] = {}
    for kind in ("direct", "pass"):
        data, digest = signed_request(kind, OFFICIALS[0].insz, person, date.today().isoformat(),
                                      keys["org" if kind == "pass" else "integrator"])
        status, body, timing = _post(stack.urls[kind], data)
        if status != 200:
            raise RuntimeError(f"{LABELS[kind]}: HTTP {status}\n{body[:1500].decode(errors='replace')}")
        verified = verify_envelope(parse_envelope(body, EnvelopeLimits().scaled(10_000_000)), trust, SecurityPolicy(),
                                   datetime.now(UTC))
        if fingerprint(verified.certificate) != signers[kind]:
            raise RuntimeError(f"{LABELS[kind]}: the answer is signed by an unexpected certificate")
        wanted = base64.b64encode(digest).decode()
        if kind == "pass":
            answer = verified.headers.get(q(KP, "Answer"))
            bound = answer is not None and answer.findtext(q(KP, "RequestSignatureDigest")) == wanted
        else:
            binding = verified.headers.get(q(KP, "InResponseTo"))
            bound = binding is not None and (binding.text or "").strip() == wanted
        if not bound or verified.payload is None or verified.payload.tag != f"{{{SS}}}get_statusesResponse":
            raise RuntimeError(f"{LABELS[kind]}: the answer is not bound to the request or not a get_statusesResponse")
        payloads[kind] = etree.tostring(verified.payload, method="c14n", exclusive=True)
        out[kind] = {"bytes_out": len(data), "bytes_in": len(body), "server_timing": timing,
                     "codes": sorted(c.text or "" for c in verified.payload.iter(f"{{{SS}}}code"))}
    if payloads["direct"] != payloads["pass"]:
        raise RuntimeError("the pass-through answer's payload differs from the backend's own answer:\n"
                           f"{payloads['direct'][:600]!r}\n{payloads['pass'][:600]!r}")
    out["same_payload"] = True
    return out


def _post(url: str, data: bytes) -> tuple[int, bytes, str]:
    parsed = urllib_parse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        conn.request("POST", parsed.path or "/", data, HEADERS)
        reply = conn.getresponse()
        return reply.status, reply.read(), reply.getheader("Server-Timing") or ""
    finally:
        conn.close()


def urllib_parse(url: str) -> Any:
    from urllib.parse import urlparse

    return urlparse(url)


# --- load -----------------------------------------------------------------------------------------------------
def warm_up(stack: Stack, signer: Signer, args: argparse.Namespace, load: LoadGenerator,
            warnings: list[str]) -> dict[str, float]:
    """Warm both paths (every worker, the integrator's route and contract caches, keep-alive pools) and learn the
    pass-through rate, which sizes its pools (its requests are single-use: the integrator refuses replays)."""
    rates = {}
    bodies, _ = signer.sign("direct", args.direct_pool)
    print(f"(D) warming up {args.warmup:g} s", flush=True)
    warm = load.run(stack.urls["direct"], bodies, unique=False, expect=EXPECT, duration=args.warmup, name="d-warmup")
    if warm["bad"] or not warm["good"]:
        raise RuntimeError(f"direct warm-up failed: {warm['good']} good, {warm['bad']} bad {warm['statuses']}; "
                           f"first bad answer:\n{warm['first_bad']}")
    rates["direct"] = warm["requests"] / warm["seconds"]
    if "floor" in stack.urls:
        print(f"(F) warming up {args.warmup:g} s", flush=True)
        warm = load.run(stack.urls["floor"], bodies, unique=False, expect=EXPECT, duration=args.warmup,
                        name="f-warmup")
        if warm["bad"] or not warm["good"]:
            raise RuntimeError(f"floor warm-up failed: {warm['good']} good, {warm['bad']} bad {warm['statuses']}; "
                               f"first bad answer:\n{warm['first_bad']}")
        rates["floor"] = warm["requests"] / warm["seconds"]
    bodies, seconds = signer.sign("pass", args.warmup_pool)
    print(f"(P) warming up: {len(bodies)} requests (signed in {seconds:.1f} s) with the Python client", flush=True)
    began = time.time()
    warm = run_python(stack.urls["pass"], bodies, unique=True, expect=EXPECT, connections=args.connections,
                      duration=None, limit=len(bodies), processes=args.client_processes)
    if not warm["good"] or warm["bad"] > 0.05 * warm["requests"]:
        raise RuntimeError(f"pass-through warm-up failed: {warm['good']} good, {warm['bad']} bad "
                           f"{warm['statuses']}; first bad answer:\n{warm['first_bad']}")
    if warm["bad"]:  # not measured, but reported: the first calls of a repository route race (bench/README.md)
        warnings.append(f"(P) warm-up: {warm['bad']} of {warm['requests']} answers were not good "
                        f"{warm['statuses']}; first: {(warm['first_bad'] or '')[:300]}")
        print(f"warning: {warnings[-1]}", flush=True)
    rates["pass"] = warm["requests"] / max(1e-3, time.time() - began - 0.5)
    return rates


def measure(kind: str, stack: Stack, signer: Signer, args: argparse.Namespace, load: LoadGenerator,
            rate: float, duration: float, connections: int, name: str) -> dict[str, Any]:
    """One measured slice: the pool signed right before, CPU of both servers read from /proc around it."""
    if kind == "pass":
        size = max(args.min_pool, math.ceil(rate * duration * args.pool_factor) + 4 * connections)
    else:
        size = args.direct_pool
    bodies, sign_seconds = signer.sign(SIGNED_AS[kind], size)
    spread = None
    meters = {"integrator": [stack.integrator.pid], "backend": [stack.backend.pid]}
    if "floor" in stack.servers:
        meters["floor"] = [stack.servers["floor"].pid]
    with CpuMeter(meters) as cpu:
        if kind == "pass" and connections > 1:
            spread = ConnectionSpread(stack.integrator.pid, stack.port, min(3.0, duration / 2)).start()
        try:
            result = load.run(stack.urls[kind], bodies, unique=kind == "pass", expect=EXPECT, duration=duration,
                              name=name, connections=connections)
        finally:
            if spread is not None:
                spread.cancel()
    result = summarise(result, cpu)
    result.update(kind=kind, pool=size, pool_sign_seconds=sign_seconds, connections=connections)
    if spread is not None and spread.found:
        result["connections_per_worker"] = spread.found
    return result


def combine(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds of one kind together: pooled counts and throughput, latency percentiles as the mean of the
    rounds' (percentiles do not add up), CPU per request pooled, Server-Timing sums pooled."""
    requests = sum(s["requests"] for s in slices)
    seconds = sum(s["seconds"] for s in slices)
    cpu: Counter[str] = Counter()
    stage_sum: Counter[str] = Counter()
    order: list[str] = []
    for s in slices:
        cpu.update(s.get("cpu_seconds") or {})
        stage_sum.update(s.get("stage_sum_ms") or {})
        order = s.get("stage_order") or order
    out = {
        "kind": slices[0].get("kind"), "rounds": len(slices), "requests": requests, "seconds": seconds,
        "good": sum(s["good"] for s in slices), "bad": sum(s["bad"] for s in slices),
        "throughput_rps": requests / seconds if seconds else math.nan,
        "latency_ms": {k: statistics.fmean(s["latency_ms"][k] for s in slices) for k in ("p50", "p90", "p99", "mean")},
        "latency_ms_per_round": [s["latency_ms"] for s in slices],
        "throughput_per_round": [s["throughput_rps"] for s in slices],
        "cpu_ms_per_request": {k: v * 1e3 / max(1, requests) for k, v in cpu.items()},
        "other_load_cores": statistics.fmean(s.get("other_load_cores", math.nan) for s in slices),
        "machine_busy": statistics.fmean(s.get("machine_busy", math.nan) for s in slices),
        "timed": sum(s.get("timed", 0) for s in slices), "stage_sum_ms": dict(stage_sum), "stage_order": order,
        "exhausted": any(s.get("exhausted") for s in slices),
        "socket_errors": sum(sum((s.get("socket_errors") or {}).values()) for s in slices),
        "statuses": dict(sum((Counter(s.get("statuses") or {}) for s in slices), Counter())),
        "first_bad": next((s.get("first_bad") for s in slices if s.get("first_bad")), None),
    }
    out["stage_breakdown"] = stage_table(out)
    return out


# --- profile --------------------------------------------------------------------------------------------------
def profile(stack: Stack, signer: Signer, args: argparse.Namespace, load: LoadGenerator, work: Path,
            rate: float) -> dict[str, Any]:
    """py-spy record --gil on the integrator's workers and the backend during an extra, unmeasured pass-through
    run (as bench/lookup.py --profile)."""
    spy = find_py_spy()
    if spy is None:
        return {"error": PY_SPY_MISSING}
    seconds = max(5.0, args.profile)
    bodies, _ = signer.sign("pass", max(args.min_pool, math.ceil(rate * (seconds + 2) * args.pool_factor)))
    targets = {"integrator": worker_pids(stack.integrator.pid), "backend": worker_pids(stack.backend.pid)}
    spies = PySpy(spy, targets, seconds, work, "pyspy-pass")
    print(f"(P) profiling with py-spy for {seconds:g} s (unmeasured)", flush=True)
    time.sleep(0.5)
    load.run(stack.urls["pass"], bodies, unique=True, expect=EXPECT, duration=seconds, name="p-profile")
    found: dict[str, Any] = {label: {"samples": s.total, "categories": s.shares(s.categories, 14),
                                     "self": s.shares(s.own, 14)} for label, s in spies.samples().items()}
    found["categories_known"] = [name for name, _ in PROFILE_CATEGORIES]
    return found


# --- report ---------------------------------------------------------------------------------------------------
def report(run: dict[str, Any]) -> str:
    d, p = run["loaded"]["direct"], run["loaded"]["pass"]
    g = run["gunicorn"]
    extra = f" {run['integrator_gunicorn_args']}" if run["integrator_gunicorn_args"] else ""
    lines = [
        f"kruispunt pass-through benchmark  {run['started']}  {run['cores']} cores  python {run['python']}",
        f"integrator: gunicorn.conf.py{extra}"
        f", {g['workers']} workers x {g['worker_class']} x {g['threads']} threads; backend "
        f"{run['backend']['name']}: {run['backend']['workers']} worker x gthread x {run['backend']['threads']} threads "
        f"(the same process for D and P); database {run['database']}",
        f"load generator (both): {run['load_generator']}; {run['connections']} connections; {run['rounds']} "
        f"alternating rounds of {run['slice']:g} s per kind after {run['warmup']:g} s warm-up each",
        f"sanity: one request of each kind checked end to end (signer, binding to the request, payload): the "
        f"pass-through answer's payload is byte-identical (exclusive c14n) to the backend's own; request "
        f"{run['sanity']['direct']['bytes_out']} / {run['sanity']['pass']['bytes_out']} bytes, answer "
        f"{run['sanity']['direct']['bytes_in']} / {run['sanity']['pass']['bytes_in']} bytes (D / P)",
        "",
        load_header(42, f"{'CPU ms/call':>28}"),
    ]

    def cpu_text(r: dict[str, Any]) -> str:
        c = r.get("cpu_ms_per_request") or {}
        front = "floor" if r.get("kind") == "floor" else "integrator"
        return (f"{front} {c.get(front, 0):5.2f} + backend {c.get('backend', 0):5.2f}"
                if c else "")

    for kind, r in run["loaded"].items():
        lines.append(load_row(LABELS[kind], 42, r) + cpu_text(r))
        if r["rounds"] > 1:
            lines.append(f"{'   per round req/s':42}" + "  ".join(f"{x:.1f}" for x in r["throughput_per_round"])
                         + "   p50 " + "  ".join(f"{x['p50']:.1f}" for x in r["latency_ms_per_round"])
                         + "   p99 " + "  ".join(f"{x['p99']:.1f}" for x in r["latency_ms_per_round"]))
    unloaded = run.get("unloaded") or {}
    for kind in run["loaded"]:
        r = unloaded.get(kind)
        if r:
            lines.append(load_row(LABELS[kind][:3] + " at 1 connection (unloaded)", 42, r) + cpu_text(r))
    dc = (d.get("cpu_ms_per_request") or {})
    pc = (p.get("cpu_ms_per_request") or {})
    d_cpu = dc.get("backend", 0.0) + dc.get("integrator", 0.0)
    p_cpu = pc.get("backend", 0.0) + pc.get("integrator", 0.0)
    lines += [
        "",
        f"ratio P/D throughput                 {p['throughput_rps'] / d['throughput_rps']:.3f}   (D is "
        f"{d['throughput_rps'] / p['throughput_rps']:.1f}x P)",
        f"ratio P/D latency at {run['connections']} connections   p50 "
        f"{p['latency_ms']['p50'] / d['latency_ms']['p50']:.2f}   p99 "
        f"{p['latency_ms']['p99'] / d['latency_ms']['p99']:.2f}",
    ]
    if unloaded.get("direct") and unloaded.get("pass"):
        ud, up = unloaded["direct"]["latency_ms"], unloaded["pass"]["latency_ms"]
        lines.append(f"unloaded (1 connection)              p50 {up['p50']:.1f} ms vs {ud['p50']:.1f} ms: ratio "
                     f"{up['p50'] / ud['p50']:.2f}, the pass-through adds {up['p50'] - ud['p50']:.1f} ms")
    f = run["loaded"].get("floor")
    if f:
        lines.append(f"floor F/D throughput                 {f['throughput_rps'] / d['throughput_rps']:.3f}   (P/F "
                     f"{p['throughput_rps'] / f['throughput_rps']:.3f}: the share of the floor's rate the integrator "
                     "reaches)")
        if unloaded.get("direct") and unloaded.get("floor"):
            uf = unloaded["floor"]["latency_ms"]
            lines.append(f"floor unloaded (1 connection)        p50 {uf['p50']:.1f} ms: the floor alone adds "
                         f"{uf['p50'] - ud['p50']:.1f} ms to the direct call's {ud['p50']:.1f} ms")
    if d_cpu and p_cpu:
        lines.append(f"CPU per call (servers, /proc)        P {p_cpu:.2f} ms vs D {d_cpu:.2f} ms: ratio "
                     f"{p_cpu / d_cpu:.2f}; the integrator's share of P {pc.get('integrator', 0) / p_cpu:.0%}; "
                     "CPU-bound ceilings on "
                     f"{run['cores']} cores: P {run['cores'] * 1e3 / p_cpu:.0f}/s, D {run['cores'] * 1e3 / d_cpu:.0f}/s"
                     " (D: one backend worker, so at most one core's worth of Python)")
    lines.append(f"machine busy: D {d['machine_busy']:.0%}, P {p['machine_busy']:.0%}; cores kept busy by other "
                 f"processes meanwhile: D {d['other_load_cores']:.2f}, P {p['other_load_cores']:.2f}")
    stages = p.get("stage_breakdown") or {}
    if stages:
        lines += ["", f"where a pass-through call's time goes in the integrator: Server-Timing of all "
                      f"{stages['responses']} measured (P) responses"]
        lines += stage_lines(stages, p["latency_ms"]["mean"], "waiting for a worker thread, HTTP, WSGI")
        handle = stages["stages"].get("handle")
        if handle:
            lines.append(f"  'handle' is the backend call as the integrator makes it (sign, HTTP, backend, verify): "
                         f"{handle['mean_ms']:.2f} ms, against {d['latency_ms']['mean']:.2f} ms mean for (D) at the "
                         f"same connection count")
        unloaded_stages = (unloaded.get("pass") or {}).get("stage_breakdown") or {}
        if unloaded_stages:
            lines.append("  unloaded (1 connection): " + ", ".join(
                f"{n} {s['mean_ms']:.2f}" for n, s in unloaded_stages["stages"].items())
                + f" = {unloaded_stages['total_ms']:.2f} ms")
    spread = p.get("connections_per_worker")
    if spread:
        lines.append(f"  client connections per integrator worker (sampled): "
                     f"{', '.join(f'{k}: {v}' for k, v in sorted(spread.items()))}")
    if run.get("audit"):
        lines.append(f"audit records at the integrator (incl. warm-up): {run['audit']}")
    for warning in run.get("warnings") or []:
        lines += ["", f"warning (not measured): {warning}"]
    problems = run["problems"]
    lines += ["", result_line(problems, "every measured response was HTTP 200 carrying a get_statusesResponse")]
    prof = run.get("profile") or {}
    for label in ("integrator", "backend"):
        r = prof.get(label)
        if not r or not r.get("samples"):
            continue
        lines += profile_lines(label, "(pass-through)", r, 10)
    return "\n".join(lines)


def problems_of(run: dict[str, Any]) -> list[str]:
    found = []
    for group in ("loaded", "unloaded"):
        for kind, r in (run.get(group) or {}).items():
            tag = f"{group} {LABELS[kind][:3]}"
            found += load_problems(tag, r, socket_errors="{tag}: {n} socket errors {socket_errors}",
                                   exhausted="{tag}: the request pool ran out; raise --pool-factor")
    return found


# --- main -----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--duration", type=float, default=20.0, help="seconds measured per kind, split over --rounds")
    p.add_argument("--rounds", type=int, default=2, help="alternating slices per kind (D P, P D, ...)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of direct warm-up (pass-through: a pool)")
    p.add_argument("--unloaded", type=float, default=5.0, help="seconds per kind at 1 connection (0: skip)")
    p.add_argument("--connections", type=int, default=16, help="concurrent connections, both kinds")
    p.add_argument("--workers", type=int, default=None, help="integrator gunicorn workers (gunicorn.conf.py's)")
    p.add_argument("--threads", type=int, default=None, help="integrator gthread threads (gunicorn.conf.py's)")
    p.add_argument("--integrator-gunicorn-args", default="", metavar="ARGS",
                   help="extra gunicorn command-line options for the integrator, to A/B a setting without editing "
                        "gunicorn.conf.py, e.g. \"--worker-connections 8\"")
    p.add_argument("--backend-workers", type=int, default=1, help="backend gunicorn workers (kruispunt run: 1)")
    p.add_argument("--backend-threads", type=int, default=4, help="backend gthread threads (kruispunt run: 4)")
    p.add_argument("--database-url", default=None,
                   help="an existing database for the integrator (e.g. postgresql://...); default: fresh SQLite")
    p.add_argument("--no-floor", dest="floor", action="store_false",
                   help="skip (F), the relay that does only the steps no pass-through can skip")
    p.add_argument("--access-log", action="store_true", help="keep gunicorn's access log on (default: off)")
    add_options(p)  # --install, --python-client, --wrk-threads, --client-processes
    p.add_argument("--sign-processes", type=int, default=os.cpu_count() or 1, help="processes signing the pools")
    p.add_argument("--warmup-pool", type=int, default=500, help="pass-through requests sent to warm up")
    p.add_argument("--direct-pool", type=int, default=1000,
                   help="signed direct requests, cycled (the backend keeps no replay memory; the integrator does, "
                        "so pass-through requests are single-use)")
    p.add_argument("--pool-factor", type=float, default=3.0, help="pass-through pool = warm-up rate x slice x this")
    p.add_argument("--min-pool", type=int, default=300, help="smallest pass-through pool")
    p.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                   help="after the measurement, py-spy the integrator and the backend under pass-through load")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, PKI, database)")
    p.add_argument("--output", type=Path, default=None,
                   help="JSON file (default: bench/results/passthrough-<time>.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(args, "kruispunt-bench-pass-", lambda bench_run: bench(args, bench_run))


def bench(args: argparse.Namespace, bench_run: Run) -> int:
    procs, work = bench_run.procs, bench_run.work
    load = LoadGenerator(args, procs, work)
    print(f"work dir {work}; load generator: {load.name}", flush=True)
    stack = Stack(args, procs, work)
    signer = Signer(stack.keys(), args.sign_processes)
    bench_run.cleanups.append(signer.close)
    checked = sanity(stack)
    print(f"sanity: both answers verified; statuses {checked['pass']['codes']}", flush=True)
    warnings: list[str] = []
    rates = warm_up(stack, signer, args, load, warnings)
    print(f"warm-up rates: D {rates['direct']:.1f}/s, P {rates['pass']:.1f}/s", flush=True)
    slice_seconds = args.duration / max(1, args.rounds)
    slices: dict[str, list[dict[str, Any]]] = {kind: [] for kind in stack.kinds}
    for round_no in range(args.rounds):
        order = stack.kinds if round_no % 2 == 0 else stack.kinds[::-1]
        for kind in order:
            print(f"round {round_no + 1}/{args.rounds}: {LABELS[kind]}, {slice_seconds:g} s at "
                  f"{args.connections} connections", flush=True)
            slices[kind].append(measure(kind, stack, signer, args, load, rates[kind], slice_seconds,
                                        args.connections, f"{kind}-{round_no}"))
    unloaded = {}
    if args.unloaded > 0:
        for kind in stack.kinds:
            print(f"unloaded: {LABELS[kind]}, {args.unloaded:g} s at 1 connection", flush=True)
            r = measure(kind, stack, signer, args, load, rates[kind], args.unloaded, 1, f"{kind}-unloaded")
            r["stage_breakdown"] = stage_table(r)
            unloaded[kind] = r
    run: dict[str, Any] = {
        "started": bench_run.started.isoformat(timespec="seconds"), "cores": os.cpu_count(),
        "python": platform.python_version(), "gunicorn": stack.gconf,
        "backend": {"name": stack.source.name, "workers": args.backend_workers, "threads": args.backend_threads},
        "database": describe_url(stack.database_url), "load_generator": load.name, "connections": args.connections,
        "integrator_gunicorn_args": args.integrator_gunicorn_args,
        "rounds": args.rounds, "slice": slice_seconds, "warmup": args.warmup, "warmup_rates": rates,
        "sanity": checked, "warnings": warnings, "loaded": {k: combine(v) for k, v in slices.items()},
        "slices": slices, "unloaded": unloaded,
    }
    run["loaded"]["pass"]["connections_per_worker"] = next(
        (s["connections_per_worker"] for s in slices["pass"] if s.get("connections_per_worker")), {})
    try:
        run["audit"] = audit_outcomes(stack.database_url)
    except Exception as exc:  # informative only
        run["audit"] = {"error": str(exc)}
    if args.profile:
        run["profile"] = profile(stack, signer, args, load, work, rates["pass"])
    run["problems"] = problems_of(run)
    run["derived"] = {
        "ratio_pass_over_direct_throughput": run["loaded"]["pass"]["throughput_rps"]
        / run["loaded"]["direct"]["throughput_rps"],
        "ratio_pass_over_direct_p50": run["loaded"]["pass"]["latency_ms"]["p50"]
        / run["loaded"]["direct"]["latency_ms"]["p50"],
        "ratio_pass_over_direct_p99": run["loaded"]["pass"]["latency_ms"]["p99"]
        / run["loaded"]["direct"]["latency_ms"]["p99"],
    }
    if "floor" in run["loaded"]:
        run["derived"]["ratio_floor_over_direct_throughput"] = (run["loaded"]["floor"]["throughput_rps"]
                                                                / run["loaded"]["direct"]["throughput_rps"])
    print("\n" + report(run))
    write_json(run, args.output, "passthrough", bench_run.started)
    return 0 if not run["problems"] else 2


if __name__ == "__main__":
    sys.exit(main())
