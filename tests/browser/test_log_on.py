"""The portal's log-on, sessions and pages in a real browser: the fallback log-on with the code card and with TOTP,
wrong codes and passwords and the lockout, session expiry, single log-on across applications, log-out everywhere,
CSRF, Dutch and French, no open redirects."""

from __future__ import annotations

import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import select

from repository.models import Official
from repository.portal_models import PortalSession
from tests.browser.conftest import (
    USER_FAILURES,
    WRONG_NL,
    Portal,
    chromium,
    click,
    fresh,
    log_on_of,
    log_on_with_token,
    shot,
    submit,
    text,
    throwaway_log_on,
)

AN, BART, CARINE, FIEN = (log_on_of(n) for n in ("10000001", "10000002", "10000003", "10000006"))
WRONG = "The user number, password or code is not right"


def sessions_of(portal: Portal, insz: str) -> list[PortalSession]:
    with portal.stack.sessions() as db:
        return list(db.execute(select(PortalSession).join(Official, Official.id == PortalSession.official_id)
                               .where(Official.insz == insz)).scalars())


def path(driver: WebDriver) -> str:
    return "/" + driver.current_url.split("/", 3)[3]


def test_log_on_with_a_code_of_the_token_card(portal: Portal, browser: WebDriver) -> None:
    fresh(browser, portal.url)
    browser.get(f"{portal.url}/portal/log-on")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=user_number]").text == "Gebruikersnummer"
    field = browser.find_element(By.ID, "user_number")
    field.send_keys(AN.user_number)
    submit(browser, field)
    asked = browser.find_element(By.ID, "code")
    position = int(asked.get_attribute("data-position") or 0)
    assert 1 <= position <= 24
    assert f"Code nummer {position} van uw tokenkaart" in text(browser, "label[for=code]")
    shot(browser, "test_log_on-card-code-asked")
    log_on_with_token(browser, portal.url, AN, start=False)
    assert path(browser) == "/portal/"
    assert "Welkom, An Verhoeven" in text(browser, "main")
    cookie = browser.get_cookie("__Host-kp_portal")
    assert cookie is not None and cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert any(s.method == "card" for s in sessions_of(portal, AN.official.insz))


def test_log_on_with_totp(portal: Portal, browser: WebDriver) -> None:
    fresh(browser, portal.url)
    log_on_with_token(browser, portal.url, BART)
    assert "Welkom, Bart Smets" in text(browser, "main")
    assert any(s.method == "totp" for s in sessions_of(portal, BART.official.insz))


def test_a_wrong_card_code_is_refused_without_saying_what_was_wrong(portal: Portal, browser: WebDriver) -> None:
    fresh(browser, portal.url)
    before = {s.id for s in sessions_of(portal, FIEN.official.insz)}  # other tests log on as Fien too
    log_on_with_token(browser, portal.url, FIEN, code="AAAAAA")
    assert WRONG_NL in text(browser, "[role=alert]")
    assert browser.find_element(By.ID, "code").get_attribute("data-position")  # asked again, a new position
    assert browser.get_cookie("__Host-kp_portal") is not None  # the anonymous session of the log-on form …
    assert {s.id for s in sessions_of(portal, FIEN.official.insz)} == before  # … but no session of Fien's


def test_a_wrong_password_is_refused_with_the_same_words(portal: Portal, browser: WebDriver) -> None:
    fresh(browser, portal.url)
    before = {s.id for s in sessions_of(portal, FIEN.official.insz)}
    log_on_with_token(browser, portal.url, FIEN, password="not-the-password")
    assert WRONG_NL in text(browser, "[role=alert]")
    assert {s.id for s in sessions_of(portal, FIEN.official.insz)} == before


def test_the_user_number_is_locked_after_repeated_failures_even_to_the_right_password(
        portal: Portal, browser: WebDriver) -> None:
    locked = throwaway_log_on(portal, "Lore Locked")  # not a demo official: other tests log them on
    fresh(browser, portal.url)
    for attempt in range(USER_FAILURES):
        log_on_with_token(browser, portal.url, locked, password=f"wrong-password-{attempt}", start=attempt == 0)
    assert "Geblokkeerd na te veel mislukte aanmeldingen" in text(browser, "[role=alert]")
    assert "Geblokkeerd tot" in text(browser, "[role=alert]")
    browser.get(f"{portal.url}/portal/log-on/code")  # the second step once more, now with the right password
    log_on_with_token(browser, portal.url, locked, start=False)
    alert = text(browser, "[role=alert]")
    assert "Geblokkeerd" in alert and WRONG_NL not in alert
    assert path(browser).startswith("/portal/log-on") and not sessions_of(portal, locked.official.insz)
    assert "Client.Portal.Locked" in (portal.logs / "portal.log").read_text()


def test_a_session_ends_after_its_idle_timeout(portal: Portal, browser: WebDriver) -> None:
    fresh(browser, portal.short_idle_url)
    log_on_with_token(browser, portal.short_idle_url, AN)
    assert "Welkom" in text(browser, "main")
    assert browser.get_cookie("kp_portal") is not None  # KRUISPUNT_PORTAL_COOKIE_SECURE=0 there: no __Host-
    time.sleep(2.5)
    browser.get(f"{portal.short_idle_url}/portal/")
    assert path(browser).startswith("/portal/log-on?next=")
    assert "Uw sessie is afgelopen" in text(browser, "[role=status]")


def test_one_log_on_opens_every_application_the_official_holds_a_grant_for(portal: Portal,
                                                                             browser: WebDriver) -> None:
    fresh(browser, portal.url)
    browser.get(f"{portal.url}/portal/lookup/")  # not logged on yet: the log-on, then back here
    field = browser.find_element(By.ID, "user_number")
    field.send_keys(AN.user_number)
    submit(browser, field)
    log_on_with_token(browser, portal.url, AN, start=False)
    assert path(browser) == "/portal/lookup/"
    assert f"{AN.official.insz} · {AN.official.organisation} · card" in text(browser, "#who")
    navigation = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "nav.applications a")]
    assert navigation == ["Overzicht", "Tax-exemption lookup", "Application intake"]
    click(browser, "nav.applications a[href='/portal/intake/']")
    assert text(browser, "h1") == "Intake" and AN.official.insz in text(browser, "#who")
    note = browser.find_element(By.ID, "note")
    note.send_keys("a form of an application, sent with its token")
    submit(browser, note)
    assert text(browser, "#sent") == "a form of an application, sent with its token"
    browser.get(f"{portal.url}/portal/inbox/")  # no grant for UpdateProposals
    assert "U hebt geen machtiging voor deze toepassing" in text(browser, "[role=alert]")
    assert "Client.Portal.ApplicationNotGranted" in text(browser, ".code")


def test_log_out_ends_the_session_in_every_browser(portal: Portal, browser: WebDriver, browser_dir: Path) -> None:
    fresh(browser, portal.url)
    log_on_with_token(browser, portal.url, CARINE)
    other = chromium(browser_dir / "second")
    try:
        log_on_with_token(other, portal.url, CARINE)
        assert "Welkom, Carine Jacobs" in text(other, "main")
        assert len(sessions_of(portal, CARINE.official.insz)) >= 2
        click(browser, ".who button")
        assert "U bent afgemeld, in elke browser" in text(browser, "[role=status]")
        other.get(f"{portal.url}/portal/")
        assert path(other).startswith("/portal/log-on")
        shot(other, "test_log_on-log-out-second-browser")
        assert not sessions_of(portal, CARINE.official.insz)
    finally:
        other.quit()


def test_a_form_sent_without_its_csrf_token_is_refused(portal: Portal, browser: WebDriver) -> None:
    fresh(browser, portal.url)
    log_on_with_token(browser, portal.url, AN)
    browser.execute_script("document.querySelector('.who input[name=csrf_token]').remove()")
    click(browser, ".who button")  # log-out, without the token
    assert "Dit formulier komt niet van een pagina van dit portaal" in text(browser, "[role=alert]")
    assert "Client.Portal.CsrfRefused" in text(browser, ".code")
    browser.get(f"{portal.url}/portal/")
    assert "Welkom, An Verhoeven" in text(browser, "main")  # the refused log-out did not happen


def test_the_pages_in_dutch_and_in_french(portal: Portal, browser: WebDriver) -> None:
    fresh(browser, portal.url)
    browser.get(f"{portal.url}/portal/log-on")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "nl"
    assert text(browser, "h1") == "Aanmelden"
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)  # the keyboard's first stop: the skip link
    assert browser.switch_to.active_element.get_attribute("class") == "skip"
    shot(browser, "test_log_on-dutch")
    click(browser, "a[hreflang=fr]")
    assert path(browser) == "/portal/log-on"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    assert text(browser, "h1") == "Se connecter"
    assert text(browser, "label[for=user_number]") == "Numéro d'utilisateur"
    log_on_with_token(browser, portal.url, AN)
    assert "Bienvenue, An Verhoeven" in text(browser, "main")
    assert text(browser, ".who button") == "Se déconnecter"


def test_a_redirect_after_log_on_leaves_the_portal_never(portal: Portal, browser: WebDriver) -> None:
    for target in ("https://evil.example/phish", "//evil.example/phish", "/portal/../services", "/\\evil.example"):
        fresh(browser, portal.url)
        log_on_with_token(browser, portal.url, AN, next_path=target)
        assert browser.current_url == f"{portal.url}/portal/", target
    assert "portal redirect refused" in (portal.logs / "portal.log").read_text()
