"""Stage: a message seen before (same message id or same signature) inside the freshness window is refused.

The memory is a table, so every gunicorn worker on every host behind the load balancer shares it. A request only
inserts its keys (one statement, by primary key); keys whose window has passed are deleted elsewhere, in bounded
batches, by the workers' maintenance threads (integrator/maintenance.py) or `kruispunt maintenance prune`, so the
table holds about one window's worth of keys and no request pays for a large delete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, Insert, String, bindparam, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from integrator.faults import Replay
from repository.base import Base
from repository.prepared import Prepared

PRUNE_BATCH = 5000  # keys one prune statement deletes at most: a short transaction, a bounded lock footprint


class SeenMessage(Base):
    __tablename__ = "seen_messages"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # the prune's index


def remember(session: Session, keys: list[str], expires_at: datetime, now: datetime) -> None:
    """Record the keys, committing at once; raise Replay if any was already there inside its window.

    The usual case is one prebuilt INSERT (repository/prepared.py). Only when a key is already stored does the
    slower road run: a key whose window has passed but that no prune has deleted yet is taken over (its expiry
    renewed, one upsert statement on PostgreSQL and SQLite), so refusals do not depend on when the last prune ran."""
    unique = list(dict.fromkeys(keys))
    rows = [{"key": k, "expires_at": expires_at} for k in unique]
    try:
        bound = {"expires_at": expires_at, **{f"key{i}": k for i, k in enumerate(unique)}}
        _insert(len(unique)).execute(session, bound, autocommit_if_idle=True)
        session.commit()
        return
    except IntegrityError:
        session.rollback()
    statement = _upsert(session, rows, now)  # None on other databases: any stored key is a replay there
    if statement is not None:
        try:
            if len(session.execute(statement).all()) == len(rows):  # every stored key had expired: taken over
                session.commit()
                return
        except IntegrityError:
            pass
    session.rollback()  # a key is still inside its window: keep none of this message's keys
    raise Replay(
        "This message was already received (same message id or same signature); "
        "send a new message id and a fresh signature."
    )


_INSERTS: dict[int, Prepared] = {}


def _insert(count: int) -> Prepared:
    """One INSERT of `count` keys with one expiry, compiled once: a request only binds its keys."""
    prepared = _INSERTS.get(count)
    if prepared is None:
        rows = [{"key": bindparam(f"key{i}"), "expires_at": bindparam("expires_at")} for i in range(count)]
        prepared = _INSERTS[count] = Prepared(insert(SeenMessage.__table__).values(rows))
    return prepared


def _upsert(session: Session, rows: list[dict[str, object]], now: datetime) -> Insert | None:
    """INSERT … ON CONFLICT (key) DO UPDATE … WHERE the stored key has expired: a live key is neither inserted
    nor updated, so the keys it returns tell a replay. None on other databases: a stored key is a replay there."""
    dialect = session.get_bind().dialect.name
    module = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect)
    if module is None:
        return None
    statement = module.insert(SeenMessage).values(rows)
    return statement.on_conflict_do_update(index_elements=[SeenMessage.key],
                                           set_={"expires_at": statement.excluded.expires_at},
                                           where=SeenMessage.expires_at < now).returning(SeenMessage.key)


def prune_batch(session: Session, now: datetime, batch: int = PRUNE_BATCH) -> int:
    """Delete at most `batch` keys whose window had passed at `now`, oldest first (index on expires_at), and
    commit; the number deleted. On PostgreSQL keys another pruner is deleting are skipped, not waited for."""
    expired = select(SeenMessage.key).where(SeenMessage.expires_at < now).order_by(SeenMessage.expires_at)
    expired = expired.limit(batch)
    if session.get_bind().dialect.name == "postgresql":
        expired = expired.with_for_update(skip_locked=True)
    deleted = session.execute(delete(SeenMessage).where(SeenMessage.key.in_(expired.scalar_subquery())))
    session.commit()
    return int(deleted.rowcount or 0)


@dataclass(frozen=True)
class Pruned:
    """What one prune did: keys deleted, statements (batches) run, whether expired keys may remain (the batch
    limit was reached), and how long it took."""

    deleted: int
    batches: int
    more: bool
    seconds: float
    longest_batch_seconds: float


def prune(sessions: sessionmaker[Session], now: datetime | None = None, *, batch: int = PRUNE_BATCH,
          max_batches: int | None = None, rest: float = 0.0) -> Pruned:
    """Delete the keys whose window had passed at `now` (default: the current time), `batch` at a time, each batch
    its own short transaction, until a batch comes back short or `max_batches` have run. Between batches, rest
    `rest` times as long as the last batch took (1.0: the pruner keeps its database connection busy at most half
    the time, and yields more when the database is loaded, as batches then take longer)."""
    now = now or datetime.now(UTC)
    began = time.perf_counter()
    deleted = batches = 0
    longest = 0.0
    more = True
    took = 0.0
    while more and (max_batches is None or batches < max_batches):
        if batches and rest > 0:
            time.sleep(took * rest)
        started = time.perf_counter()
        with sessions() as session:
            n = prune_batch(session, now, batch)
        took = time.perf_counter() - started
        longest = max(longest, took)
        deleted += n
        batches += 1
        more = n >= batch
    return Pruned(deleted, batches, more, time.perf_counter() - began, longest)
