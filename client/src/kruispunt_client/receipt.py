"""Signed receipts for applications: what the integrator attests it received, when, and where it goes.

A receipt is a standalone XML document (ApplicationReceipt, urn:kruispunt:Applications:v1) carrying an enveloped
XML signature of the integrator (RSA-SHA256, SHA-256 digests, exclusive c14n; the reference is the whole
document). It travels as its exact bytes, so anyone holding it can check it against the integrator certificate
with verify_receipt(), years later, without the integrator.

The application digest is the SHA-256 of the exclusive c14n of the application element in its canonical form:
elements in the application's namespace as the default namespace, no whitespace between elements. The same
function computes it from the element as the caller sent it and from the element as the integrator validated it,
whatever prefixes or indentation the caller's SOAP stack used."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import SignXMLException
from signxml.verifier import SignatureConfiguration, XMLVerifier

from kruispunt_client.namespaces import DS

NS = "urn:kruispunt:Applications:v1"
RECEIPT = f"{{{NS}}}ApplicationReceipt"
FORWARDING_PENDING, DELIVERED, REFUSED = "FORWARDING_PENDING", "DELIVERED", "REFUSED"
FIELDS = ("Ticket", "ReceivedAt", "SignedAt", "Kind", "Organisation", "Official", "Institution", "FileNumber",
          "Insz", "ApplicationDigest", "Forwarding", "InstitutionReference")  # in the order a receipt holds them
_CONFIG = SignatureConfiguration(
    require_x509=True,
    expect_references=1,
    signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
)
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False, huge_tree=False)


class ReceiptInvalid(Exception):
    """The document is not a receipt the integrator signed, or it was changed after signing."""


@dataclass(frozen=True)
class Receipt:
    """What a receipt attests (verify_receipt gives it back from the signed content only)."""

    ticket: str
    received_at: datetime
    signed_at: datetime
    kind: str
    organisation: str  # the submitting organisation's enterprise number
    official: str
    institution: str  # the backend the application is forwarded to
    file_number: str  # the municipality's own file number
    insz: str
    application_digest: str  # hex SHA-256, see application_digest()
    forwarding: str  # DELIVERED, FORWARDING_PENDING or REFUSED when the receipt was signed
    institution_reference: str | None = None  # the institution's file reference, when delivered


def canonical(element: etree._Element) -> etree._Element:
    """A copy of the element with its own namespace as default namespace and no whitespace between elements."""
    namespace = etree.QName(element).namespace

    def copy(node: etree._Element, parent: etree._Element | None) -> etree._Element:
        if parent is None:
            made = etree.Element(node.tag, nsmap={None: namespace} if namespace else None)  # type: ignore[dict-item]
        else:
            made = etree.SubElement(parent, node.tag)
        for name, value in node.attrib.items():
            made.set(name, value)
        children = [c for c in node if isinstance(c.tag, str)]
        if children:
            for child in children:
                copy(child, made)
        else:
            made.text = node.text if node.text is not None else ""
        return made

    return copy(element, None)


def application_digest(element: etree._Element) -> str:
    """Hex SHA-256 of the exclusive c14n of the application element's canonical form."""
    data = etree.tostring(canonical(element), method="c14n", exclusive=True, with_comments=False)
    return hashlib.sha256(data).hexdigest()


def verify_receipt(data: bytes, certificate: x509.Certificate) -> Receipt:
    """The receipt's content, read from what the signature covers, after checking it is the whole document signed
    by this certificate with the expected algorithms. Raises ReceiptInvalid otherwise."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ReceiptInvalid("a receipt carries no DTD or entities")
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ReceiptInvalid(f"not XML: {exc}") from None
    if root.tag != RECEIPT:
        raise ReceiptInvalid(f"not an ApplicationReceipt but {root.tag}")
    signatures = root.findall(f".//{{{DS}}}Signature")
    if len(signatures) != 1 or signatures[0].getparent() is not root:
        raise ReceiptInvalid("a receipt carries exactly one ds:Signature, as the last child of the receipt")
    references = signatures[0].findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    if len(references) != 1 or references[0].get("URI") != "":
        raise ReceiptInvalid("the signature must cover the whole receipt (one Reference, URI=\"\")")
    pem = certificate.public_bytes(Encoding.PEM).decode()
    try:
        result = XMLVerifier().verify(root, x509_cert=pem, expect_config=_CONFIG)
    except SignXMLException as exc:
        raise ReceiptInvalid(f"the signature does not verify: {exc}") from None
    verified = result[0] if isinstance(result, list) else result
    signed = verified.signed_xml
    if signed is None or signed.tag != RECEIPT:
        raise ReceiptInvalid("the signature does not cover an ApplicationReceipt")
    return _read(signed)


def _read(signed: etree._Element) -> Receipt:
    found = {etree.QName(c).localname: c.text or "" for c in signed if isinstance(c.tag, str)
             and etree.QName(c).namespace == NS}
    missing = [n for n in FIELDS if n != "InstitutionReference" and n not in found]
    if missing:
        raise ReceiptInvalid(f"the receipt lacks {', '.join(missing)}")
    return Receipt(ticket=found["Ticket"], received_at=datetime.fromisoformat(found["ReceivedAt"]),
                   signed_at=datetime.fromisoformat(found["SignedAt"]), kind=found["Kind"],
                   organisation=found["Organisation"], official=found["Official"],
                   institution=found["Institution"], file_number=found["FileNumber"], insz=found["Insz"],
                   application_digest=found["ApplicationDigest"], forwarding=found["Forwarding"],
                   institution_reference=found.get("InstitutionReference"))


__all__ = ["DELIVERED", "FIELDS", "FORWARDING_PENDING", "NS", "RECEIPT", "REFUSED", "Receipt", "ReceiptInvalid",
           "application_digest", "canonical", "verify_receipt"]
