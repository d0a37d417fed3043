"""Receipts verify against the integrator's certificate, and read only what the signature covers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

import independent
from conftest import Network, Party
from kruispunt_client import ReceiptInvalid, application_digest, verify_receipt

FIELDS = {"Ticket": "KP-20261201-0123456789abcdef0123456789abcdef", "ReceivedAt": "2026-12-01T09:30:00+00:00",
          "SignedAt": "2026-12-01T09:30:01+00:00", "Kind": "PENSION", "Organisation": "0207123407",
          "Official": "75041214531", "Institution": "pension-service", "FileNumber": "SOC/2026/17",
          "Insz": "48021420212", "ApplicationDigest": "ab" * 32, "Forwarding": "DELIVERED",
          "InstitutionReference": "PEN-2026-1"}


def signed(party: Party, fields: dict[str, str] = FIELDS) -> bytes:
    return independent.receipt(party.key.key, party.certificate, fields)


def test_a_receipt_of_the_integrator_verifies_and_says_what_it_attests(network: Network) -> None:
    receipt = verify_receipt(signed(network.integrator), network.integrator.certificate)
    assert (receipt.ticket, receipt.kind, receipt.insz, receipt.forwarding, receipt.institution_reference) == (
        FIELDS["Ticket"], "PENSION", "48021420212", "DELIVERED", "PEN-2026-1")
    assert receipt.received_at == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def test_a_changed_receipt_is_refused(network: Network) -> None:
    with pytest.raises(ReceiptInvalid, match="does not verify"):
        verify_receipt(signed(network.integrator).replace(b"SOC/2026/17", b"SOC/2026/18"),
                       network.integrator.certificate)


def test_a_receipt_signed_by_someone_else_is_refused(network: Network) -> None:
    with pytest.raises(ReceiptInvalid):
        verify_receipt(signed(network.colleague), network.integrator.certificate)
    with pytest.raises(ReceiptInvalid):
        verify_receipt(signed(network.integrator), network.colleague.certificate)


def test_a_receipt_lacking_a_field_is_refused(network: Network) -> None:
    fields = {name: value for name, value in FIELDS.items() if name != "Insz"}
    with pytest.raises(ReceiptInvalid, match="lacks Insz"):
        verify_receipt(signed(network.integrator, fields), network.integrator.certificate)


@pytest.mark.parametrize("data", [b"<!DOCTYPE x [<!ENTITY e 'x'>]><x>&e;</x>", b"<not-a-receipt/>", b"not xml"])
def test_what_is_no_receipt_is_refused(network: Network, data: bytes) -> None:
    with pytest.raises(ReceiptInvalid):
        verify_receipt(data, network.integrator.certificate)


def test_the_application_digest_does_not_depend_on_prefixes_or_indentation() -> None:
    ns = "urn:kruispunt:Applications:v1"
    one = etree.fromstring(f'<a:App xmlns:a="{ns}"><a:Kind>PENSION</a:Kind><a:Insz>48021420212</a:Insz></a:App>')
    two = etree.fromstring(f'<App xmlns="{ns}">\n  <Kind>PENSION</Kind>\n  <Insz>48021420212</Insz>\n</App>')
    other = etree.fromstring(f'<App xmlns="{ns}"><Kind>PENSION</Kind><Insz>48021420213</Insz></App>')
    assert application_digest(one) == application_digest(two) != application_digest(other)
