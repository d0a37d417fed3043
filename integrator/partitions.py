"""The audit table's monthly partitions on PostgreSQL: made ahead of time, retired after the retention period.

Migration 0009 partitions audit_records by range of received_at, one partition per calendar month (UTC) named
audit_records_pYYYYMM, plus audit_records_default for anything outside them. The maintenance step
(integrator/maintenance.py, `kruispunt maintenance partitions`) keeps the coming months made, so the default
partition stays empty; a month whose rows did land in the default partition is made by moving them out first.
Retention detaches (or drops) whole months, never the default partition, and is off unless configured.

On SQLite audit_records is a plain table and every function here does nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

PARENT = "audit_records"
DEFAULT = f"{PARENT}_default"
MONTHLY = re.compile(rf"^{PARENT}_p(\d{{4}})(\d{{2}})$")
LOCK_KEY = 0x6B70_0009  # pg advisory lock: one maintainer at a time makes or retires partitions
LOCK_TIMEOUT = "5s"  # DDL on the parent waits at most this long for the request path's inserts, then gives up


def month_start(moment: datetime, months: int = 0) -> datetime:
    """The first instant (UTC) of the month `months` after the one `moment` falls in."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    index = moment.year * 12 + moment.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"{PARENT}_p{month:%Y%m}"


@dataclass(frozen=True)
class Partition:
    """An attached partition: its month range (None, None for the default), estimated rows and bytes."""

    name: str
    start: datetime | None
    end: datetime | None
    rows: int
    bytes: int


def is_partitioned(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return False
    return bool(session.execute(text(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = :parent AND c.relnamespace = current_schema()::regnamespace"), {"parent": PARENT}
    ).first())


def partitions(session: Session) -> list[Partition]:
    """The attached partitions, oldest month first, the default last (empty on SQLite)."""
    if not is_partitioned(session):
        return []
    rows = session.execute(text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), greatest(c.reltuples, 0)::bigint, "
        "pg_total_relation_size(c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST(:parent AS regclass)"), {"parent": PARENT}).all()
    found = []
    for name, bound, estimate, size in rows:
        start, end = _bounds(bound)
        found.append(Partition(name, start, end, int(estimate), int(size)))
    return sorted(found, key=lambda p: (p.start is None, p.start or datetime.min.replace(tzinfo=UTC)))


def _bounds(bound: str) -> tuple[datetime | None, datetime | None]:
    match = re.search(r"FROM \('([^']+)'\) TO \('([^']+)'\)", bound)
    if match is None:  # DEFAULT
        return None, None
    return (datetime.fromisoformat(match[1]).astimezone(UTC), datetime.fromisoformat(match[2]).astimezone(UTC))


def ensure_months(session: Session, first: datetime, last: datetime) -> list[str]:
    """Make the monthly partitions from first's month to last's month (inclusive) that do not exist yet, and
    commit; the names made. Rows of such a month already in the default partition are moved into it."""
    if not is_partitioned(session) or not _locked(session):
        session.rollback()
        return []
    existing = {p.start for p in partitions(session)}
    made = []
    month, until = month_start(first), month_start(last)
    while month <= until:
        if month not in existing:
            _make_month(session, month)
            made.append(partition_name(month))
        month = month_start(month, 1)
    session.commit()
    return made


def ensure_ahead(session: Session, now: datetime, ahead: int) -> list[str]:
    """The current month and the `ahead` months after it (what the maintenance step keeps made)."""
    return ensure_months(session, now, month_start(now, ahead))


def _make_month(session: Session, month: datetime) -> None:
    name, start, end = partition_name(month), _literal(month), _literal(month_start(month, 1))
    in_range = "received_at >= CAST(:start AS timestamptz) AND received_at < CAST(:end AS timestamptz)"
    params = {"start": month.isoformat(), "end": month_start(month, 1).isoformat()}
    stray = session.execute(text(f"SELECT 1 FROM {DEFAULT} WHERE {in_range} LIMIT 1"), params).first()
    if stray is None:
        session.execute(text(f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM ({start}) TO ({end})"))
        return
    # The month's rows are in the default partition: a new partition may not overlap them, so move them out.
    session.execute(text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
    session.execute(text(f"ALTER TABLE {name} ADD CONSTRAINT {name}_month "
                         f"CHECK (received_at >= {start} AND received_at < {end})"))
    session.execute(text(f"WITH moved AS (DELETE FROM {DEFAULT} WHERE {in_range} RETURNING *) "
                         f"INSERT INTO {name} SELECT * FROM moved"), params)
    session.execute(text(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({end})"))
    session.execute(text(f"ALTER TABLE {name} DROP CONSTRAINT {name}_month"))


def retire(session: Session, now: datetime, keep_months: int, *, drop: bool = False) -> list[str]:
    """Detach (drop, with drop=True) every monthly partition that ended before the first of the month
    `keep_months` before now's, and commit; the names retired. A detached partition stays as a table of its own
    (audit_records_pYYYYMM) for archiving. keep_months < 1 retires nothing."""
    if keep_months < 1 or not is_partitioned(session) or not _locked(session):
        session.rollback()
        return []
    cutoff = month_start(now, -keep_months)
    retired = []
    for p in partitions(session):
        if p.end is not None and p.end <= cutoff and MONTHLY.match(p.name):
            session.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {p.name}"))
            if drop:
                session.execute(text(f"DROP TABLE {p.name}"))
            retired.append(p.name)
    session.commit()
    return retired


def detached(session: Session) -> list[str]:
    """Monthly tables retention detached and nobody dropped yet."""
    if not is_partitioned(session):
        return []
    names = session.execute(text(
        "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE :pattern "
        "AND c.relnamespace = current_schema()::regnamespace AND NOT c.relispartition ORDER BY c.relname"),
        {"pattern": f"{PARENT}\\_p%"}).scalars().all()
    return [n for n in names if MONTHLY.match(n)]


def _locked(session: Session) -> bool:
    """Take this transaction's maintenance lock (False if another maintainer holds it) and bound lock waits."""
    if not session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}).scalar():
        return False
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    return True


def _literal(moment: datetime) -> str:
    """A timestamptz literal for partition bounds (DDL takes no parameters); only ever made from a datetime."""
    return f"'{moment.astimezone(UTC).isoformat()}'"
