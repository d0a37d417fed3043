"""Engine and sessions: SQLite embedded by default, any SQLAlchemy URL (PostgreSQL in production)."""

from __future__ import annotations

import functools
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=10, max_overflow=10)
    event.listen(engine.pool, "connect", _checked_in)  # a new connection needs no ping
    event.listen(engine.pool, "checkin", _checked_in)
    event.listen(engine.pool, "checkout", functools.partial(_ping_if_idle, engine.dialect))
    return engine


IDLE_PING_SECONDS = 1.0  # a pooled connection unused for longer is pinged before it is handed out


def _checked_in(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dialect, dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
    """Hand out a connection that was idle for a while only if the server still answers on it (a restarted
    database leaves every pooled connection dead); one that is back from a request a moment ago is not pinged,
    so a busy worker pays no round trip for it. The pool replaces a connection that fails the ping."""
    if time.monotonic() - record.info.get("checked_in", 0.0) <= IDLE_PING_SECONDS:
        return
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as lost:
        raise DisconnectionError(f"a pooled connection failed its ping: {lost}") from lost


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
