"""Housekeeping off the request path, one thread per worker: expired replay keys pruned in bounded batches, the
audit table's coming monthly partitions made, and (when configured) months past retention detached or dropped.

Every worker on every host runs one; they need no coordination: a prune batch skips keys another is deleting,
and partition work takes a PostgreSQL advisory lock (whoever does not get it skips that round).
`kruispunt maintenance …` does the same from the command line.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from integrator import partitions, replay

log = logging.getLogger("kruispunt.maintenance")


@dataclass(frozen=True)
class MaintenancePolicy:
    """What the maintenance step does and how often (KRUISPUNT_MAINTENANCE_* and friends, see from_env)."""

    interval_seconds: float = 60.0  # between rounds; 0 switches a worker's maintenance thread off
    prune_batch: int = replay.PRUNE_BATCH  # replay keys per delete statement
    prune_max_batches: int = 20  # per round; a round that reaches it is followed by the next at once
    prune_rest: float = 1.0  # after each batch, rest this many times as long as it took (catching up gently)
    partitions_ahead: int = 3  # monthly audit partitions kept made after the current month
    partition_check_seconds: float = 3600.0  # how often a worker looks at the partitions
    retention_months: int = 0  # audit months kept attached besides the current one; 0: keep every month
    retention_drop: bool = False  # retire by DROP instead of DETACH (a detached month stays a table of its own)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> MaintenancePolicy:
        env = os.environ if environ is None else environ
        return cls(
            interval_seconds=float(env.get("KRUISPUNT_MAINTENANCE_INTERVAL_SECONDS", "60")),
            prune_batch=int(env.get("KRUISPUNT_REPLAY_PRUNE_BATCH", str(replay.PRUNE_BATCH))),
            prune_max_batches=int(env.get("KRUISPUNT_REPLAY_PRUNE_MAX_BATCHES", "20")),
            prune_rest=float(env.get("KRUISPUNT_REPLAY_PRUNE_REST", "1")),
            partitions_ahead=int(env.get("KRUISPUNT_AUDIT_PARTITIONS_AHEAD", "3")),
            retention_months=int(env.get("KRUISPUNT_AUDIT_RETENTION_MONTHS", "0")),
            retention_drop=env.get("KRUISPUNT_AUDIT_RETENTION_DROP", "").lower() in ("1", "true", "yes"),
        )


@dataclass(frozen=True)
class Round:
    """What one round did."""

    pruned: replay.Pruned
    made: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


def upkeep_partitions(session: Session, policy: MaintenancePolicy, now: datetime) -> tuple[list[str], list[str]]:
    """(partitions made, partitions retired) on PostgreSQL; nothing on SQLite."""
    made = partitions.ensure_ahead(session, now, policy.partitions_ahead)
    retired = partitions.retire(session, now, policy.retention_months, drop=policy.retention_drop)
    return made, retired


class Maintenance:
    """One worker's maintenance thread. Start it after the fork (in create_app, like the outbox Forwarder)."""

    def __init__(self, sessions: sessionmaker[Session], policy: MaintenancePolicy | None = None) -> None:
        self.sessions = sessions
        self.policy = policy or MaintenancePolicy.from_env()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._partitions_due = 0.0  # monotonic time of the next partition check (0: at the first round)

    def start(self) -> None:
        if self.policy.interval_seconds <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        wait = self.policy.interval_seconds
        while not self._stop.wait(wait):
            try:
                done = self.run_once()
                busy = done.pruned.more  # the batch limit was reached: more keys have expired, go on at once
            except Exception:  # maintenance must outlive a database hiccup; the next round tries again
                log.exception("maintenance round failed")
                busy = False
            wait = 0.0 if busy else self.policy.interval_seconds

    def run_once(self, now: datetime | None = None) -> Round:
        """One round: prune up to prune_max_batches batches (a backlog, e.g. after an outage, takes several rounds,
        one after the other); the partitions when their check is due."""
        now = now or datetime.now(UTC)
        policy = self.policy
        pruned = replay.prune(self.sessions, now, batch=policy.prune_batch, max_batches=policy.prune_max_batches,
                              rest=policy.prune_rest)
        made: list[str] = []
        retired: list[str] = []
        if time.monotonic() >= self._partitions_due:
            with self.sessions() as session:
                made, retired = upkeep_partitions(session, policy, now)
            self._partitions_due = time.monotonic() + policy.partition_check_seconds  # a failure: next round
            for name in made:
                log.info("made audit partition %s", name)
            for name in retired:
                log.info("%s audit partition %s (retention %d months)",
                         "dropped" if policy.retention_drop else "detached", name, policy.retention_months)
        return Round(pruned, made, retired)
