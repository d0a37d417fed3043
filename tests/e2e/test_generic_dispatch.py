"""Generic dispatch end to end: a service registered in the repository (StatusSource v1's contract under a name of
each test's own), its lifecycle as callers meet it, a breaking minor version refused by the CLI, and backend
endpoints that are slow, gone or flaky: timeouts, the circuit breaker and its recovery, failover by priority,
retries only where the operation is registered idempotent."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from sqlalchemy import update

from integrator import commands
from integrator.circuit import CircuitBreaker, CircuitPolicy
from integrator.namespaces import KP, SOAP_ENV, q
from integrator.pki import fingerprint
from repository import registry
from repository.models import Circuit
from services.backends.persons import PERSONS, Person
from services.backends.status_source import source
from services.demo_organisations import BRUGSTEDE, KRUISDORP, OFFICIALS, PURPOSE_TAX
from tests.e2e.generic_calls import (
    GRANTED,
    OPERATION,
    SOURCE,
    Endpoint,
    FakeEndpoint,
    StatusCall,
    backend_answer,
    backend_ids,
    black_hole,
    call,
    canonical,
    circuits,
    contract_copy,
    forget_circuits,
    integrator_answer,
    kruispunt,
    periods,
    register_generic,
    signed_by_integrator,
    source_certificate,
)
from tests.support import answering_server, audit_record, fault_of, free_port, gunicorn, wait_for

ON = date(2026, 1, 1)
SUNSET = date(2031, 12, 31)
CODE = source(SOURCE).code  # the one status the health-insurance source holds
SLOW = 0.3  # timeout_seconds of the endpoints that do not answer in time
CIRCUIT_VIEW = 1.2  # a worker's view of the circuits may be up to CircuitPolicy.cache_seconds (1 s) old


def expected(person: Person) -> list[tuple[str, str, str | None]]:
    """What services/backends/persons.py says the health-insurance source holds about the person."""
    return sorted((p.code, p.start.isoformat(), p.end.isoformat() if p.end else None)
                  for p in person.periods if p.code == CODE)


@pytest.fixture(scope="module")
def source_url(stack) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A reference health-insurance backend of this module's own, a real gunicorn process."""
    port = free_port()
    process = gunicorn("services.backends.wsgi:create_app()", port, dict(stack.env, KRUISPUNT_BACKEND=SOURCE),
                       log=stack.log_dir / f"generic-dispatch-{port}.log")
    try:
        wait_for(f"http://127.0.0.1:{port}/?wsdl")
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def service(stack) -> Iterator[Callable[..., str]]:  # type: ignore[no-untyped-def]
    """Registers a service of the test's own (see register_generic); its circuits are removed afterwards."""
    made: list[str] = []

    def make(endpoints: list[Endpoint], **kwargs: object) -> str:
        name = register_generic(stack, endpoints, **kwargs)  # type: ignore[arg-type]
        made.append(name)
        return name

    yield make
    for name in made:
        forget_circuits(stack, name)


def refused(stack, name: str, request: StatusCall, code: str, http_status: int):  # type: ignore[no-untyped-def]
    """Send, expect the fault (signed, with the ticket of the header), find it audited once with its reason."""
    reply, _ = call(stack, name, request)
    seen = fault_of(reply)
    assert (seen.http_status, seen.code) == (http_status, code), seen.reason
    ticket, _, fault = signed_by_integrator(stack, reply)
    assert (ticket, fault.tag) == (seen.ticket, f"{{{SOAP_ENV}}}Fault")
    assert seen.ticket in seen.faultstring
    record = audit_record(stack.sessions, seen.ticket)
    assert (record.outcome, record.fault_code, record.detail) == ("FAULT", code, seen.reason)
    return seen, record, reply


def answered(stack, name: str, person: Person, **kwargs: object):  # type: ignore[no-untyped-def]
    """A granted call that succeeds: the integrator's signed answer, and its audit record."""
    reply, sent = call(stack, name, StatusCall(stack.pki.kruisdorp, insz=person.insz, on=ON, **kwargs))  # type: ignore[arg-type]
    answer = integrator_answer(stack, reply, sent)
    record = audit_record(stack.sessions, answer.ticket)
    assert (record.outcome, record.fault_code, record.service, record.operation) == (
        "OK", None, f"{name}/v1", OPERATION)
    assert (record.organisation, record.official, record.purpose) == (
        KRUISDORP.enterprise_number, GRANTED.insz, PURPOSE_TAX)
    return answer, record


def stage_seconds(reply: requests.Response, stage: str) -> float:
    """How long a stage of the integrator took (Server-Timing). For a refusal raised while dispatching, "answer"
    is the time from the caller's authorisation to the signed fault: the dispatch, without the contract's
    compilation a worker does on its first call of a version."""
    stages = dict(part.strip().split(";dur=") for part in reply.headers["Server-Timing"].split(","))
    return float(stages[stage]) / 1000


def readiness(stack) -> tuple[int, list[str]]:  # type: ignore[no-untyped-def]
    reply = requests.get(f"{stack.base_url}/health/ready", timeout=30)
    return reply.status_code, reply.text.splitlines()


# --- 1. the generic call -----------------------------------------------------------------------------------------
def test_generic_call_passes_the_backends_own_answer_through_signed_by_the_integrator(stack, service,
                                                                                      source_url) -> None:  # type: ignore[no-untyped-def]
    name = service([Endpoint("primary", source_url)])
    people = [PERSONS[0], PERSONS[3], PERSONS[5]]  # one period from 2013, none at all, one from 2006
    assert [bool(expected(p)) for p in people] == [True, False, True]
    for person in people:
        answer, record = answered(stack, name, person)
        own = backend_answer(stack, source_url, person.insz, ON)
        assert periods(answer.payload) == periods(own) == expected(person)
        assert canonical(answer.payload) == canonical(own)  # the Body as the backend wrote it, unchanged
        assert answer.header.find(q(KP, "Deprecation")) is None
        assert answer.header.findtext(q(KP, "MessageId")) == record.message_id
        assert record.detail == "answered by primary"


# --- 2-4. the lifecycle as a caller meets it ------------------------------------------------------------------
def test_retired_version_is_refused_naming_its_successor(stack, service, source_url) -> None:  # type: ignore[no-untyped-def]
    with FakeEndpoint(source_url).running() as endpoint:
        name = service([Endpoint("primary", endpoint.url)])
        answered(stack, name, PERSONS[0])
        assert endpoint.hits == 1
        with stack.sessions() as session:
            registry.set_lifecycle(session, name, "1.0", "retired", successor=f"{name} v2")
            session.commit()
        seen, record, _ = refused(stack, name, StatusCall(stack.pki.kruisdorp, insz=PERSONS[0].insz, on=ON),
                               "Client.Service.Retired", 410)
        assert seen.reason == f"{name} 1.0 is retired; use {name} v2 instead."
        assert (record.service, record.official) == (f"{name}/v1", GRANTED.insz)
        assert endpoint.hits == 1  # the backend never heard of it


def test_deprecated_version_answers_with_its_sunset_and_successor(stack, service, source_url) -> None:  # type: ignore[no-untyped-def]
    name = service([Endpoint("primary", source_url)])
    with stack.sessions() as session:
        registry.set_lifecycle(session, name, "1.0", "deprecated", sunset=SUNSET, successor=f"{name} v2")
        session.commit()
    answer, _ = answered(stack, name, PERSONS[5])
    assert periods(answer.payload) == expected(PERSONS[5])
    deprecation = answer.header.find(q(KP, "Deprecation"))
    assert deprecation is not None
    assert deprecation.findtext(q(KP, "Sunset")) == SUNSET.isoformat()
    assert deprecation.findtext(q(KP, "Successor")) == f"{name} v2"


def test_draft_version_is_not_callable(stack, service, source_url) -> None:  # type: ignore[no-untyped-def]
    with FakeEndpoint(source_url).running() as endpoint:
        name = service([Endpoint("primary", endpoint.url)], status="draft")
        seen, _, _ = refused(stack, name, StatusCall(stack.pki.kruisdorp, insz=PERSONS[0].insz, on=ON),
                          "Client.Service.Unknown", 404)
        assert f"/soap/{name}/v1" in seen.reason
        assert requests.get(f"{stack.base_url}/soap/{name}/v1?wsdl", timeout=30).status_code == 404
        assert endpoint.hits == 0


# --- 5. minor versions through the CLI --------------------------------------------------------------------------
REFERENCE_DATE = '<xs:element name="reference_date" type="xs:date"/>'
END = '<xs:element name="end" type="xs:date" minOccurs="0" nillable="true"/>'


def test_cli_refuses_a_breaking_minor_version_and_serves_a_compatible_one_once_active(stack, service, source_url,
                                                                                     tmp_path) -> None:  # type: ignore[no-untyped-def]
    name = service([Endpoint("primary", source_url)])
    owner = stack.settings.enterprise_number

    def register(root_name: str, *changes: tuple[str, str]):  # type: ignore[no-untyped-def]
        root = tmp_path / root_name
        wsdl = contract_copy(root, *changes)
        return kruispunt(stack, "service", "register", "--name", name, "--version", "1.1", "--wsdl", str(wsdl),
                         "--root", str(root), "--owner", owner)

    breaking = register("breaking", (END, ""),
                        (REFERENCE_DATE, REFERENCE_DATE + '<xs:element name="channel" type="xs:string"/>'))
    assert breaking.returncode == 1, breaking.stdout + breaking.stderr
    problems = [line.strip() for line in breaking.stderr.splitlines() if line.startswith("  - ")]
    assert sorted(problems) == [
        "- element removed: get_statuses/get_statusesResponse/get_statusesResult/StatusPeriod/end",
        "- required element added: get_statuses/get_statuses/channel",
    ], breaking.stderr
    assert f"refused: {name} 1.1" in breaking.stderr
    with stack.sessions() as session:
        assert registry.find_version(session, name, "1.1") is None

    optional = '<xs:element name="channel" type="xs:string" minOccurs="0"/>'
    compatible = register("compatible", (REFERENCE_DATE, REFERENCE_DATE + optional))
    assert compatible.returncode == 0, compatible.stdout + compatible.stderr
    assert f"registered {name} 1.1 as draft" in compatible.stdout
    with_channel = {"channel": "counter"}
    # a draft changes nothing: 1.0 is served, its contract knows no channel
    refused(stack, name, StatusCall(stack.pki.kruisdorp, insz=PERSONS[0].insz, on=ON, extra=with_channel),
            "Client.Contract.Invalid", 400)
    assert f"/repository/{name}/1.0/" in requests.get(f"{stack.base_url}/soap/{name}/v1?wsdl", timeout=30).text

    activated = kruispunt(stack, "service", "lifecycle", "--name", name, "--version", "1.1", "active")
    assert activated.returncode == 0, activated.stdout + activated.stderr
    wsdl = requests.get(f"{stack.base_url}/soap/{name}/v1?wsdl", timeout=30).text
    assert f"/repository/{name}/1.1/" in wsdl and f"/repository/{name}/1.0/" not in wsdl
    schema = requests.get(f"{stack.base_url}/repository/{name}/1.1/xsd/backends/StatusSource/v1/StatusSource.xsd",
                          timeout=30)
    assert schema.status_code == 200 and optional in schema.text
    answer, _ = answered(stack, name, PERSONS[0])  # clients of 1.0 are served as before
    assert periods(answer.payload) == expected(PERSONS[0])
    # the integrator now checks requests against 1.1: a channel passes its contract check and reaches the backend
    # (whose own contract, 1.0, does not know it: the backend's refusal comes back as a backend fault)
    seen, _, _ = refused(stack, name, StatusCall(stack.pki.kruisdorp, insz=PERSONS[0].insz, on=ON, extra=with_channel),
                      "Server.Backend.Fault", 502)
    assert seen.source == "primary"


# --- 6. timeouts, the circuit breaker and recovery --------------------------------------------------------------
def test_timeouts_open_the_circuit_which_closes_again_after_a_successful_trial(stack, service, source_url) -> None:  # type: ignore[no-untyped-def]
    with FakeEndpoint(source_url, slow=True).running() as endpoint:
        name = service([Endpoint("slow", endpoint.url, timeout=SLOW)])
        request = lambda: StatusCall(stack.pki.kruisdorp, insz=PERSONS[0].insz, on=ON)  # noqa: E731
        for attempt in range(1, 4):
            seen, record, _ = refused(stack, name, request(), "Server.Backend.Unavailable", 502)
            assert seen.reason == f"No backend of {name}/v1 could answer: slow: Server.Backend.Timeout.", seen.reason
            assert (seen.source, record.service, record.operation) == (f"{name}/v1", f"{name}/v1", OPERATION)
            assert endpoint.hits == 3 * attempt  # idempotent: tried three times each
        circuit = circuits(stack, name)["slow"]
        assert (circuit.state, circuit.failures) == ("open", 3)
        assert circuit.last_error == f"Server.Backend.Timeout: Source slow did not answer within {SLOW:g} s."
        status, lines = readiness(stack)
        assert status == 200 and lines[0] == "ready"
        listed = [line for line in lines if line.startswith(f"circuit open: {name}/v1 backend slow ")]
        assert len(listed) == 1 and "after 3 failure(s)" in listed[0] and f"within {SLOW:g} s" in listed[0], lines

        time.sleep(CIRCUIT_VIEW)
        seen, _, reply = refused(stack, name, request(), "Server.Backend.Unavailable", 502)
        assert seen.reason == f"No backend of {name}/v1 could answer: slow: circuit open."
        assert stage_seconds(reply, "answer") < SLOW, reply.headers["Server-Timing"]  # refused at once ...
        assert endpoint.hits == 9  # ... without contacting the endpoint

        with stack.sessions() as session:  # the cool-down ends, as time passing would end it
            session.execute(update(Circuit).where(Circuit.backend_id == circuit.backend_id)
                            .values(opened_until=datetime.now(UTC) - timedelta(seconds=1)))
            session.commit()
        endpoint.slow = False
        time.sleep(CIRCUIT_VIEW)
        answer, record = answered(stack, name, PERSONS[0])
        assert periods(answer.payload) == expected(PERSONS[0])
        assert record.detail == "answered by slow"
        assert endpoint.hits == 10  # the one half-open trial
        circuit = circuits(stack, name)["slow"]
        assert (circuit.state, circuit.failures, circuit.opened_until, circuit.last_error) == ("closed", 0, None, None)
        status, lines = readiness(stack)
        assert status == 200 and not any(f" {name}/v1 " in line for line in lines), lines


# --- 7. failover -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotent", "not-idempotent"])
def test_refused_connection_fails_over_to_the_next_priority(stack, service, source_url, idempotent: bool) -> None:  # type: ignore[no-untyped-def]
    nobody = f"http://127.0.0.1:{free_port()}/"  # nothing listens: the request never leaves
    name = service([Endpoint("dead", nobody, priority=0, idempotent=idempotent),
                    Endpoint("fallback", source_url, priority=1, idempotent=idempotent)])
    for person in (PERSONS[0], PERSONS[5]):
        answer, record = answered(stack, name, person)
        assert periods(answer.payload) == expected(person)
        assert record.detail == "answered by fallback"
    seen = circuits(stack, name)
    assert (seen["dead"].state, seen["dead"].failures) == ("closed", 2)
    assert "fallback" not in seen or seen["fallback"].failures == 0


def test_timeout_of_a_non_idempotent_operation_is_not_sent_to_the_next_endpoint(stack, service, source_url) -> None:  # type: ignore[no-untyped-def]
    with FakeEndpoint(source_url, slow=True).running() as slow, FakeEndpoint(source_url).running() as fallback:
        name = service([Endpoint("slow", slow.url, priority=0, timeout=SLOW, idempotent=False),
                        Endpoint("fallback", fallback.url, priority=1, idempotent=False)])
        seen, record, _ = refused(stack, name, StatusCall(stack.pki.kruisdorp, insz=PERSONS[0].insz, on=ON),
                               "Server.Backend.Timeout", 504)
        assert seen.reason == f"Source slow did not answer within {SLOW:g} s."
        assert (seen.source, record.service, record.operation) == ("slow", f"{name}/v1", OPERATION)
        assert (slow.hits, fallback.hits) == (1, 0)  # it may have been processed: never sent twice

        # the same endpoints with the operation registered idempotent: retried, then failed over
        again = service([Endpoint("slow", slow.url, priority=0, timeout=SLOW, idempotent=True),
                         Endpoint("fallback", fallback.url, priority=1, idempotent=True)])
        answer, record = answered(stack, again, PERSONS[0])
        assert periods(answer.payload) == expected(PERSONS[0])
        assert record.detail == "answered by fallback"
        assert (slow.hits, fallback.hits) == (1 + 3, 1)


# --- 8. retries --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("idempotent", "attempts"), [(True, 3), (False, 1)], ids=["idempotent", "not-idempotent"])
def test_a_dropped_connection_is_retried_only_for_an_idempotent_operation(stack, service, idempotent: bool,
                                                                          attempts: int) -> None:  # type: ignore[no-untyped-def]
    with FakeEndpoint(drop=True).running() as endpoint:
        name = service([Endpoint("flaky", endpoint.url, idempotent=idempotent)])
        seen, record, _ = refused(stack, name, StatusCall(stack.pki.kruisdorp, insz=PERSONS[0].insz, on=ON),
                               "Server.Backend.Unavailable", 502)
        assert endpoint.hits == attempts
        if idempotent:
            assert seen.reason == f"No backend of {name}/v1 could answer: flaky: Server.Backend.Unavailable."
            assert seen.source == f"{name}/v1"
        else:
            assert seen.reason == "Source flaky closed the connection without answering."
            assert seen.source == "flaky"
        assert (record.service, record.operation) == (f"{name}/v1", OPERATION)
        assert circuits(stack, name)["flaky"].failures == 1


# --- 9. access rights ----------------------------------------------------------------------------------------------
def test_organisation_without_an_access_right_to_the_service_is_refused(stack, service, source_url) -> None:  # type: ignore[no-untyped-def]
    other = OFFICIALS[2]  # Brugstede's tax official
    assert other.organisation == BRUGSTEDE.enterprise_number
    with FakeEndpoint(source_url).running() as endpoint:
        name = service([Endpoint("primary", endpoint.url)])
        seen, record, _ = refused(stack, name, StatusCall(stack.pki.brugstede, official=other.insz,
                                                       insz=PERSONS[0].insz, on=ON),
                               "Client.Caller.AccessDenied", 403)
        assert BRUGSTEDE.enterprise_number in seen.reason and name in seen.reason
        assert (record.service, record.operation, record.official, record.purpose) == (
            f"{name}/v1", OPERATION, other.insz, PURPOSE_TAX)
        assert record.certificate == fingerprint(stack.pki.brugstede.load_cert())
        assert endpoint.hits == 0
        answered(stack, name, PERSONS[0])  # Kruisdorp, which has the right, is served
        assert endpoint.hits == 1



def test_connect_timeout_of_a_non_idempotent_operation_fails_over(stack, service, source_url) -> None:  # type: ignore[no-untyped-def]
    with black_hole() as nowhere, FakeEndpoint(source_url).running() as fallback:
        with pytest.raises(requests.ConnectTimeout):  # the premise: connecting there times out
            requests.post(nowhere, data=b"", timeout=SLOW)
        name = service([Endpoint("unreachable", nowhere, priority=0, timeout=SLOW, idempotent=False),
                        Endpoint("fallback", fallback.url, priority=1, idempotent=False)])
        _, record = answered(stack, name, PERSONS[0])
        assert record.detail == "answered by fallback"
        assert fallback.hits == 1


# --- the circuit breaker shared by the workers ------------------------------------------------------------------
def test_a_success_in_one_worker_resets_the_failures_another_worker_counted(stack, service, source_url) -> None:  # type: ignore[no-untyped-def]
    name = service([Endpoint("primary", source_url)])
    backend = backend_ids(stack, name)["primary"]
    # two workers' breakers; a long view cache makes the interleaving certain (the default, 1 s, makes it likely)
    # worker one's view is re-read at every call (cache 0): a success resets what its view shows, and a worker's
    # view is at most cache_seconds old (1 s by default), so no write is made while it shows no failure
    one, other = CircuitBreaker(stack.sessions, CircuitPolicy(cache_seconds=0)), CircuitBreaker(
        stack.sessions, CircuitPolicy(cache_seconds=30))
    assert one.allow(backend)
    for _ in range(3):  # the backend fails and succeeds by turns: never two failures in a row
        other.failure(backend, "Server.Backend.Timeout: Source primary did not answer within 5 s.")
        one.success(backend)
        assert circuits(stack, name)["primary"].failures == 0
    assert circuits(stack, name)["primary"].state == "closed"


def test_a_half_open_trial_that_never_reports_back_does_not_block_the_backend_for_ever(stack, service,
                                                                                       source_url) -> None:  # type: ignore[no-untyped-def]
    with FakeEndpoint(source_url).running() as endpoint:
        name = service([Endpoint("primary", endpoint.url)])
        backend = backend_ids(stack, name)["primary"]
        cooldown = stack.settings.circuit.cooldown
        with stack.sessions() as session:  # opened after three failures, cooled down
            session.add(Circuit(backend_id=backend, state="open", failures=3, last_error="Server.Backend.Timeout",
                                opened_until=datetime.now(UTC) - timedelta(seconds=1)))
            session.commit()
        assert CircuitBreaker(stack.sessions).allow(backend)  # a worker claims the trial ... and dies in it
        assert circuits(stack, name)["primary"].state == "half-open"
        with stack.sessions() as session:  # long after: several cool-downs have passed
            session.execute(update(Circuit).where(Circuit.backend_id == backend)
                            .values(opened_until=datetime.now(UTC) - 4 * cooldown))
            session.commit()
        time.sleep(CIRCUIT_VIEW)
        _, record = answered(stack, name, PERSONS[0])
        assert record.detail == "answered by primary" and endpoint.hits == 1
        assert circuits(stack, name)["primary"].state == "closed"


# --- 10. a legacy backend without message security ------------------------------------------------------------
PLAIN_ANSWER = (
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    b'<ss:get_statusesResponse xmlns:ss="urn:kruispunt:backends:StatusSource:v1"><ss:get_statusesResult>'
    b"<ss:StatusPeriod><ss:code>PLAIN_SOURCE</ss:code><ss:start>2020-01-01</ss:start></ss:StatusPeriod>"
    b"</ss:get_statusesResult></ss:get_statusesResponse></soap:Body></soap:Envelope>"
)


@pytest.fixture
def plain_backend() -> Iterator[tuple[str, list[bytes]]]:
    """A backend on a trusted network that speaks plain, unsigned SOAP; it records what it receives."""
    with answering_server(lambda _request: PLAIN_ANSWER) as server:
        yield server


def test_backend_registered_without_message_security_gets_plain_soap_and_its_answer_is_signed_by_us(
        stack, service, plain_backend) -> None:  # type: ignore[no-untyped-def]
    url, received = plain_backend
    name = service([])
    with stack.sessions() as session:
        commands.add_backend(session, f"{name}/v1", "legacy", url, source_certificate(stack), security="none")
        session.commit()
    answer, record = answered(stack, name, PERSONS[0])
    assert periods(answer.payload) == [("PLAIN_SOURCE", "2020-01-01", None)]
    assert record.detail == "answered by legacy"
    assert len(received) == 1 and b"wsse:Security" not in received[0] and b"Signature" not in received[0]


def test_backend_registered_with_message_security_may_not_answer_unsigned(stack, service,
                                                                          plain_backend) -> None:  # type: ignore[no-untyped-def]
    url, _ = plain_backend
    name = service([Endpoint("unsigned", url, idempotent=False)])
    seen, _, _ = refused(stack, name, StatusCall(stack.pki.kruisdorp, insz=PERSONS[0].insz, on=ON),
                         "Server.Backend.InvalidAnswer", 502)
    assert "signature is refused" in seen.reason
