"""What a gunicorn master's workers did meanwhile: the RSS and peak RSS of each from /proc/<pid>/status, CPU of
each (and of the whole tree) from /proc, which PIDs they have (a new PID is a restarted worker), and how many
'WORKER TIMEOUT' lines gunicorn wrote to its log."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cpu import tree_cpu_seconds
from servers import worker_pids

_TICK = os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, field: str) -> int | None:
    """A field of /proc/<pid>/status in KiB (VmRSS, VmHWM), None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def system_seconds(pid: int) -> float:
    """System CPU of a process (all its threads), from /proc/<pid>/stat; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[12]) / _TICK
    except OSError:
        return 0.0


@dataclass(frozen=True)
class Snapshot:
    """The workers at one moment: RSS and peak RSS (MiB) by PID, CPU seconds of each (and system CPU of them
    all) and of the whole tree (cpu.tree_cpu_seconds over the master)."""

    rss_mib: dict[int, float]
    peak_mib: dict[int, float]
    worker_cpu: dict[int, float]
    system_cpu: float
    tree_cpu: float
    timeouts: int


class WorkerWatch:
    def __init__(self, master: int, log: Path) -> None:
        self.master = master
        self.log = log

    def pids(self) -> list[int]:
        return sorted(worker_pids(self.master))

    def timeouts(self) -> int:
        """'WORKER TIMEOUT' lines in gunicorn's log so far."""
        try:
            return self.log.read_text(errors="replace").count("WORKER TIMEOUT")
        except OSError:
            return 0

    def cpu(self) -> float:
        return tree_cpu_seconds([self.master])

    def snapshot(self) -> Snapshot:
        pids = self.pids()
        return Snapshot(rss_mib={p: (status_kib(p, "VmRSS") or 0) / 1024 for p in pids},
                        peak_mib={p: (status_kib(p, "VmHWM") or 0) / 1024 for p in pids},
                        worker_cpu={p: tree_cpu_seconds([p]) for p in pids},
                        system_cpu=sum(system_seconds(p) for p in pids), tree_cpu=self.cpu(),
                        timeouts=self.timeouts())
