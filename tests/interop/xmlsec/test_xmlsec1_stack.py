"""The xmlsec1 stack on its own: every config it signs verifies with its oracle, the oracle says no (and does not
raise) to tampering and to other keys, and the templates say what the WS-Security profile asks."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import date, datetime
from pathlib import Path

import pytest
import signxml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from integrator.pki import Identity, create_ca, issue
from tests.interop.common import KP, SOAP_ENV, Keys, parse, require, unsigned_lookup
from tests.interop.xmlsec import xmlsec1_stack as stack
from tests.interop.xmlsec.xmlsec1_stack import DS, EC, WSSE, WSU


@pytest.fixture(autouse=True)
def _installed() -> None:
    require(stack.STACK, stack.available())


NS = {"ds": DS, "ec": EC, "wsse": WSSE, "wsu": WSU, "soapenv": SOAP_ENV, "kp": KP}
BODY_TEXT = b"48021420212"


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Identity:
    """A certificate (and key) from a CA that has nothing to do with the samples."""
    folder = tmp_path_factory.mktemp("foreign")
    ca = create_ca(folder, "some other CA")
    return issue(ca, folder, "foreign", common_name="Gemeente Elders")


def _sign(config: str, unsigned: bytes, keys: Keys) -> bytes:
    [data] = stack.sign([(config, unsigned)], keys)
    return data


def _referenced(root: etree._Element, uri: str) -> etree._Element:
    assert uri.startswith("#")
    [element] = root.xpath("//*[@*[local-name()='Id'] = $id]", id=uri[1:])
    return element


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _prefixes(method: etree._Element) -> list[str] | None:
    inclusive = method.find("ec:InclusiveNamespaces", NS)
    return None if inclusive is None else inclusive.get("PrefixList").split()


def _flip_first_char(data: bytes, element: str) -> bytes:
    """The same bytes with the first character of the element's text replaced by another base64 character."""
    match = re.search(rb"<ds:" + element.encode() + rb">(.)", data)
    assert match is not None
    index = match.start(1)
    return data[:index] + (b"B" if data[index:index + 1] == b"A" else b"A") + data[index + 1:]


# --- every config signs and verifies -----------------------------------------------------------------


@pytest.mark.parametrize("config", sorted(stack.CONFIGS))
def test_every_config_verifies(config: str, unsigned: bytes, keys: Keys) -> None:
    verdict = stack.verify(_sign(config, unsigned, keys), keys.cert_pem)
    assert verdict == stack.Verdict(True, "")


def test_sign_takes_many_jobs_in_order(unsigned: bytes, keys: Keys) -> None:
    configs = sorted(stack.CONFIGS)
    signed = stack.sign([(config, unsigned) for config in configs], keys)
    assert len(signed) == len(configs)
    for config, data in zip(configs, signed, strict=True):
        token = parse(data).find(".//wsse:BinarySecurityToken", NS)
        assert (token is None) == (config in ("issuer-serial", "ski", "thumbprint"))
        assert stack.verify(data, keys.cert_pem).ok


@pytest.mark.parametrize("config", sorted(stack.CONFIGS))
def test_the_envelope_follows_the_profile(config: str, unsigned: bytes, keys: Keys) -> None:
    root = parse(_sign(config, unsigned, keys))
    [security] = root.findall("soapenv:Header/wsse:Security", NS)
    expected = "true" if config == "must-understand-true" else "1"
    assert security.get(f"{{{SOAP_ENV}}}mustUnderstand") == expected

    created = datetime.fromisoformat(security.findtext("wsu:Timestamp/wsu:Created", namespaces=NS))
    expires = datetime.fromisoformat(security.findtext("wsu:Timestamp/wsu:Expires", namespaces=NS))
    assert security.findtext("wsu:Timestamp/wsu:Created", namespaces=NS).endswith("Z")
    assert 0 < (expires - created).total_seconds() <= 300

    [signature] = security.findall("ds:Signature", NS)
    signed_info = signature.find("ds:SignedInfo", NS)
    assert signed_info.find("ds:CanonicalizationMethod", NS).get("Algorithm") == stack.EXC_C14N
    assert signed_info.find("ds:SignatureMethod", NS).get("Algorithm") == stack.RSA_SHA256
    references = signed_info.findall("ds:Reference", NS)
    targets = [etree.QName(_referenced(root, reference.get("URI"))) for reference in references]
    assert targets == [etree.QName(SOAP_ENV, "Body"), etree.QName(WSU, "Timestamp"), etree.QName(KP, "Caller")]
    for reference in references:
        assert [t.get("Algorithm") for t in reference.findall("ds:Transforms/ds:Transform", NS)] == [stack.EXC_C14N]
        assert reference.find("ds:DigestMethod", NS).get("Algorithm") == stack.SHA256
        assert reference.findtext("ds:DigestValue", namespaces=NS)
        target = _referenced(root, reference.get("URI"))
        id_attribute = "Id" if config == "id-unprefixed" else f"{{{WSU}}}Id"
        assert target.get(id_attribute) == reference.get("URI")[1:]
    assert signature.findtext("ds:SignatureValue", namespaces=NS).strip()


def test_key_info_is_the_security_token_reference_we_wrote(unsigned: bytes, keys: Keys) -> None:
    cert = x509.load_pem_x509_certificate(keys.cert_pem.read_bytes())
    ids = stack.key_identifiers(cert)
    for config in sorted(stack.CONFIGS):
        root = parse(_sign(config, unsigned, keys))
        key_info = root.find(".//ds:Signature/ds:KeyInfo", NS)
        assert [etree.QName(child) for child in key_info] == [etree.QName(WSSE, "SecurityTokenReference")]
        reference = key_info.find("wsse:SecurityTokenReference/wsse:Reference", NS)
        identifier = key_info.find("wsse:SecurityTokenReference/wsse:KeyIdentifier", NS)
        serial = key_info.find("wsse:SecurityTokenReference/ds:X509Data/ds:X509IssuerSerial", NS)
        if config == "issuer-serial":
            assert serial.findtext("ds:X509IssuerName", namespaces=NS) == cert.issuer.rfc4514_string()
            assert int(serial.findtext("ds:X509SerialNumber", namespaces=NS)) == cert.serial_number
        elif config in ("ski", "thumbprint"):
            assert identifier.get("EncodingType") == stack.BASE64_BINARY
            assert identifier.get("ValueType") == (stack.X509_SKI if config == "ski" else stack.THUMBPRINT_SHA1)
            assert identifier.text == ids[config]
        else:
            token = root.find("soapenv:Header/wsse:Security/wsse:BinarySecurityToken", NS)
            assert reference.get("URI") == "#" + token.get(f"{{{WSU}}}Id")
            assert reference.get("ValueType") == stack.X509V3
            assert token.get("ValueType") == stack.X509V3 and token.get("EncodingType") == stack.BASE64_BINARY
            assert x509.load_der_x509_certificate(base64.b64decode(token.text)) == cert


def test_key_identifiers_are_computed_from_the_certificate(keys: Keys) -> None:
    cert = x509.load_pem_x509_certificate(keys.cert_pem.read_bytes())
    ids = stack.key_identifiers(cert)
    ski = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    assert base64.b64decode(ids["ski"]) == ski and len(ski) == 20
    assert base64.b64decode(ids["thumbprint"]) == cert.fingerprint(hashes.SHA1())
    assert ids["issuer"] == "CN=kruispunt interop samples CA"
    assert ids["serial"] == str(cert.serial_number)


def test_inclusive_prefixes_change_the_canonical_form_and_xmlsec1_honours_them(unsigned: bytes, keys: Keys) -> None:
    root = parse(_sign("bst-direct-inclusive-prefixes", unsigned, keys))
    signed_info = root.find(".//ds:Signature/ds:SignedInfo", NS)
    for reference in signed_info.findall("ds:Reference", NS):
        prefixes = _prefixes(reference.find("ds:Transforms/ds:Transform", NS))
        assert prefixes
        target = _referenced(root, reference.get("URI"))
        with_list = etree.tostring(target, method="c14n", exclusive=True, inclusive_ns_prefixes=prefixes)
        without = etree.tostring(target, method="c14n", exclusive=True)
        assert with_list != without, f"PrefixList {prefixes} changes nothing for {target.tag}"
        assert reference.findtext("ds:DigestValue", namespaces=NS) == _b64_sha256(with_list)

    prefixes = _prefixes(signed_info.find("ds:CanonicalizationMethod", NS))
    assert prefixes
    canonical = etree.tostring(signed_info, method="c14n", exclusive=True, inclusive_ns_prefixes=prefixes)
    assert canonical != etree.tostring(signed_info, method="c14n", exclusive=True)
    public_key = x509.load_pem_x509_certificate(keys.cert_pem.read_bytes()).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    value = base64.b64decode(root.findtext(".//ds:Signature/ds:SignatureValue", namespaces=NS))
    public_key.verify(value, canonical, padding.PKCS1v15(), hashes.SHA256())  # raises if xmlsec1 ignored the list


def test_without_prefix_lists_the_digests_are_plain_exclusive_c14n(unsigned: bytes, keys: Keys) -> None:
    root = parse(_sign("bst-direct", unsigned, keys))
    for reference in root.iterfind(".//ds:Signature/ds:SignedInfo/ds:Reference", NS):
        target = _referenced(root, reference.get("URI"))
        canonical = etree.tostring(target, method="c14n", exclusive=True)
        assert reference.findtext("ds:DigestValue", namespaces=NS) == _b64_sha256(canonical)


def test_id_unprefixed_uses_plain_id_attributes(unsigned: bytes, keys: Keys) -> None:
    root = parse(_sign("id-unprefixed", unsigned, keys))
    for path in ("soapenv:Body", "soapenv:Header/wsse:Security/wsu:Timestamp", "soapenv:Header/kp:Caller"):
        element = root.find(path, NS)
        assert element.get("Id") and element.get(f"{{{WSU}}}Id") is None


def test_sign_reports_xmlsec1s_stderr(unsigned: bytes, keys: Keys, tmp_path: Path) -> None:
    not_a_key = Keys(keys.cert_pem, keys.cert_pem, keys.ca_pem, tmp_path)
    with pytest.raises(stack.Xmlsec1Error, match="failed to load private key"):
        stack.sign([("bst-direct", unsigned)], not_a_key)


def test_unknown_config_is_refused(unsigned: bytes, keys: Keys) -> None:
    with pytest.raises(ValueError, match="unknown config"):
        stack.sign([("no-such-config", unsigned)], keys)


# --- the oracle says no ------------------------------------------------------------------------------


def test_tampered_body_fails(unsigned: bytes, keys: Keys) -> None:
    data = _sign("bst-direct", unsigned, keys)
    verdict = stack.verify(data.replace(BODY_TEXT, b"48021420213"), keys.cert_pem)
    assert not verdict.ok and "data and digest do not match" in verdict.error


def test_changed_signature_value_fails(unsigned: bytes, keys: Keys) -> None:
    data = _sign("issuer-serial", unsigned, keys)
    verdict = stack.verify(_flip_first_char(data, "SignatureValue"), keys.cert_pem)
    assert not verdict.ok and "signature verification failed" in verdict.error


def test_changed_digest_value_fails(unsigned: bytes, keys: Keys) -> None:
    data = _sign("ski", unsigned, keys)
    verdict = stack.verify(_flip_first_char(data, "DigestValue"), keys.cert_pem)
    assert not verdict.ok and "data and digest do not match" in verdict.error


@pytest.mark.parametrize("config", sorted(stack.CONFIGS))
def test_another_certificate_fails(config: str, unsigned: bytes, keys: Keys, foreign: Identity) -> None:
    verdict = stack.verify(_sign(config, unsigned, keys), foreign.cert_path)
    assert not verdict.ok and "signature verification failed" in verdict.error


def _key_value(cert: x509.Certificate) -> etree._Element:
    """ds:KeyValue/ds:RSAKeyValue of a certificate's public key."""
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    numbers = public_key.public_numbers()

    def b64(number: int) -> str:
        return base64.b64encode(number.to_bytes((number.bit_length() + 7) // 8, "big")).decode()

    key_value = etree.Element(f"{{{DS}}}KeyValue", nsmap={"ds": DS})
    rsa_key_value = etree.SubElement(key_value, f"{{{DS}}}RSAKeyValue")
    etree.SubElement(rsa_key_value, f"{{{DS}}}Modulus").text = b64(numbers.n)
    etree.SubElement(rsa_key_value, f"{{{DS}}}Exponent").text = b64(numbers.e)
    return key_value


def test_a_key_carried_in_the_message_is_not_used(unsigned: bytes, keys: Keys, foreign: Identity,
                                                  tmp_path: Path) -> None:
    """Signed with the foreign key, which also sits in ds:KeyInfo/ds:KeyValue (KeyInfo is not signed): xmlsec1's
    defaults would take that key and say OK; the oracle must only use the certificate it is given."""
    foreign_keys = Keys(foreign.cert_path, foreign.key_path, keys.ca_pem, tmp_path)
    root = parse(_sign("bst-direct", unsigned, foreign_keys))
    root.find(".//ds:Signature/ds:KeyInfo", NS).append(_key_value(foreign.load_cert()))
    data = etree.tostring(root)
    assert stack.verify(data, foreign.cert_path).ok
    verdict = stack.verify(data, keys.cert_pem)
    assert not verdict.ok and "signature verification failed" in verdict.error


def test_a_second_element_with_a_signed_id_fails(unsigned: bytes, keys: Keys) -> None:
    """A signature-wrapping attempt: a forged Body moved in place, the signed one kept in the header, same Id."""
    root = parse(_sign("bst-direct", unsigned, keys))
    body = root.find("soapenv:Body", NS)
    forged = etree.fromstring(etree.tostring(body).replace(BODY_TEXT, b"00000000097"))
    root.find("soapenv:Header", NS).append(body)
    root.append(forged)
    verdict = stack.verify(etree.tostring(root), keys.cert_pem)
    assert not verdict.ok and "duplicate ID" in verdict.error


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<soapenv:Envelope xmlns:soapenv='" + SOAP_ENV.encode() + b"'><soapenv:Body>", "not well-formed"),
        (unsigned_lookup("75041214531", "48021420212", date(2026, 1, 1)), "found 0"),
        (b"<!DOCTYPE a [<!ENTITY e SYSTEM 'file:///etc/hostname'>]><a>&e;</a>", "document type declaration"),
    ],
)
def test_what_cannot_be_verified_is_a_no_not_an_exception(data: bytes, message: str, keys: Keys) -> None:
    verdict = stack.verify(data, keys.cert_pem)
    assert not verdict.ok and message in verdict.error


def test_a_signature_outside_wsse_security_is_refused(unsigned: bytes, keys: Keys) -> None:
    root = parse(_sign("bst-direct", unsigned, keys))
    signature = root.find(".//ds:Signature", NS)
    root.find("soapenv:Header", NS).append(signature)
    verdict = stack.verify(etree.tostring(root), keys.cert_pem)
    assert not verdict.ok and "not a child of wsse:Security" in verdict.error


# --- enveloped signatures (the integrator's receipts) ------------------------------------------------


def _receipt(key_path: Path, cert_path: Path | None, *, key_value: bool = False) -> bytes:
    document = etree.fromstring(
        b'<r:Receipt xmlns:r="urn:kruispunt:receipt:v1"><r:MessageId>m-1</r:MessageId>'
        b"<r:Status>DELIVERED</r:Status></r:Receipt>"
    )
    signer = signxml.XMLSigner(method=signxml.methods.enveloped, signature_algorithm="rsa-sha256",
                               digest_algorithm="sha256", c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")
    cert = cert_path.read_bytes() if cert_path is not None else None
    signed = signer.sign(document, key=key_path.read_bytes(), cert=cert, always_add_key_value=key_value)
    return etree.tostring(signed)


def test_enveloped_signature_from_signxml_verifies(keys: Keys) -> None:
    data = _receipt(keys.key_pem, keys.cert_pem)
    assert parse(data).find(".//ds:Reference", NS).get("URI") == ""
    assert stack.verify_enveloped(data, keys.cert_pem) == stack.Verdict(True, "")


def test_enveloped_signature_tampered_fails(keys: Keys) -> None:
    data = _receipt(keys.key_pem, keys.cert_pem).replace(b"DELIVERED", b"REJECTED")
    verdict = stack.verify_enveloped(data, keys.cert_pem)
    assert not verdict.ok and "data and digest do not match" in verdict.error


def test_enveloped_signature_with_another_certificate_fails(keys: Keys, foreign: Identity) -> None:
    verdict = stack.verify_enveloped(_receipt(keys.key_pem, keys.cert_pem), foreign.cert_path)
    assert not verdict.ok and "signature verification failed" in verdict.error


@pytest.mark.parametrize("embedded", ["certificate", "key-value"])
def test_enveloped_signature_by_a_key_it_carries_itself_fails(embedded: str, keys: Keys, foreign: Identity) -> None:
    cert = foreign.cert_path if embedded == "certificate" else None
    data = _receipt(foreign.key_path, cert, key_value=embedded == "key-value")
    verdict = stack.verify_enveloped(data, keys.cert_pem)
    assert not verdict.ok and "signature verification failed" in verdict.error


def test_signature_value_checked_independently(unsigned: bytes, keys: Keys) -> None:
    """The SignatureValue xmlsec1 wrote is RSA-SHA256 over the exclusive c14n of SignedInfo."""
    root = parse(_sign("thumbprint", unsigned, keys))
    signed_info = root.find(".//ds:Signature/ds:SignedInfo", NS)
    value = base64.b64decode(root.findtext(".//ds:Signature/ds:SignatureValue", namespaces=NS))
    public_key = x509.load_pem_x509_certificate(keys.cert_pem.read_bytes()).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    canonical = etree.tostring(signed_info, method="c14n", exclusive=True)
    public_key.verify(value, canonical, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        public_key.verify(value, canonical + b" ", padding.PKCS1v15(), hashes.SHA256())
