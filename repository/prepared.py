"""The request path's few hot statements, run on the request's own DBAPI connection.

A SQLAlchemy construct is compiled once per dialect (with its expanding IN lists rendered, its fixed values
bound and its bind processors kept), then executed on the session's DBAPI connection, inside the session's
transaction: no compiled-cache lookup, no ORM bulk-insert machinery and no result object per statement. Timed
in one process on PostgreSQL (replay keys, caller query, audit record and two commits, 1,000 times), this took
the three statements' CPU from about 3–4.7 ms through the ORM to about 1.0–1.9 ms (issue 9). Only for
statements the request path runs on every call; everything else goes through the session as usual.

The DBAPI's errors come out as SQLAlchemy's (IntegrityError, OperationalError, ...), as from session.execute, and
a lost connection is invalidated so that the pool does not hand it out again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class _Compiled:
    sql: str
    fixed: dict[str, Any]  # values the statement itself binds (LIMIT 1, the items of an IN list)
    processors: dict[str, Callable[[Any], Any]]  # bind processors by parameter name (dates on SQLite, enums)
    order: tuple[str, ...] | None  # parameter names in order, for a positional paramstyle (SQLite's qmark)
    returns_rows: bool  # a SELECT, or DML with RETURNING (else no result to fetch: no description built)


class Prepared:
    """One statement, compiled on first use for each dialect; execute() runs it with named parameters."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}  # by dialect name; two threads compiling at once agree

    def execute(self, session: Session, parameters: Mapping[str, Any], *,
                autocommit_if_idle: bool = False) -> list[tuple[Any, ...]]:
        """Run the statement in the session's transaction; the rows it returns (none for an INSERT), as the DBAPI
        gives them (no result processing: for plain columns only).

        autocommit_if_idle: where the driver can (psycopg) and no transaction is open on the connection yet, run
        the statement in autocommit: one round trip instead of a BEGIN before it (and, for a write, a COMMIT after
        it). Only for a statement that needs nothing around it: a read, or a write that the caller commits right
        away. With anything already done in the transaction, or ORM changes the session has not flushed yet (they
        would reach the database only at the commit, in a transaction of their own), it runs inside the
        transaction, as without the flag, so it never commits apart from what the transaction holds."""
        connection = session.connection()
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name) or self._compile(dialect)
        values = {**compiled.fixed, **parameters}
        for name, process in compiled.processors.items():
            values[name] = process(values[name])
        bound: Any = tuple(values[n] for n in compiled.order) if compiled.order is not None else values
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        alone = autocommit_if_idle and _idle(dbapi) and not _unflushed(session)
        if alone:
            dbapi.autocommit = True
        cursor = dbapi.cursor()
        try:
            cursor.execute(compiled.sql, bound)
            return list(cursor.fetchall()) if compiled.returns_rows else []
        except dialect.loaded_dbapi.Error as error:
            lost = dialect.is_disconnect(error, dbapi, cursor)
            if lost:
                connection.invalidate(error)
            raise DBAPIError.instance(compiled.sql, bound, error, dialect.loaded_dbapi.Error,
                                      connection_invalidated=lost, dialect=dialect) from error
        finally:
            cursor.close()
            if alone and not dbapi.closed:
                dbapi.autocommit = False

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        # the statement's own values (LIMIT 1, an IN list's items), None for the parameters each call gives
        expanded = compiled.construct_expanded_state(compiled.construct_params(_check=False))
        fixed = {name: value.value if isinstance(value, Enum) else value
                 for name, value in expanded.parameters.items() if value is not None}
        processors = {name: process for name, bind in compiled.binds.items()
                      if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None}
        processors.update(expanded.processors)  # an IN list's items, processed as the list's own parameter
        processors = {name: process for name, process in processors.items() if name in expanded.parameters}
        order = tuple(expanded.positiontup) if expanded.positiontup is not None else None
        returns_rows = not (compiled.isinsert or compiled.isupdate or compiled.isdelete) or bool(compiled.returning)
        result = self._compiled[dialect.name] = _Compiled(expanded.statement, fixed, processors, order, returns_rows)
        return result


def _unflushed(session: Session) -> bool:
    """Whether the session holds ORM changes not yet sent to the database (added, changed or deleted objects)."""
    return bool(session.new or session.deleted or session.dirty)


def _idle(dbapi: Any) -> bool:
    """A psycopg connection with no transaction open (its autocommit can be switched without a round trip)."""
    info = getattr(dbapi, "info", None)
    status = getattr(info, "transaction_status", None)
    return status is not None and status.name == "IDLE" and not dbapi.autocommit
