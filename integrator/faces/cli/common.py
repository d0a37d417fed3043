"""What every command module shares: sessions on the configured database, dates, the published services."""

from __future__ import annotations

import argparse
from datetime import date

from sqlalchemy.orm import Session, sessionmaker

from integrator.config import Settings
from integrator.database import make_engine, session_factory
from integrator.service import access_names
from services import PUBLISHED


def sessions(settings: Settings) -> sessionmaker[Session]:
    return session_factory(make_engine(settings.database_url))


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: give it as YYYY-MM-DD") from None


def published_names() -> frozenset[str]:
    """What grants may name among the services published in code (with the repository's, the services that
    exist): their names, and the access rights of their own some operations need."""
    return access_names(PUBLISHED)


def published_keys() -> frozenset[str]:
    """The versions ("Name/vMajor") of the services published in code."""
    return frozenset(service.key for service in PUBLISHED)
