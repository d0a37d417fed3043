"""Where a request's time goes: stage durations, sent back as a Server-Timing header for bench/."""

from __future__ import annotations

from time import perf_counter


class StageClock:
    """Marks the end of each stage; the time since the previous mark is that stage's."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, float]] = []
        self._last = perf_counter()

    def mark(self, stage: str) -> None:
        now = perf_counter()
        self.stages.append((stage, now - self._last))
        self._last = now

    def server_timing(self) -> str:
        return ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in self.stages)
