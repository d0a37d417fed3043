"""Communit-e on the portal in a real browser, on the integrator as `make run` serves it: An Verhoeven submits a
disability-allowance application with a household member and a document; the page shows the receipt the
integrator signed, Chromium downloads its exact bytes, and the client library's verify_receipt and the xmlsec1
command both verify them against the integrator's certificate; the institution's real intake files it once; her
receipts list shows it delivered. Refusals (an applicant outside the files, documents beyond the limits, a
ticket that is not hers) are shown on the page, never as a server error."""

from __future__ import annotations

import base64
import subprocess
import uuid
from datetime import date
from pathlib import Path

from kruispunt_client.receipt import application_digest, verify_receipt
from kruispunt_client.xml import build
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from services.applications import INSTITUTIONS, NS
from services.backends.persons import PERSONS
from services.demo_organisations import KRUISDORP
from tests.browser.conftest import Portal, click, dutch, fresh, log_on_of, log_on_with_token, shot, submit, text
from tests.e2e.application_calls import eventually, intake, integrator_certificate
from tests.e2e.directory_calls import new_person
from tests.support import audit_record

AN = log_on_of("10000001")  # Kruisdorp, granted Applications for SOCIAL_APPLICATION
MARIA = next(p for p in PERSONS if p.name == "Maria Janssens")  # in Kruisdorp's files for applications
APP = "/portal/applications/"
DISABILITY = "DISABILITY_ALLOWANCE"
PDF = b"%PDF-1.4\n% a medical certificate, synthetic\n%%EOF\n"
BORN = date(1958, 3, 14)


def fill(browser: WebDriver, values: dict[str, str]) -> None:
    for field, value in values.items():
        element = browser.find_element(By.ID, field)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        elif element.get_attribute("type") == "date":
            browser.execute_script("arguments[0].value = arguments[1]", element, value)
        else:
            element.clear()
            element.send_keys(value)


def apply(browser: WebDriver, base: str, insz: str, file_number: str, documents: list[Path],
          members: dict[str, str] | None = None) -> None:
    """Fill in the application form (the applicant Peeters Marie Louise) and send it."""
    browser.get(f"{base}{APP}")
    fill(browser, {"kind": DISABILITY, "insz": insz, "last_name": "Peeters", "first_names": "Marie Louise",
                   "birth_date": BORN.isoformat(), "file_number": file_number, **(members or {})})
    if documents:
        browser.find_element(By.ID, "documents").send_keys("\n".join(str(d) for d in documents))
    submit(browser, browser.find_element(By.ID, "file_number"))


def document(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def downloaded(folder: Path, name: str) -> bytes:
    """The file Chromium saved, once it is complete (a bounded wait)."""
    path = folder / name
    eventually(lambda: path.exists() and not list(folder.glob("*.crdownload")), f"download of {name}", timeout=30)
    return path.read_bytes()


def xmlsec1(path: Path, *keys: str | Path) -> subprocess.CompletedProcess[str]:
    """xmlsec1 --verify (libxmlsec1, independent of signxml): pinned to the integrator's certificate given
    explicitly (--pubkey-cert-pem), or the certificate in the receipt's KeyInfo checked up to the trusted CA."""
    return subprocess.run(["xmlsec1", "--verify", *map(str, keys), str(path)], capture_output=True, text=True,
                          timeout=60)


def test_an_application_gets_a_signed_receipt_that_verifies_when_downloaded_and_is_delivered_once(
        portal: Portal, browser: WebDriver, tmp_path: Path) -> None:
    stack, base = portal.stack, portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, AN)
    assert browser.find_element(By.CSS_SELECTOR, f"nav.applications a[href='{APP}']")
    member, file_number = new_person(), f"SOC/{uuid.uuid4().hex[:10]}"
    attest = document(tmp_path, "medisch-attest.pdf", PDF)
    apply(browser, base, MARIA.insz, file_number, [attest],
          {"member-1-insz": member, "member-1-relationship": "SPOUSE"})
    shot(browser, "communite-receipt-shown")

    ticket = text(browser, "#receipt-ticket")
    assert ticket in text(browser, "#done"), text(browser, "main")
    assert browser.find_element(By.ID, "receipt-kind").get_attribute("data-kind") == DISABILITY
    assert (text(browser, "#receipt-insz"), text(browser, "#receipt-file-number"),
            text(browser, "#receipt-institution")) == (MARIA.insz, file_number, INSTITUTIONS[DISABILITY])
    assert browser.find_element(By.ID, "receipt-forwarding").get_attribute("data-forwarding") == "FORWARDING_PENDING"
    record = audit_record(stack.sessions, text(browser, "#ticket"))
    assert (record.channel, record.official, record.person, record.outcome, record.service, record.operation) == (
        "portal", AN.official.insz, MARIA.insz, "OK", "Applications/v1", "SubmitApplication")
    assert text(browser, "#ticket") == ticket  # a first submission: the receipt is this transaction's

    # Chromium downloads the signed receipt; the client library and xmlsec1 verify it on their own
    folder = tmp_path / "downloads"
    folder.mkdir()
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})
    browser.find_element(By.ID, "download").click()
    data = downloaded(folder, f"receipt-{ticket}.xml")
    receipt = verify_receipt(data, integrator_certificate(stack))
    assert (receipt.ticket, receipt.kind, receipt.insz, receipt.file_number, receipt.institution) == (
        ticket, DISABILITY, MARIA.insz, file_number, INSTITUTIONS[DISABILITY])
    assert (receipt.organisation, receipt.official) == (KRUISDORP.enterprise_number, AN.official.insz)
    submitted = build(f"{{{NS}}}SubmitApplicationRequest", {
        "Kind": DISABILITY, "Insz": MARIA.insz, "LastName": "Peeters", "FirstNames": "Marie Louise",
        "BirthDate": BORN, "FileNumber": file_number,
        "Household": {"Member": [{"Insz": member, "Relationship": "SPOUSE"}]},
        "Document": [{"Name": attest.name, "MimeType": "application/pdf", "Content": base64.b64encode(PDF).decode()}]})
    assert receipt.application_digest == application_digest(submitted), "the receipt is of the form as filled in"
    pki = stack.settings.pki_dir
    saved = folder / f"receipt-{ticket}.xml"
    for keys in (("--pubkey-cert-pem", pki / "integrator.crt"), ("--trusted-pem", pki / "ca.crt")):
        checked = xmlsec1(saved, *keys)
        assert checked.returncode == 0 and "OK" in checked.stderr, checked.stderr
    forged = tmp_path / "forged.xml"
    forged.write_bytes(data.replace(file_number.encode(), b"SOC/forged"))
    assert xmlsec1(forged, "--pubkey-cert-pem", pki / "integrator.crt").returncode != 0

    # the institution's intake filed it once, under the ticket, with its household and document
    filed = eventually(lambda: intake(stack, DISABILITY).received(ticket), f"intake of {ticket}")
    assert (filed.insz, filed.file_number, filed.kind, filed.municipality, filed.documents, filed.attempts) == (
        MARIA.insz, file_number, DISABILITY, KRUISDORP.enterprise_number, 1, 1)
    assert intake(stack, DISABILITY).count(ticket) == 1

    # her receipts: this one, delivered, with the institution's reference; its page says the same
    def listed_delivered() -> bool:
        browser.get(f"{base}{APP}receipts")
        return browser.find_element(By.ID, f"receipt-{ticket}").get_attribute("data-state") == "DELIVERED"

    eventually(listed_delivered, f"{ticket} listed as delivered", timeout=30, every=1)
    shot(browser, "communite-receipts-listed")
    row = text(browser, f"#receipt-{ticket}")
    assert MARIA.insz in row and file_number in row and filed.file_reference in row, row
    assert INSTITUTIONS[DISABILITY] in row, row
    click(browser, f"#receipt-{ticket} td.ticket a")
    assert text(browser, "#receipt-ticket") == ticket
    assert browser.find_element(By.ID, "delivery-state").get_attribute("data-state") == "DELIVERED"
    assert text(browser, "#institution-reference") == filed.file_reference
    assert browser.find_element(By.ID, "download").get_attribute("href").endswith(f"{APP}receipts/{ticket}.xml")


def test_refusals_are_shown_on_the_page_with_their_reason(portal: Portal, browser: WebDriver,
                                                          tmp_path: Path) -> None:
    stack, base = portal.stack, portal.stack.base_url
    fresh(browser, base)
    log_on_with_token(browser, base, AN)

    stranger = new_person()  # not in Kruisdorp's files
    apply(browser, base, stranger, "SOC/stranger", [])
    assert text(browser, "#fault-code") == "Client.Caller.PersonNotInFiles", text(browser, "main")
    record = audit_record(stack.sessions, text(browser, "#ticket"))
    assert (record.channel, record.person, record.fault_code, record.operation) == (
        "portal", stranger, "Client.Caller.PersonNotInFiles", "SubmitApplication")
    assert browser.find_element(By.ID, "insz").get_attribute("value") == stranger

    large = document(tmp_path, "scan.pdf", b"%PDF-1.4\n" + b"0" * 400_000)  # beyond 384 KiB, within the form
    apply(browser, base, MARIA.insz, "SOC/large", [large])
    assert dutch("The document %(name)s is larger than %(most)d KiB, the most a document may be.", name="scan.pdf",
                 most=384) in text(browser, "#problems"), text(browser, "main")
    assert not browser.find_elements(By.ID, "outcome")

    many = [document(tmp_path, f"page-{n}.txt", b"page %d" % n) for n in range(6)]
    apply(browser, base, MARIA.insz, "SOC/many", many)
    assert dutch("At most %(most)d documents go with an application; you chose %(chosen)d.", most=5,
                 chosen=6) in text(browser, "#problems"), text(browser, "main")
    assert not browser.find_elements(By.ID, "outcome")

    huge = document(tmp_path, "huge.pdf", b"%PDF-1.4\n" + b"0" * 1_200_000)  # beyond what the portal accepts
    apply(browser, base, MARIA.insz, "SOC/huge", [huge])
    assert dutch("The form with its documents was larger than the %(most)d KiB the portal accepts: nothing was sent. "
                 "Choose fewer or smaller documents (at most %(documents)d, each at most %(document)d KiB).",
                 most=1024, documents=5, document=384) in text(browser, "#problems"), text(browser, "main")
    assert browser.find_element(By.ID, "insz")  # the form again, in the portal's layout

    unknown = f"KP-{date.today():%Y%m%d}-{uuid.uuid4().hex}"
    for path in (f"{APP}receipts/{unknown}", f"{APP}receipts/{unknown}.xml"):
        browser.get(f"{base}{path}")
        assert text(browser, "#fault-code") == "Client.Application.ReceiptUnknown", text(browser, "main")
        assert unknown in text(browser, "#refusal")
        assert audit_record(stack.sessions, text(browser, "#ticket")).fault_code == "Client.Application.ReceiptUnknown"
