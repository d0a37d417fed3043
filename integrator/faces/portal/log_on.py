"""Log-on and log-out: with a personal certificate, or with user number, password and a one-time code of the
official's token (a card code asked for by number, or TOTP); failures throttled per user number and per client
address in the database; a new session token at log-on; log-out ends the official's sessions everywhere."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from flask import Blueprint, g, make_response, redirect, render_template, request, url_for
from flask_babel import format_datetime
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from integrator.config import PortalPolicy
from integrator.faces.portal import certificates
from integrator.faces.portal.context import logged_on, login_required, portal_context, visit
from integrator.faces.portal.events import event
from integrator.faces.portal.redirects import safe_next
from integrator.faces.portal.refusals import message
from integrator.faces.portal.visits import clear_session_cookie, set_session_cookie, timeouts
from integrator.faults import PortalCertificateRefused, PortalLocked, PortalLogOnFailed, PortalSessionExpired
from repository import portal_sessions
from repository.credentials import Challenge, authenticate, challenge_for
from repository.log_on_throttle import ThrottleLimits, forget_failures, locked_until, record_failure
from repository.models import Official, Organisation
from repository.portal_models import LogOnMethod, PortalSession, ThrottleScope, TokenKind
from repository.portal_sessions import SessionState

blueprint = Blueprint("log_on", __name__)
REASONS = {"expired": PortalSessionExpired}  # ?reason= on the log-on page


def _limits(policy: PortalPolicy, scope: ThrottleScope) -> ThrottleLimits:
    threshold = policy.user_failures if scope is ThrottleScope.USER else policy.address_failures
    return ThrottleLimits(threshold, policy.failure_window, policy.lockout)


def _next() -> str:
    """Where to go after log-on: the `next` asked for if it is a portal path; an attempt elsewhere is logged."""
    asked = request.values.get("next")
    root = request.script_root or "/"
    chosen = safe_next(asked, root)
    if asked and chosen is None:
        event("redirect", "refused", asked=asked[:200])
    return chosen or url_for("pages.home")


def _anonymous(db: Session) -> tuple[PortalSession, str | None]:
    """The visitor's session for the log-on forms: the current one, or a new one (its token for the cookie)."""
    current = visit()
    if current.session_id is not None:
        row = db.get(PortalSession, current.session_id)
        if row is not None:
            return row, None
    token, row = portal_sessions.open_session(db, datetime.now(UTC))
    return row, token


def _page(template: str, status: int = 200, **values: object) -> Response:
    """Render a log-on page for the visitor's session (opened if need be: the form needs its CSRF token)."""
    context = portal_context()
    with context.sessions() as db:
        row, token = _anonymous(db)
        g.visit = replace(visit(), state=SessionState.LIVE, session_id=row.id, csrf_token=row.csrf_token,
                          challenge_user=row.challenge_user, challenge_position=row.challenge_position)
        db.commit()
    response = make_response(render_template(template, challenge_user=visit().challenge_user,
                                             position=visit().challenge_position,
                                             next=request.values.get("next", ""), **values), status)
    return set_session_cookie(response, token) if token else response


def _logged_on(db: Session, official_id: int, method: LogOnMethod, **fields: object) -> Response:
    """Rotate the session: the anonymous one goes, the official's comes under a new token."""
    previous = db.get(PortalSession, visit().session_id) if visit().session_id else None
    now = datetime.now(UTC)
    token, row = portal_sessions.log_on(db, previous, official_id, method, now)
    portal_sessions.prune_sessions(db, now, timeouts(portal_context().settings.portal))  # visitors' leftovers
    db.commit()
    event("log-on", "OK", official_id=official_id, method=method.value, session=row.id[:12], **fields)
    return set_session_cookie(redirect(_next()), token)


def _locked(db: Session, policy: PortalPolicy, user_number: str, address: str, now: datetime) -> datetime | None:
    user = locked_until(db, ThrottleScope.USER, user_number, now) if user_number else None
    by_address = locked_until(db, ThrottleScope.ADDRESS, address, now)
    return max((u for u in (user, by_address) if u is not None), default=None)


def _locked_page(until: datetime, user_number: str, **values: object) -> Response:
    event("log-on", PortalLocked.CODE, user_number=user_number, until=until.isoformat(timespec="seconds"))
    return _page("log_on.html", PortalLocked.HTTP_STATUS, error=message(PortalLocked()),
                 until=format_datetime(until, "short"), **values)


@blueprint.get("/log-on")
def form() -> Response:
    """The log-on page: the eID button, and step 1 of the fallback (the user number)."""
    if visit().official is not None:
        return redirect(_next())
    reason = REASONS.get(request.args.get("reason", ""))
    notice = message(reason()) if reason else None
    return _page("log_on.html", notice=notice, logged_out=request.args.get("reason") == "logged-out")


@blueprint.post("/log-on")
def user_number() -> Response:
    """Step 1: remember the user number and choose what step 2 asks for (nothing is verified yet)."""
    context = portal_context()
    policy = context.settings.portal
    number = request.form.get("user_number", "").strip()[:20]
    address = certificates.client_address(request.environ, policy)
    now = datetime.now(UTC)
    with context.sessions() as db:
        until = _locked(db, policy, number, address, now)
        if until is not None:
            return _locked_page(until, number)
        row, _ = _anonymous(db)
        challenge = challenge_for(db, number) if number else None
        portal_sessions.set_challenge(db, row, number or None, challenge.position if challenge else None)
        db.commit()
    if not number:
        return _page("log_on.html", 400, error=message(PortalLogOnFailed()))
    return redirect(url_for("log_on.code", next=request.form.get("next") or None))


@blueprint.get("/log-on/code")
def code() -> Response:
    """Step 2: password and the code asked for (the card's code number N, or the TOTP code)."""
    if visit().challenge_user is None:
        return redirect(url_for("log_on.form", next=request.args.get("next")))
    return _page("log_on_code.html")


@blueprint.post("/log-on/code")
def verify_code() -> Response:
    """Step 2 checked: user number + password + code together, one answer whichever was wrong."""
    context = portal_context()
    policy = context.settings.portal
    current = visit()
    number = current.challenge_user
    if number is None:
        return redirect(url_for("log_on.form"))
    address = certificates.client_address(request.environ, policy)
    now = datetime.now(UTC)
    kind = TokenKind.TOTP if current.challenge_position is None else TokenKind.CARD
    with context.sessions() as db:
        until = _locked(db, policy, number, address, now)
        if until is not None:
            db.commit()
            return _locked_page(until, number, step=2)
        verified = authenticate(db, number, request.form.get("password", ""), request.form.get("code", ""),
                                Challenge(kind, current.challenge_position), now)
        if verified is not None:
            forget_failures(db, ThrottleScope.USER, number)
            official_id, token = verified
            return _logged_on(db, official_id, LogOnMethod(token.value), user_number=number)
        locks = [record_failure(db, scope, key, now, _limits(policy, scope))
                 for scope, key in ((ThrottleScope.USER, number), (ThrottleScope.ADDRESS, address))]
        row = db.get(PortalSession, current.session_id) if current.session_id else None
        if row is not None:  # a new card code is asked for after a failure
            portal_sessions.set_challenge(db, row, number, challenge_for(db, number).position)
        db.commit()
    until = max((u for u in locks if u is not None), default=None)
    if until is not None:
        return _locked_page(until, number)
    event("log-on", PortalLogOnFailed.CODE, user_number=number, token=kind.value)
    return _page("log_on_code.html", PortalLogOnFailed.HTTP_STATUS, error=message(PortalLogOnFailed()))


@blueprint.post("/log-on/certificate")
def certificate() -> Response:
    """Log-on with the personal certificate TLS verified; an INSZ that is an official of several organisations
    chooses one (the same form again, with the organisation)."""
    context = portal_context()
    try:
        personal = certificates.verify(certificates.presented(request.environ, context.settings.portal),
                                       context.citizen_ca, datetime.now(UTC))
    except PortalCertificateRefused as refused:
        event("log-on", refused.code, method=LogOnMethod.CERTIFICATE.value, reason=refused.reason)
        return _page("log_on.html", refused.HTTP_STATUS, error=message(refused))
    with context.sessions() as db:
        officials = db.execute(
            select(Official.id, Organisation.enterprise_number, Organisation.name)
            .join(Organisation, Organisation.id == Official.organisation_id)
            .where(Official.insz == personal.insz, Official.active).order_by(Organisation.name)).all()
        chosen = [o for o in officials if o.enterprise_number == request.form.get("organisation")]
        if len(officials) == 1 or len(chosen) == 1:
            official_id = (chosen or officials)[0].id
            return _logged_on(db, official_id, LogOnMethod.CERTIFICATE, via=personal.via,
                              certificate=personal.fingerprint[:16])
    if not officials:
        refused = PortalCertificateRefused(f"INSZ {personal.insz} is no active official's")
        event("log-on", refused.code, method=LogOnMethod.CERTIFICATE.value, reason=refused.reason)
        return _page("log_on.html", refused.HTTP_STATUS, error=message(refused))
    return _page("choose_organisation.html", organisations=officials)


@blueprint.post("/log-out")
@login_required
def log_out() -> Response:
    """Log-out ends every session of the official, on every host and in every browser."""
    official = logged_on()
    with portal_context().sessions() as db:
        ended = portal_sessions.end_all_sessions(db, official.official_id)
        db.commit()
    event("log-out", "OK", method=official.method.value, sessions_ended=ended)
    return clear_session_cookie(redirect(url_for("log_on.form", reason="logged-out")))
