"""Prometheus metrics: requests, stage and request latency, backend calls, and (computed at scrape time from the
database) open circuits and the outbox backlog.

Under gunicorn, gunicorn.conf.py gives every master a fresh PROMETHEUS_MULTIPROC_DIR before its workers start:
each worker writes its counters and histograms there, and GET /metrics on any worker adds up all of them. Without
it (an application built in-process), the process's own registry is shown."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import cache, lru_cache

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from integrator import faults
from integrator.outbox import PENDING, REFUSED, OutboxEntry
from repository.base import aware
from repository.models import Circuit

log = logging.getLogger("kruispunt.metrics")
CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
OUTCOMES = ("OK", "PARTIAL", "FAULT")
OTHER = "other"  # a fault code or outcome outside the known set (a peer's own code, passed on)
UNKNOWN = "unknown"  # a request refused before its service or operation was known
FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@cache
def _fault_codes() -> frozenset[str]:
    """Every code of the one fault family (integrator/faults.py and the services' own): a bounded label. Read at
    the first request, once the services are imported."""
    found, todo = set(), [faults.KruispuntFault]
    while todo:
        cls = todo.pop()
        found.add(cls.CODE)
        todo.extend(cls.__subclasses__())
    return frozenset(found)


REQUESTS = Counter("kruispunt_requests", "SOAP requests answered, by service, operation, outcome and fault code",
                   ["service", "operation", "outcome", "fault_code"])
REQUEST_SECONDS = Histogram("kruispunt_request_duration_seconds", "Whole handling time of a SOAP request",
                            ["service"], buckets=FAST)
STAGE_SECONDS = Histogram("kruispunt_stage_duration_seconds", "Time a SOAP request spent in each pipeline stage",
                          ["stage"], buckets=FAST)
BACKEND_CALLS = Counter("kruispunt_backend_calls", "Calls to backends, by backend and outcome",
                        ["backend", "outcome"])
BACKEND_SECONDS = Histogram("kruispunt_backend_call_duration_seconds", "Duration of a call to a backend",
                            ["backend"], buckets=FAST)
SCRAPE_ERRORS = Counter("kruispunt_metrics_scrape_errors",
                        "Scrapes whose database gauges (circuits, outbox) could not be read and were left out")


def request(service: str | None, operation: str | None, outcome: str, fault_code: str | None, seconds: float,
            stages: Iterable[tuple[str, float]] = ()) -> None:
    """Count one answered SOAP request and its latencies (from the pipeline's Reply)."""
    service = service or UNKNOWN
    code = "" if fault_code is None else fault_code if fault_code in _fault_codes() else OTHER
    _child(REQUESTS, service, operation or UNKNOWN, outcome if outcome in OUTCOMES else OTHER, code).inc()
    _child(REQUEST_SECONDS, service).observe(seconds)
    for stage, stage_seconds in stages:
        _child(STAGE_SECONDS, stage).observe(stage_seconds)


@lru_cache(maxsize=4096)
def _child(metric: Counter | Histogram, *labels: str) -> Counter | Histogram:
    """The metric's child for these label values, looked up once (labels() takes a lock and builds a key on every
    call; every label here has a bounded set of values)."""
    return metric.labels(*labels)


RSA = Counter("kruispunt_rsa_operations", "RSA signatures made (sign) and checked (verify) by the integrator",
              ["operation"])


def rsa_operation(operation: str) -> None:
    """One RSA signature made or checked (integrator/wssec/dsig.py tells, once the face has wired it)."""
    _child(RSA, operation).inc()


def backend_call(backend: str, outcome: str, seconds: float) -> None:
    """Count one call to a backend (outcome e.g. OK, or the fault code it ended in) and observe its duration."""
    _child(BACKEND_CALLS, backend, outcome).inc()
    _child(BACKEND_SECONDS, backend).observe(seconds)


class DatabaseGauges:
    """Open circuits and the outbox backlog, read from the database when scraped. If the database cannot be read,
    the gauges are left out and kruispunt_metrics_scrape_errors_total counts it: /metrics itself still answers."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = self._read()
        except Exception as error:  # the database is down or not migrated: the rest of /metrics still counts
            log.warning("metrics: database gauges left out: %s", error.__class__.__name__)
            SCRAPE_ERRORS.inc()
            return iter(())
        return iter(metrics)

    def _read(self) -> list[Metric]:
        now = datetime.now(UTC)
        with self.sessions() as session:
            circuits: dict[str, int] = {
                state: count for state, count in session.execute(
                    select(Circuit.state, func.count()).where(Circuit.state != "closed").group_by(Circuit.state))}
            pending, oldest = session.execute(select(func.count(), func.min(OutboxEntry.created_at))
                                              .where(OutboxEntry.state == PENDING)).one()
            refused = session.execute(select(func.count()).where(OutboxEntry.state == REFUSED)).scalar_one()
        open_circuits = GaugeMetricFamily("kruispunt_circuits_open", "Backend circuits not closed, by state",
                                          labels=["state"])
        for state in ("open", "half-open"):
            open_circuits.add_metric([state], circuits.get(state, 0))
        oldest_at = aware(oldest) if isinstance(oldest, datetime) else None
        age = max((now - oldest_at).total_seconds(), 0.0) if oldest_at is not None else 0.0
        return [
            open_circuits,
            GaugeMetricFamily("kruispunt_outbox_backlog", "Outbox entries waiting for delivery (PENDING)",
                              value=pending),
            GaugeMetricFamily("kruispunt_outbox_oldest_pending_age_seconds",
                              "Age of the oldest outbox entry waiting for delivery (0: none waits)", value=age),
            GaugeMetricFamily("kruispunt_outbox_refused", "Outbox entries their backend refused (REFUSED)",
                              value=refused),
        ]


class Exposition:
    """What GET /metrics shows: the database gauges, then every worker's counters (multiprocess mode) or this
    process's (no PROMETHEUS_MULTIPROC_DIR). Read in that order, so a failing database read counts in the very
    scrape it failed in."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.gauges = DatabaseGauges(sessions)

    def collect(self) -> Iterator[Metric]:
        yield from list(self.gauges.collect())
        path = os.environ.get(MULTIPROC_VARIABLE)
        if path and os.path.isdir(path):
            yield from MultiProcessCollector(None, path).collect()
        else:
            yield from REGISTRY.collect()

    def render(self) -> bytes:
        return generate_latest(self)  # type: ignore[arg-type]
