"""The portal's credentials, throttling and sessions in the database, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pyotp
import pytest
from alembic import command
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from integrator import commands
from integrator.config import Settings
from integrator.database import make_engine
from repository.credentials import CARD_SIZE, Challenge, authenticate, challenge_for, issue_credentials
from repository.log_on_throttle import ThrottleLimits, forget_failures, locked_until, record_failure
from repository.models import Official, Organisation
from repository.portal_models import LogOnMethod, PortalCardCode, PortalCredential, ThrottleScope, TokenKind
from repository.portal_sessions import (
    SessionState,
    Timeouts,
    end_all_sessions,
    find_session,
    log_on,
    open_session,
    prune_sessions,
    session_id,
)
from services.backends.persons import make_insz
from services.demo_organisations import enterprise_number

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
TIMEOUTS = Timeouts(idle=timedelta(minutes=15), absolute=timedelta(hours=8))
LIMITS = ThrottleLimits(threshold=3, window=timedelta(minutes=15), lockout=timedelta(minutes=10))


@pytest.fixture
def official_id(migrated: sessionmaker[Session]) -> int:
    """An official of an organisation of its own, so that tests never see each other's rows."""
    number = enterprise_number(10_000_000 + uuid.uuid4().int % 9_000_000)
    with migrated() as session:
        commands.add_organisation(session, number, "Testgemeente", "municipality", "11002")
        insz = make_insz(date(1980, 1, 1) + timedelta(days=uuid.uuid4().int % 9000), 17)
        commands.add_official(session, number, insz, "Test Ambtenaar")
        session.commit()
        return session.execute(select(Official.id).join(Organisation, Organisation.id == Official.organisation_id)
                               .where(Organisation.enterprise_number == number)).scalar_one()


def test_a_card_is_issued_once_in_clear_and_kept_as_hashes(migrated: sessionmaker[Session], official_id: int) -> None:
    with migrated() as session:
        issued = issue_credentials(session, official_id, TokenKind.CARD)
        session.commit()
        stored = session.get(PortalCredential, official_id)
        codes = session.execute(select(PortalCardCode).where(PortalCardCode.official_id == official_id)).scalars()
        hashes = {c.position: c.code_hash for c in codes}
    assert len(issued.card) == CARD_SIZE and len(hashes) == CARD_SIZE
    assert stored is not None and issued.password not in stored.password_hash
    assert stored.password_hash.startswith("$argon2id$") and all(h.startswith("$argon2id$") for h in hashes.values())
    assert not any(code in h for code in issued.card for h in hashes.values())


def test_the_card_code_asked_for_logs_on_and_no_other(migrated: sessionmaker[Session], official_id: int) -> None:
    with migrated() as session:
        issued = issue_credentials(session, official_id, TokenKind.CARD)
        challenge = challenge_for(session, issued.user_number)
        assert challenge.kind is TokenKind.CARD and challenge.position is not None
        other = challenge.position % CARD_SIZE + 1
        assert authenticate(session, issued.user_number, issued.password, issued.code(other), challenge, NOW) is None
        assert authenticate(session, issued.user_number, "wrong password!", issued.code(challenge.position),
                            challenge, NOW) is None
        right = issued.code(challenge.position).lower()  # typed in lower case: still the card's code
        assert authenticate(session, issued.user_number, issued.password, right, challenge, NOW) == (
            official_id, TokenKind.CARD)


def test_a_totp_code_logs_on_once(migrated: sessionmaker[Session], official_id: int) -> None:
    with migrated() as session:
        issued = issue_credentials(session, official_id, TokenKind.TOTP)
        assert issued.totp_secret and issued.totp_uri and issued.totp_uri.startswith("otpauth://totp/")
        challenge = challenge_for(session, issued.user_number)
        assert challenge == Challenge(TokenKind.TOTP, None)
        code = pyotp.TOTP(issued.totp_secret).at(NOW)
        assert authenticate(session, issued.user_number, issued.password, code, challenge, NOW) == (
            official_id, TokenKind.TOTP)
        assert authenticate(session, issued.user_number, issued.password, code, challenge, NOW) is None  # replayed
        late = pyotp.TOTP(issued.totp_secret).at(NOW + timedelta(minutes=5))
        assert authenticate(session, issued.user_number, issued.password, late, challenge, NOW) is None


def test_an_unknown_user_number_is_asked_a_card_code_like_anyone(migrated: sessionmaker[Session]) -> None:
    with migrated() as session:
        challenge = challenge_for(session, "99999999")
        assert challenge.kind is TokenKind.CARD and challenge.position is not None
        assert authenticate(session, "99999999", "any password", "ABCDEF", challenge, NOW) is None


def test_a_reset_keeps_the_user_number_and_ends_the_old_secrets(migrated: sessionmaker[Session],
                                                                official_id: int) -> None:
    with migrated() as session:
        first = issue_credentials(session, official_id, TokenKind.CARD)
        second = issue_credentials(session, official_id, TokenKind.TOTP)
        session.commit()
        assert second.user_number == first.user_number and second.password != first.password
        challenge = Challenge(TokenKind.CARD, 1)
        assert authenticate(session, first.user_number, first.password, first.code(1), challenge, NOW) is None
        assert not session.execute(select(PortalCardCode).where(PortalCardCode.official_id == official_id)).first()


def test_a_short_password_is_refused(migrated: sessionmaker[Session], official_id: int) -> None:
    with migrated() as session, pytest.raises(ValueError, match="at least 12"):
        issue_credentials(session, official_id, TokenKind.CARD, password="short")


def test_failures_lock_a_user_number_at_the_threshold_for_the_lockout(migrated: sessionmaker[Session]) -> None:
    key = uuid.uuid4().hex[:12]
    with migrated() as session:
        assert record_failure(session, ThrottleScope.USER, key, NOW, LIMITS) is None
        assert record_failure(session, ThrottleScope.USER, key, NOW + timedelta(seconds=1), LIMITS) is None
        until = record_failure(session, ThrottleScope.USER, key, NOW + timedelta(seconds=2), LIMITS)
        session.commit()
        assert until == NOW + timedelta(seconds=2) + LIMITS.lockout
        assert locked_until(session, ThrottleScope.USER, key, NOW + timedelta(minutes=5)) == until
        assert locked_until(session, ThrottleScope.ADDRESS, key, NOW) is None  # the scopes count apart
        assert locked_until(session, ThrottleScope.USER, key, until + timedelta(seconds=1)) is None
        # after the lockout, counting starts again from nothing
        assert record_failure(session, ThrottleScope.USER, key, until + timedelta(seconds=1), LIMITS) is None


def test_failures_outside_the_window_are_forgotten(migrated: sessionmaker[Session]) -> None:
    key = uuid.uuid4().hex[:12]
    with migrated() as session:
        for minutes in (0, 20, 40):  # each a window after the last
            assert record_failure(session, ThrottleScope.ADDRESS, key, NOW + timedelta(minutes=minutes),
                                  LIMITS) is None
        record_failure(session, ThrottleScope.ADDRESS, key, NOW + timedelta(minutes=41), LIMITS)
        forget_failures(session, ThrottleScope.ADDRESS, key)
        assert record_failure(session, ThrottleScope.ADDRESS, key, NOW + timedelta(minutes=42), LIMITS) is None
        session.commit()


def test_a_session_is_found_by_its_token_which_is_never_stored(migrated: sessionmaker[Session]) -> None:
    with migrated() as session:
        token, row = open_session(session, NOW)
        session.commit()
        assert row.id == session_id(token) and token not in row.id
        found = find_session(session, token, NOW + timedelta(minutes=1), TIMEOUTS)
        assert found.state is SessionState.LIVE and found.row is not None and found.row.official_id is None
        assert find_session(session, token + "x", NOW, TIMEOUTS).state is SessionState.UNKNOWN


def test_a_session_ends_idle_and_at_its_absolute_timeout(migrated: sessionmaker[Session], official_id: int) -> None:
    with migrated() as session:
        idle, _ = open_session(session, NOW, official_id, LogOnMethod.CARD)
        busy, _ = open_session(session, NOW, official_id, LogOnMethod.CARD)
        session.commit()
        assert find_session(session, idle, NOW + timedelta(minutes=16), TIMEOUTS).state is SessionState.EXPIRED
        assert find_session(session, idle, NOW + timedelta(minutes=16), TIMEOUTS).state is SessionState.UNKNOWN
        for minutes in range(10, 8 * 60, 10):  # used every ten minutes: alive until the absolute timeout
            assert find_session(session, busy, NOW + timedelta(minutes=minutes), TIMEOUTS).state is SessionState.LIVE
        session.commit()
        assert find_session(session, busy, NOW + timedelta(hours=8, minutes=1), TIMEOUTS).state is (
            SessionState.EXPIRED)


def test_log_on_rotates_the_token_and_log_out_ends_every_session(migrated: sessionmaker[Session],
                                                                 official_id: int) -> None:
    with migrated() as session:
        anonymous, row = open_session(session, NOW)
        token, _ = log_on(session, row, official_id, LogOnMethod.CERTIFICATE, NOW)
        other, _ = open_session(session, NOW, official_id, LogOnMethod.TOTP)
        session.commit()
        assert token != anonymous
        assert find_session(session, anonymous, NOW, TIMEOUTS).state is SessionState.UNKNOWN
        assert end_all_sessions(session, official_id) == 2
        session.commit()
        for ended in (token, other):
            assert find_session(session, ended, NOW, TIMEOUTS).state is SessionState.UNKNOWN


def test_timed_out_sessions_are_pruned(migrated: sessionmaker[Session]) -> None:
    with migrated() as session:
        old, _ = open_session(session, NOW - timedelta(days=2))
        new, _ = open_session(session, NOW)
        session.commit()
        assert prune_sessions(session, NOW, TIMEOUTS) >= 1
        session.commit()
        assert find_session(session, old, NOW, TIMEOUTS).state is SessionState.UNKNOWN
        assert find_session(session, new, NOW, TIMEOUTS).state is SessionState.LIVE


def test_the_migration_downgrades_and_upgrades_again(own_database_url: str) -> None:
    settings = Settings.from_env({"KRUISPUNT_DATABASE_URL": own_database_url})
    tables = {"portal_credentials", "portal_card_codes", "portal_throttles", "portal_sessions"}
    commands.db_upgrade(settings)
    engine = make_engine(own_database_url)
    assert tables <= set(inspect(engine).get_table_names())
    command.downgrade(commands.alembic_config(own_database_url), "0010")
    assert not tables & set(inspect(engine).get_table_names())
    commands.db_upgrade(settings)
    assert tables <= set(inspect(engine).get_table_names())
    engine.dispose()
