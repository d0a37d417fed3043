"""The personal page in a real browser: what Bart Smets' applications put at his disposal — the receipt of the
application he submitted (over SOAP, from his back office) with its delivery state, the update proposal awaiting
Kruisdorp's decision, the BIS number he created — each read through its service's list operation, and his latest
transactions with their tickets, by any channel, without the page's own reads."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from integrator.faces.portal.personal import PAGE_READS
from tests.browser.conftest import Portal, click, dutch, fresh, log_on_of, log_on_with_token, shot, text
from tests.e2e import application_calls, creabis_calls, proposal_calls
from tests.e2e.application_calls import PENSION, applicant, application, eventually
from tests.support import audit_record

BART = log_on_of("10000002")  # Kruisdorp's population office: Applications, Creabis and UpdateProposals


def test_the_personal_page_shows_receipts_proposals_bis_numbers_and_transactions(portal: Portal,
                                                                                  browser: WebDriver) -> None:
    stack = portal.stack
    caller = application_calls.kruisdorp_colleague(stack)  # Bart, for applications
    submitted = application_calls.submit(stack, caller, application(PENSION, applicant(stack, caller)))
    delivered = eventually(lambda: application_calls.get_receipt(stack, caller, submitted.ticket).delivery
                           if application_calls.outbox_entry(stack, submitted.ticket).state == "DELIVERED" else None,
                           "the pension application's delivery")
    proposed = proposal_calls.submit(stack, proposal_calls.KRUISDORP_PERSON, "LAST_NAME",
                                     proposal_calls.unique("Janssens")).body["Reference"]
    created = creabis_calls.create(stack, creabis_calls.population_office(stack), creabis_calls.fresh_identity())

    fresh(browser, stack.base_url)
    log_on_with_token(browser, stack.base_url, BART)
    receipt = browser.find_element(By.CSS_SELECTOR, f"#receipts tr[data-ticket='{submitted.ticket}']")
    assert dutch("delivered") in receipt.find_element(By.CLASS_NAME, "delivery").text, receipt.text
    assert delivered["InstitutionReference"] in receipt.text
    proposal = browser.find_element(By.CSS_SELECTOR, f"#proposals tr[data-reference='{proposed}']")
    assert proposal_calls.KRUISDORP_PERSON.insz in proposal.text
    bis = created.body["Insz"]
    assert created.ticket in browser.find_element(By.CSS_SELECTOR, f"#bis-numbers tr[data-insz='{bis}']").text
    shot(browser, "personal-page")

    listed = text(browser, "#transactions")
    assert submitted.ticket in listed and created.ticket in listed
    tickets = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#transactions code")]
    read = [audit_record(stack.sessions, t) for t in tickets]
    assert not [r for r in read if (r.service, r.operation) in PAGE_READS], [r.operation for r in read]
    assert {r.official for r in read} == {BART.official.insz}

    click(browser, f"#receipts tr[data-ticket='{submitted.ticket}'] a")  # the panels lead to the applications
    assert text(browser, "#receipt-ticket") == submitted.ticket


def test_an_official_sees_only_the_panels_of_the_applications_granted(portal: Portal, browser: WebDriver) -> None:
    """An Verhoeven holds Applications but neither Creabis nor UpdateProposals."""
    fresh(browser, portal.stack.base_url)
    log_on_with_token(browser, portal.stack.base_url, log_on_of("10000001"))
    assert browser.find_elements(By.ID, "receipts-panel")
    assert not browser.find_elements(By.ID, "proposals-panel") and not browser.find_elements(By.ID, "bis-panel")
