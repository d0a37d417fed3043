"""Signed receipts for applications (the Applications service's own): the integrator attests what it received,
when, and where it goes.

A receipt is a standalone XML document (ApplicationReceipt, urn:kruispunt:Applications:v1) carrying an enveloped
XML signature of the integrator (RSA-SHA256, SHA-256 digests, exclusive c14n; the reference is the whole
document). The integrator signs it here; what it attests (Receipt), how it is verified (verify_receipt) and the
application digest it quotes (application_digest) are the client library's (kruispunt_client.receipt), so whoever
holds a receipt checks it with the same code, years later, without the integrator."""

from __future__ import annotations

from datetime import UTC, datetime

from kruispunt_client.receipt import FIELDS, NS, RECEIPT, Receipt
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod
from signxml.algorithms import CanonicalizationMethod, SignatureConstructionMethod
from signxml.signer import XMLSigner

from integrator.wssec.sign import SigningKey


def _text(value: datetime | str) -> str:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def sign_receipt(receipt: Receipt, key: SigningKey) -> bytes:
    """The receipt as a signed XML document (UTF-8 bytes, stored and handed out unchanged)."""
    root = etree.Element(RECEIPT, nsmap={None: NS})
    values = {"Ticket": receipt.ticket, "ReceivedAt": receipt.received_at, "SignedAt": receipt.signed_at,
              "Kind": receipt.kind, "Organisation": receipt.organisation, "Official": receipt.official,
              "Institution": receipt.institution, "FileNumber": receipt.file_number, "Insz": receipt.insz,
              "ApplicationDigest": receipt.application_digest, "Forwarding": receipt.forwarding,
              "InstitutionReference": receipt.institution_reference}
    for name in FIELDS:
        if values[name] is not None:
            etree.SubElement(root, f"{{{NS}}}{name}").text = _text(values[name])
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signed = signer.sign(root, key=key.key, cert=[key.cert])
    return etree.tostring(signed, xml_declaration=True, encoding="utf-8")

