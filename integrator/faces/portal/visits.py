"""The session cookie: the request's portal session loaded (and seen) before the view, in a transaction of its
own that is committed at once, so that nothing is held while an application calls the pipeline; and the cookie
written when a session is opened or ended."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from integrator.config import PortalPolicy
from integrator.faces.portal.applications import granted
from integrator.faces.portal.context import LoggedOnOfficial, Visit, portal_context
from repository.models import Official, Organisation
from repository.portal_models import LogOnMethod, PortalSession
from repository.portal_sessions import SessionState, Timeouts, end_session, find_session

LANGUAGE_COOKIE = "kp_lang"
LANGUAGE_MAX_AGE = 365 * 24 * 3600


def cookie_name(policy: PortalPolicy) -> str:
    """__Host- when Secure: the browser then refuses it unless set by this host over a secure origin, path /."""
    return "__Host-kp_portal" if policy.cookie_secure else "kp_portal"


def timeouts(policy: PortalPolicy) -> Timeouts:
    return Timeouts(policy.idle_timeout, policy.absolute_timeout)


def load_visit() -> None:
    """before_request: g.visit, the session of the request's cookie (if live), its official and applications."""
    context = portal_context()
    policy = context.settings.portal
    now = datetime.now(UTC)
    with context.sessions() as db:
        found = find_session(db, request.cookies.get(cookie_name(policy)), now, timeouts(policy))
        row = found.row
        if row is None:
            g.visit = Visit(found.state)
            db.commit()
            return
        official = _official(db, row)
        if row.official_id is not None and official is None:  # the official is no longer active: logged off
            end_session(db, row)
            g.visit = Visit(SessionState.UNKNOWN)
        else:
            apps = granted(db, official.official_id, context.applications, now.date()) if official else ()
            g.visit = Visit(SessionState.LIVE, row.id, row.csrf_token, official, apps, row.challenge_user,
                            row.challenge_position)
        db.commit()


def _official(db: Session, row: PortalSession) -> LoggedOnOfficial | None:
    if row.official_id is None:
        return None
    found = db.execute(
        select(Official.id, Organisation.enterprise_number, Organisation.name, Official.insz, Official.name)
        .join(Organisation, Organisation.id == Official.organisation_id)
        .where(Official.id == row.official_id, Official.active)).first()
    if found is None:
        return None
    return LoggedOnOfficial(found[0], found[1], found[2], found[3], found[4], row.id, LogOnMethod(row.method))


def set_session_cookie(response: Response, token: str) -> Response:
    policy = portal_context().settings.portal
    response.set_cookie(cookie_name(policy), token, path="/", secure=policy.cookie_secure, httponly=True,
                        samesite="Lax")
    return response


def clear_session_cookie(response: Response) -> Response:
    policy = portal_context().settings.portal
    response.delete_cookie(cookie_name(policy), path="/", secure=policy.cookie_secure, httponly=True,
                           samesite="Lax")
    return response


def set_language_cookie(response: Response, language: str) -> Response:
    policy = portal_context().settings.portal
    response.set_cookie(LANGUAGE_COOKIE, language, max_age=LANGUAGE_MAX_AGE, path="/", secure=policy.cookie_secure,
                        httponly=True, samesite="Lax")
    return response
