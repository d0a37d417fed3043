"""repository/prepared.py on SQLite and PostgreSQL: the hot statements run inside the session's transaction, bind
as SQLAlchemy would (dates on SQLite, enum items of an IN list), and fail as SQLAlchemy's errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from integrator.database import make_engine, session_factory
from integrator.replay import SeenMessage
from repository.models import Grant, GrantStatus
from repository.prepared import Prepared

INSERT_KEY = Prepared(insert(SeenMessage.__table__).values(key=bindparam("key"), expires_at=bindparam("at")))
READ_KEY = Prepared(select(SeenMessage.key, SeenMessage.expires_at).where(SeenMessage.key == bindparam("key")))


def test_a_write_is_part_of_the_session_transaction(migrated: sessionmaker[Session]) -> None:
    key, at = f"test:{uuid.uuid4().hex}", datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    with migrated() as session:
        INSERT_KEY.execute(session, {"key": key, "at": at})
        assert [row[0] for row in READ_KEY.execute(session, {"key": key})] == [key]  # seen in the transaction
        session.rollback()
    with migrated() as session:
        assert READ_KEY.execute(session, {"key": key}) == []  # rolled back with it
        INSERT_KEY.execute(session, {"key": key, "at": at})
        session.commit()
    with migrated() as session:  # read back by the ORM: the same instant (SQLite stores it as SQLAlchemy does)
        stored = session.get(SeenMessage, key)
        assert stored is not None and stored.expires_at.replace(tzinfo=UTC) == at


def test_a_duplicate_key_is_sqlalchemys_integrity_error(migrated: sessionmaker[Session]) -> None:
    key, at = f"test:{uuid.uuid4().hex}", datetime.now(UTC) + timedelta(minutes=5)
    with migrated() as session:
        INSERT_KEY.execute(session, {"key": key, "at": at})
        session.commit()
        with pytest.raises(IntegrityError):
            INSERT_KEY.execute(session, {"key": key, "at": at})
        session.rollback()
        assert session.execute(select(SeenMessage.key).where(SeenMessage.key == key)).scalar_one() == key


def test_the_statements_own_values_are_bound(migrated: sessionmaker[Session]) -> None:
    """An IN list of enum members and a LIMIT are part of the statement; only the named parameters are given."""
    statement = (select(Grant.id).where(Grant.status.in_([GrantStatus.ACTIVE, GrantStatus.ENDED]),
                                        Grant.purpose == bindparam("purpose")).limit(1))
    with migrated() as session:
        expected = session.execute(statement, {"purpose": "MUNICIPAL_TAX_EXEMPTION"}).all()
        rows = Prepared(statement).execute(session, {"purpose": "MUNICIPAL_TAX_EXEMPTION"})
    assert [tuple(r) for r in rows] == [tuple(r) for r in expected] and len(rows) <= 1


def test_a_lost_connection_is_an_operational_error_and_leaves_the_pool(database_url: str,
                                                                       migrated: sessionmaker[Session]) -> None:
    """The server ends the request's connection: OperationalError (the pipeline answers Server.DatabaseUnavailable)
    and the next session gets a working connection."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a server that ends a connection: PostgreSQL")
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(OperationalError) as lost:
            READ_KEY.execute(session, {"key": "x"})
        assert lost.value.connection_invalidated
        session.rollback()
    with sessions() as session:
        assert READ_KEY.execute(session, {"key": "x"}) == []
        assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    engine.dispose()


def test_autocommit_if_idle_is_one_autocommitted_statement_on_postgresql(
        database_url: str, migrated: sessionmaker[Session]) -> None:
    """On PostgreSQL, on a connection with no transaction open, the statement is committed as it runs (another
    connection sees it before the session commits); on SQLite it is part of the transaction, committed by the
    caller."""
    key, at = f"test:{uuid.uuid4().hex}", datetime.now(UTC) + timedelta(minutes=5)
    with migrated() as session:
        INSERT_KEY.execute(session, {"key": key, "at": at}, autocommit_if_idle=True)
        with migrated() as other:
            seen = other.execute(select(SeenMessage.key).where(SeenMessage.key == key)).scalar_one_or_none()
        assert seen == (key if database_url.startswith("postgresql") else None)
        session.commit()
        assert READ_KEY.execute(session, {"key": key})[0][0] == key  # the session goes on as usual
        session.commit()


def test_autocommit_if_idle_waits_for_what_the_transaction_already_holds(migrated: sessionmaker[Session]) -> None:
    """With another write pending in the transaction the statement is not committed apart from it: a rollback
    takes both back."""
    first, second = f"test:{uuid.uuid4().hex}", f"test:{uuid.uuid4().hex}"
    at = datetime.now(UTC) + timedelta(minutes=5)
    with migrated() as session:
        INSERT_KEY.execute(session, {"key": first, "at": at})
        INSERT_KEY.execute(session, {"key": second, "at": at}, autocommit_if_idle=True)
        session.rollback()
        assert READ_KEY.execute(session, {"key": first}) == [] and READ_KEY.execute(session, {"key": second}) == []


def test_autocommit_if_idle_waits_for_what_the_session_has_not_flushed(migrated: sessionmaker[Session]) -> None:
    """An object added to the session but not flushed yet reaches the database only at the commit: the statement
    is not committed before it, apart from it (on PostgreSQL the connection is still idle then), so a rollback
    takes both back."""
    first, second = f"test:{uuid.uuid4().hex}", f"test:{uuid.uuid4().hex}"
    at = datetime.now(UTC) + timedelta(minutes=5)
    with migrated() as session:
        session.add(SeenMessage(key=first, expires_at=at))
        INSERT_KEY.execute(session, {"key": second, "at": at}, autocommit_if_idle=True)
        session.rollback()
    with migrated() as other:
        assert other.execute(select(SeenMessage.key).where(SeenMessage.key.in_([first, second]))).all() == []
