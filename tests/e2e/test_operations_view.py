"""The operator's view, over a real gunicorn with two workers (KRUISPUNT_LOG_FORMAT=json): one JSON line per SOAP
request carrying the ticket of its answer, every line of the log JSON (gunicorn's own too), GET /metrics adding up
both workers' counters and stage histograms, the database gauges computed when scraped (and left out, counted,
when the database is gone), and a master that refuses to start on a bad setting with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from integrator import commands
from integrator.config import Settings
from integrator.database import make_engine, session_factory
from integrator.metrics import Exposition
from integrator.outbox import enqueue
from repository.models import Backend, Circuit
from services.backends.persons import PERSONS
from services.demo_organisations import KRUISDORP, OFFICIALS
from tests.conftest import new_database
from tests.support import PROJECT, TAX_PATH, Request, free_port, gunicorn, wait_for

ON = date(2026, 1, 1)
LOOKUPS_AT_MOST = 40  # signed lookups sent until both workers have answered some


@dataclass
class Watched:
    """An integrator of this module's own (the stack's database and backends), logging JSON to its file."""

    base_url: str
    log: Path
    process: subprocess.Popen

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def request_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == "kruispunt.request"]

    def metrics(self) -> dict[str, Any]:
        response = requests.get(f"{self.base_url}/metrics", timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/plain")
        return {family.name: family for family in text_string_to_metric_families(response.text)}


def start(env: dict[str, str], log: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    process = gunicorn("integrator.faces.wsgi:create_app()", port, env, workers=2, log=log)
    wait_for(f"http://127.0.0.1:{port}/health/live")
    return f"http://127.0.0.1:{port}", process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def watched(stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:  # type: ignore[no-untyped-def]
    log = tmp_path_factory.mktemp("operations") / "integrator.log"
    base_url, process = start(dict(stack.env, KRUISPUNT_LOG_FORMAT="json", KRUISPUNT_ACCESS_LOG="-"), log)
    try:
        yield Watched(base_url, log, process)
    finally:
        stop(process)


def post_on_new_connection(base_url: str, data: bytes) -> requests.Response:
    """A connection of its own (Connection: close), so either worker may take it."""
    with requests.Session() as session:
        return session.post(f"{base_url}{TAX_PATH}", data=data, timeout=60,
                            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""',
                                     "Connection": "close"})


def lookup(stack) -> bytes:  # type: ignore[no-untyped-def]
    return Request(stack.pki.kruisdorp, OFFICIALS[0].insz, PERSONS[0].insz, ON).signed()


def eventually_access_tickets(watched: Watched, expected: set[str], timeout: float = 10.0) -> set[str]:
    """The tickets of the access log's lines, once it shows `expected` (gunicorn writes an access line after the
    answer has gone out, so the last one may not be there yet) or the timeout has passed."""
    deadline = time.monotonic() + timeout
    while True:
        seen = {line.get("ticket") for line in watched.lines() if line["logger"] == "gunicorn.access"}
        if expected <= seen or time.monotonic() > deadline:
            return {ticket for ticket in seen if ticket}
        time.sleep(0.1)


def labels_of(line: dict[str, Any]) -> tuple[str, str, str, str]:
    return (line["service"] or "unknown", line["operation"] or "unknown", line["outcome"], line["fault_code"] or "")


def test_requests_are_logged_as_json_with_their_ticket_and_counted_across_both_workers(stack, watched) -> None:
    tickets: list[str] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(LOOKUPS_AT_MOST // 2):
            for reply in pool.map(lambda data: post_on_new_connection(watched.base_url, data),
                                  [lookup(stack), lookup(stack)]):
                assert reply.status_code == 200, reply.text[:2000]
                tickets.append(reply.headers["X-Kruispunt-Ticket"])
            if len({line["pid"] for line in watched.request_lines()}) == 2:
                break
    refused = post_on_new_connection(watched.base_url, b"<not-a-soap-envelope/>")
    assert refused.status_code == 400
    tickets.append(refused.headers["X-Kruispunt-Ticket"])

    lines = watched.lines()  # every line JSON: gunicorn's, the access log's and the application's
    logged = {line["ticket"]: line for line in lines if line["logger"] == "kruispunt.request"}
    assert sorted(logged) == sorted(tickets)  # one line per request, under the ticket its answer carried
    assert len({line["pid"] for line in logged.values()}) == 2, "both workers answered"
    assert {line["logger"] for line in lines} >= {"gunicorn.error", "gunicorn.access", "kruispunt.request"}
    assert set(tickets) <= eventually_access_tickets(watched, set(tickets))
    for ticket in tickets[:-1]:
        line = logged[ticket]
        assert line["level"] == "INFO" and line["status"] == 200
        assert (line["service"], line["outcome"], line["fault_code"]) == ("TaxExemptionStatus/v1", "OK", None)
        assert line["operation"] and line["organisation"] == KRUISDORP.enterprise_number
        assert line["duration_ms"] > 0 and line["stages"] and "time" in line
    fault = logged[tickets[-1]]
    assert (fault["outcome"], fault["fault_code"], fault["status"]) == ("FAULT", "Client.Envelope.Malformed", 400)

    families = watched.metrics()  # one scrape, answered by one worker, shows what both counted
    counted = {(s.labels["service"], s.labels["operation"], s.labels["outcome"], s.labels["fault_code"]): s.value
               for s in families["kruispunt_requests"].samples if s.name == "kruispunt_requests_total"}
    assert counted == dict(Counter(labels_of(line) for line in logged.values()))
    stages = Counter(stage for line in logged.values() for stage in line["stages"])
    observed = {s.labels["stage"]: s.value for s in families["kruispunt_stage_duration_seconds"].samples
                if s.name == "kruispunt_stage_duration_seconds_count"}
    assert observed == dict(stages) and {"envelope", "security", "audit"} <= set(observed)
    durations = {s.labels["service"]: s.value for s in families["kruispunt_request_duration_seconds"].samples
                 if s.name == "kruispunt_request_duration_seconds_count"}
    assert sum(durations.values()) == len(tickets)
    # TODO(issue 9): once dispatch.py calls metrics.backend_call, assert kruispunt_backend_calls_total counts
    # the lookups' calls to the four reference backends here.


def test_the_database_gauges_are_read_when_scraped(stack, watched) -> None:
    before = watched.metrics()
    with stack.sessions() as session:
        backend = Backend(service=f"Gauges{os.getpid()}{time.monotonic_ns()}/v1", name="gauged",
                          url="http://127.0.0.1:1/", certificate_pem="")
        session.add(backend)
        session.flush()
        session.add(Circuit(backend_id=backend.id, state="open", failures=3,
                            opened_until=datetime.now(UTC) + timedelta(minutes=5)))
        session.commit()
    try:
        after = watched.metrics()
    finally:
        with stack.sessions() as session:
            session.delete(session.get_one(Circuit, backend.id))
            session.delete(session.get_one(Backend, backend.id))
            session.commit()

    def value(families: dict[str, Any], name: str, **labels: str) -> float:
        return next(s.value for s in families[name].samples if s.labels == labels)

    assert value(after, "kruispunt_circuits_open", state="open") == value(before, "kruispunt_circuits_open",
                                                                          state="open") + 1
    for gauge in ("kruispunt_outbox_backlog", "kruispunt_outbox_oldest_pending_age_seconds",
                  "kruispunt_outbox_refused"):
        assert value(after, gauge) >= 0


def test_the_outbox_backlog_gauges_count_what_waits(own_database_url: str) -> None:
    """On an outbox of its own: two entries waiting, the oldest an hour old, one refused."""
    commands.db_upgrade(Settings.from_env({"KRUISPUNT_DATABASE_URL": own_database_url}))
    sessions = session_factory(make_engine(own_database_url))
    now = datetime.now(UTC)
    with sessions() as session:
        for age, state in ((timedelta(hours=1), "PENDING"), (timedelta(minutes=1), "PENDING"),
                           (timedelta(days=2), "REFUSED")):
            entry = enqueue(session, kind="application", service="Applications/v1", backend="b",
                            payload=etree.Element("x"), ticket="KP-test", now=now - age)
            entry.state = state
        session.commit()
    families = {f.name: f for f in text_string_to_metric_families(Exposition(sessions).render().decode())}
    assert families["kruispunt_outbox_backlog"].samples[0].value == 2
    assert families["kruispunt_outbox_refused"].samples[0].value == 1
    assert 3590 < families["kruispunt_outbox_oldest_pending_age_seconds"].samples[0].value < 3700


def test_metrics_still_answer_when_the_database_is_gone(pki, tmp_path_factory: pytest.TempPathFactory) -> None:
    """An integrator on a PostgreSQL database of its own, which is then dropped: /metrics answers all the same,
    without the gauges it could not read, and counts the failures."""
    log = tmp_path_factory.mktemp("metrics-db-gone") / "integrator.log"
    with new_database("postgresql", tmp_path_factory) as url:
        env = dict(os.environ, KRUISPUNT_VAR=str(pki.var_dir), KRUISPUNT_DATABASE_URL=url, KRUISPUNT_ACCESS_LOG="",
                   KRUISPUNT_OUTBOX_INTERVAL_SECONDS="0", KRUISPUNT_LOG_FORMAT="json")
        commands.db_upgrade(Settings.from_env(env))
        base_url, process = start(env, log)
        try:
            assert post_on_new_connection(base_url, b"<not-a-soap-envelope/>").status_code == 400
            healthy = requests.get(f"{base_url}/metrics", timeout=30)
            assert healthy.status_code == 200 and "kruispunt_outbox_backlog " in healthy.text
            admin = make_url(url).set(drivername="postgresql", database="postgres")
            with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{make_url(url).database}" WITH (FORCE)')
            scrapes = [requests.get(f"{base_url}/metrics", timeout=30) for _ in range(2)]
        finally:
            stop(process)
    for scrape in scrapes:
        assert scrape.status_code == 200
        families = {f.name: f for f in text_string_to_metric_families(scrape.text)}
        assert "kruispunt_outbox_backlog" not in families and "kruispunt_circuits_open" not in families
        assert "kruispunt_requests" in families
    errors = {f.name: f for f in text_string_to_metric_families(scrapes[-1].text)}["kruispunt_metrics_scrape_errors"]
    assert errors.samples[0].value == 2  # both failed scrapes, whichever worker answered them


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("KRUISPUNT_MAX_DEPTH", "deep", "a whole number of at least 1"),
    ("KRUISPUNT_LOG_FORMAT", "xml", "one of text, json"),
    ("KRUISPUNT_WORKERS", "0", "a whole number of at least 1"),
])
def test_gunicorn_refuses_to_start_on_a_bad_setting_with_one_line(tmp_path: Path, variable: str, value: str,
                                                                  expected: str) -> None:
    env = dict(os.environ, KRUISPUNT_VAR=str(tmp_path), KRUISPUNT_BIND=f"127.0.0.1:{free_port()}",
               **{variable: value})
    done = subprocess.run([sys.executable, "-m", "gunicorn", "-c", str(PROJECT / "gunicorn.conf.py"),
                           "integrator.faces.wsgi:create_app()"], env=env, cwd=PROJECT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip().splitlines() == [f"kruispunt: {variable}={value!r}: expected {expected}"]
