"""Store and forward on SQLite and on PostgreSQL: one deliverer at a time, a dead deliverer taken over after its
lease, back-off while the backend is down, a refusal kept as such; against a real HTTP backend on loopback."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from integrator import commands
from integrator.circuit import CircuitBreaker
from integrator.config import Settings
from integrator.database import make_engine, session_factory
from integrator.dispatch import Dispatcher
from integrator.envelope import EnvelopeLimits
from integrator.faces.cli import main
from integrator.outbox import DELIVERED, PENDING, REFUSED, Forwarder, OutboxEntry, backoff, enqueue, state_of
from integrator.wssec.sign import SigningKey
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import SecurityPolicy
from tests.conftest import Pki, new_database
from tests.support import answering_server, free_port

NS = "urn:test:outbox"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def outbox_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this module's own: a round delivers every due entry, so the integrators the end-to-end tests
    run must not share the outbox these tests drive."""
    with new_database(request.param, tmp_path_factory) as url:
        commands.db_upgrade(Settings.from_env({"KRUISPUNT_DATABASE_URL": url}))
        yield url


@pytest.fixture(scope="module")
def outbox_db(outbox_url: str) -> sessionmaker[Session]:
    return session_factory(make_engine(outbox_url))


def envelope(body: str) -> bytes:
    return (f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>{body}</s:Body>'
            "</s:Envelope>").encode()


def accepted(request: bytes) -> bytes:
    """Echo the delivery's reference back, as an idempotent receiver's acknowledgement."""
    reference = etree.fromstring(request).findtext(f".//{{{NS}}}Reference")
    return envelope(f'<a:Accepted xmlns:a="{NS}"><a:Reference>{reference}</a:Reference></a:Accepted>')


def refused(_request: bytes) -> bytes:
    return envelope("<s:Fault><faultcode>s:Client</faultcode><faultstring>file number already closed</faultstring>"
                    "</s:Fault>")


def forwarder(sessions: sessionmaker[Session], pki: Pki, lease: timedelta = timedelta(seconds=60)) -> Forwarder:
    key = SigningKey.from_identity(pki.integrator)
    trust = TrustStore.from_files([pki.ca.cert_path], pki.var_dir / "pki" / "ca.crl")
    dispatcher = Dispatcher(sessions, CircuitBreaker(sessions), key, trust, SecurityPolicy(), EnvelopeLimits(),
                            cache_seconds=0)
    return Forwarder(sessions, dispatcher, lease, interval_seconds=0)


@contextmanager
def backend_at(sessions: sessionmaker[Session], pki: Pki, url: str) -> Iterator[str]:
    """A service whose one backend (no message security: the HTTP server here does not sign) is at url."""
    service = f"Outbox{uuid.uuid4().hex[:8]}/v1"
    with sessions() as session:
        commands.add_backend(session, service, "intake", url, pki.integrator.cert_path.read_bytes(),
                             timeout_seconds=5, security="none")
        session.commit()
    yield service


def queued(sessions: sessionmaker[Session], service: str) -> int:
    payload = etree.Element(f"{{{NS}}}Deliver")
    etree.SubElement(payload, f"{{{NS}}}Reference").text = uuid.uuid4().hex
    with sessions() as session:
        entry = enqueue(session, kind="test", service=service, backend="intake", payload=payload,
                        ticket=f"T-{uuid.uuid4().hex[:12]}", now=datetime.now(UTC))
        session.commit()
        return entry.id


def with_server(answer: Callable[[bytes], bytes]):  # type: ignore[no-untyped-def]
    return answering_server(answer)


def test_an_entry_is_delivered_once_with_its_answer_kept(outbox_db: sessionmaker[Session], pki: Pki) -> None:
    with with_server(accepted) as (url, received), backend_at(outbox_db, pki, url) as service:
        entry = queued(outbox_db, service)
        first = forwarder(outbox_db, pki).deliver(entry)
        again = forwarder(outbox_db, pki).deliver(entry)
    assert first.state == DELIVERED and first.attempts == 1
    assert first.answer is not None and first.answer.findtext(f"{{{NS}}}Reference") is not None
    assert again.state == DELIVERED and again.answer is not None  # nothing sent a second time
    assert len(received) == 1
    with outbox_db() as session:
        assert state_of(session, entry).delivered_at is not None


def test_a_backend_that_is_down_leaves_the_entry_pending_with_back_off_then_it_is_delivered(
        outbox_db: sessionmaker[Session], pki: Pki) -> None:
    port = free_port()  # nothing listens here yet
    with backend_at(outbox_db, pki, f"http://127.0.0.1:{port}/") as service:
        entry = queued(outbox_db, service)
        deliverer = forwarder(outbox_db, pki)
        down = deliverer.deliver(entry)
        assert down.state == PENDING and down.attempts == 1
        assert down.last_error and "Server.Backend.Unavailable" in down.last_error
        assert deliverer.deliver_due() == []  # backing off: not due yet
        with outbox_db() as session:
            due = state_of(session, entry)
            row = session.get_one(OutboxEntry, entry)
            assert row.lease_owner is None  # the lease is given back
            session.execute(update(OutboxEntry).where(OutboxEntry.id == entry)
                            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
            session.commit()
        assert due.state == PENDING
        with with_server(accepted) as (url, received):
            with outbox_db() as session:
                commands.add_backend(session, service, "intake", url, pki.integrator.cert_path.read_bytes(),
                                     security="none")
                session.commit()
            delivered = deliverer.deliver_due()
    assert [d.id for d in delivered if d.state == DELIVERED] == [entry]
    assert len(received) == 1


def test_a_leased_entry_is_not_delivered_by_another_worker_until_the_lease_runs_out(
        outbox_db: sessionmaker[Session], pki: Pki) -> None:
    """A worker killed while delivering holds its lease; another takes over only once it has run out."""
    with with_server(accepted) as (url, received), backend_at(outbox_db, pki, url) as service:
        entry = queued(outbox_db, service)
        with outbox_db() as session:  # a deliverer (host:pid) claimed it and died
            session.execute(update(OutboxEntry).where(OutboxEntry.id == entry).values(
                lease_owner="elsewhere:4242", lease_until=datetime.now(UTC) + timedelta(minutes=5), attempts=1))
            session.commit()
        survivor = forwarder(outbox_db, pki)
        held = survivor.deliver(entry)
        assert held.state == PENDING and received == []
        assert survivor.deliver_due() == []
        with outbox_db() as session:
            session.execute(update(OutboxEntry).where(OutboxEntry.id == entry)
                            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
            session.commit()
        taken_over = survivor.deliver_due()
    assert [(d.id, d.state, d.attempts) for d in taken_over] == [(entry, DELIVERED, 2)]
    assert len(received) == 1


def test_concurrent_deliverers_send_an_entry_once(outbox_db: sessionmaker[Session], pki: Pki) -> None:
    gate = threading.Event()

    def slow(request: bytes) -> bytes:
        gate.wait(5)
        return accepted(request)

    with with_server(slow) as (url, received), backend_at(outbox_db, pki, url) as service:
        entry = queued(outbox_db, service)
        results: list[str] = []
        threads = [threading.Thread(target=lambda: results.append(forwarder(outbox_db, pki).deliver(entry).state))
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        while not received and any(t.is_alive() for t in threads):
            threading.Event().wait(0.05)
        gate.set()
        for thread in threads:
            thread.join(30)
    assert len(received) == 1
    assert results.count(DELIVERED) >= 1 and set(results) <= {DELIVERED, PENDING}


def test_a_refusal_is_kept_and_not_retried(outbox_db: sessionmaker[Session], pki: Pki) -> None:
    with with_server(refused) as (url, received), backend_at(outbox_db, pki, url) as service:
        entry = queued(outbox_db, service)
        deliverer = forwarder(outbox_db, pki)
        outcome = deliverer.deliver(entry)
        assert deliverer.deliver(entry).state == REFUSED
        assert entry not in [d.id for d in deliverer.deliver_due()]
    assert outcome.state == REFUSED
    assert outcome.last_error and "file number already closed" in outcome.last_error
    assert len(received) == 1


def test_backoff_grows_and_is_bounded() -> None:
    steps = [backoff(n) for n in range(1, 30)]
    assert steps == sorted(steps)
    assert steps[0] == timedelta(seconds=2) and steps[-1] == timedelta(minutes=5)


def test_operators_list_and_deliver_from_the_command_line(outbox_db: sessionmaker[Session], pki: Pki,
                                                          outbox_url: str, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KRUISPUNT_DATABASE_URL", outbox_url)
    monkeypatch.setenv("KRUISPUNT_VAR", str(pki.var_dir))
    with with_server(accepted) as (url, received), backend_at(outbox_db, pki, url) as service:
        entry = queued(outbox_db, service)
        assert main(["outbox", "list", "--state", "PENDING", "--limit", "1000"]) == 0
        listed = capsys.readouterr().out
        assert f"{entry:>6} PENDING" in listed and service in listed
        assert main(["outbox", "deliver"]) == 0
        delivered = capsys.readouterr().out
    assert f"{entry:>6} DELIVERED" in delivered
    assert len(received) == 1
    with outbox_db() as session:
        assert state_of(session, entry).state == DELIVERED


def test_a_round_tries_a_failing_backend_once_and_its_recovery_makes_the_rest_due(
        outbox_db: sessionmaker[Session], pki: Pki) -> None:
    """While a backend is down a round costs it one attempt, not one per entry; when an entry that had failed
    gets through, the backend's other entries are due at once instead of after their back-off."""
    port = free_port()
    with backend_at(outbox_db, pki, f"http://127.0.0.1:{port}/") as service:
        entries = [queued(outbox_db, service) for _ in range(3)]
        deliverer = forwarder(outbox_db, pki)
        round_ = deliverer.deliver_due(limit=1000)
        mine = [d for d in round_ if d.id in entries]
        assert [(d.id, d.state, d.tried) for d in mine] == [(entries[0], PENDING, True)]
        with outbox_db() as session:
            assert [session.get_one(OutboxEntry, e).attempts for e in entries] == [1, 0, 0]
            # time passes: the first entry is due again, the others are backing off after a failure of their own
            session.execute(update(OutboxEntry).where(OutboxEntry.id == entries[0])
                            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
            session.execute(update(OutboxEntry).where(OutboxEntry.id.in_(entries[1:]))
                            .values(next_attempt_at=datetime.now(UTC) + timedelta(minutes=5), attempts=4))
            session.commit()
        not_due = deliverer.deliver(entries[1], only_if_due=True)
        assert (not_due.state, not_due.tried, not_due.attempts) == (PENDING, False, 4)
        with with_server(accepted) as (url, received):
            with outbox_db() as session:
                commands.add_backend(session, service, "intake", url, pki.integrator.cert_path.read_bytes(),
                                     security="none")
                session.commit()
            first = [d for d in deliverer.deliver_due(limit=1000) if d.id in entries]
            assert [(d.id, d.state) for d in first] == [(entries[0], DELIVERED)]
            rest = [d for d in deliverer.deliver_due(limit=1000) if d.id in entries]
    assert [(d.id, d.state) for d in rest] == [(entries[1], DELIVERED), (entries[2], DELIVERED)]
    assert len(received) == 3
