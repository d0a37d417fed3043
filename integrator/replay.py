"""Stage: a message seen before (same message id or same signature) inside the freshness window is refused.

The memory is a table, so every gunicorn worker on every host behind the load balancer shares it.
"""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy import DateTime, String, delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from integrator.faults import Replay
from repository.base import Base


class SeenMessage(Base):
    __tablename__ = "seen_messages"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


def remember(session: Session, keys: list[str], expires_at: datetime, now: datetime) -> None:
    """Record the keys, committing at once; raise Replay if any was already there."""
    if random.random() < 0.01:
        session.execute(delete(SeenMessage).where(SeenMessage.expires_at < now))
    try:
        session.execute(insert(SeenMessage), [{"key": k, "expires_at": expires_at} for k in keys])
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Replay(
            "This message was already received (same message id or same signature); "
            "send a new message id and a fresh signature."
        ) from None
