"""The portal's way into the pipeline (Pipeline.serve_official): an official logged on at the portal gets the same
route, contract, authorisation, reference directory, service code, ticket and audit record as a signed SOAP call,
against the real reference backends and database; only the channel differs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from kruispunt_client.xml import build
from lxml import etree

from integrator.faces.wsgi import IntegratorApp, create_app
from integrator.pipeline import LoggedOn, PortalReply
from services.backends.persons import PERSONS
from services.demo_organisations import KRUISDORP, OFFICIALS, PURPOSE_FILES, PURPOSE_TAX
from tests.e2e.directory_calls import RD_NS, RD_PATH, new_person, today
from tests.support import TAX_NS, TAX_PATH, audit_record

GRANTED, UNGRANTED = OFFICIALS[0], OFFICIALS[1]  # Kruisdorp: tax office (granted), population office (not)
MARIA = "Maria Janssens"


@pytest.fixture(scope="module")
def app(stack) -> Iterator[IntegratorApp]:  # type: ignore[no-untyped-def]
    """One worker's application, built here exactly as gunicorn builds it, on the stack's database and backends."""
    yield create_app(stack.settings)


def logged_on(official: str = GRANTED.insz, purpose: str = PURPOSE_TAX, message_id: str | None = None) -> LoggedOn:
    return LoggedOn(KRUISDORP.enterprise_number, official, purpose, message_id or str(uuid.uuid4()))


def lookup(app: IntegratorApp, asking: LoggedOn, insz: str, on: date) -> PortalReply:
    request = build(f"{{{TAX_NS}}}GetTaxExemptionStatusesRequest", {"Insz": insz, "ReferenceDate": on})
    return app.pipeline.serve_official(asking, TAX_PATH, request)


def maria() -> str:
    return next(p.insz for p in PERSONS if p.name == MARIA)


def test_a_logged_on_officials_lookup_runs_the_service_and_is_audited_as_portal(stack, app) -> None:
    asking = logged_on()
    reply = lookup(app, asking, maria(), date(2026, 1, 1))
    assert reply.fault is None and reply.answer is not None, reply.reply.body
    answer = reply.answer.payload
    assert answer.tag == f"{{{TAX_NS}}}GetTaxExemptionStatusesResponse"
    assert answer.findtext(f"{{{TAX_NS}}}Complete") == "true"
    codes = sorted(s.findtext(f"{{{TAX_NS}}}Code") for s in answer.iter(f"{{{TAX_NS}}}Status"))
    assert len(codes) == 2  # Maria Janssens holds two open-ended statuses on that date (tests/e2e/test_lookup.py)
    record = audit_record(stack.sessions, reply.ticket)
    assert (record.channel, record.certificate, record.official, record.purpose, record.person, record.outcome,
            record.organisation, record.service, record.message_id) == (
        "portal", None, GRANTED.insz, PURPOSE_TAX, maria(), "OK", KRUISDORP.enterprise_number,
        "TaxExemptionStatus/v1", asking.message_id)


def test_an_official_without_a_grant_is_refused_and_the_refusal_audited(stack, app) -> None:
    reply = lookup(app, logged_on(UNGRANTED.insz), maria(), date(2026, 1, 1))
    assert reply.answer is None and reply.fault is not None
    assert (reply.fault.code, reply.reply.status) == ("Client.Caller.GrantMissing", 403)
    fault = etree.fromstring(reply.reply.body)
    assert reply.ticket in fault.findtext("faultstring")
    record = audit_record(stack.sessions, reply.ticket)
    assert (record.channel, record.outcome, record.fault_code, record.official) == (
        "portal", "FAULT", "Client.Caller.GrantMissing", UNGRANTED.insz)


def test_a_person_outside_the_organisations_files_is_refused(stack, app) -> None:
    stranger = new_person()
    reply = lookup(app, logged_on(), stranger, date(2026, 1, 1))
    assert reply.fault is not None and reply.fault.code == "Client.Caller.PersonNotInFiles"
    record = audit_record(stack.sessions, reply.ticket)
    assert (record.channel, record.person, record.fault_code) == ("portal", stranger,
                                                                 "Client.Caller.PersonNotInFiles")


def test_an_input_off_the_contract_is_a_contract_fault_not_an_error(stack, app) -> None:
    request = build(f"{{{TAX_NS}}}GetTaxExemptionStatusesRequest", {"Insz": "12345", "ReferenceDate": date.today()})
    reply = app.pipeline.serve_official(logged_on(), TAX_PATH, request)
    assert reply.fault is not None and reply.fault.code == "Client.Contract.Invalid", reply.fault.code
    assert audit_record(stack.sessions, reply.ticket).channel == "portal"


def test_a_form_sent_twice_is_refused_the_second_time_and_has_one_effect(stack, app) -> None:
    person = new_person()
    asking = logged_on(purpose=PURPOSE_FILES)
    request = build(f"{{{RD_NS}}}RegisterPersonRequest", {"Insz": person, "Purpose": PURPOSE_TAX, "Start": today()})
    first = app.pipeline.serve_official(asking, RD_PATH, request)
    assert first.fault is None, first.reply.body
    again = app.pipeline.serve_official(asking, RD_PATH, request)
    assert again.fault is not None and again.fault.code == "Client.Security.Replay"
    assert audit_record(stack.sessions, again.ticket).fault_code == "Client.Security.Replay"
    # the registration took effect once: the person is now in the files, so the lookup is answered
    found = lookup(app, logged_on(), person, today())
    assert found.fault is None, found.reply.body


def test_peer_only_operations_are_not_offered_on_the_portal(stack, app) -> None:
    request = build("{urn:kruispunt:Federation:v1}GetChangesRequest", {"Cursor": 0, "Limit": 10})
    reply = app.pipeline.serve_official(logged_on(), "/soap/Federation/v1", request)
    assert reply.fault is not None and reply.fault.code == "Client.Contract.OperationUnknown", reply.reply.body
    assert "peer integrators only" in reply.fault.reason
    assert audit_record(stack.sessions, reply.ticket).channel == "portal"
