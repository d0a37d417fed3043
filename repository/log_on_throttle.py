"""Throttling of failed portal log-ons, in the shared database: failures are counted per user number and per client
address within a window; reaching a threshold locks that key for a while. Each count is one atomic UPDATE, so
workers on several hosts count together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from repository.base import aware
from repository.portal_models import PortalThrottle, ThrottleScope


@dataclass(frozen=True)
class ThrottleLimits:
    """How many failures within which window lock a key, and for how long."""

    threshold: int
    window: timedelta
    lockout: timedelta


def locked_until(session: Session, scope: ThrottleScope, key: str, now: datetime) -> datetime | None:
    """Until when the key is locked, or None if it is not (any more)."""
    until = session.execute(select(PortalThrottle.locked_until).where(PortalThrottle.scope == scope.value,
                                                                      PortalThrottle.key == key)).scalar()
    until = aware(until)
    return until if until is not None and until > now else None


def record_failure(session: Session, scope: ThrottleScope, key: str, now: datetime,
                   limits: ThrottleLimits) -> datetime | None:
    """Count one failed log-on against the key; returns until when it is locked if this failure locked it."""
    stale = PortalThrottle.window_start < now - limits.window
    counted = (update(PortalThrottle)
               .where(PortalThrottle.scope == scope.value, PortalThrottle.key == key)
               .values(failures=case((stale, 1), else_=PortalThrottle.failures + 1),
                       window_start=case((stale, now), else_=PortalThrottle.window_start))
               .execution_options(synchronize_session=False))
    if session.execute(counted).rowcount == 0:
        try:
            with session.begin_nested():
                session.add(PortalThrottle(scope=scope.value, key=key, failures=1, window_start=now))
        except IntegrityError:  # another worker counted this key's first failure at the same moment
            session.execute(counted)
    until = now + limits.lockout
    locked = session.execute(update(PortalThrottle)
                             .where(PortalThrottle.scope == scope.value, PortalThrottle.key == key,
                                    PortalThrottle.failures >= limits.threshold)
                             .values(locked_until=until, failures=0, window_start=now)
                             .execution_options(synchronize_session=False))
    return until if locked.rowcount else None


def forget_failures(session: Session, scope: ThrottleScope, key: str) -> None:
    """A successful log-on: the key's failures so far no longer count (a lock was checked before)."""
    session.execute(delete(PortalThrottle).where(PortalThrottle.scope == scope.value, PortalThrottle.key == key))
