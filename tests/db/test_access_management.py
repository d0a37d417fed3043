"""Access management's one set of functions on SQLite and on PostgreSQL: who may act, what they may grant, and
what the request path's one-statement authorisation read makes of each grant state."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command as alembic_command
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session, sessionmaker

from integrator import commands
from integrator.database import make_engine
from integrator.faults import (
    AccessOfficialUnknown,
    AccessServiceUnknown,
    GrantState,
    GrantUnknown,
    LocalAdministratorTaken,
    NotAdministrator,
    OfficialInactive,
    OutsideRights,
    PeriodInvalid,
    ReasonMissing,
    SameApprover,
    SelfGrant,
)
from repository import access_rights, administrators, grants, officials
from repository.actors import Actor
from repository.models import AdministratorRole, Certificate, GrantStatus
from repository.queries import caller_facts
from services.backends.persons import make_insz
from services.demo_organisations import enterprise_number

SERVICE, SENSITIVE, PURPOSE = "TaxExemptionStatus", "BisRegister", "MUNICIPAL_TAX_EXEMPTION"
PUBLISHED = {SERVICE, SENSITIVE, "Metadata"}
DESK = Actor.service_desk("tester")
TODAY = datetime.now(UTC).date()


@dataclass(frozen=True)
class Org:
    id: int
    number: str
    fingerprint: str
    local: Actor  # its local administrator
    co: Actor  # its co-administrator
    clerk: str  # an official who administers nothing


def insz() -> str:
    n = uuid.uuid4().int
    return make_insz(date(1950, 1, 1) + timedelta(days=n % 18_000), 1 + (n >> 20) % 997)


@pytest.fixture
def org(migrated: sessionmaker[Session]) -> Org:
    """A fresh organisation with rights to the tax lookup and a sensitive service, a local administrator, a
    co-administrator and a clerk."""
    number = enterprise_number(10_000_000 + uuid.uuid4().int % 9_000_000)
    fingerprint = uuid.uuid4().hex * 2
    local, co, clerk = insz(), insz(), insz()
    with migrated() as session:
        made = commands.add_organisation(session, number, "Testgemeente", "municipality", "11002")
        session.add(Certificate(fingerprint=fingerprint, organisation_id=made.id, subject="CN=test"))
        for service in (SERVICE, SENSITIVE):
            access_rights.add_access_right(session, DESK, made.id, service, PUBLISHED)
        if not access_rights.is_sensitive(session, SENSITIVE):
            access_rights.mark_sensitive(session, DESK, SENSITIVE, "personal data of persons without NR", PUBLISHED)
        for official in (local, co, clerk):
            officials.register_official(session, DESK, made.id, official, f"official {official}")
        administrators.designate(session, DESK, made.id, local, AdministratorRole.LOCAL)
        administrators.designate(session, DESK, made.id, co, AdministratorRole.CO)
        session.commit()
        return Org(made.id, number, fingerprint, Actor.official(made.id, local), Actor.official(made.id, co), clerk)


def in_effect(session: Session, org: Org, official: str, service: str = SERVICE, on: date = TODAY) -> bool:
    facts = caller_facts(session, org.fingerprint, official, service, PURPOSE, on)
    assert facts is not None
    return facts.granted


def give(session: Session, org: Org, actor: Actor, official: str, service: str = SERVICE,
         start: date = TODAY, end: date | None = None) -> grants.GrantView:
    return grants.grant(session, actor, org.id, official, service, PURPOSE, start, end, "tax office", PUBLISHED)[0]


def test_a_local_administrator_registers_and_grants_with_who_and_why(migrated: sessionmaker[Session],
                                                                    org: Org) -> None:
    new = insz()
    with migrated() as session:
        registered, created = officials.register_official(session, org.local, org.id, new, "Nieuwe collega",
                                                          "nieuw@gemeente.be", "belastingen")
        assert created and (registered.email, registered.department) == ("nieuw@gemeente.be", "belastingen")
        assert registered.registered_by == org.local.label
        assert not in_effect(session, org, new)
        granted = give(session, org, org.local, new)
        session.commit()
    assert (granted.status, granted.granted_by, granted.reason) == (GrantStatus.ACTIVE, org.local.label, "tax office")
    with migrated() as session:
        assert in_effect(session, org, new)
        assert give(session, org, org.local, new).id == granted.id  # the same grant again: nothing new
        assert [g.id for g in grants.list_grants(session, org.co, org.id, new)] == [granted.id]
        assert {o.insz for o in officials.list_officials(session, org.co, org.id)} >= {new, org.clerk}
        listed = administrators.list_administrators(session, org.local, org.id)
        assert [(a.role, a.designated_by) for a in listed if a.official == org.local.insz] == [
            (AdministratorRole.LOCAL, DESK.label)]


def test_a_sensitive_grant_waits_for_a_second_administrator(migrated: sessionmaker[Session], org: Org) -> None:
    with migrated() as session:
        pending = give(session, org, org.local, org.clerk, SENSITIVE)
        session.commit()
        assert pending.status == GrantStatus.PENDING_APPROVAL
        assert not in_effect(session, org, org.clerk, SENSITIVE)
        with pytest.raises(SameApprover):
            grants.approve_grant(session, org.local, org.id, pending.id)
        with pytest.raises(NotAdministrator):
            grants.approve_grant(session, DESK, org.id, pending.id)
        approved = grants.approve_grant(session, org.co, org.id, pending.id)
        session.commit()
        assert (approved.status, approved.approved_by) == (GrantStatus.ACTIVE, org.co.label)
        assert in_effect(session, org, org.clerk, SENSITIVE)
        with pytest.raises(GrantState):
            grants.approve_grant(session, org.co, org.id, pending.id)


def test_nobody_grants_themselves_or_approves_their_own_grant(migrated: sessionmaker[Session], org: Org) -> None:
    with migrated() as session:
        with pytest.raises(SelfGrant):
            give(session, org, org.local, org.local.insz)
        pending = give(session, org, org.local, org.co.insz, SENSITIVE)
        with pytest.raises(SelfGrant):
            grants.approve_grant(session, org.co, org.id, pending.id)


def test_only_administrators_of_the_organisation_act(migrated: sessionmaker[Session], org: Org) -> None:
    clerk = Actor.official(org.id, org.clerk)
    with migrated() as session:
        with pytest.raises(NotAdministrator, match="not an active administrator"):
            give(session, org, clerk, org.co.insz)
        with pytest.raises(NotAdministrator):
            officials.list_officials(session, clerk, org.id)
        with pytest.raises(NotAdministrator, match="service desk"):
            administrators.designate(session, org.local, org.id, org.clerk, AdministratorRole.CO)
        with pytest.raises(NotAdministrator):
            access_rights.add_access_right(session, org.local, org.id, "Metadata", PUBLISHED)
        other = commands.add_organisation(session, enterprise_number(10_000_000 + uuid.uuid4().int % 9_000_000),
                                          "Andere gemeente", "municipality", "11004")
        with pytest.raises(NotAdministrator):  # an administrator of one organisation is nobody at another
            officials.register_official(session, org.local, other.id, insz(), "x")
        officials.deactivate_official(session, DESK, org.id, org.local.insz, "left the municipality")
        with pytest.raises(NotAdministrator):  # a deactivated administrator administers nothing
            give(session, org, org.local, org.clerk)


def test_grants_stay_within_rights_dates_and_known_services(migrated: sessionmaker[Session], org: Org) -> None:
    with migrated() as session:
        with pytest.raises(OutsideRights, match="no access right to service Metadata"):
            give(session, org, org.local, org.clerk, "Metadata")
        with pytest.raises(AccessServiceUnknown):
            give(session, org, org.local, org.clerk, "NoSuchService")
        with pytest.raises(PeriodInvalid):
            give(session, org, org.local, org.clerk, start=TODAY, end=TODAY - timedelta(days=1))
        with pytest.raises(AccessOfficialUnknown):
            give(session, org, org.local, insz())
        with pytest.raises(ReasonMissing):
            grants.grant(session, org.local, org.id, org.clerk, SERVICE, PURPOSE, TODAY, None, " ", PUBLISHED)
        give(session, org, org.local, org.clerk)
        with pytest.raises(GrantState, match="end or revoke it first"):
            give(session, org, org.local, org.clerk, start=TODAY - timedelta(days=3))
        officials.deactivate_official(session, org.local, org.id, org.co.insz, "on leave")
        with pytest.raises(OfficialInactive):
            give(session, org, org.local, org.co.insz)


def test_an_ended_grant_counts_up_to_its_end_and_a_revoked_one_never(migrated: sessionmaker[Session],
                                                                     org: Org) -> None:
    with migrated() as session:
        first = give(session, org, org.local, org.clerk, start=TODAY - timedelta(days=10))
        ended = grants.end_grant(session, org.co, org.id, first.id, TODAY, "moves to another office")
        session.commit()
        assert (ended.status, ended.valid_until, ended.ended_by) == (GrantStatus.ENDED, TODAY, org.co.label)
        assert in_effect(session, org, org.clerk) and not in_effect(session, org, org.clerk, on=TODAY + timedelta(1))
        with pytest.raises(PeriodInvalid):
            grants.end_grant(session, org.co, org.id, first.id, TODAY - timedelta(days=11), "before it started")
        revoked = grants.revoke_grant(session, org.local, org.id, first.id, "misuse reported")
        session.commit()
        assert (revoked.status, revoked.revoke_reason) == (GrantStatus.REVOKED, "misuse reported")
        assert not in_effect(session, org, org.clerk)
        with pytest.raises(GrantState):
            grants.revoke_grant(session, org.local, org.id, first.id, "again")
        again = give(session, org, org.local, org.clerk)  # a new grant after the revoked one: a new record
        session.commit()
        assert again.id != first.id and in_effect(session, org, org.clerk)
        assert [g.status for g in grants.list_grants(session, org.local, org.id, org.clerk)] == [
            GrantStatus.REVOKED, GrantStatus.ACTIVE]


def test_a_deactivated_official_is_refused_and_counts_again_once_reactivated(migrated: sessionmaker[Session],
                                                                             org: Org) -> None:
    with migrated() as session:
        give(session, org, org.local, org.clerk)
        gone = officials.deactivate_official(session, org.local, org.id, org.clerk, "long leave")
        session.commit()
        assert (gone.active, gone.deactivated_by, gone.deactivation_reason) == (False, org.local.label, "long leave")
        assert not in_effect(session, org, org.clerk)
        back = officials.reactivate_official(session, org.co, org.id, org.clerk, "back from leave")
        session.commit()
        assert back.active and back.deactivated_at is None and in_effect(session, org, org.clerk)


def test_grants_of_another_organisation_are_unknown(migrated: sessionmaker[Session], org: Org) -> None:
    with migrated() as session:
        mine = give(session, org, org.local, org.clerk)
        other = commands.add_organisation(session, enterprise_number(10_000_000 + uuid.uuid4().int % 9_000_000),
                                          "Andere gemeente", "municipality", "11004")
        with pytest.raises(GrantUnknown):
            grants.revoke_grant(session, DESK, other.id, mine.id, "wrong organisation")


def test_one_local_administrator_at_a_time(migrated: sessionmaker[Session], org: Org) -> None:
    with migrated() as session:
        with pytest.raises(LocalAdministratorTaken, match=org.local.insz):
            administrators.designate(session, DESK, org.id, org.clerk, AdministratorRole.LOCAL)
        administrators.withdraw(session, DESK, org.id, org.local.insz)
        made = administrators.designate(session, DESK, org.id, org.clerk, AdministratorRole.LOCAL)
        assert made.role == AdministratorRole.LOCAL and made.active


def test_migration_keeps_grants_and_turns_inactive_ones_into_revoked(own_database_url: str) -> None:
    config = commands.alembic_config(own_database_url)
    alembic_command.upgrade(config, "0009")
    engine = make_engine(own_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO organisations (id, enterprise_number, name, kind) "
                              "VALUES (1, '0207123407', 'x', 'municipality')"))
            conn.execute(text("INSERT INTO officials (id, organisation_id, insz, name, active) "
                              "VALUES (1, 1, '75041214531', 'a', true)"))
            conn.execute(text("INSERT INTO grants (official_id, service, purpose, valid_from, active) VALUES "
                              "(1, 'S', 'P', '2020-01-01', true), (1, 'T', 'P', '2020-01-01', false)"))
        alembic_command.upgrade(config, "0010")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT service, status FROM grants ORDER BY service")).all() == [
                ("S", "active"), ("T", "revoked")]
            conn.execute(text("INSERT INTO grants (official_id, service, purpose, valid_from, status) "
                              "VALUES (1, 'S', 'P', '2021-01-01', 'pending-approval')"))  # history: no unique
        assert {"administrators", "sensitive_services"} <= set(inspect(engine).get_table_names())
        alembic_command.downgrade(config, "0009")
        with engine.begin() as conn:  # the newest per official, service and purpose; active when in effect
            assert conn.execute(text("SELECT service, active FROM grants ORDER BY service")).all() == [
                ("S", False), ("T", False)]
        assert "administrators" not in inspect(engine).get_table_names()
        alembic_command.upgrade(config, "head")
    finally:
        engine.dispose()
