"""Receipts: signed by the integrator over the whole document, verified against its certificate only, any change
refused; the application digest does not depend on the prefixes or indentation the caller's SOAP stack used."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kruispunt_client.receipt import (
    DELIVERED,
    FORWARDING_PENDING,
    NS,
    Receipt,
    ReceiptInvalid,
    application_digest,
    verify_receipt,
)
from lxml import etree

from integrator.pki import create_ca, issue
from integrator.wssec.sign import SigningKey
from services.application_receipts import sign_receipt

DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningKey, SigningKey]:
    directory: Path = tmp_path_factory.mktemp("pki")
    ca = create_ca(directory)
    return (SigningKey.from_identity(issue(ca, directory, "integrator", common_name="integrator")),
            SigningKey.from_identity(issue(ca, directory, "other", common_name="someone else")))


def receipt(**changes: object) -> Receipt:
    now = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    made = Receipt(ticket="KP-20261130-" + "a" * 32, received_at=now, signed_at=now, kind="PENSION",
                   organisation="0207123400", official="75041214506", institution="pension-applications",
                   file_number="SOC/2026/17", insz="85073003328", application_digest="ab" * 32,
                   forwarding=DELIVERED, institution_reference="PEN-2026-000001")
    return replace(made, **changes)  # type: ignore[arg-type]


def test_a_signed_receipt_verifies_and_gives_back_what_it_attests(keys: tuple[SigningKey, SigningKey]) -> None:
    integrator, _other = keys
    for attested in (receipt(), receipt(forwarding=FORWARDING_PENDING, institution_reference=None)):
        data = sign_receipt(attested, integrator)
        assert verify_receipt(data, integrator.cert) == attested
        root = etree.fromstring(data)
        assert root.tag == f"{{{NS}}}ApplicationReceipt" and root[-1].tag == f"{{{DS}}}Signature"


def test_a_changed_receipt_or_another_signer_is_refused(keys: tuple[SigningKey, SigningKey]) -> None:
    integrator, other = keys
    data = sign_receipt(receipt(), integrator)
    with pytest.raises(ReceiptInvalid):
        verify_receipt(data.replace(b"SOC/2026/17", b"SOC/2026/18"), integrator.cert)
    with pytest.raises(ReceiptInvalid):
        verify_receipt(data, other.cert)
    with pytest.raises(ReceiptInvalid):
        verify_receipt(sign_receipt(receipt(), other), integrator.cert)
    root = etree.fromstring(data)
    root.remove(root[-1])  # the signature taken off
    with pytest.raises(ReceiptInvalid):
        verify_receipt(etree.tostring(root), integrator.cert)
    with pytest.raises(ReceiptInvalid):
        verify_receipt(b"<not-a-receipt/>", integrator.cert)


def test_the_application_digest_ignores_prefixes_and_indentation_but_not_content() -> None:
    plain = etree.fromstring(f'<SubmitApplicationRequest xmlns="{NS}"><Kind>PENSION</Kind>'
                             f'<FileNumber>F 1</FileNumber></SubmitApplicationRequest>')
    prefixed = etree.fromstring(f'<a:SubmitApplicationRequest xmlns:a="{NS}" xmlns:b="urn:other">\n  '
                                f'<a:Kind>PENSION</a:Kind>\n  <a:FileNumber>F 1</a:FileNumber>\n'
                                f'</a:SubmitApplicationRequest>')
    changed = etree.fromstring(f'<SubmitApplicationRequest xmlns="{NS}"><Kind>PENSION</Kind>'
                               f'<FileNumber>F 2</FileNumber></SubmitApplicationRequest>')
    assert application_digest(plain) == application_digest(prefixed)
    assert application_digest(plain) != application_digest(changed)
    assert len(application_digest(plain)) == 64
