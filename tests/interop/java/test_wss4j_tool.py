"""The WSS4J tool on its own: what each signing config writes, checked by xmlsec1 (libxmlsec1, an independent
implementation), and the Java verifiers on messages of our own signer and of the integrator."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from kruispunt_client.receipt import Receipt
from lxml import etree

from integrator.answer import signed_answer
from integrator.pki import Identity, create_ca, issue
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope
from services.application_receipts import sign_receipt
from tests.interop.common import KP, SOAP_ENV, Keys, parse, require, sample_keys, unsigned_lookup
from tests.interop.java import wss4j


@pytest.fixture(autouse=True)
def _installed() -> None:
    require(wss4j.STACK, wss4j.available())


WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
EC = "http://www.w3.org/2001/10/xml-exc-c14n#"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
PKIPATH = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509PKIPathv1"
SKI = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier"
THUMB = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"
NS = {"soapenv": SOAP_ENV, "wsse": WSSE, "wsse11": WSSE11, "wsu": WSU, "ds": DS, "ec": EC, "kp": KP}
BODY, TIMESTAMP, CALLER = f"{{{SOAP_ENV}}}Body", f"{{{WSU}}}Timestamp", f"{{{KP}}}Caller"
INSZ = b"<tax:Insz>48021420212</tax:Insz>"


def unsigned() -> bytes:
    """The request every test signs."""
    return unsigned_lookup("75041214531", "48021420212", date(2026, 1, 1))


def tamper(data: bytes) -> bytes:
    """The same message with another INSZ in the Body."""
    assert INSZ in data
    return data.replace(INSZ, b"<tax:Insz>48021420213</tax:Insz>")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """The fixed sample PKI, with a scratch folder for the keystore."""
    return sample_keys(tmp_path_factory.mktemp("wss4j-keys"))


@pytest.fixture(scope="module")
def signed(keys: Keys) -> dict[str, bytes]:
    """Every config signed in one batch (one JVM run)."""
    names = list(wss4j.CONFIGS)
    return dict(zip(names, wss4j.sign([(name, unsigned()) for name in names], keys), strict=True))


def xmlsec1(data: bytes, cert: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Verify with the xmlsec1 command, the key given explicitly (it cannot read a SecurityTokenReference)."""
    require("xmlsec1", None if shutil.which("xmlsec1") else "the xmlsec1 command (Debian package xmlsec1) is missing")
    message = tmp_path / "signed.xml"
    message.write_bytes(data)
    ids = [arg for name in ("Body", "Timestamp", "Caller", "BinarySecurityToken") for arg in ("--id-attr:Id", name)]
    return subprocess.run(["xmlsec1", "--verify", *ids, "--pubkey-cert-pem", str(cert), str(message)],
                          capture_output=True, text=True, timeout=60, check=False)


def security(data: bytes) -> etree._Element:
    """The message's one wsse:Security header."""
    found = parse(data).findall("soapenv:Header/wsse:Security", NS)
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("config", list(wss4j.CONFIGS))
def test_each_config_verifies_with_xmlsec1_and_signs_body_timestamp_caller(
        config: str, signed: dict[str, bytes], keys: Keys, tmp_path: Path) -> None:
    done = xmlsec1(signed[config], keys.cert_pem, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SignedInfo References (ok/all): 3/3" in done.stderr
    root = parse(signed[config])
    ids = {el.get(f"{{{WSU}}}Id"): el.tag for el in root.iter() if el.get(f"{{{WSU}}}Id")}
    uris = [ref.get("URI") for ref in root.iterfind(".//ds:SignedInfo/ds:Reference", NS)]
    assert sorted(ids[uri.removeprefix("#")] for uri in uris) == sorted([BODY, TIMESTAMP, CALLER])


@pytest.mark.parametrize("config", list(wss4j.CONFIGS))
def test_a_tampered_copy_fails_xmlsec1(config: str, signed: dict[str, bytes], keys: Keys, tmp_path: Path) -> None:
    done = xmlsec1(tamper(signed[config]), keys.cert_pem, tmp_path)
    assert done.returncode != 0, done.stdout + done.stderr


@pytest.mark.parametrize("config", list(wss4j.CONFIGS))
def test_common_header_shape(config: str, signed: dict[str, bytes]) -> None:
    data = signed[config]
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope')
    sec = security(data)
    assert sec.get(f"{{{SOAP_ENV}}}mustUnderstand") == "1"
    stamp = sec.find("wsu:Timestamp", NS)
    assert stamp is not None
    created, expires = (datetime.fromisoformat(stamp.findtext(f"wsu:{n}", namespaces=NS) or "")
                        for n in ("Created", "Expires"))
    assert expires - created == timedelta(seconds=300)
    info = sec.find("ds:Signature/ds:SignedInfo", NS)
    assert info is not None
    assert info.find("ds:SignatureMethod", NS).get("Algorithm") == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    assert info.find("ds:CanonicalizationMethod", NS).get("Algorithm") == EC
    for ref in info.iterfind("ds:Reference", NS):
        assert ref.find("ds:DigestMethod", NS).get("Algorithm") == "http://www.w3.org/2001/04/xmlenc#sha256"
        assert [t.get("Algorithm") for t in ref.iterfind("ds:Transforms/ds:Transform", NS)] == [EC]
    prefix_lists = info.findall(".//ec:InclusiveNamespaces", NS)
    if config == "bst-direct-no-inclusive-prefixes":
        assert prefix_lists == []
    else:  # one in CanonicalizationMethod, one per Reference transform
        assert len(prefix_lists) == 4
        assert info.find("ds:CanonicalizationMethod/ec:InclusiveNamespaces", NS).get("PrefixList") == "soapenv"


def _cert(keys: Keys) -> x509.Certificate:
    return x509.load_pem_x509_certificate(keys.cert_pem.read_bytes())


def test_key_references(signed: dict[str, bytes], keys: Keys) -> None:
    cert = _cert(keys)
    der = cert.public_bytes(Encoding.DER)

    def str_of(config: str) -> tuple[etree._Element, etree._Element]:
        sec = security(signed[config])
        ref = sec.find("ds:Signature/ds:KeyInfo/wsse:SecurityTokenReference", NS)
        assert ref is not None
        return sec, ref

    sec, ref = str_of("issuer-serial")
    assert sec.find("wsse:BinarySecurityToken", NS) is None
    assert ref.findtext("ds:X509Data/ds:X509IssuerSerial/ds:X509SerialNumber", namespaces=NS) == str(
        cert.serial_number)
    for config in ("bst-direct", "bst-direct-no-inclusive-prefixes", "bst-direct-tokentype"):
        sec, ref = str_of(config)
        token = sec.find("wsse:BinarySecurityToken", NS)
        assert token is not None and token.get("ValueType") == X509V3
        assert base64.b64decode(token.text or "") == der
        reference = ref.find("wsse:Reference", NS)
        assert reference is not None and reference.get("URI") == f"#{token.get(f'{{{WSU}}}Id')}"
        assert reference.get("ValueType") == X509V3
        assert ref.get(f"{{{WSSE11}}}TokenType") == (X509V3 if config == "bst-direct-tokentype" else None)
    sec, ref = str_of("bst-pkipath")
    token = sec.find("wsse:BinarySecurityToken", NS)
    assert token is not None and token.get("ValueType") == PKIPATH
    assert ref.get(f"{{{WSSE11}}}TokenType") == PKIPATH
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    for config, value_type, value in (("ski", SKI, ski), ("thumbprint", THUMB, hashlib.sha1(der).digest()),
                                      ("x509-key-identifier", X509V3, der)):
        sec, ref = str_of(config)
        assert sec.find("wsse:BinarySecurityToken", NS) is None
        identifier = ref.find("wsse:KeyIdentifier", NS)
        assert identifier is not None and identifier.get("ValueType") == value_type, config
        assert base64.b64decode(identifier.text or "") == value, config


def test_verifier_accepts_our_bst_direct(signed: dict[str, bytes], keys: Keys) -> None:
    verdict = wss4j.verify(signed["bst-direct"], keys.ca_pem)
    assert verdict.ok, verdict.error
    assert sorted(verdict.signed) == sorted([BODY, TIMESTAMP, CALLER])
    assert verdict.subject == "serialNumber=0207123407,CN=Gemeente Kruisdorp (interop samples)"
    assert verdict.error is None


def test_verifier_refuses_a_tampered_message(signed: dict[str, bytes], keys: Keys) -> None:
    verdict = wss4j.verify(tamper(signed["bst-direct"]), keys.ca_pem)
    assert not verdict.ok
    assert (verdict.error or "").startswith("FailedCheck: "), verdict


def test_verifier_refuses_a_signer_of_another_ca(keys: Keys, tmp_path: Path) -> None:
    other_ca = create_ca(tmp_path / "other", "some other CA")
    other = issue(other_ca, tmp_path / "other", "signer", common_name="Gemeente Kruisdorp (interop samples)")
    foreign = Keys(other.cert_path, other.key_path, other_ca.cert_path, tmp_path / "work")
    [data] = wss4j.sign([("bst-direct", unsigned())], foreign)
    assert wss4j.verify(data, other_ca.cert_path).ok  # the message itself is sound: its own CA accepts it
    verdict = wss4j.verify(data, keys.ca_pem)
    assert not verdict.ok
    assert (verdict.error or "").startswith("FailedAuthentication: "), verdict


def _integrator_key(keys: Keys) -> SigningKey:
    return SigningKey.from_identity(Identity("signer", keys.cert_pem, keys.key_pem))


def test_verifier_accepts_an_integrator_answer_and_refuses_it_tampered(keys: Keys) -> None:
    payload = etree.fromstring(f'<tax:GetTaxExemptionStatusesResponse xmlns:tax="urn:kruispunt:TaxExemptionStatus:v1">'
                               f"{INSZ.decode()}</tax:GetTaxExemptionStatusesResponse>")
    data = signed_answer(_integrator_key(keys), payload, ticket="KP-1", received=datetime.now(UTC),
                         message_id="m-1", request_digest=None)
    verdict = wss4j.verify(data, keys.ca_pem)
    assert verdict.ok, verdict.error
    assert sorted(verdict.signed) == sorted([BODY, TIMESTAMP, f"{{{KP}}}Answer"])
    assert not wss4j.verify(tamper(data), keys.ca_pem).ok


def test_verifier_checks_the_timestamp(keys: Keys) -> None:
    root, _, body = new_envelope()
    etree.SubElement(body, f"{{{KP}}}Ping").text = "x"
    sign_envelope(root, _integrator_key(keys), now=datetime.now(UTC) - timedelta(hours=1))
    verdict = wss4j.verify(etree.tostring(root), keys.ca_pem)
    assert not verdict.ok
    assert (verdict.error or "").startswith("MessageExpired: "), verdict


def _receipt() -> Receipt:
    now = datetime.now(UTC).replace(microsecond=0)
    return Receipt(ticket="KP-2", received_at=now, signed_at=now, kind="TAX_EXEMPTION", organisation="0207123407",
                   official="75041214531", institution="tax", file_number="F-1", insz="48021420212",
                   application_digest="00" * 32, forwarding="DELIVERED")


def test_verify_enveloped_receipt(keys: Keys, tmp_path: Path) -> None:
    data = sign_receipt(_receipt(), _integrator_key(keys))
    verdict = wss4j.verify_enveloped(data, keys.cert_pem)
    assert verdict.ok, verdict.error
    assert verdict.signed == ("{urn:kruispunt:Applications:v1}ApplicationReceipt",)
    assert verdict.subject == "serialNumber=0207123407,CN=Gemeente Kruisdorp (interop samples)"
    tampered = re.sub(rb"<Insz>\d+</Insz>", b"<Insz>48021420213</Insz>", data)
    assert tampered != data
    refused = wss4j.verify_enveloped(tampered, keys.cert_pem)
    assert not refused.ok and "digest" in (refused.error or "").lower(), refused
    other_ca = create_ca(tmp_path / "other", "some other CA")
    other = issue(other_ca, tmp_path / "other", "signer", common_name="someone else")
    assert not wss4j.verify_enveloped(data, other.cert_path).ok


def test_sign_refuses_an_unknown_config(keys: Keys) -> None:
    with pytest.raises(ValueError, match="unknown WSS4J config"):
        wss4j.sign([("no-such-config", unsigned())], keys)


def test_a_failing_job_raises_with_the_java_error(keys: Keys) -> None:
    no_caller = unsigned().replace(b"kp:Caller", b"kp:Someone")
    with pytest.raises(wss4j.Wss4jError, match="bst-direct"):
        wss4j.sign([("bst-direct", no_caller)], keys)
