"""zeep's BinarySignature (python-xmlsec) as a signing stack, checked with the xmlsec1 oracle. Skipped where
python-xmlsec does not import next to this lxml (it is not in the project's requirements)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from integrator.pki import create_ca, issue
from tests.interop.common import KP, SOAP_ENV, Keys, parse, require
from tests.interop.xmlsec import xmlsec1_stack as oracle
from tests.interop.xmlsec import zeep_xmlsec as stack
from tests.interop.xmlsec.xmlsec1_stack import DS, WSSE, WSU


@pytest.fixture(autouse=True)
def _installed() -> None:
    require(stack.STACK, stack.available())
    require(oracle.STACK, oracle.available())


NS = {"ds": DS, "wsse": WSSE, "wsu": WSU, "soapenv": SOAP_ENV, "kp": KP}


@pytest.mark.parametrize("config", sorted(stack.CONFIGS))
def test_zeep_output_verifies_and_signs_body_timestamp_and_caller(config: str, unsigned: bytes, keys: Keys) -> None:
    [data] = stack.sign([(config, unsigned)], keys)
    assert oracle.verify(data, keys.cert_pem) == oracle.Verdict(True, "")
    root = parse(data)
    security = root.find("soapenv:Header/wsse:Security", NS)
    assert security.get(f"{{{SOAP_ENV}}}mustUnderstand") == ("true" if config == "must-understand-true" else "1")
    signed_info = security.find("ds:Signature/ds:SignedInfo", NS)
    assert signed_info.find("ds:SignatureMethod", NS).get("Algorithm") == oracle.RSA_SHA256
    assert {m.get("Algorithm") for m in signed_info.iterfind("ds:Reference/ds:DigestMethod", NS)} == {oracle.SHA256}
    targets = set()
    for reference in signed_info.iterfind("ds:Reference", NS):
        [target] = root.xpath("//*[@wsu:Id = $id]", namespaces=NS, id=reference.get("URI")[1:])
        targets.add(etree.QName(target))
    assert targets == {etree.QName(SOAP_ENV, "Body"), etree.QName(WSU, "Timestamp"), etree.QName(KP, "Caller")}
    token = security.find("wsse:BinarySecurityToken", NS)
    reference = security.find("ds:Signature/ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", NS)
    assert reference.get("URI") == "#" + token.get(f"{{{WSU}}}Id")


def test_zeep_output_fails_tampered_and_with_another_certificate(unsigned: bytes, keys: Keys, tmp_path: Path) -> None:
    [data] = stack.sign([("bst-direct", unsigned)], keys)
    assert not oracle.verify(data.replace(b"75041214531", b"75041214532"), keys.cert_pem).ok  # the Caller
    ca = create_ca(tmp_path / "other", "other CA")
    other = issue(ca, tmp_path / "other", "other", common_name="other")
    assert not oracle.verify(data, other.cert_path).ok
