"""Log-on with a personal certificate over real TLS, in a real browser that holds An Verhoeven's certificate of the
demo citizen CA in its NSS store: (a) gunicorn terminating TLS itself with client certificates asked for, (b) a
TLS-terminating proxy passing the verified certificate in the header the portal trusts from it alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from cryptography.hazmat.primitives.serialization import Encoding
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.conftest import CERTIFICATE_HEADER, Portal, chromium, click, fresh, text
from tests.browser.test_log_on import path, sessions_of

AN_INSZ = "75041214531"


@pytest.fixture(scope="module")
def eid_browser(portal: Portal, browser_dir: Path) -> Iterator[WebDriver]:
    driver = chromium(browser_dir / "eid", client_certificate=portal.citizen,
                      auto_select=(portal.tls_url, portal.proxy_url))
    yield driver
    driver.quit()


def log_on_with_eid(driver: WebDriver, base_url: str) -> None:
    fresh(driver, base_url)
    driver.get(f"{base_url}/portal/log-on")
    click(driver, "form[action='/portal/log-on/certificate'] button")


def test_certificate_log_on_at_gunicorn_terminating_tls(portal: Portal, eid_browser: WebDriver) -> None:
    log_on_with_eid(eid_browser, portal.tls_url)
    assert path(eid_browser) == "/portal/"
    assert "Welkom, An Verhoeven" in text(eid_browser, "main")
    assert any(s.method == "certificate" for s in sessions_of(portal, AN_INSZ))
    assert "via=tls" in (portal.logs / "tls.log").read_text()


def test_certificate_log_on_through_a_tls_terminating_proxy(portal: Portal, eid_browser: WebDriver) -> None:
    log_on_with_eid(eid_browser, portal.proxy_url)
    assert path(eid_browser) == "/portal/"
    assert "Welkom, An Verhoeven" in text(eid_browser, "main")
    assert "via=proxy" in (portal.logs / "portal.log").read_text()


def test_without_a_certificate_the_log_on_is_refused(portal: Portal, browser: WebDriver) -> None:
    log_on_with_eid(browser, portal.tls_url)
    assert "Met uw certificaat kunt u zich niet aanmelden" in text(browser, "[role=alert]")
    assert "no client certificate was presented" in (portal.logs / "tls.log").read_text()


def test_the_certificate_header_is_ignored_from_an_address_not_trusted(portal: Portal) -> None:
    """The server at short_idle_url trusts no proxy: a client sending the header itself is not logged on."""
    pem = quote(portal.citizen.load_cert().public_bytes(Encoding.PEM).decode())
    with requests.Session() as client:
        page = client.get(f"{portal.short_idle_url}/portal/log-on", timeout=10)
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        answer = client.post(f"{portal.short_idle_url}/portal/log-on/certificate", data={"csrf_token": token},
                             headers={CERTIFICATE_HEADER: pem}, timeout=10, allow_redirects=False)
    assert answer.status_code == 403 and "Met uw certificaat kunt u zich niet aanmelden" in answer.text
    assert "header from 127.0.0.1 ignored" in (portal.logs / "short-idle.log").read_text()
