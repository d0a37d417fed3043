"""Repository, grants, replay memory and audit on SQLite and on PostgreSQL (the `migrated` fixture runs both)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from integrator import commands
from integrator.audit import AuditRecord, write_audit
from integrator.faults import InszInvalid, OutsideRights, Replay, SecurityMissing
from integrator.journey import Journey
from integrator.replay import remember
from repository.models import Certificate, Official
from repository.queries import caller_facts, organisation_by_certificate
from services.backends.persons import make_insz
from services.demo_organisations import enterprise_number

SERVICE = "TaxExemptionStatus"
PURPOSE = "MUNICIPAL_TAX_EXEMPTION"
TODAY = date(2026, 6, 1)


@pytest.fixture
def org(migrated: sessionmaker[Session]) -> tuple[int, str, str]:
    """A fresh organisation of its own with a certificate (fingerprint), so tests never see each other's rows."""
    number = enterprise_number(10_000_000 + uuid.uuid4().int % 9_000_000)
    fingerprint = uuid.uuid4().hex + uuid.uuid4().hex
    with migrated() as session:
        created = commands.add_organisation(session, number, "Testgemeente", "municipality", "11002")
        commands.add_access_right(session, number, SERVICE)
        session.add(Certificate(fingerprint=fingerprint, organisation_id=created.id, subject="CN=test"))
        session.commit()
        return created.id, number, fingerprint


def official_status(session: Session, fingerprint: str, insz: str, service: str, purpose: str,
                    on: date) -> tuple[bool, bool]:
    """(registered, granted) as the request path's one-statement authorisation read sees them."""
    facts = caller_facts(session, fingerprint, insz, service, purpose, on)
    assert facts is not None
    return facts.official_registered, facts.granted


def official(sessions: sessionmaker[Session], number: str, seq: int, **grant: object) -> str:
    insz = make_insz(date(1970, 1, 1) + timedelta(days=seq), seq % 997)
    with sessions() as session:
        commands.add_official(session, number, insz, f"official {seq}")
        if grant:
            commands.add_grant(session, number, insz, SERVICE, str(grant.get("purpose", PURPOSE)),
                               grant.get("valid_from"), grant.get("valid_until"))  # type: ignore[arg-type]
        session.commit()
    return insz


def test_schema_is_at_head_and_upgrade_is_idempotent(migrated: sessionmaker[Session], database_url: str) -> None:
    from integrator.config import Settings

    commands.db_upgrade(Settings.from_env({"KRUISPUNT_DATABASE_URL": database_url}))
    with migrated() as session:
        tables = set(inspect(session.get_bind()).get_table_names())
    assert {"organisations", "certificates", "officials", "grants", "backends", "audit_records",
            "seen_messages", "alembic_version"} <= tables


def test_official_with_current_grant_is_granted(migrated: sessionmaker[Session], org: tuple[int, str, str]) -> None:
    insz = official(migrated, org[1], 1, valid_from=date(2026, 1, 1))
    with migrated() as session:
        assert official_status(session, org[2], insz, SERVICE, PURPOSE, TODAY) == (True, True)


def test_expired_grant_does_not_count(migrated: sessionmaker[Session], org: tuple[int, str, str]) -> None:
    insz = official(migrated, org[1], 2, valid_from=date(2025, 1, 1), valid_until=date(2026, 5, 31))
    with migrated() as session:
        assert official_status(session, org[2], insz, SERVICE, PURPOSE, TODAY) == (True, False)
        assert official_status(session, org[2], insz, SERVICE, PURPOSE, date(2026, 5, 31)) == (True, True)


def test_grant_for_another_purpose_does_not_count(migrated: sessionmaker[Session], org: tuple[int, str, str]) -> None:
    insz = official(migrated, org[1], 3, purpose="SOCIAL_INVESTIGATION")
    with migrated() as session:
        assert official_status(session, org[2], insz, SERVICE, PURPOSE, TODAY) == (True, False)


def test_inactive_official_is_not_registered(migrated: sessionmaker[Session], org: tuple[int, str, str]) -> None:
    insz = official(migrated, org[1], 4, valid_from=date(2026, 1, 1))
    with migrated() as session:
        row = session.execute(select(Official).where(Official.organisation_id == org[0],
                                                     Official.insz == insz)).scalar_one()
        row.active = False
        session.commit()
        assert official_status(session, org[2], insz, SERVICE, PURPOSE, TODAY) == (False, False)


def test_official_of_another_organisation_is_not_registered(migrated: sessionmaker[Session],
                                                            org: tuple[int, str, str]) -> None:
    insz = official(migrated, org[1], 5, valid_from=date(2026, 1, 1))
    with migrated() as session:
        other = commands.add_organisation(session, enterprise_number(10_000_000 + uuid.uuid4().int % 9_000_000),
                                          "Andere gemeente", "municipality", "11004")
        other_fingerprint = uuid.uuid4().hex * 2
        session.add(Certificate(fingerprint=other_fingerprint, organisation_id=other.id, subject="CN=other"))
        session.commit()
        assert official_status(session, other_fingerprint, insz, SERVICE, PURPOSE, TODAY) == (False, False)


def test_grant_outside_the_organisations_access_rights_is_refused(migrated: sessionmaker[Session],
                                                                  org: tuple[int, str, str]) -> None:
    insz = official(migrated, org[1], 6)
    with migrated() as session, pytest.raises(OutsideRights, match="no access right"):
        commands.add_grant(session, org[1], insz, "SomeOtherService", PURPOSE)


def test_invalid_identifiers_are_refused_by_the_commands(migrated: sessionmaker[Session],
                                                         org: tuple[int, str, str]) -> None:
    with migrated() as session:
        with pytest.raises(ValueError):
            commands.add_organisation(session, "0123456789", "Bad", "municipality")
        with pytest.raises(InszInvalid):
            commands.add_official(session, org[1], "85073003329", "bad check digit")


def test_unknown_certificate_has_no_organisation(migrated: sessionmaker[Session]) -> None:
    with migrated() as session:
        assert organisation_by_certificate(session, "0" * 64) is None
        assert caller_facts(session, "0" * 64, "85073003328", SERVICE, PURPOSE, TODAY) is None


def test_access_right_is_read_with_the_caller(migrated: sessionmaker[Session], org: tuple[int, str, str]) -> None:
    with migrated() as session:
        facts = caller_facts(session, org[2], "85073003328", SERVICE, PURPOSE, TODAY)
        other = caller_facts(session, org[2], "85073003328", "NotGranted", PURPOSE, TODAY)
    assert facts is not None and facts.access_right and facts.organisation.enterprise_number == org[1]
    assert other is not None and not other.access_right


def test_replay_memory_refuses_a_key_seen_before(migrated: sessionmaker[Session]) -> None:
    now = datetime.now(UTC)
    key = f"sig:{uuid.uuid4().hex}"
    with migrated() as session:
        remember(session, [key, f"mid:{uuid.uuid4()}"], now + timedelta(minutes=6), now)
    with migrated() as session, pytest.raises(Replay):
        remember(session, [f"mid:{uuid.uuid4()}", key], now + timedelta(minutes=6), now)
    with migrated() as session:
        remember(session, [f"sig:{uuid.uuid4().hex}"], now + timedelta(minutes=6), now)  # still usable after


def test_audit_record_round_trips_with_aware_times(migrated: sessionmaker[Session]) -> None:
    received = datetime.now(UTC).replace(microsecond=0)
    ticket = f"KP-{received:%Y%m%d}-{uuid.uuid4().hex}"
    journey = Journey(ticket, received, "a" * 64)
    values = journey.audit_values(SecurityMissing("unsigned"), received + timedelta(seconds=1), "b" * 64)
    with migrated() as session:
        write_audit(session, values)
        session.commit()
    with migrated() as session:
        record = session.get(AuditRecord, ticket)
    assert record is not None and record.fault_code == "Client.Security.Missing"
    assert record.answered_at.replace(tzinfo=UTC) - record.received_at.replace(tzinfo=UTC) == timedelta(seconds=1)
