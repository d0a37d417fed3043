"""e-Creabis's ListCreatedBisNumbers end to end, on SQLite and PostgreSQL, over real sockets: an official lists
exactly the BIS numbers they created for their organisation (not a colleague's), newest first and paged; and
creating a number needs the right BisRegister.Update (an organisation that may only search is refused)."""

from __future__ import annotations

from typing import Any

from integrator import commands
from repository import grants
from repository.actors import Actor
from services.creabis import UPDATE
from services.demo_creabis import CREABIS, PURPOSE_IDENTIFICATION
from services.demo_organisations import ADMINISTRATORS, KRUISDORP
from tests.e2e.creabis_calls import (
    CB_NS,
    Caller,
    answered,
    brugstede,
    client,
    create,
    evidence,
    fresh_identity,
    refused,
    search,
)
from tests.e2e.directory_calls import new_person
from tests.support import audit_record

ACCESS_DENIED = "Client.Caller.AccessDenied"


def population_officer(stack) -> Caller:  # type: ignore[no-untyped-def]
    """A fresh Kruisdorp official, granted Creabis and BisRegister.Update by the service desk (the sensitive
    grant approved by Kruisdorp's co-administrator): no number yet."""
    insz = new_person()
    organisation = KRUISDORP.enterprise_number
    with stack.sessions() as session:
        commands.add_official(session, organisation, insz, "Test Registrar", department="population")
        commands.add_grant(session, organisation, insz, CREABIS, PURPOSE_IDENTIFICATION)
        pending = commands.add_grant(session, organisation, insz, UPDATE, PURPOSE_IDENTIFICATION)
        kruisdorp = commands.organisation_id(session, organisation)
        grants.approve_grant(session, Actor.official(kruisdorp, ADMINISTRATORS[1].insz), kruisdorp, pending.id)
        session.commit()
    return Caller(stack.pki.kruisdorp, insz, KRUISDORP.enterprise_number)


def listed(stack, caller: Caller, **paging: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """ListCreatedBisNumbers: the answer's fields, and the audit record's detail."""
    answer = answered(stack, caller, CB_NS, "ListCreatedBisNumbers", paging)
    return {"detail": answer.record.detail, **answer.body}


def test_an_official_lists_exactly_the_numbers_they_created_newest_first(stack) -> None:  # type: ignore[no-untyped-def]
    mine, colleague = population_officer(stack), population_officer(stack)
    first = create(stack, mine, fresh_identity(Gender="F")).body
    second = create(stack, mine, fresh_identity(Gender=None, BirthDate="1971-00-00")).body
    theirs = create(stack, colleague, fresh_identity()).body

    answer = listed(stack, mine)
    assert (answer["Total"], answer["Page"], answer["PageSize"]) == (2, 1, 20)
    rows = answer["BisNumber"]
    assert [r["Insz"] for r in rows] == [second["Insz"], first["Insz"]], rows
    newest = rows[0]
    assert (newest["LastName"], newest["FirstNames"], newest["BirthDate"], newest.get("Gender"),
            newest["Nationality"]) == (second["Person"]["LastName"], second["Person"]["FirstNames"], "1971",
                                       None, "PL")
    assert (newest["CreatedTicket"], newest["CreatedAt"]) == (second["CreatedTicket"], second["CreatedAt"])
    assert (rows[1]["Gender"], rows[1]["BirthDate"]) == ("F", first["Person"]["BirthDate"])
    # every person handed out is named in the audit record
    assert answer["detail"] == f"2 of 2 BIS number(s): {second['Insz']} {first['Insz']}"
    assert theirs["Insz"] not in answer["detail"]
    assert [r["Insz"] for r in listed(stack, colleague)["BisNumber"]] == [theirs["Insz"]]


def test_the_list_is_paged_and_the_client_library_reads_it(stack) -> None:  # type: ignore[no-untyped-def]
    caller = population_officer(stack)
    made = []
    for _ in range(3):
        made.append(create(stack, caller, fresh_identity()).body["Insz"])
    second_page = listed(stack, caller, Page=2, PageSize=2)
    assert (second_page["Total"], second_page["Page"], second_page["PageSize"]) == (3, 2, 2)
    assert [r["Insz"] for r in second_page["BisNumber"]] == [made[0]]
    assert not listed(stack, caller, Page=3, PageSize=2).get("BisNumber")

    creabis = client(stack, caller, "Creabis")
    answer = creabis.call("ListCreatedBisNumbers", official=caller.official, purpose=caller.purpose, PageSize=2)
    assert answer.body.Total == 3 and [r.Insz for r in answer.body.BisNumber] == made[:0:-1]
    assert audit_record(stack.sessions, answer.ticket).operation == "ListCreatedBisNumbers"


def test_a_page_size_above_the_maximum_is_refused_by_the_contract(stack) -> None:  # type: ignore[no-untyped-def]
    refused(stack, population_officer(stack), CB_NS, "ListCreatedBisNumbers", {"PageSize": 101},
            "Client.Contract.Invalid", 400)


def test_an_organisation_that_may_only_search_is_refused_creation(stack) -> None:  # type: ignore[no-untyped-def]
    caller, person = brugstede(stack), fresh_identity()
    assert search(stack, caller, LastName=person["LastName"], BirthDate=person["BirthDate"]) == []  # it may search
    seen, record = refused(stack, caller, CB_NS, "CreateBisNumber", {"Person": person, "Evidence": evidence()},
                           ACCESS_DENIED, 403)
    assert UPDATE in seen.reason and caller.organisation in seen.reason
    assert record.organisation == caller.organisation
