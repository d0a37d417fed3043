"""Circuit breaker per backend endpoint, kept in the database so every worker on every host sees one state."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from repository.base import aware
from repository.models import Backend, Circuit


@dataclass(frozen=True)
class CircuitPolicy:
    """After `threshold` consecutive failures the circuit opens for `cooldown`; then one trial call decides."""

    threshold: int = 3
    cooldown: timedelta = timedelta(seconds=30)
    cache_seconds: float = 1.0  # how stale a worker's view of the circuits may be


@dataclass(frozen=True)
class OpenCircuit:
    service: str
    backend: str
    state: str
    until: datetime | None
    failures: int
    last_error: str | None


class CircuitBreaker:
    def __init__(self, sessions: sessionmaker[Session], policy: CircuitPolicy | None = None) -> None:
        self.sessions = sessions
        self.policy = policy or CircuitPolicy()
        self._view: dict[int, tuple[str, int, datetime | None]] = {}
        self._view_until = 0.0
        self._lock = threading.Lock()

    def _states(self) -> dict[int, tuple[str, int, datetime | None]]:
        """Non-closed or failing circuits, re-read at most every cache_seconds."""
        with self._lock:
            if time.monotonic() < self._view_until:
                return self._view
        with self.sessions() as session:
            rows = session.execute(select(Circuit).where((Circuit.state != "closed") | (Circuit.failures > 0)))
            view = {c.backend_id: (c.state, c.failures, aware(c.opened_until)) for c in rows.scalars()}
        with self._lock:
            self._view, self._view_until = view, time.monotonic() + self.policy.cache_seconds
        return view

    def allow(self, backend_id: int) -> bool:
        """Closed: yes. Open and cooling down: no. Cooled down: one caller wins the half-open trial, on a lease
        of one cool-down, so a trial whose worker died never blocks the backend for ever."""
        state = self._states().get(backend_id)
        if state is None or state[0] == "closed":
            return True
        now = datetime.now(UTC)
        if state[2] is not None and state[2] > now:
            return False
        with self.sessions() as session:
            claimed = session.execute(
                update(Circuit).where(Circuit.backend_id == backend_id, Circuit.state != "closed",
                                      Circuit.opened_until <= now)
                .values(state="half-open", opened_until=now + self.policy.cooldown)
            ).rowcount
            session.commit()
        self._forget()
        return bool(claimed)

    def success(self, backend_id: int) -> None:
        """Reset the count: consecutive failures only. Nothing is written while this worker's view (at most
        cache_seconds old) shows the circuit closed and unfailed — the usual case, and no write transaction per
        backend call; a failure another worker counted within that second is reset by the next success."""
        if backend_id not in self._states():
            return
        with self.sessions() as session:
            changed = session.execute(
                update(Circuit).where(Circuit.backend_id == backend_id,
                                      (Circuit.state != "closed") | (Circuit.failures > 0))
                .values(state="closed", failures=0, opened_until=None, last_error=None)).rowcount
            session.commit()
        if changed:
            self._forget()

    def failure(self, backend_id: int, error: str) -> None:
        now = datetime.now(UTC)
        with self.sessions() as session:
            circuit = session.get(Circuit, backend_id, with_for_update=True)
            if circuit is None:
                circuit = Circuit(backend_id=backend_id, state="closed", failures=0)
                session.add(circuit)
            circuit.failures += 1
            circuit.last_error = error[:500]
            if circuit.state == "half-open" or circuit.failures >= self.policy.threshold:
                circuit.state, circuit.opened_until = "open", now + self.policy.cooldown
            try:
                session.commit()
            except IntegrityError:  # another worker created the row first; its count stands
                session.rollback()
        self._forget()

    def _forget(self) -> None:
        with self._lock:
            self._view_until = 0.0

    def open_circuits(self) -> list[OpenCircuit]:
        with self.sessions() as session:
            rows = session.execute(select(Circuit, Backend).join(Backend, Backend.id == Circuit.backend_id)
                                   .where(Circuit.state != "closed")).all()
        return [OpenCircuit(b.service, b.name, c.state, aware(c.opened_until), c.failures, c.last_error)
                for c, b in rows]

