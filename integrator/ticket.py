"""Stage: every transaction gets a unique ticket, before anything can refuse it."""

from __future__ import annotations

import uuid
from datetime import datetime


def new_ticket(now: datetime) -> str:
    """KP-<yyyymmdd>-<128 random bits>: unique across workers and hosts without coordination."""
    return f"KP-{now:%Y%m%d}-{uuid.uuid4().hex}"
