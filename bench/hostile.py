#!/usr/bin/env python3
"""What does a hostile request cost the integrator, next to a valid request of the same size?

One run: the demo stack and the integrator under gunicorn -c gunicorn.conf.py (2 workers,
KRUISPUNT_WORKER_TIMEOUT at its default), then every class of bench/hostile_cases.py sent N times in a row, one
connection per request: the integrator workers' CPU per request (user+system of the gunicorn tree, /proc), wall
time, the answer (HTTP status, fault code, whether the integrator signed it), worker timeouts and restarts, and
each worker's RSS after every class. Then, in this process, the envelope + security stage of each input
(parse_envelope + check_understood + verify_envelope, the fault caught) in interleaved rounds next to the same
for a validly signed ~1 MiB lookup. Target: the worst class costs at most 5x a valid request's envelope +
security CPU, no worker ever reaches its timeout, and worker memory returns to its baseline.

Run from the project root:  .venv/bin/python bench/hostile.py [--requests 5] [--rounds 3] [--scope 120]
"""

from __future__ import annotations

import argparse
import gc
import http.client
import math
import os
import platform
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
for _path in (BENCH.parent, BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from demo_stack import audit_outcomes, kruisdorp_key_files, prepare_stack  # noqa: E402
from hostile_cases import IN_SCOPE, VALID_BIG, VALID_ELEMENTS, VALID_SMALL, Case, all_cases  # noqa: E402
from hostile_inputs import TAX_PATH, Maker  # noqa: E402
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
from worker_watch import Snapshot, WorkerWatch  # noqa: E402

from integrator.config import Settings  # noqa: E402
from integrator.envelope import Envelope, check_understood, parse_envelope  # noqa: E402
from integrator.faults import KruispuntFault  # noqa: E402
from integrator.namespaces import KP, SOAP_ENV, q  # noqa: E402
from integrator.pipeline import UNDERSTOOD  # noqa: E402
from integrator.pki import Identity  # noqa: E402
from integrator.wssec.sign import SigningKey  # noqa: E402
from integrator.wssec.trust import TrustStore  # noqa: E402
from integrator.wssec.verify import SecurityPolicy, verify_envelope  # noqa: E402

TARGET = 5.0
HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""', "Connection": "close"}


# --- answers --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    status: int
    code: str  # the fault code, "OK" for an answer, "-" when there was none (connection error)
    signed: bool  # verified as signed by the integrator's own certificate
    wall: float

    @property
    def label(self) -> str:
        return f"{self.status} {self.code}"


class AnswerCheck:
    """Reads an answer: its fault code, and whether the integrator signed it (verify_envelope, its fingerprint)."""

    def __init__(self, trust: TrustStore, integrator: SigningKey) -> None:
        from integrator.pki import fingerprint
        self.trust, self.fingerprint = trust, fingerprint(integrator.cert)

    def read(self, status: int, body: bytes, wall: float) -> Answer:
        from lxml import etree
        try:
            root = etree.fromstring(body)
        except etree.XMLSyntaxError:
            return Answer(status, "not XML", False, wall)
        fault = root.find(f"{q(SOAP_ENV, 'Body')}/{q(SOAP_ENV, 'Fault')}")
        code = "OK" if fault is None else (fault.findtext(f"detail/{q(KP, 'FaultDetail')}/{q(KP, 'Code')}") or "?")
        try:
            verified = verify_envelope(Envelope.of(root), self.trust, SecurityPolicy(), datetime.now(UTC))
            signed = verified.fingerprint == self.fingerprint
        except KruispuntFault:
            signed = False
        return Answer(status, code, signed, wall)


def post(port: int, data: bytes, timeout: float) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", TAX_PATH, body=data, headers=HEADERS)
        reply = connection.getresponse()
        return reply.status, reply.read(), time.perf_counter() - started
    except (OSError, http.client.HTTPException):
        return 0, b"", time.perf_counter() - started
    finally:
        connection.close()


def problems_of(case: Case, answers: list[Answer]) -> list[str]:
    """What breaks the rules: a hostile request gets a signed Client.* fault (never a 5xx); a valid or
    within-limits one a signed answer, 200 or the fault it is expected to get."""
    found = []
    for answer in answers:
        if answer.status == 0 or answer.status >= 500:
            found.append(f"{case.name}: HTTP {answer.status} {answer.code}")
        elif not answer.signed:
            found.append(f"{case.name}: the answer {answer.label} is not signed by the integrator")
        elif case.group == "hostile" and not (400 <= answer.status < 500 and answer.code.startswith("Client.")):
            found.append(f"{case.name}: answered {answer.label}, not a Client.* fault")
        elif case.group != "hostile" and not (answer.status == 200 or answer.code.startswith(case.expect)
                                              or answer.code.startswith("Client.Contract")):
            found.append(f"{case.name}: answered {answer.label}, expected {case.expect}")
    return sorted(set(found))


# --- the integrator -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stack:
    settings: Settings
    port: int
    watch: WorkerWatch
    gunicorn: dict[str, Any]
    database_url: str


def start_stack(args: argparse.Namespace, run: Run) -> Stack:
    """Demo stack, backends and the integrator, as bench/lookup.py starts them; KRUISPUNT_WORKER_TIMEOUT unset
    (gunicorn.conf.py's default, 60 s)."""
    gconf = gunicorn_settings(args)
    settings, ports, database_url = prepare_stack(args, run.work / "var")
    env = server_env(args, gconf, KRUISPUNT_VAR=str(settings.var_dir), KRUISPUNT_DATABASE_URL=database_url)
    env.pop("KRUISPUNT_WORKER_TIMEOUT", None)
    for name, port in ports.items():
        start_backend(run.procs, name, port, env)
    port = free_port()
    integrator = start_configured(run.procs, "integrator", port, env)
    for name, backend_port in ports.items():
        wait_for(f"http://127.0.0.1:{backend_port}/?wsdl", run.procs.running[f"backend-{name}"], run.procs,
                 f"backend-{name}")
    wait_for(f"http://127.0.0.1:{port}/health/ready", integrator, run.procs, "integrator")
    gconf.update(timeout=60, database=describe_url(database_url))
    return Stack(settings, port, WorkerWatch(integrator.pid, run.procs.log_dir / "integrator.log"), gconf,
                 database_url)


def serve(case: Case, maker: Maker, port: int, watch: WorkerWatch, check: AnswerCheck,
          args: argparse.Namespace) -> dict[str, Any]:
    """Requests of the class one after another: at least --requests, more (up to --max-requests) until the
    workers used --min-cpu seconds on them (/proc counts CPU in 10 ms ticks); a signed one is made anew for each,
    here in the bench's process while the workers wait. The workers' CPU over them, every answer, memory after."""
    fixed = None if case.signed else case.make(maker)
    before = watch.snapshot()
    replies, size = [], 0
    while len(replies) < args.requests or (watch.cpu() - before.tree_cpu < args.min_cpu
                                           and len(replies) < args.max_requests):
        body = fixed if fixed is not None else case.make(maker)
        size = len(body)
        replies.append(post(port, body, args.http_timeout))
    after = watch.snapshot()
    answers = [check.read(status, body, wall) for status, body, wall in replies]
    labels = Counter(a.label + ("" if a.signed or a.status == 0 else " (unsigned)") for a in answers)
    return {"bytes": size, "units": case.units, "requests": len(replies), "answers": dict(labels),
            "answer": labels.most_common(1)[0][0] + (f" (+{len(labels) - 1} other)" if len(labels) > 1 else ""),
            "cpu_ms": (after.tree_cpu - before.tree_cpu) * 1e3 / len(replies),
            "system_ms": (after.system_cpu - before.system_cpu) * 1e3 / len(replies),
            "worker_cpu_ms": {str(p): (after.worker_cpu.get(p, 0) - before.worker_cpu.get(p, 0)) * 1e3
                              for p in after.worker_cpu},
            "wall_ms": statistics.fmean(a.wall for a in answers) * 1e3,
            "wall_max_ms": max(a.wall for a in answers) * 1e3,
            "rss_mib": after.rss_mib, "pids_changed": before.rss_mib.keys() != after.rss_mib.keys(),
            "timeouts": after.timeouts - before.timeouts, "problems": problems_of(case, answers)}


# --- in this process ------------------------------------------------------------------------------------------
def stage_cpu(data: bytes, trust: TrustStore, budget: float = 0.02) -> tuple[float, str]:
    """CPU seconds of parse_envelope + check_understood + verify_envelope on data (batched to at least budget
    seconds), and the fault code it ends with ("verified" when it does not)."""
    settings = Settings.from_env()  # the limits the integrator runs with (KRUISPUNT_MAX_*), as it reads them
    limits, policy = settings.limits, settings.security

    def once() -> str:
        try:
            envelope = parse_envelope(data, limits)
            check_understood(envelope, UNDERSTOOD)
            verify_envelope(envelope, trust, policy, datetime.now(UTC))
        except KruispuntFault as fault:
            return fault.code
        return "verified"
    started = time.process_time()
    code = once()
    first = time.process_time() - started
    batch = max(1, math.ceil(budget / first)) if first < budget else 0
    if not batch:
        return first, code
    started = time.process_time()
    for _ in range(batch):
        once()
    return (time.process_time() - started) / batch, code


def in_process(cases: list[Case], maker: Maker, trust: TrustStore, rounds: int) -> dict[str, dict[str, Any]]:
    """Interleaved rounds (the order rotates); per class the median ms and the median of per-round ratios to the
    valid ~1 MiB request. Signed inputs are made anew every round (their Timestamps stay fresh)."""
    ms: dict[str, list[float]] = {c.name: [] for c in cases}
    codes: dict[str, str] = {}
    unsigned = {c.name: c.make(maker) for c in cases if not c.signed}
    gc.collect()
    gc.freeze()  # the bench's own objects out of the collector's way: each input pays for its own garbage only
    for index in range(rounds):
        for case in cases[index % len(cases):] + cases[:index % len(cases)]:
            data = case.make(maker) if case.signed else unsigned[case.name]
            seconds, codes[case.name] = stage_cpu(data, trust)
            ms[case.name].append(seconds * 1e3)
        print(f"  in-process round {index + 1}/{rounds} done", flush=True)
    reference = ms[VALID_BIG]
    return {name: {"ms": statistics.median(values), "ms_rounds": values, "code": codes[name],
                   "ratio": statistics.median(v / r for v, r in zip(values, reference, strict=True))}
            for name, values in ms.items()}


# --- report ---------------------------------------------------------------------------------------------------
def memory_lines(baseline: Snapshot, end: Snapshot, served: dict[str, dict[str, Any]], slack: float) -> tuple[
        list[str], list[str]]:
    lines, problems = [], []
    worst = {p: max(((r["rss_mib"].get(p, 0.0), n) for n, r in served.items()), default=(0.0, "")) for p in
             baseline.rss_mib}
    for pid, base in baseline.rss_mib.items():
        now = end.rss_mib.get(pid)
        peak_rss, peak_case = worst[pid]
        lines.append(f"  worker {pid}: baseline {base:.1f} MiB, highest after a class {peak_rss:.1f} MiB "
                     f"({peak_case}), end {now if now is not None else math.nan:.1f} MiB, peak (VmHWM) "
                     f"{end.peak_mib.get(pid, math.nan):.1f} MiB")
        allowed = base + max(slack, 0.1 * base)
        if now is None:
            problems.append(f"worker {pid} is gone (restarted?)")
        elif now > allowed:
            problems.append(f"worker {pid} memory did not return to its baseline: {base:.1f} -> {now:.1f} MiB "
                            f"(allowed {allowed:.1f})")
    return lines, problems


def header_lines(run: dict[str, Any], reference: float) -> list[str]:
    g = run["gunicorn"]
    return [
        f"kruispunt hostile-input benchmark  {run['started']}  {run['cores']} cores  python {run['python']}",
        f"integrator: gunicorn {g['workers']} workers x {g['worker_class']} x {g['threads']} threads, worker "
        f"timeout {g['timeout']} s, database {g['database']}; limits: {run['limits']}",
        f"per class: at least {run['requests']} requests (more until {run['min_cpu']:g} s of worker CPU, at most "
        f"{run['max_requests']}), one connection each; in-process: {run['rounds']} interleaved rounds; PrefixList "
        f"classes: {run['scope']} namespaces in scope",
        f"integrator tree idle before the run: {run['idle_cpu_ms_per_s']:.2f} ms CPU/s; the reference (ref): the "
        f"valid ~1 MiB request's envelope + security in this process, {reference:.2f} ms",
    ]


def row(case: Case, width: int, r: dict[str, Any], p: dict[str, Any], reference: float) -> str:
    rss = "/".join(f"{v:.0f}" for _, v in sorted(r["rss_mib"].items()))
    code = r["answer"].split(" ")[1]
    note = "" if code.startswith(case.expect) or r["answer"].startswith("200") else f"  (expected {case.expect})"
    return (f"{case.name:{width}}{r['bytes']:>9}  {r['answer'][:43]:44}{r['requests']:>4}{r['wall_ms']:9.1f}"
            f"{r['cpu_ms']:9.1f}{r['system_ms']:6.0f}{r['cpu_ms'] / reference:8.1f}{p['ms']:9.2f}{p['ratio']:8.1f}"
            f"{rss:>11}{note}")


def judged_ms(r: dict[str, Any], lookup: dict[str, Any]) -> float:
    """The worker CPU a class is judged by: what it cost; for a class answered 200 (a lookup that went through:
    four signed backend calls, their answers, the signed answer) what it cost beyond the small valid lookup."""
    return max(0.0, r["cpu_ms"] - lookup["cpu_ms"]) if r["answer"].startswith("200") else r["cpu_ms"]


def split_lines(rated: list[Case], cost: dict[str, float], inproc: dict[str, Any],
                served: dict[str, Any]) -> list[str]:
    """The worst class among those a sender without a registered key can send (unsigned, or signed by a key that
    is not the caller's), and the worst class next to a valid request of as many elements (4,900) as it holds."""
    keyless = [c for c in rated if not c.name.startswith("within, signed")]
    worst_keyless = max(keyless, key=lambda c: cost[c.name])
    elements_ms = inproc[VALID_ELEMENTS]["ms"]
    worst_rich = max(rated, key=lambda c: inproc[c.name]["ms"])
    return [f"  without a registered key, the worst: {worst_keyless.name} ({cost[worst_keyless.name]:.1f}x ref by "
            f"worker CPU, {inproc[worst_keyless.name]['ratio']:.1f}x in-process)",
            f"  next to a valid request of 4,900 elements ({elements_ms:.2f} ms in-process): {worst_rich.name} "
            f"{inproc[worst_rich.name]['ms'] / elements_ms:.1f}x in-process, worker CPU "
            f"{served[worst_rich.name]['cpu_ms'] / served[VALID_ELEMENTS]['cpu_ms']:.1f}x"]


def report(run: dict[str, Any], cases: list[Case], baseline: Snapshot, end: Snapshot) -> tuple[str, bool]:
    """The table, memory, timeouts, the verdict against the target and the RESULT line; and whether both hold."""
    served, inproc = run["served"], run["in_process"]
    reference = inproc[VALID_BIG]["ms"]
    width = max(len(c.name) for c in cases) + 1
    lines = [*header_lines(run, reference), "",
             f"{'class':{width}}{'bytes':>9}  {'answer (HTTP, code)':44}{'n':>4}{'wall ms':>9}{'worker':>9}"
             f"{'sys':>6}{'x ref':>8}{'e+s ms':>9}{'x ref':>8}{'RSS MiB':>11}"]
    lines += [row(c, width, served[c.name], inproc[c.name], reference) for c in cases]
    rated = [c for c in cases if c.group != "valid"]
    cost = {c.name: judged_ms(served[c.name], served[VALID_SMALL]) / reference for c in rated}
    worst = max(rated, key=lambda c: cost[c.name])
    worst_inproc = max(rated, key=lambda c: inproc[c.name]["ratio"])
    ratio, ratio_inproc = cost[worst.name], inproc[worst_inproc.name]["ratio"]
    over = [f"{c.name} {cost[c.name]:.1f}x" + (" (beyond an ordinary lookup's CPU)" if
                                               served[c.name]["answer"].startswith("200") else "")
            for c in rated if cost[c.name] > TARGET]
    mem, memory = memory_lines(baseline, end, served, run["memory_slack_mib"])
    answers = sorted({p for r in served.values() for p in r["problems"]})
    timeouts = end.timeouts - baseline.timeouts
    restarted = [n for n, r in served.items() if r["pids_changed"]]
    missed = ([f"worst {worst.name}: {ratio:.1f}x (worker CPU), {worst_inproc.name}: {ratio_inproc:.1f}x "
               f"(in-process) > {TARGET:g}x"] if max(ratio, ratio_inproc) > TARGET else [])
    missed += [f"{timeouts} WORKER TIMEOUT line(s) in gunicorn's log"] if timeouts else []
    missed += [f"a worker PID changed during: {', '.join(restarted)}"] if restarted else []
    missed += memory
    lines += [
        "",
        "n: requests sent; worker: the integrator workers' CPU per request in ms (gunicorn tree, /proc, 10 ms "
        "ticks), sys: the system part of it; e+s: parse_envelope + check_understood + verify_envelope in this "
        "process (median of rounds); x ref: over the ref (in-process: median of per-round ratios); RSS: each "
        "worker after the class",
        "memory:", *mem,
        f"worker timeouts: {timeouts}; worker restarts (PID changes): {len(restarted)}",
        f"classes over {TARGET:g}x by worker CPU ({len(over)}): {'; '.join(over) or 'none'}",
        "",
        f"target: the worst class costs at most {TARGET:g}x a valid request's envelope + security CPU, no worker "
        "ever reaches its timeout, and worker memory returns to its baseline",
        "  (a class answered 200 is judged by its worker CPU beyond the small valid lookup's, which is the lookup "
        "itself)",
        f"  worst class by worker CPU: {worst.name} ({ratio:.1f}x ref); by in-process envelope + security: "
        f"{worst_inproc.name} ({ratio_inproc:.1f}x)",
        *split_lines(rated, cost, inproc, served),
        f"  verdict: {'met' if not missed else 'NOT met'}",
        "",
        "RESULT: " + ("valid: every hostile request got a signed Client.* fault, every other a signed answer"
                      if not answers else "INVALID answers:\n  " + "\n  ".join(answers) + "\n ")
        + ("; target met" if not missed else "; target NOT met:\n  " + "\n  ".join(missed)),
    ]
    return "\n".join(lines), not answers and not missed


# --- main -----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--requests", type=int, default=5, help="requests per class sent to the integrator, at least")
    p.add_argument("--min-cpu", type=float, default=0.3,
                   help="send more requests of a class until the workers used this many CPU seconds on them")
    p.add_argument("--max-requests", type=int, default=40, help="requests per class, at most")
    p.add_argument("--rounds", type=int, default=3, help="in-process rounds (each class once per round)")
    p.add_argument("--scope", type=int, default=IN_SCOPE,
                   help="namespaces in scope of the PrefixList classes (KRUISPUNT_MAX_NAMESPACES_IN_SCOPE allows 128)")
    p.add_argument("--only", action="append", default=[],
                   help="only the classes whose name contains this (repeatable; the two valid ones always run)")
    p.add_argument("--warmup", type=int, default=3, help="valid requests of each size sent before the baseline")
    p.add_argument("--settle", type=float, default=3.0, help="seconds to wait before the memory at the end")
    p.add_argument("--cooldown", type=int, default=20,
                   help="small valid lookups sent after the settle, before the memory at the end")
    p.add_argument("--memory-slack", type=float, default=16.0,
                   help="MiB (or 10%% of the baseline, whichever is more) a worker may end above its baseline")
    p.add_argument("--http-timeout", type=float, default=900.0, help="seconds to wait for one answer")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (KRUISPUNT_WORKERS)")
    p.add_argument("--threads", type=int, default=None, help="gthread threads (default: gunicorn.conf.py's)")
    p.add_argument("--database-url", default=None, help="SQLAlchemy URL of an existing database; default: SQLite")
    p.add_argument("--access-log", action="store_true", help="keep gunicorn's access log on")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, PKI, database)")
    p.add_argument("--output", type=Path, default=None, help="JSON file (default: bench/results/hostile-<time>.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(args, "kruispunt-hostile-", lambda run: bench(args, run), traceback=True)


def bench(args: argparse.Namespace, run: Run) -> int:
    cases = [c for c in all_cases(args.scope) if c.group == "valid" or not args.only
             or any(o in c.name for o in args.only)]
    stack = start_stack(args, run)
    settings, port, watch = stack.settings, stack.port, stack.watch
    maker, trust, check = _parties(settings)
    print(f"work dir {run.work}; integrator on :{port}, workers {watch.pids()}; making the inputs fit "
          f"{maker.size:,} bytes", flush=True)
    for case in cases:
        case.make(maker)
    for case in [c for c in cases if c.group == "valid"] * args.warmup:
        post(port, case.make(maker), args.http_timeout)
    cpu_before, idle_started = watch.cpu(), time.monotonic()
    time.sleep(2.0)
    idle = (watch.cpu() - cpu_before) * 1e3 / (time.monotonic() - idle_started)
    baseline = watch.snapshot()
    served = {}
    for index, case in enumerate(cases, 1):
        served[case.name] = serve(case, maker, port, watch, check, args)
        r = served[case.name]
        print(f"  [{index}/{len(cases)}] {case.name}: {r['answer']}, {r['cpu_ms']:.1f} ms CPU/request", flush=True)
    time.sleep(args.settle)
    small = next(c for c in cases if c.name == VALID_SMALL)
    for _ in range(args.cooldown):
        post(port, small.make(maker), args.http_timeout)
    end = watch.snapshot()
    audited = audit_outcomes(stack.database_url)
    run.procs.stop_all()
    print("in-process envelope + security", flush=True)
    inproc = in_process(cases, maker, trust, args.rounds)
    result = {
        "started": run.started.isoformat(timespec="seconds"), "cores": os.cpu_count(), "python":
            platform.python_version(), "gunicorn": stack.gunicorn, "limits": _limits(settings),
        "requests": args.requests, "min_cpu": args.min_cpu, "max_requests": args.max_requests,
        "rounds": args.rounds, "scope": args.scope, "idle_cpu_ms_per_s": idle, "baseline": asdict(baseline),
        "end": asdict(end), "memory_slack_mib": args.memory_slack, "served": served, "in_process": inproc,
        "audit_outcomes": audited,
    }
    text, good = report(result, cases, baseline, end)
    print("\n" + text)
    write_json(result, args.output, "hostile", run.started)
    return 0 if good else 2


def _parties(settings: Settings) -> tuple[Maker, TrustStore, AnswerCheck]:
    """Who signs the requests (the demo official of Gemeente Kruisdorp), what verifies the answers."""
    from services.backends.persons import PERSONS
    from services.demo_organisations import OFFICIALS

    pki = settings.pki_dir
    cert, key = kruisdorp_key_files(pki)
    integrator_key = SigningKey.from_identity(Identity("integrator", pki / "integrator.crt", pki / "integrator.key"))
    maker = Maker(SigningKey.from_identity(Identity("caller", cert, key)), OFFICIALS[0].insz, PERSONS[0].insz,
                  settings.limits.max_bytes - 256, integrator_key.cert_der_b64)
    trust = TrustStore.from_files(settings.trust_anchor_paths, settings.crl_path)
    return maker, trust, AnswerCheck(trust, integrator_key)


def _limits(settings: Settings) -> str:
    limits, policy = settings.limits, settings.security
    return (f"{limits.max_bytes:,} bytes, depth {limits.max_depth}, {limits.max_elements:,} elements, "
            f"{limits.max_attributes_per_element}/{limits.max_attributes:,} attributes, {limits.max_namespaces:,} "
            f"namespaces, {limits.max_text_chars:,} chars, {limits.max_ids} Ids, {policy.max_references} references, "
            f"token {policy.max_token_chars:,} chars")


if __name__ == "__main__":
    sys.exit(main())
