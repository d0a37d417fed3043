"""e-Creabis on the portal in a real browser, on the integrator as `make run` serves it: Kruisdorp's population
officer Bart Smets (TOTP) searches persons ranked over the National Register reference backend and the BIS register,
creates a BIS number for someone unknown and finds it in the list of the numbers he created; the browser sending the
same create form again (same message id) creates no second number; Brugstede's Carine Jacobs, who may search but
not write the BIS register, is refused creation with the code and ticket. Every act runs Creabis v1's own operation
through the pipeline and is audited as a portal transaction."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from sqlalchemy import select

from repository.bis import BisPerson
from services.backends.persons import PERSONS
from tests.browser.conftest import Portal, click, fresh, log_on_of, log_on_with_token, shot, submit, text
from tests.e2e.creabis_calls import fresh_identity
from tests.support import audit_record

BART, CARINE = log_on_of("10000002"), log_on_of("10000003")  # Kruisdorp's population office; Brugstede's official
AHMED = next(p for p in PERSONS if p.last_name == "El Amrani")
APP = "/portal/e-creabis/"


def fill(browser: WebDriver, values: dict[str, str]) -> None:
    for field, value in values.items():
        element = browser.find_element(By.ID, field)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)


def search(browser: WebDriver, base: str, **values: str) -> None:
    browser.get(f"{base}{APP}")
    fill(browser, values)
    submit(browser, browser.find_element(By.ID, "last_name"))


def search_unknown(browser: WebDriver, base: str) -> dict[str, str]:
    """Search a person nobody resembles: the create form comes, prefilled from the search."""
    person = fresh_identity()
    search(browser, base, last_name=person["LastName"], first_names=person["FirstNames"],
           birth_date=person["BirthDate"], gender=person["Gender"], nationality="pl")
    assert browser.find_element(By.ID, "no-candidates"), text(browser, "main")
    prefilled = {field: browser.find_element(By.ID, f"new-{field}").get_attribute("value")
                 for field in ("last_name", "first_names", "birth_date", "gender", "nationality")}
    assert prefilled == {"last_name": person["LastName"], "first_names": person["FirstNames"],
                         "birth_date": person["BirthDate"], "gender": person["Gender"], "nationality": "PL"}
    return person


def create(browser: WebDriver) -> None:
    fill(browser, {"new-document_type": "PASSPORT", "new-document_number": "EK7654321", "new-issuing_country": "PL"})
    click(browser, "#create")


def registered(portal: Portal, last_name: str) -> list[BisPerson]:
    with portal.stack.sessions() as session:
        return list(session.execute(select(BisPerson).where(BisPerson.last_name == last_name)).scalars())


def test_a_demo_person_is_found_ranked_and_no_creation_is_offered(portal: Portal, browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, portal.stack.base_url, BART)
    search(browser, base, last_name="EL AMRANY", first_names="Ahmet", birth_date="1986-07-30", gender="M",
           nationality="MA")
    first = browser.find_element(By.CSS_SELECTOR, "#candidates tbody tr")
    assert first.get_attribute("id") == f"candidate-{AHMED.insz}", text(browser, "main")
    assert "El Amrani" in first.text and first.get_attribute("data-source") == "NATIONAL_REGISTER"
    assert float(first.find_element(By.CSS_SELECTOR, ".score").text) > 90
    shot(browser, "e-creabis-candidates")
    assert browser.find_element(By.ID, "well-matched") and not browser.find_elements(By.ID, "create")
    record = audit_record(portal.stack.sessions, text(browser, "#search-ticket"))
    assert (record.channel, record.official, record.operation, record.outcome) == (
        "portal", BART.official.insz, "SearchPersons", "OK")
    assert AHMED.insz in (record.detail or "")  # every person shown is named in the audit record


def test_a_bis_number_is_created_listed_and_not_created_twice(portal: Portal, browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, portal.stack.base_url, BART)
    person = search_unknown(browser, base)
    message_id = browser.find_element(By.NAME, "message_id").get_attribute("value")
    create(browser)
    insz, ticket = text(browser, "#new-insz"), text(browser, "#ticket")
    assert text(browser, "#created-ticket") == ticket and insz in text(browser, "#done"), text(browser, "main")
    assert browser.find_element(By.ID, "created-outcome").get_attribute("data-created") == "true"
    [row] = registered(portal, person["LastName"])
    assert (row.insz, row.first_names, row.born.text(), row.gender, row.nationality, row.evidence_number,
            row.created_ticket, row.message_id) == (insz, person["FirstNames"], person["BirthDate"],
                                                    person["Gender"], "PL", "EK7654321", ticket, message_id)
    record = audit_record(portal.stack.sessions, ticket)
    assert (record.channel, record.official, record.operation, record.outcome, record.detail) == (
        "portal", BART.official.insz, "CreateBisNumber", "OK", f"created BIS number {insz}")

    browser.refresh()  # the browser sends the same create form again: the same message id
    assert text(browser, "#new-insz") == insz and text(browser, "#created-ticket") == ticket
    again = text(browser, "#ticket")
    assert again != ticket, text(browser, "main")
    assert browser.find_element(By.ID, "created-outcome").get_attribute("data-created") == "false"
    assert audit_record(portal.stack.sessions, again).detail == f"retry: BIS number {insz} created by {ticket}"
    assert len(registered(portal, person["LastName"])) == 1

    click(browser, "#created-link")
    newest = browser.find_element(By.CSS_SELECTOR, "#created tbody tr")
    assert newest.get_attribute("id") == f"created-{insz}", text(browser, "main")
    assert person["LastName"] in newest.text and ticket in newest.text
    listed = audit_record(portal.stack.sessions, text(browser, "#ticket"))
    assert (listed.channel, listed.operation) == ("portal", "ListCreatedBisNumbers") and insz in (listed.detail or "")
    shot(browser, "e-creabis-created-list")


def test_an_official_who_may_only_search_is_refused_creation_with_the_code(portal: Portal,
                                                                          browser: WebDriver) -> None:
    base = portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, CARINE)
    person = search_unknown(browser, base)
    create(browser)
    assert text(browser, "#create-fault-code") == "Client.Caller.AccessDenied", text(browser, "main")
    assert "BisRegister.Update" in text(browser, "#create-refusal")
    record = audit_record(portal.stack.sessions, text(browser, "#create-ticket"))
    assert (record.channel, record.official, record.operation, record.fault_code) == (
        "portal", CARINE.official.insz, "CreateBisNumber", "Client.Caller.AccessDenied")
    assert browser.find_element(By.ID, "new-last_name").get_attribute("value") == person["LastName"]  # kept
    assert registered(portal, person["LastName"]) == []
