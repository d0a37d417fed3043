"""e-Creabis end to end, on SQLite and PostgreSQL, over real sockets: identity search ranked over the National
Register reference backend and the BIS register; BIS number creation (valid per python-stdnum, month +40 with the
gender known and +20 without, sequence parity, unknown birth-date parts), refusals (impossible birth date, exact
match naming the number), idempotent retries per MessageId, and concurrent creations for one identity.

Concurrency rule (documented in the README): of two concurrent creations for the same identity with different
MessageIds one creates the number, the other is refused with Client.Creabis.ExactMatch naming it."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import zeep
from kruispunt_client import fault_detail
from stdnum.be import bis, nn
from zeep.exceptions import Fault

from services.backends.persons import PERSONS
from tests.e2e.creabis_calls import (
    CB_NS,
    answered,
    client,
    consult,
    create,
    create_refused,
    evidence,
    fresh_identity,
    population_office,
    refused,
    search,
    send,
)
from tests.e2e.generic_calls import forget_circuits, signed_by_integrator
from tests.support import audit_record, fault_of

NR = {p.last_name: p for p in PERSONS}
EXACT_MATCH, IMPOSSIBLE, CONFLICT = ("Client.Creabis.ExactMatch", "Client.Creabis.BirthDateImpossible",
                                     "Client.Idempotency.Conflict")


def answered_insz(stack, reply: requests.Response) -> str:  # type: ignore[no-untyped-def]
    """The number in a signed CreateBisNumber answer."""
    _ticket, _header, payload = signed_by_integrator(stack, reply)
    assert payload.tag == f"{{{CB_NS}}}CreateBisNumberResponse"
    return payload.findtext(f"{{{CB_NS}}}Insz") or ""


def check_number(insz: str, person: dict[str, Any]) -> None:
    """python-stdnum accepts it as a BIS number; the birth date, gender offset and sequence parity agree."""
    assert bis.is_valid(insz) and not nn.is_valid(insz), insz
    gender = person.get("Gender")
    month = int(insz[2:4])
    assert month - (40 if gender else 20) == int((person.get("BirthDate") or "0000-00")[5:7] or 0), insz
    if gender:
        assert bis.get_gender(insz) == gender and int(insz[6:9]) % 2 == (1 if gender == "M" else 0)
    else:
        assert bis.get_gender(insz) is None


# --- the main flow, with the project's client library ---------------------------------------------------------
def test_search_create_consult_with_the_client_library(stack) -> None:  # type: ignore[no-untyped-def]
    caller = population_office(stack)
    person = fresh_identity(Gender="F")
    creabis = client(stack, caller, "Creabis")
    found = creabis.call("SearchPersons", official=caller.official, purpose=caller.purpose,
                         LastName=person["LastName"], FirstNames=person["FirstNames"], BirthDate=person["BirthDate"])
    assert found.body.Complete is True and not found.body.Candidate
    made = creabis.call("CreateBisNumber", official=caller.official, purpose=caller.purpose, Person=person,
                        Evidence=evidence("EK0000001"),
                        Address={"Street": "Veldstraat", "HouseNumber": "9", "Postcode": "9000",
                                 "Municipality": "Kruisdorp", "Country": "BE"})
    insz = made.body.Insz
    check_number(insz, person)
    assert made.body.Created is True and made.body.CreatedTicket == made.ticket
    assert bis.get_birth_date(insz).isoformat() == person["BirthDate"]
    assert made.body.InFilesFrom == datetime.now(UTC).date()
    record = audit_record(stack.sessions, made.ticket)
    assert (record.outcome, record.detail) == ("OK", f"created BIS number {insz}")

    again = creabis.call("SearchPersons", official=caller.official, purpose=caller.purpose,
                         LastName=person["LastName"].upper(), FirstNames=person["FirstNames"],
                         BirthDate=person["BirthDate"][:4])
    first = again.body.Candidate[0]
    assert (first.Insz, first.Source, first.BirthDate) == (insz, "BIS_REGISTER", person["BirthDate"])
    assert {m.Criterion: m.Match for m in first.MatchedOn}["LastName"] == "EXACT"
    shown = [c.Insz for c in again.body.Candidate]  # every person handed out is in the audit record
    assert audit_record(stack.sessions, again.ticket).detail.endswith(": " + " ".join(shown))

    register = client(stack, caller, "BisRegister")
    seen = register.call("ConsultPerson", official=caller.official, purpose=caller.purpose, Insz=insz).body
    assert (seen.Person.LastName, seen.Person.Gender, seen.Evidence.DocumentNumber) == (person["LastName"], "F",
                                                                                        "EK0000001")
    assert [p.Address.Street for p in seen.Addresses.Period] == ["Veldstraat"]
    assert seen.Created.Ticket == made.ticket


# --- SearchPersons -------------------------------------------------------------------------------------------------
def test_a_misspelt_name_finds_the_right_national_register_person_first(stack) -> None:  # type: ignore[no-untyped-def]
    ahmed = NR["El Amrani"]
    found = search(stack, population_office(stack), LastName="EL AMRANY", FirstNames="Ahmet",
                   BirthDate="1986-07-30", Gender="M", Nationality="MA")
    first = found[0]
    assert (first["Insz"], first["Source"], first["LastName"]) == (ahmed.insz, "NATIONAL_REGISTER", "El Amrani")
    assert first["Score"] > 90
    why = {m["Criterion"]: m["Match"] for m in first["MatchedOn"]}
    assert why["LastName"] in ("PHONETIC", "FUZZY") and why["BirthDate"] == "EXACT", why
    assert all(c["Score"] <= first["Score"] for c in found)


def test_a_phonetic_variant_with_a_partial_birth_date(stack) -> None:  # type: ignore[no-untyped-def]
    luc = NR["Wouters"]
    found = search(stack, population_office(stack), LastName="Wauters", BirthDate="1990")
    assert found[0]["Insz"] == luc.insz
    why = {m["Criterion"]: m["Match"] for m in found[0]["MatchedOn"]}
    assert why == {"LastName": "PHONETIC", "BirthDate": "PARTIAL"}


def test_day_and_month_swapped_and_a_year_off_still_match(stack) -> None:  # type: ignore[no-untyped-def]
    sofie, maria = NR["Claes"], NR["Janssens"]
    swapped = search(stack, population_office(stack), LastName="Claes", FirstNames="Sofie", BirthDate="1979-03-11")
    assert swapped[0]["Insz"] == sofie.insz
    assert {m["Criterion"]: m["Match"] for m in swapped[0]["MatchedOn"]}["BirthDate"] == "DAY_MONTH_SWAPPED"
    year_off = search(stack, population_office(stack), LastName="Janssen", FirstNames="Maria", BirthDate="1949-02-14")
    assert year_off[0]["Insz"] == maria.insz
    assert {m["Criterion"]: m["Match"] for m in year_off[0]["MatchedOn"]}["BirthDate"] == "YEAR_OFF"


def test_a_name_nobody_resembles_finds_nobody(stack) -> None:  # type: ignore[no-untyped-def]
    assert search(stack, population_office(stack), LastName="Xyzzyplughwq", BirthDate="1986-07-30") == []


def test_search_with_an_impossible_birth_date_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    seen, _ = refused(stack, population_office(stack), CB_NS, "SearchPersons",
                      {"LastName": "Claes", "BirthDate": "1979-02-30"}, IMPOSSIBLE, 400)
    assert "1979-02-30" in seen.reason


# --- CreateBisNumber -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides", [
    {"Gender": "M"}, {"Gender": "F"}, {"Gender": None},
    {"BirthDate": "2004-03-00", "Gender": "M"}, {"BirthDate": "1971", "Gender": None}, {"BirthDate": None},
    {"BirthDate": "2001-00-00", "Gender": "F"},
], ids=["man", "woman", "gender-unknown", "day-unknown", "only-year-gender-unknown", "date-unknown",
        "only-year-2000s"])
def test_created_numbers_follow_the_bis_rules(stack, overrides: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    person = fresh_identity(**overrides)
    answer = create(stack, population_office(stack), person)
    insz = answer.body["Insz"]
    check_number(insz, person)
    text = person.get("BirthDate")
    year, month = (int(text[:4]), int(text[5:7] or 0) if len(text) > 4 else 0) if text else (None, 0)
    assert bis.get_birth_year(insz) == year
    assert bis.get_birth_month(insz) == (month or None)
    if text is None:
        assert insz[:2] == "00" and insz[4:6] == "01"  # the fictitious date for a wholly unknown birth date
    assert answer.body["Person"].get("BirthDate") == (text.replace("-00", "") if text else None)
    assert answer.body["Person"].get("Gender") == person.get("Gender")


@pytest.mark.parametrize("birth_date", ["1990-02-30", "1990-13-01", "1990-13", "1990-00-15", "2199-01-01",
                                        "1850-01-01"])
def test_an_impossible_birth_date_is_refused_and_audited(stack, birth_date: str) -> None:  # type: ignore[no-untyped-def]
    seen = create_refused(stack, population_office(stack), fresh_identity(BirthDate=birth_date), IMPOSSIBLE, 400)
    assert birth_date[:4] in seen.reason


def test_an_exact_match_in_the_national_register_is_refused_naming_the_number(stack) -> None:  # type: ignore[no-untyped-def]
    ahmed = NR["El Amrani"]
    seen = create_refused(stack, population_office(stack),
                          {"LastName": "el-AMRANI", "FirstNames": "Ahmed", "BirthDate": "1986-07-30", "Gender": "M",
                           "Nationality": "MA"}, EXACT_MATCH, 409)
    assert ahmed.insz in seen.reason and "National Register" in seen.reason


def test_an_exact_match_in_the_bis_register_is_refused_naming_the_number(stack) -> None:  # type: ignore[no-untyped-def]
    caller = population_office(stack)
    person = fresh_identity()
    insz = create(stack, caller, person).body["Insz"]
    accented = dict(person, LastName=person["LastName"].upper(), FirstNames=person["FirstNames"].replace("x", "x-"),
                    Nationality="DE")
    seen = create_refused(stack, caller, accented, EXACT_MATCH, 409, proof=evidence("OTHERDOC1"))
    assert insz in seen.reason and "BIS register" in seen.reason


def test_a_retry_with_the_same_message_id_gets_the_same_number(stack) -> None:  # type: ignore[no-untyped-def]
    caller, person, message_id, proof = population_office(stack), fresh_identity(), str(uuid.uuid4()), evidence()
    first = create(stack, caller, person, message_id=message_id, proof=proof)
    retry = create(stack, caller, person, message_id=message_id, proof=proof)
    assert retry.body["Insz"] == first.body["Insz"]
    assert (first.body["Created"], retry.body["Created"]) == (True, False)
    assert retry.body["CreatedTicket"] == first.ticket != retry.ticket
    assert retry.record.detail == f"retry: BIS number {first.body['Insz']} created by {first.ticket}"

    changed = dict(person, FirstNames=person["FirstNames"] + " Maria")
    seen = create_refused(stack, caller, changed, CONFLICT, 409, message_id=message_id, proof=proof)
    assert message_id in seen.reason and first.ticket in seen.reason


def test_two_concurrent_creations_for_one_identity_give_one_number(stack) -> None:  # type: ignore[no-untyped-def]
    caller, person = population_office(stack), fresh_identity()
    start = threading.Barrier(4)

    def attempt(_: int) -> Any:
        start.wait()
        return send(stack, caller, CB_NS, "CreateBisNumber", {"Person": person, "Evidence": evidence()})

    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(attempt, range(4)))
    created = [r for r in replies if r.status_code == 200]
    assert len(created) == 1, [fault_of(r).reason for r in replies if r.status_code != 200]
    insz = answered_insz(stack, created[0])
    for reply in replies:
        if reply.status_code != 200:
            seen = fault_of(reply)
            assert (seen.http_status, seen.code) == (409, EXACT_MATCH) and insz in seen.reason, seen.reason
    check_number(insz, person)


def test_concurrent_retries_of_one_request_answer_one_number(stack) -> None:  # type: ignore[no-untyped-def]
    caller, person, message_id, proof = population_office(stack), fresh_identity(), str(uuid.uuid4()), evidence()
    start = threading.Barrier(3)

    def attempt(_: int) -> Any:
        start.wait()
        return send(stack, caller, CB_NS, "CreateBisNumber", {"Person": person, "Evidence": proof}, message_id)

    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(attempt, range(3)))
    assert [r.status_code for r in replies] == [200, 200, 200], [r.text[:300] for r in replies]
    assert len({answered_insz(stack, r) for r in replies}) == 1


def test_concurrent_creations_for_namesakes_born_the_same_day_get_distinct_numbers(stack) -> None:  # type: ignore[no-untyped-def]
    caller, birth = population_office(stack), fresh_identity()["BirthDate"]
    people = [fresh_identity(BirthDate=birth, Gender="M") for _ in range(5)]
    start = threading.Barrier(len(people))

    def attempt(person: dict[str, Any]) -> Any:
        start.wait()
        return send(stack, caller, CB_NS, "CreateBisNumber", {"Person": person, "Evidence": evidence()})

    with ThreadPoolExecutor(len(people)) as pool:
        replies = list(pool.map(attempt, people))
    numbers = [answered_insz(stack, r) for r in replies]
    assert len(set(numbers)) == len(people)
    assert len({n[:6] for n in numbers}) == 1  # one birth-date code, five sequence numbers
    for person, insz in zip(people, numbers, strict=True):
        check_number(insz, person)


def test_a_created_person_is_in_the_creating_organisations_files(stack) -> None:  # type: ignore[no-untyped-def]
    caller = population_office(stack)
    insz = create(stack, caller, fresh_identity()).body["Insz"]
    assert consult(stack, caller, insz)["Insz"] == insz


def test_client_library_sees_refusals_as_faults_with_the_code(stack) -> None:  # type: ignore[no-untyped-def]
    caller = population_office(stack)
    creabis = client(stack, caller, "Creabis")
    with pytest.raises(Fault) as raised:
        creabis.call("CreateBisNumber", official=caller.official, purpose=caller.purpose,
                     Person=fresh_identity(BirthDate="1990-00-15"), Evidence=evidence())
    detail = fault_detail(raised.value)
    assert detail["Code"] == IMPOSSIBLE
    assert audit_record(stack.sessions, detail["Ticket"]).fault_code == IMPOSSIBLE


def test_without_the_national_register_the_search_says_incomplete_and_creation_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    caller, person = population_office(stack), fresh_identity()
    stack.stop_backend("national-register")
    try:
        answer = answered(stack, caller, CB_NS, "SearchPersons", {"LastName": "Claes", "BirthDate": "1979"},
                          outcome="PARTIAL")
        assert answer.body["Complete"] is False
        sources = {s["Name"]: s["Outcome"] for s in answer.body["Source"]}
        assert sources == {"NATIONAL_REGISTER": "UNAVAILABLE", "BIS_REGISTER": "CONSULTED"}
        assert all(c["Source"] == "BIS_REGISTER" for c in answer.body.get("Candidate", []))
        # no number without checking the National Register for an exact match
        seen, _ = refused(stack, caller, CB_NS, "CreateBisNumber", {"Person": person, "Evidence": evidence()},
                          "Server.Backend.Unavailable", 502)
    finally:
        stack.start_backend("national-register")
        forget_circuits(stack, "Creabis")
    assert seen.source == "national-register"
    check_number(create(stack, caller, person).body["Insz"], person)  # back: the same request now succeeds


def test_the_wsdls_name_every_operation_with_its_soap_action(stack) -> None:  # type: ignore[no-untyped-def]
    from services.bis_register import SERVICE as REGISTER
    from services.creabis import SERVICE as CREABIS

    for service in (CREABIS, REGISTER):
        wsdl = zeep.Client(f"{stack.base_url}{service.path}?wsdl").wsdl
        binding = next(iter(wsdl.bindings.values()))
        actions = {name: op.soapaction for name, op in binding._operations.items()}
        assert actions == {op.name: op.soap_action for op in service.operations}
