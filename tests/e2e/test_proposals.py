"""National Register update proposals end to end, on SQLite and PostgreSQL, over real sockets: an institution
submits a proposal about a person in its files; the integrator asks the National Register reference backend where
the person is registered and routes it to that municipality; the municipality pulls (paged; again until it
acknowledges), acknowledges and decides; an accepted update reaches the National Register exactly once, also when
the National Register is down at the moment of the decision; the proposer follows its proposals; proposals left
undecided too long are listed. Every refusal is a signed fault audited with its reason."""

from __future__ import annotations

import base64
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from kruispunt_client import KruispuntClient, fault_detail
from sqlalchemy import func, select, update
from zeep.exceptions import Fault

from integrator.outbox import OutboxEntry
from repository import directory
from repository.models import Organisation
from repository.proposals import Proposal
from services.demo_organisations import BRUGSTEDE, INSTITUTION, KRUISDORP
from tests.e2e.application_calls import eventually
from tests.e2e.directory_calls import new_person
from tests.e2e.generic_calls import kruispunt
from tests.e2e.proposal_calls import (
    BRUGSTEDE_PERSON,
    KRUISDORP_PERSON,
    NR_BACKEND,
    UP_PATH,
    Caller,
    acknowledge,
    all_pending,
    answered,
    brugstede,
    decide,
    decoded,
    get_proposal,
    institution,
    kruisdorp,
    move_submission,
    new_message_id,
    nr_deliveries,
    nr_person,
    pending,
    proposal_data,
    refused,
    send,
    submit,
    unique,
)
from tests.support import audit_record, fault_of

CONTRACT = "Client.Contract.Invalid"


def references(proposals: list[dict[str, Any]]) -> list[str]:
    return [p["Reference"] for p in proposals]


def library(stack, caller: Caller) -> KruispuntClient:  # type: ignore[no-untyped-def]
    return KruispuntClient(f"{stack.base_url}{UP_PATH}?wsdl", caller.identity, stack.settings.trust_anchor_paths,
                           integrator_cert=stack.settings.pki_dir / "integrator.crt", crl=stack.settings.crl_path)


def outbox_entries(stack, reference: str) -> list[OutboxEntry]:  # type: ignore[no-untyped-def]
    with stack.sessions() as session:
        proposal = session.execute(select(Proposal).where(Proposal.reference == reference)).scalar_one()
        return list(session.execute(select(OutboxEntry).where(OutboxEntry.kind == "nr-update",
                                                              OutboxEntry.ticket == proposal.decision_ticket))
                    .scalars())


# --- the whole journey --------------------------------------------------------------------------------------------
def test_submit_pull_acknowledge_accept_reaches_the_national_register_and_the_proposer_learns_it(stack) -> None:  # type: ignore[no-untyped-def]
    person, value = KRUISDORP_PERSON, unique("DIVORCED")
    proposer, office = institution(stack), kruisdorp(stack)
    as_proposer, as_office = library(stack, proposer), library(stack, office)
    scan = b"%PDF-1.4 divorce judgment"
    submitted = as_proposer.call("SubmitProposal", official=proposer.official, purpose=proposer.purpose,
                                 Insz=person.insz, Field="CIVIL_STATUS", ProposedValue=value,
                                 Evidence={"Description": "Judgment of the family court",
                                           "Document": {"Name": "judgment.pdf", "MimeType": "application/pdf",
                                                        "Content": scan}})
    reference = submitted.body.Reference
    assert reference == submitted.ticket  # the submitting transaction's ticket is the proposal's reference
    municipality = submitted.body.CompetentMunicipality
    assert (municipality.EnterpriseNumber, municipality.Name, municipality.NisCode) == (
        KRUISDORP.enterprise_number, KRUISDORP.name, KRUISDORP.nis_code)
    assert (submitted.body.State, submitted.body.Repeated) == ("SUBMITTED", False)
    record = audit_record(stack.sessions, submitted.ticket)
    assert (record.outcome, record.operation, record.person, record.organisation) == (
        "OK", "SubmitProposal", person.insz, INSTITUTION.enterprise_number)
    assert reference in record.detail and "CIVIL_STATUS" in record.detail

    pulled = {p["Reference"]: p for p in all_pending(stack, office)}
    assert reference in pulled
    seen = pulled[reference]
    assert (seen["Insz"], seen["Field"], seen["ProposedValue"], seen["State"]) == (person.insz, "CIVIL_STATUS",
                                                                                   value, "SUBMITTED")
    assert seen["Proposer"] == {"EnterpriseNumber": INSTITUTION.enterprise_number, "Name": INSTITUTION.name}
    document = seen["Evidence"]["Document"]
    assert (document["Name"], document["MimeType"]) == ("judgment.pdf", "application/pdf")
    assert base64.b64decode(document["Content"]) == scan

    acked = acknowledge(stack, office, reference)
    assert acked.body["Acknowledged"] == [{"Reference": reference, "State": "ACKNOWLEDGED",
                                           "AlreadyAcknowledged": False}]
    assert reference not in references(all_pending(stack, office))

    decided = as_office.call("DecideProposal", official=office.official, purpose=office.purpose,
                             Reference=reference, Decision="ACCEPT")
    assert (decided.body.State, decided.body.NationalRegisterUpdate) == ("ACCEPTED", "PENDING")
    assert audit_record(stack.sessions, decided.ticket).detail.startswith(f"{reference} accepted")
    eventually(lambda: get_proposal(stack, institution(stack), reference)["NationalRegisterUpdate"] == "DELIVERED"
               or None, "the update sent after the decision's commit")
    registered = nr_person(stack, person.insz)
    assert registered is not None and registered["civil_status"] == value
    assert nr_deliveries(stack, reference) == 1

    learned = as_proposer.call("GetProposal", official=proposer.official, purpose=proposer.purpose,
                               Reference=reference).body.Proposal
    assert (learned.State, learned.Decision, learned.DecisionTicket, learned.DecidedBy,
            learned.NationalRegisterUpdate) == ("ACCEPTED", "ACCEPT", decided.ticket, office.official, "DELIVERED")
    assert learned.AcknowledgedAt is not None and learned.DecidedAt >= learned.AcknowledgedAt >= learned.SubmittedAt
    assert learned.RejectReason is None
    accepted = answered(stack, proposer, "ListProposals", {"State": "ACCEPTED", "MaxCount": 100})
    listed = list(accepted.body.get("Proposal", []))
    while accepted.body["More"]:
        accepted = answered(stack, proposer, "ListProposals", {"State": "ACCEPTED", "After":
                                                               accepted.body["NextAfter"], "MaxCount": 100})
        listed.extend(accepted.body.get("Proposal", []))
    assert reference in references(listed)
    assert all(p["State"] == "ACCEPTED" for p in listed)


def test_a_rejection_needs_a_reason_and_the_proposer_reads_it(stack) -> None:  # type: ignore[no-untyped-def]
    person, value = BRUGSTEDE_PERSON, unique("Nieuwstraat")
    reference = submit(stack, person, "ADDRESS", value).body["Reference"]
    office = brugstede(stack)
    seen = refused(stack, office, "DecideProposal", {"Reference": reference, "Decision": "REJECT"}, CONTRACT, 400)
    assert "Reason" in seen.reason
    decided = decide(stack, office, reference, "REJECT", "The person still lives at the registered address.")
    assert decided.body["State"] == "REJECTED" and "NationalRegisterUpdate" not in decided.body
    learned = get_proposal(stack, institution(stack), reference)
    assert (learned["State"], learned["Decision"], learned["RejectReason"], learned["DecisionTicket"]) == (
        "REJECTED", "REJECT", "The person still lives at the registered address.", decided.ticket)
    assert "NationalRegisterUpdate" not in learned
    assert nr_deliveries(stack, reference) == 0
    registered = nr_person(stack, person.insz)
    assert registered is not None


def test_a_municipality_lists_the_proposals_addressed_to_it_that_it_decided(stack) -> None:  # type: ignore[no-untyped-def]
    """ListProposals with Role COMPETENT_MUNICIPALITY: the municipality's decided proposals, not another's; without
    the Role, the proposals it submitted (none here)."""
    mine = submit(stack, BRUGSTEDE_PERSON, "LAST_NAME", unique("Claes")).body["Reference"]
    other = submit(stack, KRUISDORP_PERSON, "LAST_NAME", unique("Wouters")).body["Reference"]
    office = brugstede(stack)
    decide(stack, office, mine, "REJECT", "Not this person.")
    decide(stack, kruisdorp(stack), other, "REJECT", "Not this person either.")

    def listed(role: str | None) -> list[str]:
        references: list[str] = []
        after = None
        while True:
            body = answered(stack, office, "ListProposals", {"State": "REJECTED", "After": after, "MaxCount": 100,
                                                             "Role": role}).body
            page = body.get("Proposal", [])
            references += [p["Reference"] for p in (page if isinstance(page, list) else [page])]
            if not body["More"]:
                return references
            after = body["NextAfter"]

    addressed = listed("COMPETENT_MUNICIPALITY")
    assert mine in addressed and other not in addressed
    assert mine not in listed(None) and mine not in listed("PROPOSER")


# --- pulling: paged, and the same again until acknowledged -----------------------------------------------------------
def test_a_pull_without_acknowledgement_gets_the_same_proposals_again_page_by_page(stack) -> None:  # type: ignore[no-untyped-def]
    person, office = KRUISDORP_PERSON, kruisdorp(stack)
    mine = [submit(stack, person, "LAST_NAME", unique("Janssens")).body["Reference"] for _ in range(3)]
    first = references(all_pending(stack, office))
    again = references(all_pending(stack, office))  # the first pull "died": nothing was acknowledged
    assert [r for r in first if r in mine] == mine == [r for r in again if r in mine]

    paged: list[str] = []
    after = None
    while True:  # one proposal a page, following NextAfter
        page = pending(stack, office, after, max_count=1).body
        assert len(page.get("Proposal", [])) <= 1
        paged.extend(references(page.get("Proposal", [])))
        if not page["More"]:
            assert page.get("NextAfter") == (paged[-1] if page.get("Proposal") else None)
            break
        after = page["NextAfter"]
        assert after == paged[-1]
    assert [r for r in paged if r in mine] == mine
    assert len(paged) == len(set(paged))

    acked = acknowledge(stack, office, mine[0], mine[1])
    assert [a["AlreadyAcknowledged"] for a in acked.body["Acknowledged"]] == [False, False]
    assert [r for r in references(all_pending(stack, office)) if r in mine] == [mine[2]]
    twice = acknowledge(stack, office, mine[1], mine[0])  # harmless: the same state, said so
    assert twice.body["Acknowledged"] == [{"Reference": mine[1], "State": "ACKNOWLEDGED", "AlreadyAcknowledged": True},
                                          {"Reference": mine[0], "State": "ACKNOWLEDGED", "AlreadyAcknowledged": True}]
    # a cursor handed out before its proposal was acknowledged stays valid
    page = pending(stack, office, after=mine[1], max_count=100).body
    assert mine[2] in references(page.get("Proposal", []))
    assert mine[0] not in references(page.get("Proposal", []))
    # a cursor that is not one of the municipality's proposals is refused
    other = submit(stack, BRUGSTEDE_PERSON, "LAST_NAME", unique("Wouters")).body["Reference"]
    seen = refused(stack, office, "ListPendingProposals", {"After": other}, CONTRACT, 400)
    assert other in seen.reason


# --- refusals the issue names -----------------------------------------------------------------------------------------
def test_a_proposal_about_a_person_unknown_to_the_national_register_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    insz = new_person()
    with stack.sessions() as session:  # in the institution's files, but not in the National Register
        org = session.execute(select(Organisation).where(
            Organisation.enterprise_number == INSTITUTION.enterprise_number)).scalar_one()
        directory.register(session, org.id, insz, institution(stack).purpose, date(2000, 1, 1))
        session.commit()
    message_id = new_message_id()
    seen = refused(stack, institution(stack), "SubmitProposal", proposal_data(insz, "NATIONALITY", "BE"),
                   "Client.Proposal.PersonUnknown", 404, person=insz, message_id=message_id)
    assert insz in seen.reason and seen.source == NR_BACKEND
    with stack.sessions() as session:
        assert session.execute(select(Proposal).where(Proposal.insz == insz)).first() is None


def test_a_proposal_about_a_person_outside_the_proposers_files_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    insz = new_person()
    seen = refused(stack, institution(stack), "SubmitProposal", proposal_data(insz, "NATIONALITY", "BE"),
                   "Client.Caller.PersonNotInFiles", 403, person=insz)
    assert insz in seen.reason and INSTITUTION.enterprise_number in seen.reason
    with stack.sessions() as session:
        assert session.execute(select(Proposal).where(Proposal.insz == insz)).first() is None


def test_a_person_registered_in_a_municipality_not_connected_cannot_be_routed(stack) -> None:  # type: ignore[no-untyped-def]
    with stack.sessions() as session:  # Brugstede leaves the network for a moment (its NIS code changes)
        session.execute(update(Organisation).where(Organisation.enterprise_number == BRUGSTEDE.enterprise_number)
                        .values(nis_code="39999"))
        session.commit()
    try:
        seen = refused(stack, institution(stack), "SubmitProposal",
                       proposal_data(BRUGSTEDE_PERSON, "LAST_NAME", unique("Wouters")),
                       "Server.Proposal.MunicipalityNotConnected", 503, person=BRUGSTEDE_PERSON.insz)
        assert BRUGSTEDE_PERSON.address.nis_code in seen.reason
    finally:
        with stack.sessions() as session:
            session.execute(update(Organisation).where(Organisation.enterprise_number == BRUGSTEDE.enterprise_number)
                            .values(nis_code=BRUGSTEDE.nis_code))
            session.commit()


def test_only_the_competent_municipality_acknowledges_and_decides(stack) -> None:  # type: ignore[no-untyped-def]
    reference = submit(stack, KRUISDORP_PERSON, "FIRST_NAMES", unique("Maria")).body["Reference"]
    other = brugstede(stack)
    seen = refused(stack, other, "DecideProposal", {"Reference": reference, "Decision": "ACCEPT"},
                   "Client.Proposal.NotCompetent", 403)
    assert KRUISDORP.enterprise_number in seen.reason and reference in seen.reason
    refused(stack, other, "AcknowledgeProposals", {"Reference": [reference]}, "Client.Proposal.NotCompetent", 403)
    refused(stack, other, "GetProposal", {"Reference": reference}, "Client.Proposal.Unknown", 404)
    assert reference not in references(all_pending(stack, other))
    still = get_proposal(stack, kruisdorp(stack), reference)
    assert (still["State"], still.get("DecidedAt")) == ("SUBMITTED", None)
    assert reference in references(all_pending(stack, kruisdorp(stack)))


def test_a_second_decision_is_refused_naming_the_first(stack) -> None:  # type: ignore[no-untyped-def]
    office = kruisdorp(stack)
    reference = submit(stack, KRUISDORP_PERSON, "NATIONALITY", unique("NL")).body["Reference"]
    first = decide(stack, office, reference, "ACCEPT")
    assert first.body["NationalRegisterUpdate"] == "PENDING"  # sent once the decision is committed
    eventually(lambda: get_proposal(stack, institution(stack), reference)["NationalRegisterUpdate"] == "DELIVERED"
               or None, "the update sent after the decision's commit")
    seen = refused(stack, office, "DecideProposal", {"Reference": reference, "Decision": "REJECT",
                                                     "Reason": "Changed our mind"}, "Client.Proposal.AlreadyDecided",
                   409)
    assert "ACCEPTED" in seen.reason and first.ticket in seen.reason
    refused(stack, office, "DecideProposal", {"Reference": reference, "Decision": "ACCEPT"},
            "Client.Proposal.AlreadyDecided", 409)
    after = get_proposal(stack, institution(stack), reference)
    assert (after["State"], after["DecisionTicket"], after.get("RejectReason")) == ("ACCEPTED", first.ticket, None)
    assert nr_deliveries(stack, reference) == 1
    assert len(outbox_entries(stack, reference)) == 1


def test_the_same_message_id_is_the_same_proposal_and_a_different_request_under_it_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    person, value, message_id = KRUISDORP_PERSON, unique("Kerkplein"), new_message_id()
    first = submit(stack, person, "ADDRESS", value, message_id=message_id)
    retry = submit(stack, person, "ADDRESS", value, message_id=message_id)
    assert first.body["Repeated"] is False and retry.body["Repeated"] is True
    assert retry.body["Reference"] == first.body["Reference"] == first.ticket != retry.ticket
    assert {k: v for k, v in retry.body.items() if k != "Repeated"} == \
        {k: v for k, v in first.body.items() if k != "Repeated"}
    assert first.body["Reference"] in retry.record.detail
    with stack.sessions() as session:
        count = session.execute(select(func.count()).select_from(Proposal)
                                .where(Proposal.message_id == message_id)).scalar_one()
    assert count == 1
    assert references(all_pending(stack, kruisdorp(stack))).count(first.body["Reference"]) == 1
    seen = refused(stack, institution(stack), "SubmitProposal", proposal_data(person, "ADDRESS", unique("Andere")),
                   "Client.Idempotency.Conflict", 409, person=person.insz, message_id=message_id)
    assert first.body["Reference"] in seen.reason and message_id in seen.reason


def test_concurrent_duplicate_submissions_are_one_proposal(stack) -> None:  # type: ignore[no-untyped-def]
    person, value, message_id = BRUGSTEDE_PERSON, unique("Markt"), new_message_id()
    data = proposal_data(person, "ADDRESS", value)
    replies = together([lambda: send(stack, institution(stack), "SubmitProposal", data, message_id)] * 2)
    bodies = [decoded(stack, reply, "SubmitProposal")[1] for reply in replies]
    assert bodies[0]["Reference"] == bodies[1]["Reference"]
    assert sorted(b["Repeated"] for b in bodies) == [False, True]


# --- overdue ------------------------------------------------------------------------------------------------------
def test_proposals_undecided_too_long_are_listed_as_overdue(stack) -> None:  # type: ignore[no-untyped-def]
    old = submit(stack, KRUISDORP_PERSON, "CIVIL_STATUS", unique("MARRIED")).body["Reference"]
    fresh = submit(stack, KRUISDORP_PERSON, "CIVIL_STATUS", unique("MARRIED")).body["Reference"]
    move_submission(stack, old, datetime.now(UTC) - timedelta(days=31))

    def overdue(caller: Caller, days: float | None = None) -> list[str]:
        answer = answered(stack, caller, "ListOverdueProposals", {"OlderThanDays": days})
        return references(answer.body.get("Proposal", []))

    for caller in (institution(stack), kruisdorp(stack)):  # proposer and competent municipality
        listed = overdue(caller)
        assert old in listed and fresh not in listed
    assert old not in overdue(brugstede(stack))  # neither proposed nor decides it
    assert old not in overdue(institution(stack), 40)
    assert {old, fresh} <= set(overdue(institution(stack), 0))

    shown = kruispunt(stack, "proposals", "overdue")
    assert shown.returncode == 0, shown.stderr
    assert old in shown.stdout and fresh not in shown.stdout
    assert KRUISDORP.enterprise_number in shown.stdout
    later = kruispunt(stack, "proposals", "overdue", "--days", "40")
    assert later.returncode == 0 and old not in later.stdout

    decide(stack, kruisdorp(stack), old, "REJECT", "Not proven")
    assert old not in overdue(institution(stack))


# --- the National Register down, concurrency --------------------------------------------------------------------------
def test_an_accept_while_the_national_register_is_down_is_delivered_once_when_it_is_back(stack) -> None:  # type: ignore[no-untyped-def]
    person, value = BRUGSTEDE_PERSON, unique("SEPARATED")
    reference = submit(stack, person, "CIVIL_STATUS", value).body["Reference"]
    stack.stop_backend(NR_BACKEND)
    try:
        decided = decide(stack, brugstede(stack), reference, "ACCEPT")
        assert (decided.body["State"], decided.body["NationalRegisterUpdate"]) == ("ACCEPTED", "PENDING")
        assert "PENDING" in decided.record.detail
        assert get_proposal(stack, institution(stack), reference)["NationalRegisterUpdate"] == "PENDING"
    finally:
        stack.start_backend(NR_BACKEND)
    deadline = time.monotonic() + 120
    state = "PENDING"
    while state == "PENDING" and time.monotonic() < deadline:
        time.sleep(0.5)
        state = get_proposal(stack, institution(stack), reference)["NationalRegisterUpdate"]
    assert state == "DELIVERED"
    assert nr_deliveries(stack, reference) == 1
    registered = nr_person(stack, person.insz)
    assert registered is not None and registered["civil_status"] == value
    [entry] = outbox_entries(stack, reference)
    assert entry.state == "DELIVERED" and entry.attempts >= 2


def together(calls: list[Any]) -> list[requests.Response]:
    """Run the calls at the same moment, each on its own thread; their replies in order."""
    barrier = threading.Barrier(len(calls))
    replies: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        replies[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return replies


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_decisions_exactly_one_wins(stack, round_: int) -> None:  # type: ignore[no-untyped-def]
    office = kruisdorp(stack)
    reference = submit(stack, KRUISDORP_PERSON, "FIRST_NAMES", unique("Marie")).body["Reference"]
    accept = {"Reference": reference, "Decision": "ACCEPT"}
    replies = together([lambda: send(stack, office, "DecideProposal", accept)] * 2)
    assert sorted(r.status_code for r in replies) == [200, 409], [r.text[:300] for r in replies]
    won = next(r for r in replies if r.status_code == 200)
    lost = fault_of(next(r for r in replies if r.status_code == 409))
    assert lost.code == "Client.Proposal.AlreadyDecided"
    ticket, body = decoded(stack, won, "DecideProposal")
    final = get_proposal(stack, institution(stack), reference)
    assert final["State"] == body["State"] == "ACCEPTED"
    assert final["DecisionTicket"] == ticket and ticket in lost.reason
    assert len(outbox_entries(stack, reference)) == 1  # one update owed, applied once
    assert body["NationalRegisterUpdate"] == "PENDING"
    assert eventually(lambda: nr_deliveries(stack, reference) or None, "the one update applied") == 1


def test_refusals_through_the_client_library_carry_code_and_ticket(stack) -> None:  # type: ignore[no-untyped-def]
    office = brugstede(stack)
    reference = submit(stack, KRUISDORP_PERSON, "LAST_NAME", unique("Claes")).body["Reference"]
    with pytest.raises(Fault) as raised:
        library(stack, office).call("DecideProposal", official=office.official, purpose=office.purpose,
                                    Reference=reference, Decision="ACCEPT")
    detail = fault_detail(raised.value)
    assert detail["Code"] == "Client.Proposal.NotCompetent"
    record = audit_record(stack.sessions, detail["Ticket"])
    assert (record.outcome, record.fault_code, record.organisation) == ("FAULT", "Client.Proposal.NotCompetent",
                                                                        BRUGSTEDE.enterprise_number)
