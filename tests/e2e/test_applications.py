"""Applications v1 end to end, on SQLite and PostgreSQL, against the institutions' real intakes: a municipality
submits a disability-allowance or pension application and gets a receipt the integrator signed (verifiable
against its certificate, with the digest of the application as sent); the submitter alone fetches it again and
lists their own receipts; a retry is the same application, a conflicting reuse of its MessageId is refused; an
intake that is down gets the application when it is back, and a worker killed while forwarding loses nothing and
delivers nothing twice. Every applicant is a fresh person put in the municipality's files for the purpose."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from kruispunt_client import ReceiptInvalid
from kruispunt_client.receipt import application_digest, verify_receipt
from kruispunt_client.xml import build
from lxml import etree
from sqlalchemy import select

from repository.models import Organisation
from services.applications import INSTITUTIONS
from services.backends.applications import DELAY_ENV
from services.demo_applications import PURPOSE_APPLICATION
from services.demo_organisations import BRUGSTEDE, INSTITUTION, KRUISDORP, OCMW, OFFICIALS
from tests.e2e.application_calls import (
    DISABILITY,
    NS,
    PATH,
    PENSION,
    XSD,
    Answered,
    applicant,
    application,
    applications_stored,
    brugstede,
    eventually,
    get_receipt,
    intake,
    kruisdorp,
    kruisdorp_colleague,
    library_client,
    list_receipts,
    outbox_entry,
    refused,
    sent_application,
    submit,
    verified,
    wire,
)
from tests.e2e.directory_calls import new_person, schema, wrong_check_digits
from tests.e2e.repository_calls import Caller
from tests.support import PROJECT, gunicorn, wait_for

RECEIPT_UNKNOWN = "Client.Application.ReceiptUnknown"
SOAP_BINDING_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XS_NS = "http://www.w3.org/2001/XMLSchema"


def organisation_id(stack, enterprise_number: str) -> int:  # type: ignore[no-untyped-def]
    with stack.sessions() as session:
        return session.execute(select(Organisation.id).where(
            Organisation.enterprise_number == enterprise_number)).scalar_one()


def delivered(stack, caller, ticket: str) -> Answered:  # type: ignore[no-untyped-def]
    """GetReceipt until the delivery state is DELIVERED (bounded wait)."""
    return eventually(lambda: (a := get_receipt(stack, caller, ticket)).delivery["State"] == "DELIVERED" and a,
                      f"delivery of {ticket}")


# --- submission with the client library, and the signed receipt ----------------------------------------------------
@pytest.mark.parametrize("kind", [DISABILITY, PENSION])
def test_an_application_is_answered_with_a_signed_receipt_and_forwarded_right_after(stack, kind: str) -> None:  # type: ignore[no-untyped-def]
    caller = kruisdorp(stack)
    insz = applicant(stack, caller)
    fields = application(kind, insz)
    client, history = library_client(stack, caller)
    answer = client.call("SubmitApplication", official=caller.official, purpose=caller.purpose, **fields)
    body = answer.body

    receipt = client.verify_receipt(body.SignedReceipt)
    assert receipt.ticket == body.Ticket == answer.ticket  # a first submission: the receipt is this transaction's
    assert (receipt.kind, receipt.insz, receipt.file_number, receipt.institution) == (
        kind, insz, fields["FileNumber"], INSTITUTIONS[kind])
    assert (receipt.organisation, receipt.official) == (KRUISDORP.enterprise_number, caller.official)
    assert receipt.application_digest == application_digest(sent_application(history))
    assert receipt.received_at <= receipt.signed_at <= datetime.now(UTC)
    # signed in the transaction that stores the application, before anything was sent
    assert (receipt.forwarding, receipt.institution_reference) == ("FORWARDING_PENDING", None)
    assert body.Delivery.State == "PENDING"

    later = delivered(stack, caller, receipt.ticket)  # the intake was up: tried right after the commit
    reference = later.delivery["InstitutionReference"]
    assert reference.startswith({DISABILITY: "DIS-", PENSION: "PEN-"}[kind])
    assert later.signed_receipt == body.SignedReceipt, "the receipt is never re-signed (zeep decoded its base64)"
    filed = intake(stack, kind).received(receipt.ticket)
    assert filed is not None, "the institution has the application under the integrator's ticket"
    assert (filed.file_reference, filed.insz, filed.file_number, filed.kind) == (
        reference, insz, fields["FileNumber"], kind)
    assert (filed.municipality, filed.documents, filed.attempts) == (KRUISDORP.enterprise_number, 1, 1)
    assert intake(stack, {DISABILITY: PENSION, PENSION: DISABILITY}[kind]).received(receipt.ticket) is None


def test_the_digest_is_of_the_application_sent_and_a_changed_receipt_fails_verification(stack) -> None:  # type: ignore[no-untyped-def]
    caller = kruisdorp(stack)
    fields = application(PENSION, applicant(stack, caller))
    answer = submit(stack, caller, fields)
    data = answer.signed_receipt
    receipt = verified(stack, data)
    schema(XSD).validate(etree.fromstring(data))  # the receipt document is an ApplicationReceipt of the contract
    sent = build(f"{{{NS}}}SubmitApplicationRequest", wire(fields))
    assert receipt.application_digest == application_digest(sent)
    other = build(f"{{{NS}}}SubmitApplicationRequest", wire(dict(fields, FileNumber=fields["FileNumber"] + "x")))
    assert receipt.application_digest != application_digest(other)

    client, _history = library_client(stack, caller)
    assert client.verify_receipt(data) == receipt
    for tampered in (data.replace(fields["FileNumber"].encode(), b"SOC/forged"),
                     data.replace(b"<Forwarding>FORWARDING_PENDING<", b"<Forwarding>DELIVERED<"),
                     data.replace(receipt.application_digest.encode(), b"0" * 64)):
        assert tampered != data
        with pytest.raises(ReceiptInvalid):
            client.verify_receipt(tampered)
    kruisdorp_certificate = stack.pki.kruisdorp.load_cert()
    with pytest.raises(ReceiptInvalid):
        verify_receipt(data, kruisdorp_certificate)  # signed by the integrator, not by anyone else


def test_the_served_wsdl_is_the_file_but_for_addresses(stack) -> None:  # type: ignore[no-untyped-def]
    served = etree.fromstring(requests.get(f"{stack.base_url}{PATH}?wsdl", timeout=30).content)
    original = etree.parse(str(PROJECT / "wsdl" / "Applications-v1.wsdl")).getroot()
    for tree in (served, original):
        for node in tree.iter(f"{{{XS_NS}}}import"):
            node.set("schemaLocation", node.get("schemaLocation", "").rpartition("/xsd/")[2])
        addresses = list(tree.iter(f"{{{SOAP_BINDING_NS}}}address"))
        assert len(addresses) == 1
        addresses[0].set("location", "NORMALISED")
    assert etree.canonicalize(etree.tostring(served, encoding="unicode")) == etree.canonicalize(
        etree.tostring(original, encoding="unicode"))
    operations = {o.get("name") for o in served.iter("{http://schemas.xmlsoap.org/wsdl/}operation")}
    assert operations == {"SubmitApplication", "GetReceipt", "ListReceipts"}


# --- GetReceipt and ListReceipts -----------------------------------------------------------------------------------
def test_only_the_submitter_gets_the_receipt_again(stack) -> None:  # type: ignore[no-untyped-def]
    caller = kruisdorp(stack)
    first = submit(stack, caller, application(DISABILITY, applicant(stack, caller)))
    ticket = first.body["Ticket"]
    assert first.delivery == {"State": "PENDING"}
    again = delivered(stack, caller, ticket)
    assert again.body["Ticket"] == ticket and again.ticket != ticket
    assert again.signed_receipt == first.signed_receipt  # the stored receipt, unchanged
    assert again.record.detail == f"{ticket}: DELIVERED"

    for other in (kruisdorp_colleague(stack), brugstede(stack)):
        seen = refused(stack, other, "GetReceipt", {"Ticket": ticket}, RECEIPT_UNKNOWN, 404)
        assert ticket in seen.reason
    unknown = "KP-20260101-" + uuid.uuid4().hex
    refused(stack, caller, "GetReceipt", {"Ticket": unknown}, RECEIPT_UNKNOWN, 404)


def test_list_receipts_shows_the_officials_own_receipts_newest_first_paged(stack) -> None:  # type: ignore[no-untyped-def]
    mine, colleague, other = kruisdorp_colleague(stack), kruisdorp(stack), brugstede(stack)
    older = submit(stack, mine, application(DISABILITY, applicant(stack, mine))).body["Ticket"]
    newer = submit(stack, mine, application(PENSION, applicant(stack, mine))).body["Ticket"]
    theirs = submit(stack, colleague, application(PENSION, applicant(stack, colleague))).body["Ticket"]
    brugs = submit(stack, other, application(PENSION, applicant(stack, other))).body["Ticket"]

    everything = list_receipts(stack, mine, size=100)
    tickets = [r["Ticket"] for r in everything["Receipt"]]
    assert tickets[:2] == [newer, older]
    assert theirs not in tickets and brugs not in tickets
    assert everything["Total"] == len(tickets) and (everything["Page"], everything["PageSize"]) == (1, 100)
    first = everything["Receipt"][1]
    assert (first["Kind"], first["Institution"]) == (DISABILITY, INSTITUTIONS[DISABILITY])
    delivered(stack, mine, older)
    shown = next(r for r in list_receipts(stack, mine, size=100)["Receipt"] if r["Ticket"] == older)
    assert shown["Delivery"]["State"] == "DELIVERED"

    pensions = list_receipts(stack, mine, kind=PENSION, size=100)["Receipt"]
    assert pensions[0]["Ticket"] == newer and all(r["Kind"] == PENSION for r in pensions)
    assert older not in [r["Ticket"] for r in pensions]
    assert [r["Ticket"] for r in list_receipts(stack, mine, page=1, size=1)["Receipt"]] == [newer]
    assert [r["Ticket"] for r in list_receipts(stack, mine, page=2, size=1)["Receipt"]] == [older]
    assert brugs in [r["Ticket"] for r in list_receipts(stack, other, size=100)["Receipt"]]
    assert all(r["Ticket"] not in (older, newer) for r in list_receipts(stack, other, size=100)["Receipt"])


# --- retries, conflicts, refusals ---------------------------------------------------------------------------------
def test_a_duplicate_submission_is_the_same_application_delivered_once(stack) -> None:  # type: ignore[no-untyped-def]
    caller = kruisdorp(stack)
    fields, message_id = application(DISABILITY, applicant(stack, caller)), str(uuid.uuid4())
    first = submit(stack, caller, fields, message_id)
    ticket = first.body["Ticket"]
    delivered(stack, caller, ticket)
    again = submit(stack, caller, fields, message_id)
    assert again.body["Ticket"] == ticket and again.ticket != ticket
    assert again.signed_receipt == first.signed_receipt
    assert again.record.detail == f"retry of {ticket}: DELIVERED"
    assert applications_stored(stack, organisation_id(stack, KRUISDORP.enterprise_number), message_id) == 1
    filed = intake(stack, DISABILITY).received(ticket)
    assert filed is not None and filed.attempts == 1 and intake(stack, DISABILITY).count(ticket) == 1
    entry = outbox_entry(stack, ticket)
    assert entry is not None and (entry.state, entry.attempts) == ("DELIVERED", 1)


def test_two_concurrent_submissions_with_one_message_id_are_one_application(stack) -> None:  # type: ignore[no-untyped-def]
    caller = kruisdorp(stack)
    fields, message_id = application(PENSION, applicant(stack, caller)), str(uuid.uuid4())
    answers: list[Answered] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            answers.append(submit(stack, caller, fields, message_id))
        except BaseException as exc:  # reported below, with the assertion that failed in the thread
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    tickets = {a.body["Ticket"] for a in answers}
    assert len(answers) == 2 and len(tickets) == 1
    assert sorted(a.record.detail.startswith("retry of") for a in answers) == [False, True]
    ticket = tickets.pop()
    assert {verified(stack, a.signed_receipt).ticket for a in answers} == {ticket}
    assert applications_stored(stack, organisation_id(stack, KRUISDORP.enterprise_number), message_id) == 1
    delivered(stack, caller, ticket)
    filed = intake(stack, PENSION).received(ticket)
    assert filed is not None and filed.attempts == 1 and intake(stack, PENSION).count(ticket) == 1


def test_the_same_message_id_with_another_application_is_a_conflict(stack) -> None:  # type: ignore[no-untyped-def]
    caller = kruisdorp(stack)
    insz = applicant(stack, caller)
    fields, message_id = application(PENSION, insz), str(uuid.uuid4())
    first = submit(stack, caller, fields, message_id)
    changed = dict(fields, FileNumber=fields["FileNumber"] + "-2")
    seen = refused(stack, caller, "SubmitApplication", wire(changed), "Client.Idempotency.Conflict", 409,
                   message_id, person=insz)
    assert message_id in seen.reason and first.body["Ticket"] in seen.reason
    refused(stack, kruisdorp_colleague(stack), "SubmitApplication", wire(fields), "Client.Idempotency.Conflict", 409,
            message_id, person=insz)  # the same application under the same MessageId, by another official
    assert applications_stored(stack, organisation_id(stack, KRUISDORP.enterprise_number), message_id) == 1
    assert intake(stack, PENSION).count(first.body["Ticket"]) == 1


def test_an_application_about_a_person_outside_the_callers_files_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    stranger = new_person()
    message_id = str(uuid.uuid4())
    seen = refused(stack, kruisdorp(stack), "SubmitApplication", wire(application(DISABILITY, stranger)),
                   "Client.Caller.PersonNotInFiles", 403, message_id, person=stranger)
    assert stranger in seen.reason and KRUISDORP.enterprise_number in seen.reason
    kruisdorps = applicant(stack, kruisdorp(stack))  # in Kruisdorp's files, not in Brugstede's
    refused(stack, brugstede(stack), "SubmitApplication", wire(application(PENSION, kruisdorps)),
            "Client.Caller.PersonNotInFiles", 403, person=kruisdorps)
    assert applications_stored(stack, organisation_id(stack, KRUISDORP.enterprise_number), message_id) == 0
    assert applications_stored(stack, organisation_id(stack, BRUGSTEDE.enterprise_number), message_id) == 0


def test_an_official_without_a_grant_or_an_organisation_without_the_right_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    insz = applicant(stack, kruisdorp(stack))
    ocmw = Caller(stack.pki.org(OCMW.enterprise_number), OFFICIALS[3].insz, PURPOSE_APPLICATION)
    institution = Caller(stack.pki.org(INSTITUTION.enterprise_number), OFFICIALS[4].insz, PURPOSE_APPLICATION)
    refused(stack, ocmw, "SubmitApplication", wire(application(PENSION, insz)), "Client.Caller.GrantMissing", 403,
            person=insz)
    refused(stack, institution, "SubmitApplication", wire(application(PENSION, insz)), "Client.Caller.AccessDenied",
            403, person=insz)
    refused(stack, institution, "ListReceipts", {}, "Client.Caller.AccessDenied", 403)
    wrong_purpose = Caller(stack.pki.kruisdorp, OFFICIALS[0].insz, "MUNICIPAL_TAX_EXEMPTION")
    refused(stack, wrong_purpose, "ListReceipts", {}, "Client.Caller.GrantMissing", 403)


def test_a_household_member_with_a_wrong_insz_is_refused_before_anything_is_stored(stack) -> None:  # type: ignore[no-untyped-def]
    caller = kruisdorp(stack)
    insz = applicant(stack, caller)
    member = {"Insz": wrong_check_digits(new_person()), "Relationship": "SPOUSE"}
    message_id = str(uuid.uuid4())
    seen = refused(stack, caller, "SubmitApplication", wire(application(DISABILITY, insz, Household={
        "Member": [member]})), "Client.Contract.InszInvalid", 400, message_id)  # refused before the person is read
    assert member["Insz"] in seen.reason
    assert applications_stored(stack, organisation_id(stack, KRUISDORP.enterprise_number), message_id) == 0


# --- fault injection: the intake down, a worker killed while forwarding ----------------------------------------
def test_an_application_for_an_intake_that_is_down_is_delivered_once_when_it_is_back(stack) -> None:  # type: ignore[no-untyped-def]
    caller = kruisdorp(stack)
    fields = application(DISABILITY, applicant(stack, caller))
    name = INSTITUTIONS[DISABILITY]
    stack.stop_backend(name)
    try:
        answer = submit(stack, caller, fields)
        ticket = answer.body["Ticket"]
        receipt = verified(stack, answer.signed_receipt)
        assert (receipt.forwarding, receipt.institution_reference) == ("FORWARDING_PENDING", None)
        assert answer.delivery == {"State": "PENDING"}
        assert get_receipt(stack, caller, ticket).delivery == {"State": "PENDING"}
        assert intake(stack, DISABILITY).received(ticket) is None
    finally:
        stack.start_backend(name)
    later = delivered(stack, caller, ticket)
    assert later.signed_receipt == answer.signed_receipt  # the receipt stays what was signed; the state moved on
    filed = intake(stack, DISABILITY).received(ticket)
    assert filed is not None and intake(stack, DISABILITY).count(ticket) == 1
    assert filed.attempts == 1, "refused connections never reached the intake; the one that did filed it"
    assert later.delivery["InstitutionReference"] == filed.file_reference
    entry = outbox_entry(stack, ticket)
    assert entry is not None and entry.state == "DELIVERED" and entry.attempts >= 2


def _slow_intake(stack, name: str, delay: float) -> None:  # type: ignore[no-untyped-def]
    stack.stop_backend(name)
    port = stack.backend_ports[name]
    stack.processes[name] = gunicorn("services.backends.wsgi:create_app()", port,
                                     dict(stack.env, KRUISPUNT_BACKEND=name, **{DELAY_ENV: str(delay)}),
                                     log=stack.log_dir / f"{name}-slow.log")
    wait_for(f"http://127.0.0.1:{port}/?wsdl")


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


def test_a_worker_killed_while_forwarding_loses_nothing_and_delivers_once(stack) -> None:  # type: ignore[no-untyped-def]
    """The answer leaves once the application is stored; the same worker then delivers it (after the commit). Killed
    in the middle of that delivery, it loses nothing: another worker takes the lease over and the institution
    files the application once."""
    caller = kruisdorp(stack)
    fields, message_id = application(PENSION, applicant(stack, caller)), str(uuid.uuid4())
    name = INSTITUTIONS[PENSION]
    organisation = organisation_id(stack, KRUISDORP.enterprise_number)
    _slow_intake(stack, name, delay=6)
    try:
        answer = submit(stack, caller, fields, message_id)  # answered before the slow intake has it
        ticket = answer.body["Ticket"]
        assert answer.delivery == {"State": "PENDING"}

        def leased() -> Any:
            entry = outbox_entry(stack, ticket)
            return entry if entry is not None and entry.lease_owner else None

        entry = eventually(leased, "the stored application's delivery under a lease")
        eventually(lambda: intake(stack, PENSION).received(ticket), "the delivery reaching the intake")
        worker = int(entry.lease_owner.rpartition(":")[2])
        assert _parent_of(worker) == stack.processes["integrator"].pid, "the lease holder is an integrator worker"
        os.kill(worker, signal.SIGKILL)

        retry = submit(stack, caller, fields, message_id)
        assert retry.body["Ticket"] == ticket and retry.signed_receipt == answer.signed_receipt
        assert verified(stack, retry.signed_receipt).forwarding == "FORWARDING_PENDING"
        later = delivered(stack, caller, ticket)
    finally:
        stack.stop_backend(name)
        stack.start_backend(name)
    assert later.signed_receipt == retry.signed_receipt
    assert applications_stored(stack, organisation, message_id) == 1
    filed = intake(stack, PENSION).received(ticket)
    assert filed is not None and intake(stack, PENSION).count(ticket) == 1, "filed exactly once"
    assert filed.attempts == 2, "the killed worker's delivery and the one that took over its lease both arrived"
    assert later.delivery["InstitutionReference"] == filed.file_reference
    final = outbox_entry(stack, ticket)
    assert final is not None and (final.state, final.attempts, final.lease_owner) == ("DELIVERED", 2, None)
    assert filed.documents == 1  # the application carried its document all the way
