"""integrator/database.py: pooled PostgreSQL connections that sat idle are pinged before use, so the connections a
restarted database left dead are replaced, not handed to a request; busy ones are not pinged."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from integrator import database
from integrator.database import make_engine, session_factory


@pytest.fixture
def pg_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("the ping is for a database server (SQLite is a file)")
    return database_url


def _pids(sessions, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    """Check out `count` connections at once and return their server pids (all back in the pool after)."""
    open_sessions = [sessions() for _ in range(count)]
    try:
        return [s.execute(text("SELECT pg_backend_pid()")).scalar_one() for s in open_sessions]
    finally:
        for s in open_sessions:
            s.close()


def test_dead_idle_connections_are_replaced(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "IDLE_PING_SECONDS", 0.2)
    engine = make_engine(pg_url)
    sessions = session_factory(engine)
    before = _pids(sessions, 3)
    killer = make_engine(pg_url)  # what a database restart does to the pool's connections
    with killer.connect() as connection:
        for pid in before:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()
    time.sleep(0.4)
    after = _pids(sessions, 3)  # no OperationalError: each dead connection failed its ping and was replaced
    assert not set(after) & set(before)
    engine.dispose()


def test_a_connection_back_a_moment_ago_is_not_pinged(pg_url: str) -> None:
    engine = make_engine(pg_url)
    pings = []
    real_ping = engine.dialect.do_ping
    engine.dialect.do_ping = lambda dbapi: pings.append(1) or real_ping(dbapi)  # type: ignore[method-assign]
    sessions = session_factory(engine)
    for _ in range(5):
        with sessions() as session:
            session.execute(text("SELECT 1"))
    assert pings == []
    engine.dispose()
