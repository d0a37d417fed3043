"""The portal's applications: one registry, one log-on for them all. Each application is a Flask Blueprint under
/portal/<slug>/, opened by an active grant for its service; the layout's navigation lists those the official
holds a grant for. The applications themselves live in integrator/faces/portal/apps/ (its APPLICATIONS)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from datetime import date

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from integrator.faces.portal.context import PortalApplication, PortalContext
from repository.models import Grant

__all__ = ["PortalApplication", "granted", "install", "installed"]

APPS_MODULE = "integrator.faces.portal.apps"


def installed() -> tuple[PortalApplication, ...]:
    """The applications of integrator/faces/portal/apps/ (its APPLICATIONS), none while that package is absent."""
    try:
        apps = importlib.import_module(APPS_MODULE)
    except ModuleNotFoundError as missing:
        if missing.name != APPS_MODULE:
            raise
        return ()
    return tuple(apps.APPLICATIONS)


def install(app: Flask, context: PortalContext, guard: Callable[[PortalApplication], Callable[[], None]]) -> None:
    """Register every application's blueprint under /<slug>, each behind the guard (log-on and grant)."""
    slugs = [a.slug for a in context.applications]
    if len(slugs) != len(set(slugs)):
        raise ValueError(f"two portal applications share a slug: {sorted(slugs)}")
    for application in context.applications:
        blueprint = application.blueprint(context)
        blueprint.before_request(guard(application))
        app.register_blueprint(blueprint, url_prefix=f"/{application.slug}")


def granted(session: Session, official_id: int, applications: Sequence[PortalApplication],
            on: date) -> tuple[PortalApplication, ...]:
    """The applications the official holds an active grant for today, in the registry's order."""
    services = set(session.execute(
        select(Grant.service).where(Grant.official_id == official_id, Grant.in_effect(on))).scalars())
    return tuple(a for a in applications if a.service in services)
