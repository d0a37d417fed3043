"""The portal's tax-exemption lookup in a real browser, on the integrator as `make run` serves it (its installed
applications): the official's lookup runs TaxExemptionStatus v1's own code against the reference backends and is
authorised and audited as the signed SOAP call is."""

from __future__ import annotations

from datetime import date

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from services.backends.persons import PERSONS
from tests.browser.conftest import Portal, fresh, log_on_of, log_on_with_token, submit, text
from tests.e2e.directory_calls import new_person
from tests.support import audit_record

AN, BART = log_on_of("10000001"), log_on_of("10000002")  # An: tax office, granted the service; Bart: no grant
MARIA = next(p for p in PERSONS if p.name == "Maria Janssens")
APP = "/portal/tax-exemption/"


def look_up(browser: WebDriver, base_url: str, insz: str, on: date) -> None:
    browser.get(f"{base_url}{APP}")
    field = browser.find_element(By.ID, "insz")
    field.clear()
    field.send_keys(insz)
    browser.execute_script("document.getElementById('on').value = arguments[0]", on.isoformat())
    submit(browser, field)


def test_an_officials_lookup_shows_the_statuses_and_is_audited_as_a_portal_transaction(portal: Portal,
                                                                                       browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, AN)
    assert browser.find_element(By.CSS_SELECTOR, f"nav.applications a[href='{APP}']")  # single log-on opens it
    look_up(browser, base, MARIA.insz, date(2026, 1, 1))
    rows = browser.find_elements(By.CSS_SELECTOR, "#statuses tbody tr")
    assert len(rows) == 2, text(browser, "main")  # Maria Janssens holds two open-ended statuses then
    ticket = text(browser, "#ticket")
    record = audit_record(portal.stack.sessions, ticket)
    assert (record.channel, record.official, record.person, record.outcome, record.service, record.certificate) == (
        "portal", AN.official.insz, MARIA.insz, "OK", "TaxExemptionStatus/v1", None)
    # the personal page lists it among her latest transactions, with its ticket
    browser.get(f"{base}/portal/")
    newest = browser.find_element(By.CSS_SELECTOR, "#transactions tbody tr").text
    assert ticket in newest and MARIA.insz in newest and "GetTaxExemptionStatuses" in newest, newest


def test_a_person_outside_the_files_is_refused_on_the_page_with_the_ticket(portal: Portal,
                                                                           browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, AN)
    stranger = new_person()
    look_up(browser, base, stranger, date.today())
    assert text(browser, "#fault-code") == "Client.Caller.PersonNotInFiles"
    record = audit_record(portal.stack.sessions, text(browser, "#ticket"))
    assert (record.channel, record.person, record.fault_code) == ("portal", stranger,
                                                                 "Client.Caller.PersonNotInFiles")


def test_an_official_without_the_grant_neither_sees_nor_opens_the_lookup(portal: Portal,
                                                                         browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, BART)
    assert not browser.find_elements(By.CSS_SELECTOR, f"nav.applications a[href='{APP}']")
    browser.get(f"{base}{APP}")
    assert "Client.Portal" in text(browser, ".code"), text(browser, "main")
    assert not browser.find_elements(By.ID, "insz")
