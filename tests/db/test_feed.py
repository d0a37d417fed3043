"""The change feed and compiled contracts under concurrency, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from integrator import commands
from integrator.routes import Routes
from repository import registry
from tests.support import PROJECT

OWNER = "0200000043"


def docs():  # type: ignore[no-untyped-def]
    return commands.read_documents(PROJECT / "wsdl" / "StatusSource-v1.wsdl", PROJECT)


def test_feed_numbers_follow_commit_order(migrated: sessionmaker[Session]) -> None:
    """A change numbered later must not become visible before one numbered earlier: a peer whose cursor passed
    the earlier number would never see it."""
    first, second = f"Feed{uuid.uuid4().hex[:8]}", f"Feed{uuid.uuid4().hex[:8]}"
    holder = migrated()
    registry.register_version(holder, first, "1.0", docs(), owner=OWNER, federated=True)  # not committed yet
    started, done = threading.Event(), threading.Event()

    def later() -> None:
        with migrated() as session:
            started.set()
            registry.register_version(session, second, "1.0", docs(), owner=OWNER, federated=True)
            session.commit()
        done.set()

    worker = threading.Thread(target=later)
    worker.start()
    started.wait(5)
    assert not done.wait(1.0), "a second writer of the feed went ahead while the first had not committed"
    holder.commit()
    holder.close()
    worker.join(30)
    assert done.is_set()
    with migrated() as session:
        seqs = {v.name: v.change_seq for v in registry.list_versions(session) if v.name in (first, second)}
    assert seqs[first] < seqs[second]


def test_concurrent_first_calls_compile_a_contract_once_and_all_succeed(migrated: sessionmaker[Session],
                                                                        tmp_path: Path) -> None:
    name = f"Compile{uuid.uuid4().hex[:8]}"
    with migrated() as session:
        registry.register_version(session, name, "1.0", docs(), owner=OWNER)
        registry.set_lifecycle(session, name, "1.0", "active")
        session.commit()
    routes = Routes([], PROJECT / "xsd", migrated, tmp_path / "cache", cache_seconds=0)
    with ThreadPoolExecutor(max_workers=8) as pool:
        resolved = list(pool.map(lambda _: routes.resolve(f"/soap/{name}/v1"), range(16)))
    assert {id(r.contract) for r in resolved} == {id(resolved[0].contract)}  # compiled once, shared
    assert all(r.operation("{urn:kruispunt:backends:StatusSource:v1}get_statuses") for r in resolved)
