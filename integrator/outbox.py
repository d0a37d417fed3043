"""Store and forward: what must reach a backend is stored in the same transaction as the decision that needs it,
then delivered at least once by whichever worker holds its lease; receivers are idempotent per reference, so
at least once becomes exactly once for them.

A worker that dies while delivering keeps its lease until it runs out; then any worker's forwarder takes the
entry over. A backend that is down is tried again with an exponential back-off."""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from lxml import etree
from sqlalchemy import DateTime, Integer, String, Text, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from integrator.faults import BackendFault, BackendNotRegistered, CircuitOpen, KruispuntFault
from integrator.xmlparse import safe_parser
from repository.base import Base, aware
from repository.queries import BackendView


class Exchanger(Protocol):
    """What the forwarder needs of the dispatcher (integrator/dispatch.py): a service's backends, and one exchange
    with one of them. Named here, so the outbox does not import the dispatcher (whose metrics read the outbox)."""

    def backends(self, service: str) -> list[BackendView]: ...

    def exchange(self, backend: BackendView, payload: etree._Element, soap_action: str = "") -> etree._Element: ...

log = logging.getLogger("kruispunt.outbox")

PENDING, DELIVERED, REFUSED = "PENDING", "DELIVERED", "REFUSED"
MAX_BACKOFF = timedelta(minutes=5)
ROUND = 50  # entries a background round takes on at most


class OutboxEntry(Base):
    """One payload owed to one backend of a service."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # what the domain calls it: application, nr-update
    service: Mapped[str] = mapped_column(String(100))  # whose backends: e.g. Applications/v1
    backend: Mapped[str] = mapped_column(String(100))  # which of them, by name
    soap_action: Mapped[str] = mapped_column(String(200), default="")
    payload: Mapped[str] = mapped_column(Text)  # the request element, signed afresh at every attempt
    ticket: Mapped[str] = mapped_column(String(48), index=True)  # the transaction that stored it
    state: Mapped[str] = mapped_column(String(12), default=PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)  # host:pid of the deliverer
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)  # the backend's verified answer element
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass(frozen=True)
class Delivery:
    """Where an entry stands: PENDING (with the last error), DELIVERED (with the answer) or REFUSED."""

    id: int
    state: str
    attempts: int
    answer: etree._Element | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    tried: bool = False  # this call sent it (False: not due, leased by another deliverer, or already finished)


def enqueue(session: Session, *, kind: str, service: str, backend: str, payload: etree._Element, ticket: str,
            now: datetime, soap_action: str = "") -> OutboxEntry:
    """Add an entry in the caller's transaction (flushed, so it has its id; the caller commits)."""
    entry = OutboxEntry(kind=kind, service=service, backend=backend, soap_action=soap_action,
                        payload=etree.tostring(payload).decode(), ticket=ticket, state=PENDING, attempts=0,
                        next_attempt_at=now, created_at=now)
    session.add(entry)
    session.flush()
    return entry


def delivery(entry: OutboxEntry, tried: bool = False) -> Delivery:
    answer = etree.fromstring(entry.answer.encode(), parser=safe_parser()) if entry.answer else None
    return Delivery(entry.id, entry.state, entry.attempts, answer, entry.last_error, aware(entry.delivered_at),
                    tried)

CIRCUIT_WAIT = timedelta(seconds=2)  # an entry whose backend's circuit is open is looked at again this soon


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=2 ** min(attempts, 16)), MAX_BACKOFF)


class Forwarder:
    """Delivers outbox entries for one worker: at once when asked, and from a background thread."""

    def __init__(self, sessions: sessionmaker[Session], dispatcher: Exchanger, lease: timedelta,
                 interval_seconds: float) -> None:
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.lease = lease
        self.interval = interval_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background forwarder (after the fork: each worker has its own)."""
        if self.interval <= 0 or self._thread is not None:
            return
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._thread = threading.Thread(target=self._run, name="outbox-forwarder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            try:
                busy = self.deliver_due(limit=ROUND) == ROUND  # a full round: more may be due, go on at once
            except Exception:  # the forwarder must outlive a database hiccup; the next round tries again
                log.exception("outbox round failed")
                busy = False
            wait = 0.0 if busy else self.interval

    def deliver_due(self, limit: int = ROUND) -> list[Delivery]:
        """Deliver the entries that are due and not leased by a live deliverer, oldest first. A backend that
        fails is tried once per round: its other entries wait for the next round, not for their own back-off."""
        now = datetime.now(UTC)
        with self.sessions() as session:
            due = session.execute(
                select(OutboxEntry.id, OutboxEntry.service, OutboxEntry.backend)
                .where(OutboxEntry.state == PENDING, OutboxEntry.next_attempt_at <= now,
                       or_(OutboxEntry.lease_until.is_(None), OutboxEntry.lease_until < now))
                .order_by(OutboxEntry.id).limit(limit)
            ).all()
        done, failing = [], set()
        for entry_id, service, backend in due:
            if (service, backend) in failing:
                continue
            outcome = self.deliver(entry_id, only_if_due=True)
            if outcome.tried and outcome.state == PENDING:
                failing.add((service, backend))
            done.append(outcome)
        return done

    def deliver(self, entry_id: int, *, only_if_due: bool = False) -> Delivery:
        """Try to deliver one entry now, if nobody else holds its lease (and, for the background rounds, if it is
        due: another worker may just have tried it); answer where it stands."""
        now = datetime.now(UTC)
        conditions = [OutboxEntry.id == entry_id, OutboxEntry.state == PENDING,
                      or_(OutboxEntry.lease_until.is_(None), OutboxEntry.lease_until < now)]
        if only_if_due:
            conditions.append(OutboxEntry.next_attempt_at <= now)
        with self.sessions() as session:
            claimed = session.execute(
                update(OutboxEntry).where(*conditions)
                .values(lease_owner=self.owner, lease_until=now + self.lease, attempts=OutboxEntry.attempts + 1)
            ).rowcount
            session.commit()
            entry = session.get_one(OutboxEntry, entry_id)
            if not claimed:
                return delivery(entry)
            target = next((b for b in self.dispatcher.backends(entry.service) if b.name == entry.backend), None)
            payload = etree.fromstring(entry.payload.encode(), parser=safe_parser())
            service, backend, action = entry.service, entry.backend, entry.soap_action
        try:
            if target is None:
                raise BackendNotRegistered(f"Backend {backend} of {service} is not registered (any more).")
            answer = self.dispatcher.exchange(target, payload, action)
        except BackendFault as refused:  # the backend answered and refused: trying again will not help
            return self._finish(entry_id, REFUSED, error=f"{refused.code}: {refused.reason}")
        except CircuitOpen as waiting:  # nothing was sent: not an attempt, and no back-off beyond the next round
            return self._finish(entry_id, PENDING, error=f"{waiting.code}: {waiting.reason}", sent=False)
        except KruispuntFault as fault:
            log.warning("outbox entry %s to %s not delivered: %s", entry_id, backend, fault.reason)
            return self._finish(entry_id, PENDING, error=f"{fault.code}: {fault.reason}")
        return self._finish(entry_id, DELIVERED, answer=answer)

    def _finish(self, entry_id: int, state: str, *, answer: etree._Element | None = None,
                error: str | None = None, sent: bool = True) -> Delivery:
        now = datetime.now(UTC)
        with self.sessions() as session:
            entry = session.get_one(OutboxEntry, entry_id)
            if entry.state == PENDING:  # a deliverer that took over after our lease ran out may have finished
                entry.state = state
                entry.lease_owner, entry.lease_until = None, None
                if state == PENDING:
                    if not sent:
                        entry.attempts -= 1
                    entry.next_attempt_at = now + (backoff(entry.attempts) if sent else CIRCUIT_WAIT)
                    entry.last_error = error
                elif state == DELIVERED:
                    entry.answer = etree.tostring(answer).decode() if answer is not None else None
                    entry.delivered_at = now
                    entry.last_error = None
                    if entry.attempts > 1:  # the backend is back: what waits for it need not wait out back-off
                        session.execute(
                            update(OutboxEntry)
                            .where(OutboxEntry.state == PENDING, OutboxEntry.service == entry.service,
                                   OutboxEntry.backend == entry.backend, OutboxEntry.next_attempt_at > now)
                            .values(next_attempt_at=now))
                else:
                    entry.last_error = error
                session.commit()
            return delivery(entry, tried=True)


def state_of(session: Session, entry_id: int) -> Delivery:
    return delivery(session.get_one(OutboxEntry, entry_id))

