"""What the portal's views and its applications are given: what an application is, the portal's context
(settings, pipeline, database sessions, applications), the logged-on official, and the guard that requires a
log-on. (applications.py, the registry, builds on these; nothing here imports it.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from cryptography import x509
from flask import Blueprint, current_app, g, redirect, request, url_for
from sqlalchemy.orm import Session, sessionmaker

from integrator.config import Settings
from integrator.pipeline import Pipeline
from repository.portal_models import LogOnMethod
from repository.portal_sessions import SessionState

EXTENSION = "kruispunt.portal"
View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class PortalApplication:
    """One application of the portal."""

    slug: str  # its pages are under /portal/<slug>/; its blueprint is named after it too
    title: str  # the navigation's text: an English msgid, lazy_gettext("…") so that it is shown translated
    service: str  # an active grant of the official for this service (any purpose) opens it
    blueprint: Callable[[PortalContext], Blueprint]  # builds the application's views, given the portal's context

    @property
    def path(self) -> str:
        """Its first page, relative to the portal's root."""
        return f"/{self.slug}/"


@dataclass(frozen=True)
class PortalContext:
    """Built once by create_portal and handed to every application's blueprint factory."""

    settings: Settings
    pipeline: Pipeline  # the applications' operations go through it: serve_official(LoggedOn(...), ...)
    sessions: sessionmaker[Session]
    applications: tuple[PortalApplication, ...]
    citizen_ca: x509.Certificate | None  # issues the personal certificates that log on (None: certificate log-on off)


@dataclass(frozen=True)
class LoggedOnOfficial:
    """The official a portal request comes from."""

    official_id: int
    organisation: str  # enterprise number
    organisation_name: str
    insz: str
    name: str
    session_id: str  # the session's key (SHA-256 of the cookie's token): for log lines, never the token itself
    method: LogOnMethod  # how the session was logged on


@dataclass(frozen=True)
class Visit:
    """The request's session as loaded before the view: its state, CSRF token, official and open applications."""

    state: SessionState
    session_id: str | None = None
    csrf_token: str | None = None
    official: LoggedOnOfficial | None = None
    granted: tuple[PortalApplication, ...] = ()
    challenge_user: str | None = None  # fallback log-on: the user number of step 1
    challenge_position: int | None = None  # the card code asked for (None: TOTP)


def portal_context() -> PortalContext:
    return cast(PortalContext, current_app.extensions[EXTENSION])


def visit() -> Visit:
    return cast(Visit, g.visit)


def logged_on() -> LoggedOnOfficial:
    """The logged-on official; only inside a view behind login_required or an application's blueprint."""
    official = visit().official
    if official is None:
        raise RuntimeError("logged_on() outside a view that requires a log-on")
    return official


def here() -> str:
    """The current page as a local path, for coming back to it after log-on (or a change of language)."""
    query = request.query_string.decode("latin-1")
    return request.script_root + request.path + (f"?{query}" if query else "")


def to_log_on(reason: str | None = None) -> Any:
    """The redirect to the log-on page, coming back here afterwards; says why when the session had expired."""
    if reason is None and visit().state is SessionState.EXPIRED:
        reason = "expired"
    return redirect(url_for("log_on.form", next=here(), reason=reason))


def login_required(view: View) -> View:
    """A view for logged-on officials only; others are sent to the log-on page and back."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if visit().official is None:
            return to_log_on()
        return view(*args, **kwargs)

    return cast(View, guarded)
