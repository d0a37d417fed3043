"""The integrator's BIS register end to end, on SQLite and PostgreSQL: consult a BIS-registered person with the
history of their addresses and contact data; updates only by organisations with the access right and grant
BisRegister.Update; every operation only about persons in the caller's files for the caller's purpose."""

from __future__ import annotations

from datetime import date, timedelta

from repository import directory
from services.demo_creabis import DEMO_PERSON, PURPOSE_IDENTIFICATION
from services.demo_organisations import OCMW
from tests.e2e.creabis_calls import (
    BR_NS,
    address,
    answered,
    brugstede,
    consult,
    create,
    fresh_identity,
    ocmw,
    population_office,
    refused,
)
from tests.e2e.directory_calls import new_person, today

ACCESS_DENIED, NOT_IN_FILES = "Client.Caller.AccessDenied", "Client.Caller.PersonNotInFiles"


def bis_person(stack, street: str = "Veldstraat") -> str:  # type: ignore[no-untyped-def]
    """A new BIS person created by Kruisdorp's population office, living in street since 2025-01-01."""
    made = create(stack, population_office(stack), fresh_identity(),
                  address=dict(address(street), ValidFrom="2025-01-01"))
    return made.body["Insz"]


def in_files(stack, organisation: str, insz: str) -> None:  # type: ignore[no-untyped-def]
    from repository.models import Organisation

    with stack.sessions() as session:
        org = session.query(Organisation).filter_by(enterprise_number=organisation).one()
        directory.register(session, org.id, insz, PURPOSE_IDENTIFICATION, today() - timedelta(days=1))
        session.commit()


def test_address_and_contact_history_after_updates(stack) -> None:  # type: ignore[no-untyped-def]
    kruisdorp, social = population_office(stack), ocmw(stack)
    insz = bis_person(stack)
    moved = answered(stack, kruisdorp, BR_NS, "UpdateAddress",
                     {"Insz": insz, "Address": address("Leiestraat", "21"), "ValidFrom": "2026-03-01"})
    assert moved.record.person == insz
    assert moved.body["Closed"]["ValidUntil"] == "2026-02-28"
    assert moved.body["Current"]["Address"]["Street"] == "Leiestraat" and "ValidUntil" not in moved.body["Current"]
    in_files(stack, OCMW.enterprise_number, insz)  # the OCMW opens a file on the person, then records a move
    again = answered(stack, social, BR_NS, "UpdateAddress",
                     {"Insz": insz, "Address": address("Kouter", "3B"), "ValidFrom": "2026-06-15"})
    answered(stack, kruisdorp, BR_NS, "UpdateContact", {"Insz": insz, "Phone": "+32 9 123 45 67",
                                                        "ValidFrom": "2026-01-01"})
    mail = answered(stack, social, BR_NS, "UpdateContact", {"Insz": insz, "Email": "jan@example.org",
                                                            "ValidFrom": "2026-05-01"})
    assert mail.body["Current"]["Phone"] == "+32 9 123 45 67"  # what is not given carries over

    seen = consult(stack, kruisdorp, insz)
    periods = seen["Addresses"]["Period"]
    assert [(p["Address"]["Street"], p["ValidFrom"], p.get("ValidUntil")) for p in periods] == [
        ("Veldstraat", "2025-01-01", "2026-02-28"), ("Leiestraat", "2026-03-01", "2026-06-14"),
        ("Kouter", "2026-06-15", None)]
    assert [p["Recorded"]["Organisation"] for p in periods] == [kruisdorp.organisation, kruisdorp.organisation,
                                                                 social.organisation]
    assert periods[1]["Recorded"]["Ticket"] == moved.ticket and periods[2]["Recorded"]["Ticket"] == again.ticket
    contacts = seen["Contacts"]["Period"]
    assert [(c.get("Phone"), c.get("Email"), c["ValidFrom"], c.get("ValidUntil")) for c in contacts] == [
        ("+32 9 123 45 67", None, "2026-01-01", "2026-04-30"),
        ("+32 9 123 45 67", "jan@example.org", "2026-05-01", None)]


def test_a_new_period_must_start_after_the_current_one(stack) -> None:  # type: ignore[no-untyped-def]
    insz = bis_person(stack)
    seen, _ = refused(stack, population_office(stack), BR_NS, "UpdateAddress",
                      {"Insz": insz, "Address": address("Kouter"), "ValidFrom": "2025-01-01"},
                      "Client.Contract.Invalid", 400)
    assert "2025-01-01" in seen.reason
    assert len(consult(stack, population_office(stack), insz)["Addresses"]["Period"]) == 1


def test_an_organisation_without_the_update_right_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    insz = bis_person(stack)
    caller = brugstede(stack)
    in_files(stack, caller.organisation, insz)  # in Brugstede's files: only the missing right refuses it
    assert consult(stack, caller, insz)["Insz"] == insz  # Brugstede may consult
    for operation, data in (("UpdateAddress", {"Insz": insz, "Address": address("Kouter"),
                                               "ValidFrom": "2026-01-01"}),
                            ("UpdateContact", {"Insz": insz, "Phone": "+32 50 11 22 33", "ValidFrom": "2026-01-01"})):
        seen, record = refused(stack, caller, BR_NS, operation, data, ACCESS_DENIED, 403)
        assert "BisRegister.Update" in seen.reason and caller.organisation in seen.reason
        assert (record.organisation, record.person) == (caller.organisation, insz)
    assert len(consult(stack, population_office(stack), insz)["Addresses"]["Period"]) == 1  # nothing changed


def test_a_person_outside_the_callers_files_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    insz = bis_person(stack)
    caller = ocmw(stack)
    for operation, data in (("ConsultPerson", {"Insz": insz}),
                            ("UpdateAddress", {"Insz": insz, "Address": address("Kouter"), "ValidFrom": "2026-01-01"})):
        seen, record = refused(stack, caller, BR_NS, operation, data, NOT_IN_FILES, 403)
        assert insz in seen.reason and PURPOSE_IDENTIFICATION in seen.reason
        assert (record.organisation, record.person) == (caller.organisation, insz)
    in_files(stack, caller.organisation, insz)
    assert consult(stack, caller, insz)["Insz"] == insz


def test_a_person_not_in_the_register_is_unknown(stack) -> None:  # type: ignore[no-untyped-def]
    caller, insz = population_office(stack), new_person()
    in_files(stack, caller.organisation, insz)
    seen, record = refused(stack, caller, BR_NS, "ConsultPerson", {"Insz": insz}, "Client.Register.PersonUnknown",
                           404)
    assert insz in seen.reason and record.person == insz


def test_the_demo_person_is_in_kruisdorps_files(stack) -> None:  # type: ignore[no-untyped-def]
    from repository import bis
    from services.demo_creabis import DEMO_EVIDENCE
    from services.matching import identity_key

    with stack.sessions() as session:
        person = bis.by_identity(session, identity_key(DEMO_PERSON, DEMO_EVIDENCE))
    assert person is not None
    seen = consult(stack, population_office(stack), person.insz)
    assert (seen["Person"]["LastName"], seen["Person"]["BirthDate"]) == ("Kowalski", "1984-05-17")
    assert seen["Addresses"]["Period"][0]["ValidFrom"] == date(2025, 1, 1).isoformat()
