"""Portal tables: officials' fallback credentials (password, code card or TOTP), the throttling of failed log-ons,
and the portal's sessions, all in the shared database so that any host serves any official."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from repository.base import Base


class TokenKind(StrEnum):
    """The official's token, the second factor of the fallback log-on (values as stored)."""

    CARD = "card"  # a card of numbered codes, as the Belgian token is: the log-on asks for one of them
    TOTP = "totp"  # an authenticator app's time-based one-time password (RFC 6238)


class LogOnMethod(StrEnum):
    """How a session was logged on (values as stored and logged)."""

    CERTIFICATE = "certificate"  # a personal certificate (the eID's), over TLS client authentication
    CARD = "card"  # user number + password + a code from the card
    TOTP = "totp"  # user number + password + a TOTP code


class ThrottleScope(StrEnum):
    """What failed log-ons are counted against."""

    USER = "user"  # the user number typed (known or not: a lockout says nothing about whether it exists)
    ADDRESS = "address"  # the client's address


class PortalCredential(Base):
    """An official's fallback credentials: user number, argon2 hash of the password, the token's kind."""

    __tablename__ = "portal_credentials"
    official_id: Mapped[int] = mapped_column(ForeignKey("officials.id", ondelete="CASCADE"), primary_key=True)
    user_number: Mapped[str] = mapped_column(String(12), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    token_kind: Mapped[str] = mapped_column(String(8))  # TokenKind
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)  # base32; verifying needs it
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)  # a TOTP code is accepted once
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PortalCardCode(Base):
    """One numbered code of an official's code card, kept as an argon2 hash."""

    __tablename__ = "portal_card_codes"
    official_id: Mapped[int] = mapped_column(ForeignKey("officials.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1..CARD_SIZE, as printed on the card
    code_hash: Mapped[str] = mapped_column(String(200))


class PortalThrottle(Base):
    """Recent failed log-ons of one user number or client address, and until when it is locked."""

    __tablename__ = "portal_throttles"
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)  # ThrottleScope
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # the user number, or the address
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PortalSession(Base):
    """A portal session: anonymous until log-on (it carries the log-on form's CSRF token and challenge), then an
    official's. Only the SHA-256 of the cookie's random token is stored."""

    __tablename__ = "portal_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex SHA-256 of the cookie's token
    official_id: Mapped[int | None] = mapped_column(ForeignKey("officials.id", ondelete="CASCADE"), nullable=True,
                                                    index=True)
    method: Mapped[str | None] = mapped_column(String(12), nullable=True)  # LogOnMethod, once logged on
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    challenge_user: Mapped[str | None] = mapped_column(String(12), nullable=True)  # user number of step 1
    challenge_position: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the card code asked for
