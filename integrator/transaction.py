"""A request's transaction that lost to a concurrent one (the same thing stored at the same moment) is rolled back
and served again, with jittered pauses, for a bounded time."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from integrator.faults import TransactionConflict

CONFLICT_SECONDS = 20.0
T = TypeVar("T")


def until_no_conflict(session: Session, work: Callable[[], T], what: str, *,
                      rolled_back: Callable[[], None] = lambda: None, seconds: float = CONFLICT_SECONDS) -> T:
    """work() in session's transaction, flushed so that a conflict shows here and not at the commit; after a
    conflict, the transaction is rolled back (rolled_back() told) and work() runs again. The winner's effects
    are then visible to it: a retry finds what the concurrent request stored."""
    deadline = time.monotonic() + seconds
    for attempt in itertools.count(1):
        try:
            result = work()
            session.flush()
            return result
        except (IntegrityError, OperationalError) as error:
            if not conflict(error):
                raise
            session.rollback()
            rolled_back()
            if time.monotonic() > deadline:
                raise TransactionConflict(
                    f"{what} kept conflicting with concurrent requests ({attempt} attempts); retry it (with the "
                    "same MessageId where the operation takes one).") from None
            time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** min(attempt, 6))))  # the losers spread out
    raise AssertionError("unreachable")


def conflict(error: IntegrityError | OperationalError) -> bool:
    """A concurrent transaction won: a unique key taken first, SQLite's lock, PostgreSQL's serialisation or
    deadlock refusal. Anything else is not a conflict to retry."""
    if isinstance(error, IntegrityError):
        return True
    code = getattr(error.orig, "sqlstate", None)
    return code in ("40001", "40P01") or "locked" in str(error.orig)
