"""The portal in a real browser: headless Chromium (Debian's, driven through /usr/bin/chromedriver by Selenium) on
the integrator under real gunicorn servers that share the `stack`'s database, PKI and backends (so every test runs
on SQLite and on PostgreSQL). Servers: the portal over plain http (secure cookies all the same: the browser keeps
them from 127.0.0.1), one with a short idle timeout, one terminating TLS itself with client certificates asked
for, and a TLS-terminating proxy in front of the first. One browser per module; every test leaves a screenshot
in test-artefacts/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
import requests
import urllib3
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from integrator.config import Settings
from integrator.pki import Identity, issue
from repository.credentials import TOTP_DRIFT_STEPS
from repository.portal_models import PortalCredential
from services.demo_portal import CITIZEN_CA_NAME, LOG_ONS, DemoLogOn, personal_certificate
from tests.browser.proxy import tls_proxy
from tests.conftest import Stack
from tests.support import PROJECT, free_port

SCREENSHOTS = PROJECT / "test-artefacts" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
APP = "tests.browser.portal_apps:create_app()"
CERTIFICATE_HEADER = "X-Client-Certificate"
WRONG_NL = "Het gebruikersnummer, het wachtwoord of de code klopt niet"  # a failed log-on's words, in Dutch
USER_FAILURES = 3  # the lockout comes after this many failures of one user number (the settings' default is 5)

_LOGGING_ON: list[sessionmaker[Session]] = []  # the current portal's database: which TOTP codes it took already
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the tests' own servers, on loopback


def log_on_of(user_number: str) -> DemoLogOn:
    return next(log_on for log_on in LOG_ONS if log_on.user_number == user_number)


@dataclass
class Portal:
    """The portal's servers for one database."""

    stack: Stack
    url: str  # http, the usual settings (a lockout after USER_FAILURES)
    short_idle_url: str  # http, sessions end after 2 idle seconds; cookies not Secure (the setting relaxed)
    tls_url: str  # https terminated by gunicorn, client certificates asked for (citizen CA)
    proxy_url: str  # https terminated by the test's proxy, the certificate passed on in CERTIFICATE_HEADER
    citizen: Identity  # An Verhoeven's personal certificate
    logs: Path

    @property
    def settings(self) -> Settings:
        return self.stack.settings


def _start(port: int, env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gthread", "--threads", "4",
         "--graceful-timeout", "2", "--control-socket", str(log.parent / f"gunicorn-{port}.ctl"), *extra, APP],
        env=env, cwd=PROJECT, stdout=handle, stderr=subprocess.STDOUT)


def _wait(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1, verify=False).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


@pytest.fixture(scope="session")
def portal(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    logs = tmp_path_factory.mktemp("portal-logs")
    pki = stack.settings.pki_dir
    server = issue(stack.pki.ca, tmp_path_factory.mktemp("portal-tls"), "portal-tls", common_name="127.0.0.1")
    citizen = personal_certificate(stack.settings, log_on_of("10000001").official)
    env = dict(stack.env, KRUISPUNT_OUTBOX_INTERVAL_SECONDS="0", KRUISPUNT_MAINTENANCE_INTERVAL_SECONDS="0",
               KRUISPUNT_PORTAL_USER_FAILURES=str(USER_FAILURES), KRUISPUNT_PORTAL_ADDRESS_FAILURES="100",
               KRUISPUNT_PORTAL_TRUSTED_PROXIES="127.0.0.1", KRUISPUNT_PORTAL_CERTIFICATE_HEADER=CERTIFICATE_HEADER)
    ports = [free_port() for _ in range(3)]
    processes = [
        _start(ports[0], env, logs / "portal.log"),
        _start(ports[1], dict(env, KRUISPUNT_PORTAL_IDLE_SECONDS="2", KRUISPUNT_PORTAL_COOKIE_SECURE="0",
                              KRUISPUNT_PORTAL_TRUSTED_PROXIES=""), logs / "short-idle.log"),
        _start(ports[2], env, logs / "tls.log", "--certfile", str(server.cert_path), "--keyfile",
               str(server.key_path), "--ca-certs", str(pki / "citizen" / "ca.crt"), "--cert-reqs", "1"),
    ]
    try:
        with tls_proxy(ports[0], server.cert_path, server.key_path, pki / "citizen" / "ca.crt",
                       CERTIFICATE_HEADER) as proxy_port:
            urls = [f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", f"https://127.0.0.1:{ports[2]}"]
            for url in urls:
                _wait(f"{url}/health/live")
            _LOGGING_ON.append(stack.sessions)
            yield Portal(stack, *urls, f"https://127.0.0.1:{proxy_port}", citizen, logs)
            _LOGGING_ON.pop()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def chromium(profile: Path, *, client_certificate: Identity | None = None,
             auto_select: tuple[str, ...] = ()) -> WebDriver:
    """A headless Chromium of its own (profile and home directories), presenting the client certificate, if any,
    to the origins named without asking."""
    home = profile / "home"
    home.mkdir(parents=True, exist_ok=True)
    if client_certificate is not None:
        from tests.browser.nss import import_identity

        import_identity(home, client_certificate, "eID")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,850", "--ignore-certificate-errors", "--no-first-run",
                     "--disable-background-networking", "--disable-extensions", f"--user-data-dir={profile / 'data'}"):
        options.add_argument(argument)
    if auto_select:  # what the AutoSelectCertificateForUrls policy sets, as a site setting of this profile
        choice = {"filters": [{"ISSUER": {"CN": CITIZEN_CA_NAME}}]}
        options.add_experimental_option("prefs", {"profile": {"content_settings": {"exceptions": {
            "auto_select_certificate": {f"{origin},*": {"setting": choice} for origin in auto_select}}}}})
    service = Service(CHROMEDRIVER, env=dict(os.environ, HOME=str(home)))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(5)
    return driver


@pytest.fixture(scope="module")
def browser_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="kp-chromium-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(browser_dir: Path) -> Iterator[WebDriver]:
    driver = chromium(browser_dir / "plain")
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def _screenshot(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test, a screenshot of each browser it used, named after the test (and the database)."""
    yield
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{request.node.module.__name__.rsplit('.', 1)[-1]}-{request.node.name}")
    drivers = [request.getfixturevalue(n) for n in ("browser", "eid_browser") if n in request.fixturenames]
    for index, driver in enumerate(drivers):
        driver.save_screenshot(str(SCREENSHOTS / f"{name}{'-' + str(index) if index else ''}.png"))


def shot(driver: WebDriver, name: str) -> None:
    """A screenshot in the middle of a test (the end of each test has one anyway)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def fresh(driver: WebDriver, base_url: str) -> None:
    """Forget the browser's session and language on that origin (tests share one browser)."""
    driver.get(f"{base_url}/portal/static/portal.css")
    driver.delete_all_cookies()


def next_page(driver: WebDriver, page: WebElement) -> None:
    """Wait until the old page is gone, riding out Chromium's "Node with given id does not belong to the
    document", which the old page's element may answer for a moment while the next page comes in."""
    WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(expected_conditions.staleness_of(page))


def submit(driver: WebDriver, element: WebElement) -> None:
    """Send the element's form with the keyboard (Enter) and wait for the next page."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.send_keys(Keys.ENTER)
    next_page(driver, page)


def click(driver: WebDriver, css: str) -> None:
    """Click (a link or a button) and wait for the next page."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, css).click()
    next_page(driver, page)


def text(driver: WebDriver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def log_on_with_token(driver: WebDriver, base_url: str, log_on: DemoLogOn, *, password: str | None = None,
                      code: str | None = None, next_path: str | None = None, start: bool = True) -> None:
    """Fill in the fallback log-on as an official would: user number, then password and the code asked for (of a
    TOTP, one the portal has not taken yet)."""
    if start:
        query = f"?next={requests.utils.quote(next_path, safe='')}" if next_path else ""
        driver.get(f"{base_url}/portal/log-on{query}")
        field = driver.find_element(By.ID, "user_number")
        field.clear()
        field.send_keys(log_on.user_number)
        submit(driver, field)
    driver.find_element(By.ID, "password").send_keys(password if password is not None else log_on.password)
    code_field = driver.find_element(By.ID, "code")
    if code is None:
        position = code_field.get_attribute("data-position")
        code = log_on.code(int(position)) if position else unused_totp(_LOGGING_ON[-1], log_on)
    code_field.send_keys(code)
    submit(driver, code_field)


def unused_totp(sessions: sessionmaker[Session], log_on: DemoLogOn) -> str:
    """A TOTP code of the official's that the portal has not taken yet (each code is accepted once, and several
    tests log the same official on): the current step's, or once that one is used, the next step's (within the
    drift allowed), waiting for the clock if even that one is used."""
    totp = pyotp.TOTP(log_on.totp_secret or "")
    with sessions() as session:
        last = session.execute(select(PortalCredential.totp_last_step)
                               .where(PortalCredential.user_number == log_on.user_number)).scalar_one()
    step = max(totp.timecode(datetime.now(UTC)), (last or -1) + 1)
    while step > totp.timecode(datetime.now(UTC)) + TOTP_DRIFT_STEPS:
        time.sleep(1)
    return totp.generate_otp(step)


def throwaway_log_on(portal: Portal, name: str) -> DemoLogOn:
    """A fresh Kruisdorp official with a card of their own, for a test that locks or resets a log-on (the demo
    officials' log-ons are shared by every test)."""
    from integrator import commands
    from repository.credentials import issue_credentials
    from repository.models import Official, Organisation
    from repository.portal_models import TokenKind
    from services.demo_organisations import KRUISDORP, DemoOfficial
    from tests.e2e.directory_calls import new_person

    insz = new_person()
    with portal.stack.sessions() as session:
        commands.add_official(session, KRUISDORP.enterprise_number, insz, name)
        official_id = session.execute(
            select(Official.id).join(Organisation, Organisation.id == Official.organisation_id)
            .where(Organisation.enterprise_number == KRUISDORP.enterprise_number, Official.insz == insz)).scalar_one()
        issued = issue_credentials(session, official_id, TokenKind.CARD)
        session.commit()
    official = DemoOfficial(KRUISDORP.enterprise_number, insz, name, ())
    return _Issued(official, issued.user_number, issued.password, TokenKind.CARD, codes=issued.card)


@dataclass(frozen=True)
class _Issued(DemoLogOn):
    """A log-on whose card was drawn at random (not derived from the user number as the demo's are)."""

    codes: tuple[str, ...] = ()

    @property
    def card(self) -> tuple[str, ...]:
        return self.codes


def dutch(message: str, **values: object) -> str:
    """The portal's words for an English msgid, as the Dutch pages (the default) show them: the tests check the
    page shows the catalogue's translation without writing it out again."""
    from babel.support import Translations

    from integrator.faces.portal.i18n import DOMAIN, TRANSLATIONS

    translated = Translations.load(str(TRANSLATIONS), ["nl"], DOMAIN).gettext(message)
    assert translated != message, f"no Dutch for {message!r}"
    return translated % values if values else translated
