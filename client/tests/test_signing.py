"""Requests are signed as the network's profile requires, and other implementations agree the signature holds."""

from __future__ import annotations

import base64
import copy
import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

import independent
from conftest import Network
from kruispunt_client import caller_header, sign_envelope, signature_digest
from kruispunt_client.namespaces import DS, KP, SOAP_ENV, WSSE, WSU, q

CALLER, BODY, TIMESTAMP = q(KP, "Caller"), q(SOAP_ENV, "Body"), q(WSU, "Timestamp")


def request(network: Network, *, now: datetime | None = None) -> tuple[etree._Element, bytes]:
    """A request as zeep builds it (its own prefixes, the Caller header), signed, and its bytes as sent."""
    root = etree.Element(q(SOAP_ENV, "Envelope"), nsmap={"soap-env": SOAP_ENV})
    header = etree.SubElement(root, q(SOAP_ENV, "Header"))
    caller = caller_header("75041214531", "MUNICIPAL_TAX_EXEMPTION", "00000000-0000-4000-8000-000000000001")
    header.append(caller)
    body = etree.SubElement(root, q(SOAP_ENV, "Body"))
    question = etree.SubElement(body, "{urn:kruispunt:TaxExemptionStatus:v1}GetTaxExemptionStatusesRequest",
                                nsmap={"ns0": "urn:kruispunt:TaxExemptionStatus:v1"})
    etree.SubElement(question, "{urn:kruispunt:TaxExemptionStatus:v1}Insz").text = "48021420212"
    sign_envelope(root, network.municipality.key, headers=[caller], now=now)
    return root, etree.tostring(root)


def test_body_timestamp_and_caller_are_signed_and_verify_independently(network: Network) -> None:
    _root, data = request(network)
    signed = independent.check_request(data)
    assert set(signed) == {BODY, TIMESTAMP, CALLER}


def test_the_security_header_holds_token_timestamp_and_signature_in_that_order(network: Network) -> None:
    root, _data = request(network)
    security = root.find(f"{q(SOAP_ENV, 'Header')}/{q(WSSE, 'Security')}")
    assert security is not None and security.get(q(SOAP_ENV, "mustUnderstand")) == "1"
    assert [child.tag for child in security] == [q(WSSE, "BinarySecurityToken"), TIMESTAMP, q(DS, "Signature")]
    assert len(list(root.iter(q(DS, "Signature")))) == 1


def test_the_timestamp_lives_five_minutes_from_now(network: Network) -> None:
    now = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    root, _data = request(network, now=now)
    stamp = root.find(f".//{TIMESTAMP}")
    assert stamp is not None
    created = datetime.fromisoformat((stamp.findtext(q(WSU, "Created")) or "").replace("Z", "+00:00"))
    expires = datetime.fromisoformat((stamp.findtext(q(WSU, "Expires")) or "").replace("Z", "+00:00"))
    assert (created, expires - created) == (now, timedelta(minutes=5))


@pytest.mark.parametrize("where", [BODY, CALLER, TIMESTAMP])
def test_a_change_after_signing_breaks_the_independent_check(network: Network, where: str) -> None:
    root, _data = request(network)
    changed = copy.deepcopy(root)
    target = changed.find(f".//{where}")
    assert target is not None
    next(element for element in target.iter() if element.text).text += "0"  # type: ignore[operator]
    with pytest.raises(AssertionError, match="digest"):
        independent.check_request(etree.tostring(changed))


def test_a_signature_by_another_key_breaks_the_independent_check(network: Network) -> None:
    root, _data = request(network)
    token = root.find(f".//{q(WSSE, 'BinarySecurityToken')}")
    assert token is not None
    token.text = base64.b64encode(network.colleague.certificate.public_bytes(Encoding.DER)).decode()
    with pytest.raises(InvalidSignature):
        independent.check_request(etree.tostring(root))


def test_signature_digest_is_the_sha256_of_the_signature_value(network: Network) -> None:
    root, _data = request(network)
    value = base64.b64decode(root.findtext(f".//{q(DS, 'SignatureValue')}") or "")
    assert signature_digest(root) == hashlib.sha256(value).digest()


def test_python_xmlsec_verifies_the_signature(network: Network) -> None:
    xmlsec = pytest.importorskip("xmlsec")
    _root, data = request(network)

    def verify(document: bytes) -> None:
        root = etree.fromstring(document)
        context = xmlsec.SignatureContext()
        for element in root.iter("*"):
            if element.get(q(WSU, "Id")) is not None:
                context.register_id(element, "Id", WSU)
        context.key = xmlsec.Key.from_memory(network.municipality.identity.cert_pem(),
                                             xmlsec.constants.KeyDataFormatCertPem)
        context.verify(root.find(f".//{q(DS, 'Signature')}"))

    verify(data)
    with pytest.raises(xmlsec.Error):
        verify(data.replace(b">48021420212<", b">48021420213<"))


def test_xmlsec1_verifies_the_signature(network: Network, tmp_path: Path) -> None:
    if shutil.which("xmlsec1") is None:
        pytest.skip("xmlsec1 is not on PATH (Debian package xmlsec1)")
    _root, data = request(network)
    ids = [arg for ns, local in ((SOAP_ENV, "Body"), (WSU, "Timestamp"), (KP, "Caller"),
                                 (WSSE, "BinarySecurityToken")) for arg in ("--id-attr:Id", f"{ns}:{local}")]

    def verify(document: bytes) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "signed.xml"
        path.write_bytes(document)
        return subprocess.run(["xmlsec1", "--verify", "--pubkey-cert-pem", str(network.municipality.identity.cert_path),
                               "--enabled-key-data", "key-name", "--enabled-reference-uris", "same-doc", *ids,
                               str(path)], capture_output=True, text=True, timeout=60)

    done = verify(data)
    assert done.returncode == 0, done.stderr
    assert verify(data.replace(b">48021420212<", b">48021420213<")).returncode != 0
