"""CPU accounting of the benches: process trees from /proc, this process and its children from rusage, and how busy
the whole (shared) machine was meanwhile."""

from __future__ import annotations

import os
import resource
import time

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
    """User + system CPU of this process's finished (waited-for) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class MachineLoad:
    """How busy the machine was from construction to stop(), and how many cores processes other than ours kept
    busy meanwhile (this machine is shared)."""

    def __init__(self) -> None:
        self.before = machine_cpu()
        self.wall_before = time.monotonic()

    def stop(self) -> MachineLoad:
        busy, total = machine_cpu()
        self.busy = (busy - self.before[0]) / max(1, total - self.before[1])
        self.wall = time.monotonic() - self.wall_before
        return self

    def others(self, ours: float) -> float:
        """Cores kept busy by everything else, given the CPU seconds our processes used meanwhile."""
        cores = os.cpu_count() or 1
        return max(0.0, self.busy * cores - ours / max(self.wall, 1e-9))


class CpuMeter:
    """CPU used by named process trees, by this script's finished children (the load generator) and the machine."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups

    def __enter__(self) -> CpuMeter:
        self.before = {name: tree_cpu_seconds(pids) for name, pids in self.groups.items()}
        self.children_before = children_cpu()
        self.machine = MachineLoad()
        return self

    def __exit__(self, *_: object) -> None:
        self.used = {name: tree_cpu_seconds(pids) - self.before[name] for name, pids in self.groups.items()}
        self.used["load generator"] = children_cpu() - self.children_before
        self.machine.stop()
        self.machine_busy = self.machine.busy
        self.wall = self.machine.wall
        self.others = self.machine.others(sum(self.used.values()))
