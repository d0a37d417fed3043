"""Demo data for the proposals service: access rights, grants, reference backends.

Called by services.demo.load."""

from __future__ import annotations

from sqlalchemy.orm import Session

from integrator.config import Settings


def load(settings: Settings, session: Session, backend_urls: dict[str, str]) -> None:
    """Idempotent, like everything in the demo."""
