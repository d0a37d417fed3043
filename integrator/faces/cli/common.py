"""What every command module shares: sessions on the configured database."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from integrator.config import Settings
from integrator.database import make_engine, session_factory


def sessions(settings: Settings) -> sessionmaker[Session]:
    return session_factory(make_engine(settings.database_url))
