"""A second WS-Security implementation for the tests, written from the XML-DSig rules with lxml's exclusive c14n
and cryptography alone (no signxml): it checks the signatures the client makes, and makes the integrator-like
answers and receipts the client's verifiers must accept or refuse."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
X509 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
KP = "urn:kruispunt:common:v1"


def c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def by_id(root: etree._Element) -> dict[str, etree._Element]:
    return {value: element for element in root.iter("*") for name, value in element.attrib.items()
            if etree.QName(name).localname == "Id"}


def check_request(data: bytes) -> dict[str, etree._Element]:
    """Verify a signed request from its bytes: each reference's digest, then the SignedInfo's RSA-SHA256 signature
    with the BinarySecurityToken's key. Returns the signed elements by tag; raises AssertionError otherwise."""
    root = etree.fromstring(data)
    signature = root.find(f"{{{SOAP}}}Header/{{{WSSE}}}Security/{{{DS}}}Signature")
    assert signature is not None, "no ds:Signature in wsse:Security"
    info = signature.find(f"{{{DS}}}SignedInfo")
    assert info is not None
    assert info.find(f"{{{DS}}}CanonicalizationMethod").get("Algorithm") == EXC  # type: ignore[union-attr]
    assert info.find(f"{{{DS}}}SignatureMethod").get("Algorithm") == RSA_SHA256  # type: ignore[union-attr]
    ids, signed = by_id(root), {}
    for reference in info.iterfind(f"{{{DS}}}Reference"):
        element = ids[(reference.get("URI") or "").removeprefix("#")]
        transforms = [t.get("Algorithm") for t in reference.iterfind(f"{{{DS}}}Transforms/{{{DS}}}Transform")]
        assert transforms == [EXC], transforms
        assert reference.find(f"{{{DS}}}DigestMethod").get("Algorithm") == SHA256  # type: ignore[union-attr]
        digest = base64.b64encode(hashlib.sha256(c14n(element)).digest()).decode()
        assert reference.findtext(f"{{{DS}}}DigestValue") == digest, f"digest of {element.tag}"
        signed[element.tag] = element
    reference = signature.find(f"{{{DS}}}KeyInfo/{{{WSSE}}}SecurityTokenReference/{{{WSSE}}}Reference")
    assert reference is not None
    token = ids[(reference.get("URI") or "").removeprefix("#")]
    assert token.tag == f"{{{WSSE}}}BinarySecurityToken" and token.get("ValueType") == X509
    key = x509.load_der_x509_certificate(base64.b64decode(token.text or "")).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    value = base64.b64decode(signature.findtext(f"{{{DS}}}SignatureValue") or "")
    key.verify(value, c14n(info), padding.PKCS1v15(), hashes.SHA256())  # raises InvalidSignature
    return signed


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signature(key: rsa.RSAPrivateKey, targets: list[tuple[str, etree._Element]], key_info: etree._Element,
               transforms: tuple[str, ...] = (EXC,)) -> etree._Element:
    signature = etree.Element(f"{{{DS}}}Signature", nsmap={"ds": DS})
    info = etree.SubElement(signature, f"{{{DS}}}SignedInfo")
    etree.SubElement(info, f"{{{DS}}}CanonicalizationMethod", Algorithm=EXC)
    etree.SubElement(info, f"{{{DS}}}SignatureMethod", Algorithm=RSA_SHA256)
    for uri, element in targets:
        reference = etree.SubElement(info, f"{{{DS}}}Reference", URI=uri)
        listed = etree.SubElement(reference, f"{{{DS}}}Transforms")
        for algorithm in transforms:
            etree.SubElement(listed, f"{{{DS}}}Transform", Algorithm=algorithm)
        etree.SubElement(reference, f"{{{DS}}}DigestMethod", Algorithm=SHA256)
        etree.SubElement(reference, f"{{{DS}}}DigestValue").text = base64.b64encode(
            hashlib.sha256(c14n(element)).digest()).decode()
    value = key.sign(c14n(info), padding.PKCS1v15(), hashes.SHA256())
    etree.SubElement(signature, f"{{{DS}}}SignatureValue").text = base64.b64encode(value).decode()
    signature.append(key_info)
    return signature


@dataclass
class AnswerSpec:
    """What an integrator-like answer holds and how it is signed; the defaults make a valid one."""

    request_digest: str | None  # base64, as kp:Answer/RequestSignatureDigest; None leaves it out
    payload: etree._Element | None = None
    ticket: str = "KP-20261201-0123456789abcdef0123456789abcdef"
    created: datetime | None = None
    ttl: timedelta = timedelta(minutes=5)
    sign_answer_header: bool = True


def answer(key: rsa.RSAPrivateKey, cert: x509.Certificate, spec: AnswerSpec) -> etree._Element:
    """An answer envelope signed as the integrator signs them: Body, Timestamp and kp:Answer."""
    root = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soapenv": SOAP, "wsu": WSU})
    header = etree.SubElement(root, f"{{{SOAP}}}Header")
    body = etree.SubElement(root, f"{{{SOAP}}}Body", {f"{{{WSU}}}Id": f"id-{os.urandom(8).hex()}"})
    body.append(spec.payload if spec.payload is not None else etree.Element("{urn:x}Response"))
    security = etree.SubElement(header, f"{{{WSSE}}}Security", nsmap={"wsse": WSSE})
    security.set(f"{{{SOAP}}}mustUnderstand", "1")
    token = etree.SubElement(security, f"{{{WSSE}}}BinarySecurityToken", {f"{{{WSU}}}Id": "token"},
                             ValueType=X509, EncodingType=X509.replace("x509-token-profile-1.0#X509v3",
                                                                       "soap-message-security-1.0#Base64Binary"))
    token.text = base64.b64encode(cert.public_bytes(Encoding.DER)).decode()
    stamp = etree.SubElement(security, f"{{{WSU}}}Timestamp", {f"{{{WSU}}}Id": "stamp"})
    created = spec.created or datetime.now(UTC)
    etree.SubElement(stamp, f"{{{WSU}}}Created").text = _utc(created)
    etree.SubElement(stamp, f"{{{WSU}}}Expires").text = _utc(created + spec.ttl)
    kp_answer = etree.SubElement(header, f"{{{KP}}}Answer", {f"{{{WSU}}}Id": "answer"}, nsmap={"kp": KP})
    etree.SubElement(kp_answer, f"{{{KP}}}Ticket").text = spec.ticket
    if spec.request_digest is not None:
        etree.SubElement(kp_answer, f"{{{KP}}}RequestSignatureDigest").text = spec.request_digest
    key_info = etree.Element(f"{{{DS}}}KeyInfo")
    reference = etree.SubElement(etree.SubElement(key_info, f"{{{WSSE}}}SecurityTokenReference"),
                                 f"{{{WSSE}}}Reference", URI="#token", ValueType=X509)
    assert reference is not None
    targets = [(f"#{body.get(f'{{{WSU}}}Id')}", body), ("#stamp", stamp)]
    if spec.sign_answer_header:
        targets.append(("#answer", kp_answer))
    security.append(_signature(key, targets, key_info))
    return etree.fromstring(etree.tostring(root))  # as zeep hands it over: parsed from the bytes received


def receipt(key: rsa.RSAPrivateKey, cert: x509.Certificate, fields: dict[str, str]) -> bytes:
    """An ApplicationReceipt with an enveloped signature over the whole document, as the integrator signs it."""
    ns = "urn:kruispunt:Applications:v1"
    root = etree.Element(f"{{{ns}}}ApplicationReceipt", nsmap={None: ns})
    for name, value in fields.items():
        etree.SubElement(root, f"{{{ns}}}{name}").text = value
    key_info = etree.Element(f"{{{DS}}}KeyInfo")
    etree.SubElement(etree.SubElement(key_info, f"{{{DS}}}X509Data"), f"{{{DS}}}X509Certificate").text = \
        base64.b64encode(cert.public_bytes(Encoding.DER)).decode()
    root.append(_signature(key, [("", root)], key_info, transforms=(ENVELOPED, EXC)))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")
