"""The metrics module on its own: backend calls, requests with bounded labels, and a scrape that still answers when
the database cannot be read."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from integrator import faults, metrics
from integrator.database import make_engine, session_factory


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_backend_call_is_counted_by_backend_and_outcome_with_its_duration() -> None:
    # TODO(issue 9): once dispatch.py calls metrics.backend_call, check kruispunt_backend_calls_total after a lookup
    # over gunicorn in tests/e2e/test_operations_view.py too.
    backend = f"backend-{uuid.uuid4().hex[:8]}"
    metrics.backend_call(backend, "OK", 0.02)
    metrics.backend_call(backend, "OK", 0.03)
    metrics.backend_call(backend, "Server.Backend.Timeout", 5.0)
    assert sample("kruispunt_backend_calls_total", backend=backend, outcome="OK") == 2
    assert sample("kruispunt_backend_calls_total", backend=backend, outcome="Server.Backend.Timeout") == 1
    assert sample("kruispunt_backend_call_duration_seconds_count", backend=backend) == 3
    assert abs(sample("kruispunt_backend_call_duration_seconds_sum", backend=backend) - 5.05) < 1e-9
    assert sample("kruispunt_backend_call_duration_seconds_bucket", backend=backend, le="0.05") == 2


def test_a_request_is_counted_with_its_stages_and_labels_that_stay_bounded() -> None:
    service = f"Test{uuid.uuid4().hex[:8]}/v1"
    metrics.request(service, "Lookup", "OK", None, 0.04, (("envelope", 0.001), ("handle", 0.03)))
    metrics.request(service, None, "FAULT", "Client.Envelope.Malformed", 0.002)
    metrics.request(service, "Lookup", "FAULT", "Peer.Invented.Code", 0.01)  # a peer's own code, passed on
    assert sample("kruispunt_requests_total", service=service, operation="Lookup", outcome="OK", fault_code="") == 1
    assert sample("kruispunt_requests_total", service=service, operation="unknown", outcome="FAULT",
                  fault_code="Client.Envelope.Malformed") == 1
    assert sample("kruispunt_requests_total", service=service, operation="Lookup", outcome="FAULT",
                  fault_code="other") == 1
    assert sample("kruispunt_request_duration_seconds_count", service=service) == 3
    assert sample("kruispunt_stage_duration_seconds_count", stage="handle") >= 1


def test_the_fault_codes_are_those_of_the_fault_family_with_the_services_own() -> None:
    import services  # noqa: F401  (as the integrator's face does before the first request)

    declared = {c.CODE for c in [faults.KruispuntFault, faults.ClientFault, *faults.all_fault_classes()]}
    assert {"Client.Envelope.Malformed", "Server.Backend.Timeout", "MustUnderstand",
            "Client.Proposal.AlreadyDecided", "Client.Application.ReceiptUnknown"} <= declared
    assert metrics._fault_codes() == declared


def test_a_scrape_without_its_database_still_answers_and_counts_the_failure() -> None:
    unreachable = session_factory(make_engine("postgresql://kruispunt@127.0.0.1:1/kruispunt"))  # nothing listens
    exposition = metrics.Exposition(unreachable)
    before = sample("kruispunt_metrics_scrape_errors_total")
    families = {f.name: f for f in text_string_to_metric_families(exposition.render().decode())}
    assert sample("kruispunt_metrics_scrape_errors_total") == before + 1
    assert "kruispunt_circuits_open" not in families and "kruispunt_outbox_backlog" not in families
    assert "kruispunt_requests" in families  # the counters are shown all the same
