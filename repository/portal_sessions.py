"""Portal sessions in the shared database, so that any worker on any host serves them: an opaque random token in
the cookie, its SHA-256 as the row's key; idle and absolute timeouts; a new token at log-on; log-out ends every
session of the official."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, or_, update
from sqlalchemy.orm import Session

from repository.base import aware
from repository.portal_models import LogOnMethod, PortalSession

TOUCH_EVERY = timedelta(seconds=5)  # last_seen_at is written at most this often per session (one write saved)


@dataclass(frozen=True)
class Timeouts:
    """How long a session lasts: unused (idle), and at most from its log-on (absolute)."""

    idle: timedelta
    absolute: timedelta


class SessionState(StrEnum):
    """What a cookie's token was found to be."""

    LIVE = "live"
    EXPIRED = "expired"  # it was a session, which has timed out (idle or absolute): it is gone now
    UNKNOWN = "unknown"  # no such session (never was, logged out, or its official's sessions were ended)


@dataclass(frozen=True)
class Found:
    state: SessionState
    row: PortalSession | None = None


def session_id(token: str) -> str:
    """The row key of a cookie's token: the database never holds a token a cookie could carry."""
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, now: datetime, official_id: int | None = None,
                 method: LogOnMethod | None = None) -> tuple[str, PortalSession]:
    """A new session (anonymous unless an official is given) with a CSRF token of its own; returns the cookie's
    token and the row."""
    token = secrets.token_urlsafe(32)
    row = PortalSession(id=session_id(token), official_id=official_id, method=method.value if method else None,
                        csrf_token=secrets.token_urlsafe(32), created_at=now, last_seen_at=now)
    session.add(row)
    session.flush()
    return token, row


def find_session(session: Session, token: str | None, now: datetime, timeouts: Timeouts) -> Found:
    """The live session of a cookie's token, seen now; a timed-out one is deleted and reported EXPIRED."""
    if not token or len(token) > 100:
        return Found(SessionState.UNKNOWN)
    row = session.get(PortalSession, session_id(token))
    if row is None:
        return Found(SessionState.UNKNOWN)
    last_seen, created = aware(row.last_seen_at), aware(row.created_at)
    if now - last_seen > timeouts.idle or now - created > timeouts.absolute:
        session.delete(row)
        session.flush()
        return Found(SessionState.EXPIRED)
    if now - last_seen >= TOUCH_EVERY:
        row.last_seen_at = now
    return Found(SessionState.LIVE, row)


def log_on(session: Session, previous: PortalSession | None, official_id: int, method: LogOnMethod,
           now: datetime) -> tuple[str, PortalSession]:
    """The official's new session, under a new token (the anonymous one it replaces is deleted: no fixation)."""
    if previous is not None:
        session.delete(previous)
    return open_session(session, now, official_id, method)


def end_session(session: Session, row: PortalSession) -> None:
    session.delete(row)
    session.flush()


def end_all_sessions(session: Session, official_id: int) -> int:
    """Log the official off everywhere: every session of theirs, on every host; returns how many there were."""
    return session.execute(delete(PortalSession).where(PortalSession.official_id == official_id)).rowcount


def set_challenge(session: Session, row: PortalSession, user_number: str | None, position: int | None) -> None:
    """Remember (or forget) the second step of a fallback log-on on the anonymous session."""
    session.execute(update(PortalSession).where(PortalSession.id == row.id)
                    .values(challenge_user=user_number, challenge_position=position)
                    .execution_options(synchronize_session=False))
    row.challenge_user, row.challenge_position = user_number, position


def prune_sessions(session: Session, now: datetime, timeouts: Timeouts) -> int:
    """Delete the sessions that have timed out (anonymous ones left by visitors included)."""
    return session.execute(delete(PortalSession).where(or_(PortalSession.last_seen_at < now - timeouts.idle,
                                                           PortalSession.created_at < now - timeouts.absolute))
                           .execution_options(synchronize_session=False)).rowcount
