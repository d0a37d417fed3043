"""The local administrators' pages in a real browser, on the integrator as `make run` serves it: Kruisdorp's local
administrator Fien De Smet (and co-administrator Geert Wouters) register officials and grant, approve and revoke
their access; every act runs AccessManagement v1's own operation through the pipeline and is audited as a portal
transaction; refusals show their Client.Access.* code and ticket. Every official is a fresh INSZ."""

from __future__ import annotations

import time
from datetime import date

import pyotp
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import select

from repository.credentials import issue_credentials
from repository.models import Official, Organisation
from repository.portal_models import TokenKind
from services.demo_access import SENSITIVE
from services.demo_creabis import PURPOSE_IDENTIFICATION
from services.demo_organisations import KRUISDORP, PURPOSE_TAX, DemoOfficial
from services.demo_portal import DemoLogOn
from tests.browser.conftest import Portal, fresh, log_on_of, log_on_with_token, submit, text
from tests.e2e.directory_calls import new_person
from tests.support import audit_record

FIEN, GEERT = log_on_of("10000006"), log_on_of("10000007")  # Kruisdorp's local administrator and co-administrator
APP = "/portal/administration/"
GRANTS = f"{APP}grants"
LOOKUP = "/portal/tax-exemption/"


def fill(browser: WebDriver, values: dict[str, str]) -> None:
    for field, value in values.items():
        element = browser.find_element(By.ID, field)
        if element.get_attribute("type") == "date":
            browser.execute_script("arguments[0].value = arguments[1]", element, value)
        else:
            element.clear()
            element.send_keys(value)


def register(browser: WebDriver, base: str, insz: str, name: str) -> None:
    browser.get(f"{base}{APP}")
    fill(browser, {"insz": insz, "name": name, "email": "tine.peeters@kruisdorp.be", "department": "tax office"})
    submit(browser, browser.find_element(By.ID, "name"))


def grant(browser: WebDriver, base: str, insz: str, service: str, purpose: str, reason: str = "new colleague") -> str:
    """Grant on the grants page; the outcome's ticket."""
    browser.get(f"{base}{GRANTS}?of={insz}")
    fill(browser, {"insz": insz, "service": service, "purpose": purpose, "start": date.today().isoformat(),
                   "reason": reason})
    submit(browser, browser.find_element(By.ID, "reason"))
    return text(browser, "#ticket")


def grant_row(browser: WebDriver, service: str) -> tuple[str, str]:
    """The (grant id, status) of the listed grant of the service (the page lists one official's grants)."""
    rows = [r for r in browser.find_elements(By.CSS_SELECTOR, "#grants tbody tr")
            if r.find_elements(By.XPATH, f"./td[text()='{service}']")]
    assert len(rows) == 1, text(browser, "main")
    return (rows[0].get_attribute("id") or "").removeprefix("grant-"), rows[0].get_attribute("data-status") or ""


def fresh_official(browser: WebDriver, base: str) -> str:
    insz = new_person()
    register(browser, base, insz, "Tine Peeters")
    assert browser.find_elements(By.ID, "done"), text(browser, "main")
    return insz


def test_an_administrator_registers_an_official_and_grants_them_the_lookup(portal: Portal,
                                                                          browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, FIEN)
    assert browser.find_element(By.CSS_SELECTOR, f"nav.applications a[href='{APP}']")
    insz = new_person()
    register(browser, base, insz, "Tine Peeters")
    record = audit_record(portal.stack.sessions, text(browser, "#ticket"))
    assert (record.channel, record.official, record.operation, record.person, record.outcome) == (
        "portal", FIEN.official.insz, "RegisterOfficial", insz, "OK")
    row = browser.find_element(By.ID, f"official-{insz}")
    assert row.get_attribute("data-active") == "true" and "Tine Peeters" in row.text

    ticket = grant(browser, base, insz, "TaxExemptionStatus", PURPOSE_TAX)
    record = audit_record(portal.stack.sessions, ticket)
    assert (record.channel, record.official, record.service, record.operation, record.person, record.outcome) == (
        "portal", FIEN.official.insz, "AccessManagement/v1", "GrantAccess", insz, "OK")
    assert record.detail.endswith("reason: new colleague"), record.detail
    assert grant_row(browser, "TaxExemptionStatus")[1] == "active"


def test_a_grant_outside_the_organisations_rights_is_refused_on_the_page(portal: Portal,
                                                                        browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, FIEN)
    insz = fresh_official(browser, base)
    ticket = grant(browser, base, insz, "Federation", PURPOSE_TAX)
    assert text(browser, "#fault-code") == "Client.Access.OutsideRights"
    assert text(browser, "#refusal")
    record = audit_record(portal.stack.sessions, ticket)
    assert (record.channel, record.official, record.outcome, record.fault_code) == (
        "portal", FIEN.official.insz, "FAULT", "Client.Access.OutsideRights")
    assert not browser.find_elements(By.CSS_SELECTOR, "#grants tbody tr")


def test_a_sensitive_grant_waits_for_a_second_administrator(portal: Portal, browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, FIEN)
    insz = fresh_official(browser, base)
    grant(browser, base, insz, SENSITIVE, PURPOSE_IDENTIFICATION, "keeps the BIS register")
    grant_id, status = grant_row(browser, SENSITIVE)
    assert status == "pending-approval"
    submit(browser, browser.find_element(By.ID, f"approve-{grant_id}"))
    assert text(browser, "#fault-code") == "Client.Access.SameApprover"
    record = audit_record(portal.stack.sessions, text(browser, "#ticket"))
    assert (record.channel, record.official, record.operation, record.fault_code) == (
        "portal", FIEN.official.insz, "ApproveGrant", "Client.Access.SameApprover")
    assert grant_row(browser, SENSITIVE) == (grant_id, "pending-approval")

    fresh(browser, base)
    log_on_with_token(browser, base, GEERT)
    browser.get(f"{base}{GRANTS}?of={insz}")
    submit(browser, browser.find_element(By.ID, f"approve-{grant_id}"))
    assert browser.find_elements(By.ID, "done"), text(browser, "main")
    record = audit_record(portal.stack.sessions, text(browser, "#ticket"))
    assert (record.channel, record.official, record.operation, record.outcome) == (
        "portal", GEERT.official.insz, "ApproveGrant", "OK")
    assert grant_row(browser, SENSITIVE) == (grant_id, "active")
    assert not browser.find_elements(By.ID, f"approve-{grant_id}")


def test_a_revoked_grant_shows_revoked_with_its_reason(portal: Portal, browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, FIEN)
    insz = fresh_official(browser, base)
    grant(browser, base, insz, "TaxExemptionStatus", PURPOSE_TAX)
    grant_id, _ = grant_row(browser, "TaxExemptionStatus")
    fill(browser, {f"revoke-reason-{grant_id}": "moved to another department"})
    submit(browser, browser.find_element(By.ID, f"revoke-reason-{grant_id}"))
    assert browser.find_elements(By.ID, "done"), text(browser, "main")
    record = audit_record(portal.stack.sessions, text(browser, "#ticket"))
    assert (record.channel, record.official, record.operation, record.outcome) == (
        "portal", FIEN.official.insz, "RevokeGrant", "OK")
    assert record.detail.endswith("reason: moved to another department"), record.detail
    assert grant_row(browser, "TaxExemptionStatus") == (grant_id, "revoked")
    assert "moved to another department" in browser.find_element(By.ID, f"grant-{grant_id}").text


def test_an_administrator_deactivates_and_reactivates_an_official(portal: Portal, browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, FIEN)
    insz = fresh_official(browser, base)
    fill(browser, {f"reason-{insz}": "on leave"})
    submit(browser, browser.find_element(By.ID, f"reason-{insz}"))
    record = audit_record(portal.stack.sessions, text(browser, "#ticket"))
    assert (record.operation, record.person, record.outcome) == ("DeactivateOfficial", insz, "OK"), record.detail
    assert browser.find_element(By.ID, f"official-{insz}").get_attribute("data-active") == "false"
    fill(browser, {f"reason-{insz}": "back from leave"})
    submit(browser, browser.find_element(By.ID, f"reason-{insz}"))
    assert browser.find_element(By.ID, f"official-{insz}").get_attribute("data-active") == "true"
    assert audit_record(portal.stack.sessions, text(browser, "#ticket")).operation == "ReactivateOfficial"


def credentials_for(portal: Portal, insz: str, name: str) -> DemoLogOn:
    """Fallback credentials (password and TOTP) for an official registered on the page, as the service desk issues
    them (repository/credentials.py): the portal has no page for that."""
    secret = pyotp.random_base32()
    with portal.stack.sessions() as session:
        official_id = session.execute(
            select(Official.id).join(Organisation, Organisation.id == Official.organisation_id)
            .where(Organisation.enterprise_number == KRUISDORP.enterprise_number, Official.insz == insz)).scalar_one()
        issued = issue_credentials(session, official_id, TokenKind.TOTP, totp_secret=secret)
        session.commit()
    return DemoLogOn(DemoOfficial(KRUISDORP.enterprise_number, insz, name, ()), issued.user_number, issued.password,
                     TokenKind.TOTP, secret)


def test_the_grant_opens_the_application_to_the_official_and_revoking_it_closes_it(portal: Portal,
                                                                                   browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, FIEN)
    insz = fresh_official(browser, base)
    grant(browser, base, insz, "TaxExemptionStatus", PURPOSE_TAX)
    grant_id, status = grant_row(browser, "TaxExemptionStatus")
    assert status == "active"
    tine = credentials_for(portal, insz, "Tine Peeters")

    fresh(browser, base)
    log_on_with_token(browser, base, tine)
    assert browser.find_element(By.CSS_SELECTOR, f"nav.applications a[href='{LOOKUP}']")
    assert not browser.find_elements(By.CSS_SELECTOR, f"nav.applications a[href='{APP}']")  # no administrator

    fresh(browser, base)
    log_on_with_token(browser, base, FIEN)
    browser.get(f"{base}{GRANTS}?of={insz}")
    fill(browser, {f"revoke-reason-{grant_id}": "moved to another department"})
    submit(browser, browser.find_element(By.ID, f"revoke-reason-{grant_id}"))
    assert grant_row(browser, "TaxExemptionStatus") == (grant_id, "revoked")

    fresh(browser, base)
    later = pyotp.TOTP(tine.totp_secret or "").at(time.time() + 30)  # each code once: the next step's (drift)
    log_on_with_token(browser, base, tine, code=later)
    assert not browser.find_elements(By.CSS_SELECTOR, f"nav.applications a[href='{LOOKUP}']")
    browser.get(f"{base}{LOOKUP}")
    assert "Client.Portal" in text(browser, ".code"), text(browser, "main")
