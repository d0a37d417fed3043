"""The portal's update-proposal inbox in a real browser, on the integrator as `make run` serves it: the institution
submits a proposal over SOAP with the project's client; Kruisdorp's population office (Bart Smets, TOTP) finds it in
its inbox, downloads its evidence and decides it on the page, through UpdateProposals v1's own operations (audited
as portal transactions); an accepted update reaches the National Register reference backend; a second decision and
a rejection without a reason are refused on the page; another municipality neither sees nor opens the proposal;
the proposer follows its decided proposals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests
from kruispunt_client import KruispuntClient
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import select

from repository.proposals import Proposal
from services.demo_organisations import INSTITUTION, KRUISDORP
from services.demo_proposals import PURPOSE_POPULATION
from tests.browser.conftest import Portal, click, dutch, fresh, log_on_of, log_on_with_token, shot, text
from tests.conftest import Stack
from tests.e2e.application_calls import eventually
from tests.e2e.proposal_calls import (
    KRUISDORP_PERSON,
    UP_PATH,
    Caller,
    institution,
    kruisdorp,
    move_submission,
    nr_deliveries,
    nr_person,
    unique,
)
from tests.support import audit_record

BART, CARINE, ELS = log_on_of("10000002"), log_on_of("10000003"), log_on_of("10000005")
APP = "/portal/proposals/"
SCAN = b"%PDF-1.4 judgment of the family court\x00\xff\x10 binary as it is"


def client(stack: Stack, caller: Caller) -> KruispuntClient:
    return KruispuntClient(f"{stack.base_url}{UP_PATH}?wsdl", caller.identity, stack.settings.trust_anchor_paths,
                           integrator_cert=stack.settings.pki_dir / "integrator.crt", crl=stack.settings.crl_path)


def propose(stack: Stack, field: str, value: str, document: dict[str, object] | None = None) -> str:
    """The institution submits a proposal about a Kruisdorp person over SOAP; its reference."""
    proposer = institution(stack)
    submitted = client(stack, proposer).call(
        "SubmitProposal", official=proposer.official, purpose=proposer.purpose, Insz=KRUISDORP_PERSON.insz,
        Field=field, ProposedValue=value,
        Evidence={"Description": "Judgment of the family court", "Document": document})
    assert submitted.body.CompetentMunicipality.EnterpriseNumber == KRUISDORP.enterprise_number
    return str(submitted.body.Reference)


def stored(stack: Stack, reference: str) -> Proposal:
    with stack.sessions() as session:
        return session.execute(select(Proposal).where(Proposal.reference == reference)).scalar_one()


def decide(browser: WebDriver, decision: str, reason: str = "") -> None:
    """Fill in the decide form of the proposal's page and send it."""
    browser.find_element(By.ID, f"decision-{decision}").click()
    field = browser.find_element(By.ID, "reason")
    field.clear()
    field.send_keys(reason)
    click(browser, "#decide")


def cookies(browser: WebDriver) -> str:
    """The browser's cookies as a Cookie header (its session, for fetching a download outside the browser)."""
    return "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())


def test_bart_accepts_a_proposal_from_his_inbox_and_the_national_register_gets_the_update(
        portal: Portal, browser: WebDriver) -> None:
    stack, base = portal.stack, portal.stack.base_url
    value = unique("DIVORCED")
    reference = propose(stack, "CIVIL_STATUS", value,
                        {"Name": "judgment.pdf", "MimeType": "application/pdf", "Content": SCAN})
    fresh(browser, base)
    log_on_with_token(browser, base, BART)
    browser.get(f"{base}{APP}")
    row = browser.find_element(By.ID, f"proposal-{reference}")
    for shown in (INSTITUTION.name, KRUISDORP_PERSON.insz, dutch("civil status"), value, "Judgment of the family court",
                  "judgment.pdf"):
        assert shown in row.text, row.text
    assert row.get_attribute("data-overdue") == "false"
    assert row.find_element(By.CSS_SELECTOR, ".received").text.startswith(datetime.now(UTC).strftime("%Y-%m-%d"))
    listing = audit_record(stack.sessions, text(browser, "#list-ticket"))
    assert (listing.channel, listing.operation, listing.official) == ("portal", "ListOverdueProposals",
                                                                      BART.official.insz)
    shot(browser, "proposals-inbox")

    click(browser, f"#open-{reference}")
    shot(browser, "proposals-proposal")
    assert (text(browser, "#insz"), text(browser, "#value")) == (KRUISDORP_PERSON.insz, value)
    downloaded = requests.get(browser.find_element(By.ID, "document").get_attribute("href") or "", timeout=30,
                              headers={"Cookie": cookies(browser)})
    assert downloaded.status_code == 200 and downloaded.content == SCAN
    assert downloaded.headers["Content-Type"] == "application/pdf"
    assert downloaded.headers["Content-Disposition"].startswith("attachment") and "judgment.pdf" in \
        downloaded.headers["Content-Disposition"]

    first = browser.current_window_handle  # a second tab on the same proposal, decided later
    browser.switch_to.new_window("tab")
    browser.get(f"{base}{APP}{reference}")
    second = browser.current_window_handle
    browser.switch_to.window(first)
    decide(browser, "accept")
    assert text(browser, "#done").startswith(dutch("Proposal %(reference)s is accepted.", reference=reference))
    ticket = text(browser, "#ticket")
    assert text(browser, "#decision-ticket") == ticket
    assert browser.find_element(By.ID, "proposal").get_attribute("data-state") == "ACCEPTED"
    assert not browser.find_elements(By.ID, "decide")
    record = audit_record(stack.sessions, ticket)
    assert (record.channel, record.operation, record.outcome, record.official, record.organisation,
            record.purpose) == ("portal", "DecideProposal", "OK", BART.official.insz, KRUISDORP.enterprise_number,
                                PURPOSE_POPULATION)
    assert record.detail.startswith(f"{reference} accepted")
    decided = stored(stack, reference)
    assert (decided.state, decided.decision_ticket, decided.decided_by) == ("ACCEPTED", ticket, BART.official.insz)

    browser.get(f"{base}{APP}decided")  # decided by Kruisdorp: in its list of decided proposals (paged)
    while not browser.find_elements(By.ID, f"proposal-{reference}"):
        click(browser, "#next-page")
    assert BART.official.insz in browser.find_element(By.ID, f"proposal-{reference}").text

    eventually(lambda: nr_deliveries(stack, reference) == 1 or None, "the update reaching the National Register")
    registered = nr_person(stack, KRUISDORP_PERSON.insz)
    assert registered is not None and registered["civil_status"] == value

    def reported() -> bool | None:
        browser.get(f"{base}{APP}{reference}")
        return browser.find_element(By.ID, "nr-update").get_attribute("data-update") == "DELIVERED" or None

    eventually(reported, "the page reporting the update delivered")

    browser.switch_to.window(second)  # the older page still offers the form: its decision comes second
    decide(browser, "reject", "Sent from an older page")
    assert text(browser, "#fault-code") == "Client.Proposal.AlreadyDecided", text(browser, "main")
    assert ticket in text(browser, "#refusal")
    refusal = audit_record(stack.sessions, text(browser, "#ticket"))
    assert (refusal.channel, refusal.operation, refusal.fault_code) == ("portal", "DecideProposal",
                                                                        "Client.Proposal.AlreadyDecided")
    assert stored(stack, reference).state == "ACCEPTED" and nr_deliveries(stack, reference) == 1
    browser.close()
    browser.switch_to.window(first)
    browser.get(f"{base}{APP}")
    assert not browser.find_elements(By.ID, f"proposal-{reference}")


def test_a_rejection_needs_a_reason_and_an_overdue_proposal_is_marked(portal: Portal, browser: WebDriver) -> None:
    stack, base = portal.stack, portal.stack.base_url
    reference = propose(stack, "ADDRESS", unique("Nieuwstraat"))
    move_submission(stack, reference, datetime.now(UTC) - timedelta(days=stack.settings.proposal_decision_days + 1))
    fresh(browser, base)
    log_on_with_token(browser, base, BART)
    browser.get(f"{base}{APP}")
    row = browser.find_element(By.ID, f"proposal-{reference}")
    assert row.get_attribute("data-overdue") == "true" and dutch("overdue") in row.text, row.text
    click(browser, f"#open-{reference}")
    assert browser.find_element(By.ID, "overdue") and browser.find_element(By.ID, "no-document")

    click(browser, "#decide")  # no decision chosen: the page says so, nothing is asked
    assert text(browser, "#problem") == dutch("Choose whether you accept or reject the proposal.")
    decide(browser, "reject")  # no reason: the service refuses it
    assert text(browser, "#fault-code") == "Client.Contract.Invalid", text(browser, "main")
    assert "needs a Reason" in text(browser, "#refusal")
    assert browser.find_element(By.ID, "decision-reject").is_selected()
    assert stored(stack, reference).state == "SUBMITTED"

    because = "The person still lives at the registered address."
    decide(browser, "reject", because)
    assert text(browser, "#done") == dutch("Proposal %(reference)s is rejected; the proposer reads your reason.",
                                           reference=reference), text(browser, "main")
    assert text(browser, "#reject-reason") == because and not browser.find_elements(By.ID, "nr-update")
    rejected = stored(stack, reference)
    assert (rejected.state, rejected.reject_reason, rejected.decision_ticket) == ("REJECTED", because,
                                                                                   text(browser, "#ticket"))
    assert audit_record(stack.sessions, text(browser, "#ticket")).channel == "portal"
    assert nr_deliveries(stack, reference) == 0


def test_another_municipality_neither_sees_nor_opens_it_and_the_proposer_follows_the_decision(
        portal: Portal, browser: WebDriver) -> None:
    stack, base = portal.stack, portal.stack.base_url
    reference = propose(stack, "LAST_NAME", unique("Janssens"),
                        {"Name": "certificate.pdf", "MimeType": "application/pdf", "Content": SCAN})
    fresh(browser, base)
    log_on_with_token(browser, base, CARINE)
    browser.get(f"{base}{APP}")
    assert browser.find_element(By.ID, "inbox-heading")
    assert not browser.find_elements(By.ID, f"proposal-{reference}")
    for page in (reference, f"{reference}/document"):
        browser.get(f"{base}{APP}{page}")
        assert text(browser, "#get-fault-code") == "Client.Proposal.Unknown", text(browser, "main")
        assert not browser.find_elements(By.ID, "decide") and not browser.find_elements(By.ID, "document")
        assert audit_record(stack.sessions, text(browser, "#get-ticket")).channel == "portal"

    office = kruisdorp(stack)  # Kruisdorp's back office rejects it over SOAP
    client(stack, office).call("DecideProposal", official=office.official, purpose=office.purpose,
                               Reference=reference, Decision="REJECT", Reason="Not this person")
    fresh(browser, base)
    log_on_with_token(browser, base, ELS)
    browser.get(f"{base}{APP}decided?state=REJECTED&role=PROPOSER")
    while not browser.find_elements(By.ID, f"proposal-{reference}"):
        click(browser, "#next-page")  # paged: follow the pages until it is listed
    row = browser.find_element(By.ID, f"proposal-{reference}")
    assert row.get_attribute("data-state") == "REJECTED" and "Not this person" in row.text, row.text
