"""The local administrators' pages in a real browser, on the integrator as `make run` serves it: Kruisdorp's local
administrator Fien De Smet (and co-administrator Geert Wouters) register officials and grant, approve and revoke
their access; every act runs AccessManagement v1's own operation through the pipeline and is audited as a portal
transaction; refusals show their Client.Access.* code and ticket. Every official is a fresh INSZ."""

from __future__ import annotations

from datetime import date

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from repository.portal_models import TokenKind
from services.demo_access import SENSITIVE
from services.demo_creabis import PURPOSE_IDENTIFICATION
from services.demo_organisations import KRUISDORP, PURPOSE_TAX, DemoOfficial
from services.demo_portal import DemoLogOn
from tests.browser.conftest import WRONG_NL, Portal, click, fresh, log_on_of, log_on_with_token, shot, submit, text
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
    shot(browser, "administration-registered")

    ticket = grant(browser, base, insz, "TaxExemptionStatus", PURPOSE_TAX)
    shot(browser, "administration-granted")
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


def issue_on_the_page(browser: WebDriver, base: str, insz: str, name: str, token: str) -> DemoLogOn:
    """The administrator issues the official's log-on on the credentials page and reads the secrets off it."""
    browser.get(f"{base}{APP}")
    click(browser, f"#credentials-of-{insz}")
    assert browser.find_element(By.ID, "insz").get_attribute("value") == insz
    Select(browser.find_element(By.ID, "token")).select_by_value(token)
    fill(browser, {"reason": "first log-on"})
    submit(browser, browser.find_element(By.ID, "reason"))
    assert browser.find_elements(By.ID, "secrets"), text(browser, "main")
    kind = TokenKind(token.lower())
    secret = text(browser, "#totp-secret") if kind is TokenKind.TOTP else None
    return DemoLogOn(DemoOfficial(KRUISDORP.enterprise_number, insz, name, ()), text(browser, "#user-number"),
                     text(browser, "#password"), kind, secret)


def test_an_administrator_issues_a_card_and_the_official_logs_on_with_it(portal: Portal, browser: WebDriver) -> None:
    """The card's 24 codes are on the page once; the official logs on with the code asked for; the act is audited
    without a secret; issuing again (a lost card) logs the official off and the old card no longer works."""
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, FIEN)
    insz = fresh_official(browser, base)
    card_holder = issue_on_the_page(browser, base, insz, "Tine Peeters", "CARD")
    codes = [text(browser, f"#code-{p}") for p in range(1, 25)]
    record = audit_record(portal.stack.sessions, text(browser, "#ticket"))
    assert (record.operation, record.person, record.channel) == ("IssueCredentials", insz, "portal")
    assert card_holder.password not in (record.detail or "") and "first log-on" in (record.detail or "")
    shot(browser, "administration-credentials-card")

    fresh(browser, base)
    log_on_with_card(browser, base, card_holder, codes)
    assert "Welkom, Tine Peeters" in text(browser, "main")

    fresh(browser, base)  # Tine's session stays open in the database: the reset ends it
    log_on_with_token(browser, base, FIEN)
    again = issue_on_the_page(browser, base, insz, "Tine Peeters", "CARD")
    assert again.user_number == card_holder.user_number and again.password != card_holder.password
    assert "1 portal session(s) ended" in (audit_record(portal.stack.sessions, text(browser, "#ticket")).detail or "")
    fresh(browser, base)
    log_on_with_card(browser, base, card_holder, codes)
    assert WRONG_NL in text(browser, "[role=alert]")


def log_on_with_card(browser: WebDriver, base: str, holder: DemoLogOn, codes: list[str]) -> None:
    """The fallback log-on with the code of the given card the page asks for."""
    browser.get(f"{base}/portal/log-on")
    fill(browser, {"user_number": holder.user_number})
    submit(browser, browser.find_element(By.ID, "user_number"))
    position = int(browser.find_element(By.ID, "code").get_attribute("data-position") or 0)
    fill(browser, {"password": holder.password, "code": codes[position - 1]})
    submit(browser, browser.find_element(By.ID, "code"))


def test_the_grant_opens_the_application_to_the_official_and_revoking_it_closes_it(portal: Portal,
                                                                                   browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, FIEN)
    insz = fresh_official(browser, base)
    grant(browser, base, insz, "TaxExemptionStatus", PURPOSE_TAX)
    grant_id, status = grant_row(browser, "TaxExemptionStatus")
    assert status == "active"
    tine = issue_on_the_page(browser, base, insz, "Tine Peeters", "TOTP")

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
    log_on_with_token(browser, base, tine)  # each code once: the next step's (drift) if this one is taken
    assert not browser.find_elements(By.CSS_SELECTOR, f"nav.applications a[href='{LOOKUP}']")
    browser.get(f"{base}{LOOKUP}")
    assert "Client.Portal" in text(browser, ".code"), text(browser, "main")
