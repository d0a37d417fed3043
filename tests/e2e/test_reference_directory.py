"""The reference directory (persons repertory) end to end, on SQLite and PostgreSQL: services that concern a person
answer only about persons in the caller organisation's files for the caller's purpose on the day; an organisation
declares, ends and lists those files with ReferenceDirectory v1 (RegisterPerson, UnregisterPerson, ListPersons);
the files are per organisation and per purpose; a generic repository service with a person element is held to the
same rule. Every person here is a fresh valid INSZ that is not a demo person (no organisation has a file on them)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from integrator import commands
from repository import registry
from services.demo_organisations import KRUISDORP, PURPOSE_FILES, PURPOSE_TAX
from tests.e2e.directory_calls import (
    brugstede,
    directory_refused,
    entry,
    kruisdorp,
    list_persons,
    lookup_answered,
    lookup_refused,
    new_person,
    register_person,
    today,
    unregister_person,
    wrong_check_digits,
    yesterday,
)
from tests.e2e.generic_calls import (
    GRANTED,
    OPERATION,
    SOURCE,
    WSDL,
    FakeEndpoint,
    StatusCall,
    call,
    forget_circuits,
    integrator_answer,
    periods,
    signed_by_integrator,
    source_certificate,
    unique_name,
)
from tests.support import PROJECT, audit_record, fault_of

NOT_IN_FILES = "Client.Caller.PersonNotInFiles"


# --- the lookup refuses persons outside the caller's files --------------------------------------------------------
def test_lookup_about_a_person_not_in_the_files_is_refused_and_audited(stack) -> None:  # type: ignore[no-untyped-def]
    insz = new_person()
    seen = lookup_refused(stack, kruisdorp(stack), insz)
    assert f"Person {insz} is not in the files of organisation {KRUISDORP.enterprise_number}" in seen.reason
    assert f"for purpose {PURPOSE_TAX} on {today()}" in seen.reason
    assert list_persons(stack, kruisdorp(stack), insz=insz) == []  # nothing was declared on the way


# --- RegisterPerson ---------------------------------------------------------------------------------------------
def test_register_person_is_idempotent_and_opens_the_lookup(stack) -> None:  # type: ignore[no-untyped-def]
    insz, caller = new_person(), kruisdorp(stack)
    lookup_refused(stack, caller, insz)
    first = register_person(stack, caller, insz, today())
    assert first.body == {"Entry": entry(insz, today()), "Created": True}
    assert first.record.detail == f"registered: {PURPOSE_TAX}"
    again = register_person(stack, caller, insz, today())
    assert again.body == {"Entry": entry(insz, today()), "Created": False}
    assert again.record.detail == f"already registered: {PURPOSE_TAX}"
    assert list_persons(stack, caller, insz=insz) == [entry(insz, today())]  # still one period
    body = lookup_answered(stack, caller, insz)
    assert body.get("Status", []) == []  # the reference backends know nothing about this person


def test_only_a_period_covering_today_for_the_callers_purpose_counts(stack) -> None:  # type: ignore[no-untyped-def]
    insz, caller = new_person(), kruisdorp(stack)
    register_person(stack, caller, insz, today() - timedelta(days=30), purpose="SOCIAL_AID")
    register_person(stack, caller, insz, today() + timedelta(days=1))  # starts tomorrow
    register_person(stack, caller, insz, today() - timedelta(days=30), today() - timedelta(days=2))  # ended
    assert len(list_persons(stack, caller, insz=insz)) == 3
    lookup_refused(stack, caller, insz)
    register_person(stack, caller, insz, today() - timedelta(days=1), today())  # ends today: still covers today
    lookup_answered(stack, caller, insz)


# --- ListPersons and the files being per organisation --------------------------------------------------------------
def test_list_persons_shows_own_entries_only_and_files_are_per_organisation(stack) -> None:  # type: ignore[no-untyped-def]
    insz, other = new_person(), new_person()
    register_person(stack, kruisdorp(stack), insz, today())
    register_person(stack, kruisdorp(stack), other, today(), purpose="SOCIAL_AID")
    assert list_persons(stack, kruisdorp(stack), insz=insz) == [entry(insz, today())]
    everything = list_persons(stack, kruisdorp(stack))
    assert entry(insz, today()) in everything and entry(other, today(), purpose="SOCIAL_AID") in everything
    tax_only = list_persons(stack, kruisdorp(stack), purpose=PURPOSE_TAX)
    assert entry(insz, today()) in tax_only and all(e["Purpose"] == PURPOSE_TAX for e in tax_only)
    assert all(e["Insz"] != other for e in tax_only)
    assert list_persons(stack, kruisdorp(stack), insz=other, purpose=PURPOSE_TAX) == []

    assert list_persons(stack, brugstede(stack), insz=insz) == []
    assert all(e["Insz"] not in (insz, other) for e in list_persons(stack, brugstede(stack)))
    lookup_answered(stack, kruisdorp(stack), insz)
    seen = lookup_refused(stack, brugstede(stack), insz)
    assert KRUISDORP.enterprise_number not in seen.reason


# --- UnregisterPerson -------------------------------------------------------------------------------------------
def test_unregister_person_closes_the_period_and_the_lookup_is_refused_again(stack) -> None:  # type: ignore[no-untyped-def]
    insz, caller = new_person(), kruisdorp(stack)
    start = today() - timedelta(days=30)
    register_person(stack, caller, insz, start)
    lookup_answered(stack, caller, insz)
    closed = unregister_person(stack, caller, insz, yesterday())
    assert closed.body == {"PeriodsClosed": 1}
    assert closed.record.detail == "1 period(s) closed"
    assert list_persons(stack, caller, insz=insz) == [entry(insz, start, yesterday())]
    lookup_refused(stack, caller, insz)
    assert unregister_person(stack, caller, insz, yesterday()).body == {"PeriodsClosed": 0}  # nothing open left


def test_unregister_before_a_period_started_ends_it_too(stack) -> None:  # type: ignore[no-untyped-def]
    insz, caller = new_person(), kruisdorp(stack)
    register_person(stack, caller, insz, today())
    lookup_answered(stack, caller, insz)
    closed = unregister_person(stack, caller, insz, yesterday())
    assert closed.body == {"PeriodsClosed": 1}
    lookup_refused(stack, caller, insz)


# --- refusals of the directory itself -----------------------------------------------------------------------------
def test_register_person_refuses_a_period_ending_before_it_starts(stack) -> None:  # type: ignore[no-untyped-def]
    insz, caller = new_person(), kruisdorp(stack)
    seen = directory_refused(stack, caller, "RegisterPerson",
                             {"Insz": insz, "Purpose": PURPOSE_TAX, "Start": today(), "End": yesterday()},
                             "Client.Contract.Invalid", 400, person=insz)
    assert f"ends ({yesterday()}) before it starts ({today()})" in seen.reason
    assert list_persons(stack, caller, insz=insz) == []
    lookup_refused(stack, caller, insz)


def test_register_person_refuses_an_insz_with_wrong_check_digits(stack) -> None:  # type: ignore[no-untyped-def]
    """Refused by the contract check, before the caller is authorised: no person (an invalid number) and no
    organisation are recorded, the official and purpose of the header are."""
    bad, caller = wrong_check_digits(new_person()), kruisdorp(stack)
    seen = directory_refused(stack, caller, "RegisterPerson",
                             {"Insz": bad, "Purpose": PURPOSE_TAX, "Start": today()},
                             "Client.Contract.InszInvalid", 400, person=None, authorised=False)
    assert bad in seen.reason and "check digits" in seen.reason
    assert all(e["Insz"] != bad for e in list_persons(stack, caller))


def test_directory_refuses_an_official_without_a_file_management_grant(stack) -> None:  # type: ignore[no-untyped-def]
    insz = new_person()
    directory_refused(stack, kruisdorp(stack, purpose=PURPOSE_TAX), "RegisterPerson",
                      {"Insz": insz, "Purpose": PURPOSE_TAX, "Start": today()},
                      "Client.Caller.GrantMissing", 403, person=insz)
    assert list_persons(stack, kruisdorp(stack), insz=insz) == []


# --- a generic repository service with a person element -------------------------------------------------------
@pytest.fixture
def person_service(stack) -> Iterator[tuple[str, FakeEndpoint]]:  # type: ignore[no-untyped-def]
    """StatusSource-v1's contract registered under a name of the test's own with person_element="insz", active,
    whose one backend endpoint counts the requests it passes on to the stack's reference health-insurance backend;
    Kruisdorp's tax official is granted the service for the tax purpose."""
    upstream = f"http://127.0.0.1:{stack.backend_ports[SOURCE]}/"
    with FakeEndpoint(upstream).running() as endpoint:
        name = unique_name()
        docs = commands.read_documents(WSDL, PROJECT)
        with stack.sessions() as session:
            commands.register_service(session, name, "1.0", docs, stack.settings.enterprise_number,
                                      "Status periods about a person (test)", person_element="insz")
            registry.set_lifecycle(session, name, "1.0", "active")
            commands.add_backend(session, f"{name}/v1", "counted", endpoint.url, source_certificate(stack), 5.0,
                                 idempotent=[OPERATION])
            commands.add_access_right(session, KRUISDORP.enterprise_number, name)
            commands.add_grant(session, KRUISDORP.enterprise_number, GRANTED.insz, name, PURPOSE_TAX)
            session.commit()
        try:
            yield name, endpoint
        finally:
            forget_circuits(stack, name)


def test_generic_service_with_person_element_answers_only_about_persons_in_the_files(  # type: ignore[no-untyped-def]
        stack, person_service) -> None:
    name, endpoint = person_service
    insz = new_person()
    reply, _ = call(stack, name, StatusCall(stack.pki.kruisdorp, insz=insz, on=today()))
    seen = fault_of(reply)
    assert (seen.http_status, seen.code) == (403, NOT_IN_FILES), seen.reason
    assert insz in seen.reason and KRUISDORP.enterprise_number in seen.reason and PURPOSE_TAX in seen.reason
    ticket, _header, _payload = signed_by_integrator(stack, reply)
    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code, record.person) == ("FAULT", NOT_IN_FILES, insz)
    assert (record.service, record.operation, record.organisation) == (f"{name}/v1", OPERATION,
                                                                       KRUISDORP.enterprise_number)
    assert endpoint.hits == 0  # refused before any backend was asked

    register_person(stack, kruisdorp(stack), insz, today())
    request = StatusCall(stack.pki.kruisdorp, insz=insz, on=today())
    reply, data = call(stack, name, request)
    answer = integrator_answer(stack, reply, data)
    assert periods(answer.payload) == []  # the reference backend knows nothing about this person
    record = audit_record(stack.sessions, answer.ticket)
    assert (record.outcome, record.fault_code, record.person) == ("OK", None, insz)
    assert (record.service, record.operation) == (f"{name}/v1", OPERATION)
    assert endpoint.hits == 1


def test_directory_purpose_is_not_the_purpose_checked(stack) -> None:  # type: ignore[no-untyped-def]
    """Registering a person under FILE_MANAGEMENT (the header's purpose) does not open the tax lookup."""
    insz, caller = new_person(), kruisdorp(stack)
    register_person(stack, caller, insz, today(), purpose=PURPOSE_FILES)
    lookup_refused(stack, caller, insz)
