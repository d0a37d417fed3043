"""py-spy for the benches: `py-spy record --gil` (only the thread holding the GIL, i.e. where the Python CPU goes)
on server worker processes during an extra, unmeasured load run, and its raw stacks summed by own time, inclusive
time and category."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from servers import RESULTS

PY_SPY_MISSING = "py-spy not installed (.venv/bin/pip install py-spy)"

# What a py-spy stack is spent on: the first matching category wins (frames as frame_name() writes them).
PROFILE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("spyne gc.collect() (MethodContext.close)", ("MethodContext.close (spyne",)),
    ("XSD decode (xmlschema, Contract.check)", ("(xmlschema/",)),
    ("XML signature verify (signxml)", ("XMLVerifier.",)),
    ("XML signature make (signxml)", ("XMLSigner.",)),
    ("wssec: rest of verify_envelope", ("verify_envelope (",)),
    ("wssec: rest of sign_envelope", ("sign_envelope (",)),
    ("HTTP client to backends (pycurl; requests/urllib3 for peers)", ("BackendHttp.", "(requests/", "(urllib3/")),
    ("database (SQLAlchemy)", ("(sqlalchemy/",)),
    ("envelope parsing (parse_envelope)", ("parse_envelope (",)),
    ("thread hand-offs (futures, Condition)", ("Condition.", "Future.")),
    ("spyne (rest)", ("(spyne/",)),
    ("gunicorn (HTTP parsing, loop)", ("(gunicorn/",)),
)


def category(frames: list[str]) -> str:
    for name, needles in PROFILE_CATEGORIES:
        if any(needle in frame for frame in frames for needle in needles):
            return name
    return "other: " + frames[-1]


def short_path(path: str) -> str:
    """A source path without its site-packages, project or standard-library prefix."""
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return path


def frame_name(frame: str) -> str:
    """A py-spy raw frame `name (path:line)` as `name (short path)`."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    return f"{name} ({short_path(path)})"


def find_py_spy() -> str | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return spy if Path(spy).exists() else None


@dataclass
class Samples:
    """One target's py-spy samples, summed."""

    total: int = 0
    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # the tail of py-spy's stderr, where it said anything

    def shares(self, counter: Counter[str], top: int) -> list[tuple[str, float]]:
        return [(k, n / self.total) for k, n in counter.most_common(top)] if self.total else []

    def add(self, raw: str) -> None:
        for line in raw.splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = [frame_name(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
            if not frames:
                continue
            n = int(count)
            self.total += n
            self.own[frames[-1]] += n
            self.categories[category(frames)] += n
            for frame in set(frames):
                self.inclusive[frame] += n


class PySpy:
    """py-spy record on every pid of each target (label -> pids) for `seconds`, raw stacks to
    work/<prefix>-<label>-<pid>.txt (copied to bench/results/ once done)."""

    def __init__(self, spy: str, targets: dict[str, list[int]], seconds: float, work: Path, prefix: str) -> None:
        self.labels = list(targets)
        self.spies: list[tuple[str, Path, subprocess.Popen]] = []
        for label, pids in targets.items():
            for pid in pids:
                out = work / f"{prefix}-{label}-{pid}.txt"
                self.spies.append((label, out, subprocess.Popen(
                    [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250", "--gil",
                     "--format", "raw", "--nonblocking", "--output", str(out)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))

    def samples(self) -> dict[str, Samples]:
        """Wait for every py-spy (they stop on their own after `seconds`) and sum each target's stacks."""
        found = {label: Samples() for label in self.labels}
        for label, out, process in self.spies:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
            if out.exists():
                shutil.copy(out, RESULTS / out.name)
                found[label].add(out.read_text(errors="replace"))
        for label, _, process in self.spies:
            if process.stderr:
                error = process.stderr.read().decode(errors="replace")[-300:]
                if error.strip():
                    found[label].errors.append(error)
        return found


def profile_lines(label: str, what: str, profile: dict, top: int) -> list[str]:
    """A target's py-spy categories and top own-time functions, as the reports print them."""
    lines = ["", f"py-spy --gil, {label} {what}, {profile['samples']} samples: by category"]
    lines += [f"  {share:6.1%}  {name}" for name, share in profile["categories"]]
    lines += [f"py-spy --gil, {label}: top own time"]
    lines += [f"  {share:6.1%}  {frame}" for frame, share in profile["self"][:top]]
    return lines
