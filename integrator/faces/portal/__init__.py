"""The officials' portal: server-rendered pages under /portal on the integrator's WSGI app, one layout, one log-on
for every application, Dutch and French. create_portal builds it once per worker; the applications
(integrator/faces/portal/apps/) plug in through applications.PortalApplication."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from flask import Flask
from flask_babel import Babel, get_locale
from werkzeug.exceptions import HTTPException

from integrator.config import Settings
from integrator.faces.portal import log_on, pages
from integrator.faces.portal.applications import PortalApplication, install, installed
from integrator.faces.portal.certificates import load_citizen_ca
from integrator.faces.portal.context import EXTENSION, PortalContext, here, to_log_on, visit
from integrator.faces.portal.csrf import check_csrf, csrf_field
from integrator.faces.portal.headers import secure_headers
from integrator.faces.portal.i18n import DEFAULT, LANGUAGES, TRANSLATIONS, select_language
from integrator.faces.portal.refusals import http_error, refused
from integrator.faces.portal.visits import load_visit
from integrator.faults import KruispuntFault, PortalApplicationNotGranted
from integrator.pipeline import Pipeline

PREFIX = "/portal"
HERE = Path(__file__).resolve().parent
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def create_portal(settings: Settings, pipeline: Pipeline,
                  applications: Sequence[PortalApplication] | None = None) -> Flask:
    """The portal's Flask app, its pages relative to PREFIX (mount it there with `mounted`)."""
    app = Flask(__name__, template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.config.update(MAX_CONTENT_LENGTH=settings.limits.max_bytes, BABEL_DEFAULT_LOCALE=DEFAULT,
                      BABEL_DEFAULT_TIMEZONE="Europe/Brussels", SESSION_COOKIE_SECURE=settings.portal.cookie_secure,
                      TEMPLATES_AUTO_RELOAD=False)
    Babel(app, locale_selector=select_language, default_translation_directories=str(TRANSLATIONS))
    context = PortalContext(settings, pipeline, pipeline.sessions,
                            tuple(installed() if applications is None else applications),
                            load_citizen_ca(settings.citizen_ca_path))
    app.extensions[EXTENSION] = context
    app.before_request(load_visit)
    app.before_request(check_csrf)
    app.after_request(secure_headers)
    app.register_error_handler(KruispuntFault, refused)
    app.register_error_handler(HTTPException, http_error)
    app.register_blueprint(log_on.blueprint)
    app.register_blueprint(pages.blueprint)
    install(app, context, _guard)
    app.jinja_env.globals.update(csrf_field=csrf_field, visit=visit, languages=LANGUAGES, here=here,
                                 get_locale=get_locale)
    return app


def _guard(application: PortalApplication) -> Callable[[], Any]:
    """Before every view of an application: a log-on, and a grant for its service."""

    def guard() -> Any:
        current = visit()
        if current.official is None:
            return to_log_on()
        if application not in current.granted:
            raise PortalApplicationNotGranted(f"{current.official.insz} holds no grant for {application.service}")
        return None

    return guard


def mounted(app: WSGIApp, prefix: str = PREFIX) -> WSGIApp:
    """The WSGI app under `prefix`: SCRIPT_NAME gains the prefix, PATH_INFO loses it (so url_for names /portal/…)."""

    def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        inner = dict(environ, SCRIPT_NAME=environ.get("SCRIPT_NAME", "") + prefix, PATH_INFO=path[len(prefix):])
        return app(inner, start_response)

    return call


def is_portal(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")
