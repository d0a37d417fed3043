"""Flat as the data grows, on SQLite and on PostgreSQL: expired replay keys pruned in bounded batches off the request
path, and (PostgreSQL) the audit table partitioned by month, its coming months made, old months retired, and the
migration that partitions it keeping every record."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command as alembic_command
from sqlalchemy import Engine, column, func, insert, inspect, select, table, text
from sqlalchemy.orm import Session, sessionmaker

from integrator import commands, partitions
from integrator.audit import AuditRecord
from integrator.config import Settings
from integrator.database import make_engine, session_factory
from integrator.faces.cli import main
from integrator.faults import Replay
from integrator.maintenance import Maintenance, MaintenancePolicy
from integrator.partitions import month_start, partition_name
from integrator.replay import SeenMessage, prune, prune_batch, remember

NOW = datetime.now(UTC).replace(microsecond=0)
WINDOW = timedelta(minutes=11)


@pytest.fixture
def engine(own_database_url: str) -> Iterator[Engine]:
    """A database of the test's own at Alembic head (pruning and partition work touch the whole table)."""
    commands.db_upgrade(Settings.from_env({"KRUISPUNT_DATABASE_URL": own_database_url}))
    made = make_engine(own_database_url)
    yield made
    made.dispose()


@pytest.fixture
def db(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def postgresql_only(db: sessionmaker[Session]) -> None:
    if db.kw["bind"].dialect.name != "postgresql":
        pytest.skip("audit partitions are a PostgreSQL feature; SQLite keeps a plain table")


def seen(db: sessionmaker[Session], *, expired: int, live: int) -> tuple[list[str], list[str]]:
    """Keys whose window had passed before NOW (spread over the last window) and keys still inside it."""
    old = [f"sig:{uuid.uuid4().hex}{uuid.uuid4().hex}" for _ in range(expired)]
    new = [f"mid:{uuid.uuid4().hex}:{uuid.uuid4()}" for _ in range(live)]
    with db() as session:
        for i, key in enumerate(old):
            session.add(SeenMessage(key=key, expires_at=NOW - WINDOW + timedelta(seconds=i)))
        for i, key in enumerate(new):
            session.add(SeenMessage(key=key, expires_at=NOW + timedelta(days=1, seconds=i)))
        session.commit()
    return old, new


def stored_keys(db: sessionmaker[Session]) -> set[str]:
    with db() as session:
        return set(session.execute(select(SeenMessage.key)).scalars())


def record(ticket: str, received_at: datetime, **extra: object) -> dict[str, object]:
    return {"ticket": ticket, "received_at": received_at, "answered_at": received_at + timedelta(milliseconds=40),
            "outcome": "OK", "request_digest": "a" * 64, "response_digest": "b" * 64, **extra}


def ticket_at(moment: datetime) -> str:
    return f"KP-{moment:%Y%m%d}-{uuid.uuid4().hex}"


def partition_of(session: Session, ticket: str) -> str:
    return str(session.execute(text("SELECT tableoid::regclass FROM audit_records WHERE ticket = :t"),
                               {"t": ticket}).scalar_one())


# --- replay pruning -------------------------------------------------------------------------------------------
def test_expired_keys_are_pruned_in_bounded_batches_and_live_ones_kept(db: sessionmaker[Session]) -> None:
    old, new = seen(db, expired=25, live=7)
    with db() as session:
        assert prune_batch(session, NOW, batch=10) == 10  # one statement deletes at most its batch
    remaining = stored_keys(db)
    assert len(remaining & set(old)) == 15 and set(new) <= remaining
    assert set(old[:10]).isdisjoint(remaining)  # oldest first
    done = prune(db, NOW, batch=10)
    assert (done.deleted, done.batches, done.more) == (15, 2, False)
    assert stored_keys(db) == set(new)


def test_a_prune_stopped_at_its_batch_limit_says_more_remain(db: sessionmaker[Session]) -> None:
    old, new = seen(db, expired=12, live=3)
    done = prune(db, NOW, batch=5, max_batches=2)
    assert (done.deleted, done.batches, done.more) == (10, 2, True)
    assert len(stored_keys(db) & set(old)) == 2 and set(new) <= stored_keys(db)


def test_a_replay_inside_the_window_is_refused_after_a_prune(db: sessionmaker[Session]) -> None:
    seen(db, expired=30, live=0)
    key = f"sig:{uuid.uuid4().hex}"
    with db() as session:
        remember(session, [key, f"mid:{uuid.uuid4()}"], NOW + WINDOW, NOW)
    later = NOW + timedelta(minutes=5)
    assert prune(db, later).deleted == 30
    with db() as session, pytest.raises(Replay):
        remember(session, [f"mid:{uuid.uuid4()}", key], later + WINDOW, later)
    assert key in stored_keys(db)


def test_a_refused_message_keeps_none_of_its_keys(db: sessionmaker[Session]) -> None:
    key, fresh = f"sig:{uuid.uuid4().hex}", f"mid:{uuid.uuid4()}"
    with db() as session:
        remember(session, [key], NOW + WINDOW, NOW)
    with db() as session, pytest.raises(Replay):
        remember(session, [fresh, key], NOW + WINDOW, NOW)
    assert fresh not in stored_keys(db)
    with db() as session:
        remember(session, [fresh], NOW + WINDOW, NOW)  # the message id is still free for a new message


def test_a_key_whose_window_has_passed_is_free_before_any_prune(db: sessionmaker[Session]) -> None:
    """Refusals do not depend on when the maintenance step last ran."""
    key = f"mid:{uuid.uuid4().hex}:{uuid.uuid4()}"
    with db() as session:
        remember(session, [key], NOW + timedelta(minutes=1), NOW)
    later = NOW + timedelta(minutes=2)
    with db() as session:
        remember(session, [key], later + WINDOW, later)
    with db() as session:
        assert session.get_one(SeenMessage, key).expires_at.replace(tzinfo=UTC) == later + WINDOW
    with db() as session, pytest.raises(Replay):
        remember(session, [key], later + WINDOW, later)


def test_a_maintenance_round_prunes_up_to_its_limit(db: sessionmaker[Session]) -> None:
    _, new = seen(db, expired=9, live=2)
    rounds = Maintenance(db, MaintenancePolicy(prune_batch=4, prune_max_batches=2))
    first = rounds.run_once(NOW)
    assert (first.pruned.deleted, first.pruned.more) == (8, True)
    second = rounds.run_once(NOW)
    assert (second.pruned.deleted, second.pruned.more) == (1, False)
    assert stored_keys(db) == set(new)


def test_kruispunt_maintenance_prune(db: sessionmaker[Session], own_database_url: str,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, new = seen(db, expired=7, live=2)  # expired before NOW, so before the command's own clock
    monkeypatch.setenv("KRUISPUNT_DATABASE_URL", own_database_url)
    assert main(["maintenance", "prune", "--batch", "3"]) == 0
    assert "pruned 7 expired replay key(s) in 3 batch(es) of at most 3" in capsys.readouterr().out
    assert stored_keys(db) == set(new)


# --- audit partitions -----------------------------------------------------------------------------------------
def test_audit_records_are_partitioned_by_month_on_postgresql(db: sessionmaker[Session]) -> None:
    ticket = ticket_at(NOW)
    with db() as session:
        session.execute(insert(AuditRecord).values(record(ticket, NOW)))
        session.commit()
    with db() as session:
        found = session.get(AuditRecord, ticket)  # found by its ticket alone on both databases
        assert found is not None and found.outcome == "OK"
        if session.get_bind().dialect.name != "postgresql":
            assert not partitions.is_partitioned(session) and partitions.partitions(session) == []
            assert partitions.ensure_ahead(session, NOW, 3) == []
            assert inspect(session.get_bind()).get_pk_constraint("audit_records")["constrained_columns"] == ["ticket"]
            return
        assert partitions.is_partitioned(session)
        assert inspect(session.get_bind()).get_pk_constraint("audit_records")["constrained_columns"] == [
            "ticket", "received_at"]
        names = [p.name for p in partitions.partitions(session)]
        assert names == [partition_name(month_start(NOW, n)) for n in range(4)] + ["audit_records_default"]
        assert partition_of(session, ticket) == partition_name(month_start(NOW))


def test_a_record_of_next_month_lands_in_its_partition(db: sessionmaker[Session]) -> None:
    postgresql_only(db)
    at = month_start(NOW, 1) + timedelta(days=3, hours=5)
    ticket = ticket_at(at)
    with db() as session:
        session.add(AuditRecord(**record(ticket, at)))
        session.commit()
        assert partition_of(session, ticket) == partition_name(month_start(NOW, 1))
        assert session.execute(select(func.count()).select_from(text("audit_records_default"))).scalar() == 0


def test_the_maintenance_step_makes_the_coming_months(db: sessionmaker[Session]) -> None:
    postgresql_only(db)
    step = Maintenance(db, MaintenancePolicy(partitions_ahead=6))
    assert step.run_once(NOW).made == [partition_name(month_start(NOW, n)) for n in (4, 5, 6)]
    assert Maintenance(db, MaintenancePolicy(partitions_ahead=6)).run_once(NOW).made == []  # already made
    later = month_start(NOW, 6) + timedelta(days=1)  # half a year on, the migration's months are all past
    assert step.run_once(later).made == []  # checked at most every partition_check_seconds
    assert Maintenance(db, MaintenancePolicy(partitions_ahead=2)).run_once(later).made == [
        partition_name(month_start(NOW, n)) for n in (7, 8)]


def test_a_month_whose_records_went_to_the_default_partition_is_made_by_moving_them(
        db: sessionmaker[Session]) -> None:
    postgresql_only(db)
    at = month_start(NOW, 10) + timedelta(days=2)
    stray, other = ticket_at(at), ticket_at(month_start(NOW, 11))
    with db() as session:
        session.execute(insert(AuditRecord), [record(stray, at, person="48021420212"), record(other, at + timedelta(
            days=31))])
        session.commit()
        assert partition_of(session, stray) == "audit_records_default"
        assert partitions.ensure_months(session, at, at) == [partition_name(month_start(at))]
    with db() as session:
        assert partition_of(session, stray) == partition_name(month_start(at))
        assert partition_of(session, other) == "audit_records_default"  # not this month's
        moved = session.get_one(AuditRecord, stray)
        assert moved.person == "48021420212" and moved.received_at == at
        indexed = session.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = :name"),
                                  {"name": partition_name(month_start(at))}).scalars().all()
        assert len(indexed) == 3  # the primary key and the two indexes, as every partition


def test_retention_detaches_only_the_months_past_it(db: sessionmaker[Session]) -> None:
    postgresql_only(db)
    old_month = month_start(NOW, -28)
    old, recent = ticket_at(old_month), ticket_at(NOW)
    with db() as session:
        assert len(partitions.ensure_months(session, month_start(NOW, -30), month_start(NOW, -23))) == 8
        session.execute(insert(AuditRecord), [record(old, old_month + timedelta(hours=1)), record(recent, NOW)])
        session.commit()
        assert partitions.retire(session, NOW, 0) == []  # off
        before = {p.name for p in partitions.partitions(session)}
        retired = partitions.retire(session, NOW, 24)
    expected = [partition_name(month_start(NOW, n)) for n in range(-30, -24)]  # ended before NOW's month - 24
    assert retired == expected
    with db() as session:
        assert {p.name for p in partitions.partitions(session)} == before - set(expected)
        assert partitions.detached(session) == expected
        assert session.get(AuditRecord, old) is None and session.get(AuditRecord, recent) is not None
        kept = session.execute(text(f"SELECT count(*) FROM {partition_name(old_month)} WHERE ticket = :t"),
                               {"t": old}).scalar()
        assert kept == 1  # detached, not gone: archive it, then drop it
        assert partitions.retire(session, NOW, 23, drop=True) == [partition_name(month_start(NOW, -24))]
        assert partitions.detached(session) == expected  # the dropped one is gone altogether


def test_kruispunt_maintenance_partitions_lists_and_makes(db: sessionmaker[Session], own_database_url: str,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KRUISPUNT_DATABASE_URL", own_database_url)
    assert main(["maintenance", "partitions", "--ahead", "5"]) == 0
    out = capsys.readouterr().out
    if db.kw["bind"].dialect.name != "postgresql":
        assert "plain table" in out
        return
    assert f"made {partition_name(month_start(NOW, 4))}" in out and f"made {partition_name(month_start(NOW, 5))}" in out
    assert "audit_records_default" in out and "DEFAULT" in out


# --- the migration --------------------------------------------------------------------------------------------
COLUMNS_AT_0008 = [c.name for c in AuditRecord.__table__.columns if c.name != "channel"]  # channel: 0012
AUDIT_AT_0008 = table("audit_records", *(column(name) for name in COLUMNS_AT_0008))


def audit_rows(session: Session) -> list[tuple[object, ...]]:
    rows = session.execute(text(f"SELECT {', '.join(COLUMNS_AT_0008)} FROM audit_records ORDER BY ticket")).all()
    return [tuple(row) for row in rows]


def test_upgrade_of_a_populated_database_keeps_every_record(own_database_url: str) -> None:
    config = commands.alembic_config(own_database_url)
    alembic_command.upgrade(config, "0008")
    engine = make_engine(own_database_url)
    db = session_factory(engine)
    moments = [month_start(NOW, -m) + timedelta(days=d, hours=m) for m in range(0, 14, 3) for d in (0, 9, 27)]
    moments += [month_start(NOW, 60) + timedelta(days=1)]  # beyond every partition made: the default one
    with db() as session:
        session.execute(insert(AUDIT_AT_0008), [
            record(ticket_at(at), at, organisation="0207123407", person=f"{i:011d}", detail=f"record {i}",
                   fault_code=None if i % 3 else "Client.Security.Missing") for i, at in enumerate(moments)])
        session.commit()
        before = audit_rows(session)
    alembic_command.upgrade(config, "head")
    try:
        with db() as session:
            assert audit_rows(session) == before
            # the records kept came as signed SOAP envelopes: migration 0012 says so in their channel
            assert session.execute(text("SELECT DISTINCT channel FROM audit_records")).scalars().all() == ["soap"]
            if session.get_bind().dialect.name == "postgresql":
                made = [p.name for p in partitions.partitions(session)]
                assert made == [partition_name(month_start(NOW, n)) for n in range(-12, 4)] + [
                    "audit_records_default"]
                for ticket, at in session.execute(select(AuditRecord.ticket, AuditRecord.received_at)).all():
                    wanted = "audit_records_default" if at >= month_start(NOW, 4) else partition_name(month_start(at))
                    assert partition_of(session, ticket) == wanted
                assert session.execute(text("SELECT to_regclass('audit_records_unpartitioned')")).scalar() is None
        alembic_command.downgrade(config, "0008")
        with db() as session:
            assert audit_rows(session) == before
            assert not partitions.is_partitioned(session)
            assert inspect(engine).get_pk_constraint("audit_records")["constrained_columns"] == ["ticket"]
            assert {i["name"] for i in inspect(engine).get_indexes("audit_records")} == {
                "ix_audit_records_organisation", "ix_audit_records_person"}
    finally:
        engine.dispose()
