"""Officials' fallback credentials for the portal: a user number, a password (argon2 hash) and a token, either a
card of numbered codes (the Belgian token: the log-on asks for one of them) or TOTP (RFC 6238). Issuing returns
the secrets once; only hashes are stored, and the TOTP secret, which verifying needs."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from integrator.faults import OfficialInactive, SelfGrant
from repository.actors import Actor, official_of, reason_given, require_administrator
from repository.models import Official
from repository.portal_models import PortalCardCode, PortalCredential, TokenKind
from repository.portal_sessions import end_all_sessions

CARD_SIZE = 24  # numbered codes on a card
CODE_LENGTH = 6
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a printed card
PASSWORD_MIN_LENGTH = 12
USER_NUMBER_DIGITS = 8
TOTP_DRIFT_STEPS = 1  # a TOTP code of the step before or after is accepted too (clock drift)
ISSUER = "kruispunt"  # the TOTP account's issuer, as authenticator apps show it

PASSWORDS = PasswordHasher()  # argon2id, RFC 9106's low-memory profile
# a card code has 30 bits: a cheaper hash keeps issuing 24 of them quick; the lockout guards the log-on
CODES = PasswordHasher(time_cost=2, memory_cost=8 * 1024, parallelism=1)
_DUMMY = PASSWORDS.hash("not a password of anyone")  # verified for unknown user numbers: the same time spent


@dataclass(frozen=True)
class IssuedCredentials:
    """The secrets as issued, shown once to the official (or printed on their card); none of it is kept in clear
    but the TOTP secret."""

    official_id: int
    user_number: str
    password: str
    kind: TokenKind
    card: tuple[str, ...] = ()  # the card's codes, position 1 first (TokenKind.CARD)
    totp_secret: str | None = None  # base32 (TokenKind.TOTP)
    totp_uri: str | None = None  # otpauth:// for an authenticator app's QR code

    def code(self, position: int) -> str:
        """The card's code at a position, as printed (1-based)."""
        return self.card[position - 1]


@dataclass(frozen=True)
class Challenge:
    """What the second step of a fallback log-on asks for: a card code by position, or the TOTP code."""

    kind: TokenKind
    position: int | None  # the card code asked for (None for TOTP)


def issue_credentials(session: Session, official_id: int, kind: TokenKind, *, user_number: str | None = None,
                      password: str | None = None, card: Sequence[str] | None = None,
                      totp_secret: str | None = None, now: datetime | None = None) -> IssuedCredentials:
    """Issue (or reset) an official's fallback credentials; what is not given is drawn at random. The user number
    stays the official's own across resets unless another is given."""
    official = session.get(Official, official_id)
    if official is None:
        raise ValueError(f"no official with id {official_id}")
    kind = TokenKind(kind)
    password = password if password is not None else new_password()
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValueError(f"a password has at least {PASSWORD_MIN_LENGTH} characters")
    existing = session.get(PortalCredential, official_id)
    number = user_number or (existing.user_number if existing is not None else _new_user_number(session))
    codes: tuple[str, ...] = ()
    if kind is TokenKind.CARD:
        codes = tuple(_normal(c) for c in card) if card is not None else new_card()
        if len(codes) != CARD_SIZE or any(len(c) != CODE_LENGTH or set(c) - set(CODE_ALPHABET) for c in codes):
            raise ValueError(f"a card has {CARD_SIZE} codes of {CODE_LENGTH} characters from {CODE_ALPHABET}")
    secret = (totp_secret or pyotp.random_base32()) if kind is TokenKind.TOTP else None
    session.execute(delete(PortalCardCode).where(PortalCardCode.official_id == official_id))
    if existing is None:
        existing = PortalCredential(official_id=official_id)
        session.add(existing)
    existing.user_number, existing.password_hash = number, PASSWORDS.hash(password)
    existing.token_kind, existing.totp_secret, existing.totp_last_step = kind.value, secret, None
    existing.issued_at = now or datetime.now(UTC)
    session.add_all(PortalCardCode(official_id=official_id, position=position, code_hash=CODES.hash(code))
                    for position, code in enumerate(codes, start=1))
    session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=number, issuer_name=ISSUER) if secret else None
    return IssuedCredentials(official_id, number, password, kind, codes, secret, uri)


def issue_by_administrator(session: Session, actor: Actor, organisation_id: int, insz: str, kind: TokenKind,
                           reason: str, now: datetime | None = None) -> tuple[IssuedCredentials, int]:
    """An administrator issues an official their fallback credentials, or resets them (a card lost, a password
    forgotten): a new password and token, drawn at random, the user number kept. Whoever held the old ones is
    logged off: the official's portal sessions end (how many is the second value). Nobody issues their own (a
    stolen session would otherwise become a lasting log-on); a deactivated official is reactivated first."""
    require_administrator(session, actor, organisation_id)
    reason_given(reason, "issue the official's credentials")
    official = official_of(session, organisation_id, insz)
    if actor.insz == insz:
        raise SelfGrant(f"You cannot issue your own credentials ({insz}); another administrator of your "
                        "organisation, or the integrator's service desk, issues them.")
    if not official.active:
        raise OfficialInactive(f"Official {insz} is deactivated; reactivate the official before issuing their "
                               "credentials.")
    issued = issue_credentials(session, official.id, kind, now=now)
    return issued, end_all_sessions(session, official.id)


def issued_detail(issued: IssuedCredentials, insz: str, sessions_ended: int, reason: str) -> str:
    """What the audit record of the act says: the token and the user number, never a secret."""
    return (f"issued fallback credentials ({issued.kind.value} token, user number {issued.user_number}) to official "
            f"{insz}, {sessions_ended} portal session(s) ended; reason: {reason.strip()}")


def revoke_credentials(session: Session, official_id: int) -> None:
    """The official can no longer log on with a password (a personal certificate still works)."""
    session.execute(delete(PortalCardCode).where(PortalCardCode.official_id == official_id))
    session.execute(delete(PortalCredential).where(PortalCredential.official_id == official_id))


def challenge_for(session: Session, user_number: str) -> Challenge:
    """The second step for a user number: TOTP if its token is an app, otherwise a random card position, also
    for a user number nobody has (the page does not tell which user numbers exist)."""
    credential = _credential(session, user_number)
    if credential is not None and credential.token_kind == TokenKind.TOTP:
        return Challenge(TokenKind.TOTP, None)
    return Challenge(TokenKind.CARD, secrets.randbelow(CARD_SIZE) + 1)


def authenticate(session: Session, user_number: str, password: str, code: str, challenge: Challenge,
                 now: datetime) -> tuple[int, TokenKind] | None:
    """The official (id) and token kind if the password and the code asked for are right, else None; an unknown
    user number costs the same hashing as a known one. A TOTP code is accepted once."""
    credential = _credential(session, user_number)
    if credential is None:
        _verify(PASSWORDS, _DUMMY, password)
        return None
    official = session.get(Official, credential.official_id)
    password_right = _verify(PASSWORDS, credential.password_hash, password)
    kind = TokenKind(credential.token_kind)
    if kind is not challenge.kind:
        return None
    if kind is TokenKind.TOTP:
        step = _totp_step(credential, code, now)
        code_right = step is not None
    else:
        stored = session.get(PortalCardCode, (credential.official_id, challenge.position or 0))
        code_right = stored is not None and _verify(CODES, stored.code_hash, _normal(code))
        step = None
    if not (password_right and code_right and official is not None and official.active):
        return None
    if step is not None:
        credential.totp_last_step = step
    if PASSWORDS.check_needs_rehash(credential.password_hash):
        credential.password_hash = PASSWORDS.hash(password)
    return credential.official_id, kind


def new_card() -> tuple[str, ...]:
    return tuple("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)) for _ in range(CARD_SIZE))


def new_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, 96 bits


def _new_user_number(session: Session) -> str:
    while True:
        number = str(10 ** (USER_NUMBER_DIGITS - 1) + secrets.randbelow(9 * 10 ** (USER_NUMBER_DIGITS - 1)))
        if _credential(session, number) is None:
            return number


def _credential(session: Session, user_number: str) -> PortalCredential | None:
    if not user_number or len(user_number) > USER_NUMBER_DIGITS * 2:
        return None
    return session.execute(select(PortalCredential).where(PortalCredential.user_number == user_number)
                           ).scalar_one_or_none()


def _totp_step(credential: PortalCredential, code: str, now: datetime) -> int | None:
    """The time step whose code this is (within the drift allowed, and after the last one used), or None."""
    if credential.totp_secret is None:
        return None
    totp = pyotp.TOTP(credential.totp_secret)
    current = totp.timecode(now)
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code.strip()) and step > (credential.totp_last_step or -1):
            return step
    return None


def _verify(hasher: PasswordHasher, hashed: str, secret: str) -> bool:
    try:
        return hasher.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return False


def _normal(code: str) -> str:
    return code.strip().upper().replace(" ", "")
