"""Figures and text shared by the benches' reports: throughput and CPU per request of a load run, the
Server-Timing stage table, table rows, the RESULT line and the JSON file."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from cpu import CpuMeter
from servers import RESULTS

# The integrator's Server-Timing stages, in pipeline order (integrator/timing.py).
STAGES = ("envelope", "security", "replay", "contract", "caller", "handle", "answer", "audit")


def describe_url(url: str) -> str:
    """A database URL without its credentials: host, port and name, or just the dialect (sqlite)."""
    return url.split("@")[-1] if "@" in url else url.split(":")[0]


# --- figures --------------------------------------------------------------------------------------------------
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


# --- text -----------------------------------------------------------------------------------------------------
def load_header(width: int, last: str) -> str:
    return f"{'':{width}}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}  {'good/sent':>13}  {last}"


def load_row(label: str, width: int, r: dict[str, Any]) -> str:
    """label, req/s, p50, p99, mean latency and good/sent of a load run (the caller appends its last column)."""
    lat = r["latency_ms"]
    return (f"{label:{width}}{r['throughput_rps']:9.1f}{lat['p50']:9.1f}{lat['p99']:9.1f}{lat['mean']:9.1f}  "
            f"{r['good']:>6}/{r['requests']:<6}  ")


def stage_lines(stages: dict[str, Any], mean_latency_ms: float, outside: str) -> list[str]:
    """The stage table of stage_table(): mean and share per stage, the total next to the client-side mean latency
    and what the rest (outside the pipeline) is."""
    lines = [f"  {'stage':10}{'mean ms':>10}{'share':>8}"]
    for name, s in stages["stages"].items():
        lines.append(f"  {name:10}{s['mean_ms']:10.2f}{s['share']:8.1%}")
    lines.append(f"  {'total':10}{stages['total_ms']:10.2f}{1:8.0%}   (client-side mean latency "
                 f"{mean_latency_ms:.2f} ms: {mean_latency_ms - stages['total_ms']:.2f} ms outside the pipeline: "
                 f"{outside})")
    return lines


def load_problems(tag: str, r: dict[str, Any], *, socket_errors: str, exhausted: str) -> list[str]:
    """What makes a load run invalid: answers that were not good, socket errors, a request pool that ran out.
    socket_errors and exhausted are the benches' wordings, formatted with tag, n (the socket error count) and
    r's fields."""
    found = []
    if r["bad"]:
        found.append(f"{tag}: {r['bad']} responses were not good {r['statuses']}; first:\n"
                     f"{(r.get('first_bad') or '')[:600]}")
    errors = r.get("socket_errors") or 0  # a load run's {kind: count}, or combined rounds' total
    n = sum(errors.values()) if isinstance(errors, dict) else errors
    if n:
        found.append(socket_errors.format(tag=tag, n=n, **r))
    if r.get("exhausted"):
        found.append(exhausted.format(tag=tag, n=n, **r))
    return found


def result_line(problems: list[str], valid: str) -> str:
    return "RESULT: " + ("INVALID\n  " + "\n  ".join(problems) if problems else "valid: " + valid)


def write_json(run: dict[str, Any], output: Path | None, name: str, started: datetime) -> None:
    """The run as JSON to output, by default bench/results/<name>-<time>.json; says where."""
    output = output or RESULTS / f"{name}-{started:%Y%m%d-%H%M%S}.json"
    output.write_text(json.dumps(run, indent=2, default=str))
    print(f"\nJSON: {output}")
