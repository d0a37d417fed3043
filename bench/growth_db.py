"""The PostgreSQL side of bench/growth.py: the two databases, the full one filled in SQL and cached between runs,
table sizes, the prune's expired keys, and the measurements of what partitioning the audit table changed.

The full database holds `audit_rows` audit records spread evenly over the `months` months before it was built (the
integrator's own migration made their partitions) and `replay_rows` live replay keys. Both look like what the
request path writes: tickets `KP-<date>-<32 hex>`, keys `sig:<64 hex>` and `mid:<32 hex>:<uuid>` interleaved in
the primary key's order, a few hundred organisations, a million persons. The filler keys expire a century after the
build, so they stay live and are told apart from the bench's own traffic (which a later run deletes again, with
the audit records received after the build).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

META = "growth_fill"  # one row in the full database: what was filled, when, at which schema revision
PLAIN = "growth_plain_audit"  # the same audit records in a plain table, as before migration 0009
CHUNK = 250_000  # audit rows per INSERT … SELECT

AUDIT_FILL = """
INSERT INTO audit_records (ticket, received_at, answered_at, organisation, certificate, official, purpose,
    message_id, service, operation, person, outcome, fault_code, detail, request_digest, response_digest)
SELECT 'KP-' || to_char(t, 'YYYYMMDD') || '-' || h, t, t + interval '38 milliseconds', o,
       md5('c' || o) || md5('d' || o), lpad(((i * 7919) %% 99991)::text, 11, '7'), 'MUNICIPAL_TAX_EXEMPTION',
       substr(m, 1, 8) || '-' || substr(m, 9, 4) || '-4' || substr(m, 14, 3) || '-a' || substr(m, 18, 3) || '-'
           || substr(m, 21, 12),
       CASE WHEN i %% 3 = 0 THEN 'TaxExemptionStatus/v1' ELSE 'StatusSource/v1' END,
       CASE WHEN i %% 3 = 0 THEN 'GetTaxExemptionStatuses' ELSE 'get_statuses' END,
       lpad(((i * 2654435761) %% 1000003)::text, 11, '0'),
       CASE WHEN i %% 50 = 0 THEN 'FAULT' WHEN i %% 97 = 0 THEN 'PARTIAL' ELSE 'OK' END,
       CASE WHEN i %% 50 = 0 THEN 'Client.Caller.GrantMissing' END,
       CASE WHEN i %% 50 = 0 THEN 'Official has no active grant for this service and purpose' END,
       md5(h || 'q') || md5(h || 'r'), md5(h || 's') || md5(h || 't')
FROM (SELECT i, md5(i::text || 'kp') AS h, md5(i::text || 'mid') AS m,
             '0' || (200000000 + (i * 31) %% 600)::text AS o,
             to_timestamp(%(start)s::float8 + %(span)s::float8 * i / %(n)s::float8) AS t
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i) AS g
"""

KEYS_FILL = """
INSERT INTO seen_messages (key, expires_at)
SELECT CASE WHEN i %% 2 = 0 THEN 'sig:' || md5(i::text || %(seed)s) || md5(i::text || %(seed)s || 'x')
            ELSE 'mid:' || md5('c0' || (200000000 + (i * 31) %% 600)::text) || ':'
                 || md5(i::text || %(seed)s || 'y')::uuid::text END,
       %(expires)s::timestamptz + i * %(step)s::interval
FROM generate_series(1::bigint, %(n)s::bigint) AS i
"""

PLAIN_COPY = [
    f"DROP TABLE IF EXISTS {PLAIN}",
    f"CREATE TABLE {PLAIN} (LIKE audit_records INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
    f"INSERT INTO {PLAIN} SELECT * FROM audit_records WHERE received_at <= %(built)s",
    f"ALTER TABLE {PLAIN} ADD CONSTRAINT pk_{PLAIN} PRIMARY KEY (ticket)",  # as migration 0001 made it
    f"CREATE INDEX ix_{PLAIN}_organisation ON {PLAIN} (organisation)",
    f"CREATE INDEX ix_{PLAIN}_person ON {PLAIN} (person)",
    f"VACUUM ANALYZE {PLAIN}",
]

INSERT_ONE = """INSERT INTO {table} (ticket, received_at, answered_at, organisation, certificate, official, purpose,
    message_id, service, operation, person, outcome, request_digest, response_digest)
VALUES (%s, now(), now(), '0207123407', %s, '75041214531', 'MUNICIPAL_TAX_EXEMPTION', %s, 'StatusSource/v1',
        'get_statuses', '48021420212', 'OK', %s, %s)"""


class Server:
    """A PostgreSQL server the bench creates its databases on; `url` names any database on it to connect to."""

    def __init__(self, url: str) -> None:
        self.base = make_url(url)
        if self.base.get_backend_name() != "postgresql":
            raise ValueError(f"bench/growth.py runs on PostgreSQL; {url} is not a PostgreSQL URL")

    def url(self, database: str) -> str:
        """The SQLAlchemy URL the integrator and the product code get."""
        return self.base.set(drivername="postgresql", database=database).render_as_string(hide_password=False)

    def connect(self, database: str | None = None) -> psycopg.Connection:
        return psycopg.connect(self.url(database or self.base.database or "postgres"), autocommit=True)

    def exists(self, database: str) -> bool:
        with self.connect() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None

    def create(self, database: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')

    def retrying(self, work: Callable[[], None], say: Callable[[str], None], attempts: int = 20) -> None:
        """work() again while the server is restarted under it (this machine is shared: other benches restart
        PostgreSQL on purpose); one statement per attempt, so a broken attempt left nothing behind."""
        for attempt in range(attempts):
            try:
                work()
                return
            except psycopg.OperationalError as exc:
                if attempt == attempts - 1:
                    raise
                say(f"  the server went away ({str(exc).strip()[:80]}); again in 5 s")
                time.sleep(5)

    def drop(self, database: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@dataclass(frozen=True)
class Fill:
    """What the full database holds (its META row)."""

    built_at: datetime
    filler_from: datetime  # filler keys expire from here on; the bench's own keys expire before it
    audit_rows: int
    replay_rows: int
    months: int
    revision: str
    build_seconds: float
    plain_seconds: float | None = None  # the plain copy's build time, once made

    def matches(self, audit_rows: int, replay_rows: int, months: int, revision: str) -> bool:
        return (self.audit_rows, self.replay_rows, self.months, self.revision) == (audit_rows, replay_rows, months,
                                                                                  revision)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from integrator.commands import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def cached(server: Server, database: str) -> tuple[Fill | None, str]:
    """The full database's Fill if it exists, is at the schema's head and holds exactly what it says (counted);
    else None and why not."""
    if not server.exists(database):
        return None, f"no database {database} yet"
    with server.connect(database) as conn:
        if conn.execute("SELECT to_regclass(%s)", (META,)).fetchone() == (None,):
            return None, f"{database} has no {META} table (an interrupted build?)"
        row = conn.execute(f"SELECT built_at, filler_from, audit_rows, replay_rows, months, revision, build_seconds, "
                           f"plain_seconds FROM {META}").fetchone()
        if row is None:
            return None, f"{META} is empty"
        fill = Fill(*row)
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        if version is None or version[0] != head_revision() or fill.revision != head_revision():
            return None, f"schema at {version and version[0]}, filled at {fill.revision}, head is {head_revision()}"
        audit = conn.execute("SELECT count(*) FROM audit_records WHERE received_at <= %s", (fill.built_at,)).fetchone()
        keys = conn.execute("SELECT count(*) FROM seen_messages WHERE expires_at >= %s", (fill.filler_from,)).fetchone()
        if (audit and audit[0], keys and keys[0]) != (fill.audit_rows, fill.replay_rows):
            return None, f"counted {audit} audit records and {keys} filler keys, {META} says {fill}"
    return fill, "cached"


def build(server: Server, database: str, url_upgrade: Callable[[str], None], *, audit_rows: int, replay_rows: int,
          months: int, workers: int, say: Callable[[str], None]) -> Fill:
    """Create the database, migrate it to head (the integrator's own partitions), fill it in SQL, VACUUM ANALYZE."""
    began = time.perf_counter()
    server.create(database)
    url_upgrade(server.url(database))
    built = datetime.now(UTC).replace(microsecond=0)
    first = built - timedelta(days=round(months * 365.25 / 12))
    from integrator.database import make_engine, session_factory
    from integrator.partitions import ensure_months

    engine = make_engine(server.url(database))
    with session_factory(engine)() as session:  # the months of the filler, as a running integrator made them
        made = ensure_months(session, first, built)
    engine.dispose()
    say(f"made {len(made)} monthly partitions for the filler ({first:%Y-%m} .. {built:%Y-%m})")
    span = (built - first).total_seconds()
    chunks = [(lo, min(lo + CHUNK - 1, audit_rows)) for lo in range(1, audit_rows + 1, CHUNK)]
    done = [0]

    def fill(chunk: tuple[int, int]) -> None:
        def insert() -> None:
            with server.connect(database) as conn:
                conn.execute("SET TimeZone = 'UTC'")
                conn.execute(AUDIT_FILL, {"lo": chunk[0], "hi": chunk[1], "n": audit_rows, "span": span,
                                          "start": first.timestamp()})

        server.retrying(insert, say)
        done[0] += chunk[1] - chunk[0] + 1
        say(f"  audit records {done[0]:,} / {audit_rows:,} ({time.perf_counter() - began:.0f} s)")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fill, chunks))
    filler_from = built + timedelta(days=36525)
    with server.connect(database) as conn:
        conn.execute(KEYS_FILL, {"seed": "fill", "n": replay_rows, "expires": filler_from, "step": "1 microsecond"})
        say(f"  replay keys {replay_rows:,} ({time.perf_counter() - began:.0f} s); VACUUM ANALYZE")
        conn.execute("VACUUM ANALYZE audit_records")
        conn.execute("VACUUM ANALYZE seen_messages")
        fill_row = Fill(built, filler_from, audit_rows, replay_rows, months, head_revision(),
                        time.perf_counter() - began)
        conn.execute(f"CREATE TABLE {META} (built_at timestamptz, filler_from timestamptz, audit_rows bigint, "
                     "replay_rows bigint, months int, revision text, build_seconds float8, plain_seconds float8)")
        conn.execute(f"INSERT INTO {META} VALUES (%(built_at)s, %(filler_from)s, %(audit_rows)s, %(replay_rows)s, "
                     "%(months)s, %(revision)s, %(build_seconds)s, %(plain_seconds)s)", asdict(fill_row))
    return fill_row


def forget_traffic(server: Server, database: str, fill: Fill) -> dict[str, int]:
    """Delete what earlier runs' requests left in the full database: audit records received after the build, keys
    that are not filler; the replay table is rewritten compactly, as the fill left it."""
    from integrator.partitions import month_start

    with server.connect(database) as conn:
        audit = conn.execute("DELETE FROM audit_records WHERE received_at > %s", (fill.built_at,)).rowcount
        keys = conn.execute("DELETE FROM seen_messages WHERE expires_at < %s", (fill.filler_from,)).rowcount
        conn.execute("VACUUM FULL ANALYZE seen_messages")  # as filled: each run's prune churn compacted away
        touched = conn.execute(  # the partitions of the build's month and after: where the traffic went
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
            "'audit_records'::regclass AND (c.relname = 'audit_records_default' OR c.relname >= %s)",
            (f"audit_records_p{month_start(fill.built_at):%Y%m}",)).fetchall()
        for (name,) in touched if audit else []:
            conn.execute(f"VACUUM ANALYZE {name}")
    return {"audit_records": audit, "replay_keys": keys}


def prewarm(server: Server, database: str) -> dict[str, int]:
    """Read what a running integrator keeps hot into the OS cache (pg_prewarm 'read'): the replay table and its
    indexes, the current month's audit partition and its indexes. Blocks read per relation; {} without pg_prewarm."""
    from integrator.partitions import month_start, partition_name

    current = partition_name(month_start(datetime.now(UTC)))
    with server.connect(database) as conn:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_prewarm'").fetchone() is None:
            return {}
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        names = conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relname IN ('seen_messages', %s) UNION "
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON "
            "t.oid = x.indrelid WHERE t.relname IN ('seen_messages', %s)", (current, current)).fetchall()
        return {name: conn.execute("SELECT pg_prewarm(%s::regclass, 'read')", (name,)).fetchone()[0]  # type: ignore[index]
                for (name,) in names}


def add_expired(server: Server, database: str, count: int) -> float:
    """count keys whose window passed during the last ten minutes (as a window's worth left behind); seconds."""
    began = time.perf_counter()
    with server.connect(database) as conn:
        conn.execute(KEYS_FILL, {"seed": uuid.uuid4().hex, "n": count,
                                 "expires": datetime.now(UTC) - timedelta(minutes=10),
                                 "step": f"{600_000_000 // max(1, count)} microseconds"})
        conn.execute("ANALYZE seen_messages")
    return time.perf_counter() - began


def counts(server: Server, database: str) -> dict[str, Any]:
    """Rows (counted) and bytes (with indexes and TOAST) of the audit table and the replay table."""
    with server.connect(database) as conn:
        now = datetime.now(UTC)
        parts = conn.execute("SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_inherits i "
                             "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_records'::regclass"
                             ).fetchall()
        return {
            "audit_rows": conn.execute("SELECT count(*) FROM audit_records").fetchone()[0],  # type: ignore[index]
            "audit_bytes": sum(size for _, size in parts),
            "audit_partitions": len(parts),
            "audit_largest_partition_bytes": max((size for _, size in parts), default=0),
            "replay_rows": conn.execute("SELECT count(*) FROM seen_messages").fetchone()[0],  # type: ignore[index]
            "replay_live": conn.execute("SELECT count(*) FROM seen_messages WHERE expires_at >= %s",
                                        (now,)).fetchone()[0],  # type: ignore[index]
            "replay_bytes": conn.execute("SELECT pg_total_relation_size('seen_messages')").fetchone()[0],  # type: ignore[index]
            "database_bytes": conn.execute("SELECT pg_database_size(current_database())").fetchone()[0],  # type: ignore[index]
        }


# --- what partitioning changed ----------------------------------------------------------------------------------
def plain_copy(server: Server, database: str, fill: Fill, say: Callable[[str], None]) -> float:
    """The filler's audit records in a plain table keyed by ticket (the schema before 0009), made once: seconds."""
    if fill.plain_seconds is not None:
        with server.connect(database) as conn:
            if conn.execute("SELECT to_regclass(%s)", (PLAIN,)).fetchone() != (None,):
                return fill.plain_seconds
    say(f"copying the {fill.audit_rows:,} audit records into a plain table {PLAIN} (made once, then cached)")
    began = time.perf_counter()
    with server.connect(database) as conn:
        for statement in PLAIN_COPY:
            conn.execute(statement, {"built": fill.built_at} if "%(built)s" in statement else None)
        seconds = time.perf_counter() - began
        conn.execute(f"UPDATE {META} SET plain_seconds = %s", (seconds,))
    return seconds


def remove_oldest_month(server: Server, database: str) -> dict[str, Any]:
    """Retiring the oldest month both ways, each in a transaction rolled back afterwards: DETACH + DROP of its
    partition, against DELETE of the same rows from the plain table."""
    from integrator.partitions import month_start, partition_name

    with server.connect(database) as conn:
        oldest = conn.execute("SELECT min(received_at) FROM audit_records").fetchone()[0]  # type: ignore[index]
    start, end = month_start(oldest), month_start(oldest, 1)
    name = partition_name(start)
    out: dict[str, Any] = {"month": f"{start:%Y-%m}", "partition": name}
    with server.connect(database) as conn:
        out["rows"] = conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # type: ignore[index]
        with conn.transaction() as undone:
            began = time.perf_counter()
            conn.execute(f"ALTER TABLE audit_records DETACH PARTITION {name}")
            conn.execute(f"DROP TABLE {name}")
            out["partitioned_seconds"] = time.perf_counter() - began
            raise psycopg.Rollback(undone)
        with conn.transaction() as undone:
            began = time.perf_counter()
            deleted = conn.execute(f"DELETE FROM {PLAIN} WHERE received_at >= %s AND received_at < %s", (start, end))
            out["plain_seconds"] = time.perf_counter() - began
            out["plain_deleted"] = deleted.rowcount
            raise psycopg.Rollback(undone)
        conn.execute(f"VACUUM {PLAIN}")  # the rolled-back delete's marks cleaned, for the next run's DELETE
    return out


def insert_rates(server: Server, targets: list[tuple[str, str, str]], rows: int, rounds: int) -> dict[str, Any]:
    """Request-like audit writes (one row, one commit) into each (label, database, table): one unmeasured round
    each, then alternating measured rounds; rows per second of each, per round, pooled and the median round. The
    rows are deleted afterwards."""
    conns = {label: server.connect(database) for label, database, _ in targets}
    per_round: dict[str, list[float]] = {label: [] for label, _, _ in targets}
    written: dict[str, list[str]] = {label: [] for label, _, _ in targets}
    try:
        for r in range(rounds + 1):
            order = targets if r % 2 == 0 else list(reversed(targets))
            for label, _, table in order:
                conn, statement = conns[label], INSERT_ONE.format(table=table)
                tickets = [f"KP-{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex}" for _ in range(rows)]
                began = time.perf_counter()
                for ticket in tickets:
                    h = uuid.uuid4().hex
                    conn.execute(statement, (ticket, h * 2, str(uuid.uuid4()), h * 2, h * 2), prepare=True)
                took = time.perf_counter() - began
                if r:  # round 0 warms the connection, the prepared statement and the partition's pages
                    per_round[label].append(rows / took)
                written[label] += tickets
        return {label: {"rows_per_second": len(rates) * rows / sum(rows / x for x in rates),
                        "median_round": statistics.median(rates), "per_round": rates}
                for label, rates in per_round.items()}
    finally:
        for label, _, table in targets:
            conns[label].execute(f"DELETE FROM {table} WHERE ticket = ANY(%s)", (written[label],))
            conns[label].close()


def vacuum(server: Server, database: str, table: str) -> float:
    """VACUUM ANALYZE table (as autovacuum would, after a prune); seconds."""
    began = time.perf_counter()
    with server.connect(database) as conn:
        conn.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - began


def migration(server: Server, database: str, rows: int, months: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Migration 0009 on a populated database: at 0008 (a plain audit table), `rows` records filled in SQL over
    `months` months, then `alembic upgrade 0009` timed; the database is dropped afterwards."""
    from alembic import command as alembic_command

    from integrator.commands import alembic_config

    server.create(database)
    try:
        config = alembic_config(server.url(database))
        alembic_command.upgrade(config, "0008")
        built = datetime.now(UTC)
        first = built - timedelta(days=round(months * 365.25 / 12))
        with server.connect(database) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            conn.execute(AUDIT_FILL, {"lo": 1, "hi": rows, "n": rows, "span": (built - first).total_seconds(),
                                      "start": first.timestamp()})
            conn.execute("VACUUM ANALYZE audit_records")
        say(f"migration 0009 on {rows:,} audit records at 0008: upgrading")
        began = time.perf_counter()
        alembic_command.upgrade(config, "0009")
        seconds = time.perf_counter() - began
        with server.connect(database) as conn:
            kept = conn.execute("SELECT count(*) FROM audit_records").fetchone()[0]  # type: ignore[index]
            parts = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_records'::regclass"
                                 ).fetchone()[0]  # type: ignore[index]
        return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds, "kept": kept,
                "partitions": parts}
    finally:
        server.drop(database)


def ticket_lookups(server: Server, database: str, samples: int, rounds: int = 3) -> dict[str, Any]:
    """SELECT of one record by its ticket alone, partitioned table against plain table (existing tickets, random
    order, alternating rounds): median and p99 µs of each."""
    with server.connect(database) as conn:
        tickets = [t for (t,) in conn.execute(f"SELECT ticket FROM {PLAIN} TABLESAMPLE SYSTEM (0.05) LIMIT %s",
                                              (samples,)).fetchall()]
        plans = {}
        for table in ("audit_records", PLAIN):
            plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM {table} WHERE ticket = %s",
                                (tickets[0],)).fetchone()[0][0]  # type: ignore[index]
            plans[table] = {"execution_ms": plan["Execution Time"], "planning_ms": plan["Planning Time"],
                            "buffers_hit": plan["Plan"].get("Shared Hit Blocks", 0)}
        times: dict[str, list[float]] = {"audit_records": [], PLAIN: []}
        for r in range(rounds):
            for table in (("audit_records", PLAIN) if r % 2 == 0 else (PLAIN, "audit_records")):
                statement = f"SELECT * FROM {table} WHERE ticket = %s"
                for ticket in tickets:
                    began = time.perf_counter()
                    found = conn.execute(statement, (ticket,), prepare=True).fetchall()
                    times[table].append(time.perf_counter() - began)
                    assert len(found) == 1, (table, ticket, len(found))
    return {table: {"median_us": statistics.median(t) * 1e6, "p99_us": sorted(t)[int(len(t) * 0.99)] * 1e6,
                    "lookups": len(t), "plan": plans[table]} for table, t in times.items()}
