"""The node signer alone: every configuration yields a well-formed envelope whose signature xmlsec1 verifies,
shaped as the configuration promises, and a copy with its Body changed does not verify."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import date, datetime
from pathlib import Path

import pytest
from lxml import etree

from tests.interop.common import KP, SOAP_ENV, Keys, parse, require, sample_keys, unsigned_lookup
from tests.interop.node import node_soap

DS = "http://www.w3.org/2000/09/xmldsig#"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
INSZ = "48021420212"



@pytest.fixture(autouse=True)
def _installed() -> None:
    require(node_soap.STACK, node_soap.available())


needs_xmlsec1 = pytest.mark.usefixtures("_xmlsec1_installed")


@pytest.fixture
def _xmlsec1_installed() -> None:
    require("xmlsec1", None if shutil.which("xmlsec1") else "the xmlsec1 command (Debian package xmlsec1) is missing")


SOAP_CONFIGS = [c for c in node_soap.CONFIGS if c.startswith("wssecuritycert-")]
ENV_EXC, EXC_ONLY = (ENVELOPED, EXC), (EXC,)
# config -> the transforms each Reference carries, by the local name of the element it points at
TRANSFORMS: dict[str, dict[str, tuple[str, ...]]] = {
    "wssecuritycert-default": {"Body": ENV_EXC, "Timestamp": ENV_EXC},
    "wssecuritycert-caller": {"Body": ENV_EXC, "Caller": ENV_EXC, "Timestamp": ENV_EXC},
    "wssecuritycert-exc-c14n-only": {"Body": EXC_ONLY, "Caller": EXC_ONLY, "Timestamp": EXC_ONLY},
    "wssecuritycert-exc-c14n-only-ttl300": {"Body": EXC_ONLY, "Caller": EXC_ONLY, "Timestamp": EXC_ONLY},
    "wssecuritycert-caller-explicit-rsa-sha256": {"Body": EXC_ONLY, "Caller": ENV_EXC, "Timestamp": ENV_EXC},
    "wssecuritycert-caller-wsu-id": {"Body": ENV_EXC, "Caller": ENV_EXC, "Timestamp": ENV_EXC},
    "wssecuritycert-caller-ds-prefix": {"Body": ENV_EXC, "Caller": ENV_EXC, "Timestamp": ENV_EXC},
    "xml-crypto-id": {"Body": EXC_ONLY, "Timestamp": EXC_ONLY, "Caller": EXC_ONLY},
    "xml-crypto-wsu-id": {"Body": EXC_ONLY, "Timestamp": EXC_ONLY, "Caller": EXC_ONLY},
}
WSU_ID_CONFIGS = {"wssecuritycert-caller-wsu-id", "xml-crypto-wsu-id"}
TTL_SECONDS = {c: 600 for c in SOAP_CONFIGS} | {
    "wssecuritycert-exc-c14n-only-ttl300": 300, "xml-crypto-id": 300, "xml-crypto-wsu-id": 300,
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """The fixed sample signer, with a scratch folder of this module's own."""
    return sample_keys(tmp_path_factory.mktemp("node-soap"))


@pytest.fixture(scope="module")
def signed(keys: Keys) -> dict[str, bytes]:
    """Every configuration signed in one batch, i.e. one node process."""
    unsigned = unsigned_lookup("75041214531", INSZ, date(2026, 1, 1))
    started = time.monotonic()
    outputs = node_soap.sign([(config, unsigned) for config in node_soap.CONFIGS], keys)
    print(f"\none {node_soap.STACK} batch of {len(outputs)} configs: {time.monotonic() - started:.2f} s")
    return dict(zip(node_soap.CONFIGS, outputs, strict=True))


def xmlsec1_verify(data: bytes, cert: Path, folder: Path, name: str) -> subprocess.CompletedProcess[str]:
    """xmlsec1 --verify with the signer's certificate given explicitly (it cannot follow a
    wsse:SecurityTokenReference) and the Ids declared by local name."""
    path = folder / f"{name}.xml"
    path.write_bytes(data)
    ids = [arg for node in ("Body", "Timestamp", "Caller", "BinarySecurityToken") for arg in ("--id-attr:Id", node)]
    return subprocess.run(["xmlsec1", "--verify", *ids, "--pubkey-cert-pem", str(cert), str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


def security_of(root: etree._Element) -> etree._Element:
    """The one wsse:Security header block."""
    found = root.findall(f"{{{SOAP_ENV}}}Header/{{{WSSE}}}Security")
    assert len(found) == 1, "expected exactly one wsse:Security in soapenv:Header"
    return found[0]


def by_id(root: etree._Element, ident: str) -> etree._Element:
    """The one element carrying an Id-like attribute (any namespace) with this value."""
    found = root.xpath("//*[@*[local-name()='Id'] = $v]", v=ident)
    assert len(found) == 1, f"#{ident} names {len(found)} elements"
    return found[0]


def referenced(root: etree._Element) -> dict[str, etree._Element]:
    """Each signed element by local name ('Body', 'Caller', 'Timestamp') -> its ds:Reference."""
    refs = {}
    for ref in security_of(root).iterfind(f"{{{DS}}}Signature/{{{DS}}}SignedInfo/{{{DS}}}Reference"):
        uri = ref.get("URI", "")
        assert uri.startswith("#"), f"unexpected Reference URI {uri!r}"
        target = by_id(root, uri[1:])
        refs[etree.QName(target).localname] = ref
    return refs


def test_configs_are_those_of_sign_js() -> None:
    """The Python table and sign.js name the same configurations."""
    node_soap.ensure_installed()
    out = subprocess.run(["node", str(node_soap.SIGNER), "--list"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert sorted(json.loads(out)) == sorted(node_soap.CONFIGS)
    assert set(TRANSFORMS) == set(node_soap.CONFIGS)


@needs_xmlsec1
@pytest.mark.parametrize("config", list(node_soap.CONFIGS))
def test_signature_verifies_and_tampering_breaks_it(
    config: str, signed: dict[str, bytes], keys: Keys, tmp_path: Path
) -> None:
    """xmlsec1 accepts the output as signed, and refuses it once the Body's Insz is changed."""
    data = signed[config]
    root = parse(data)
    assert root.tag == f"{{{SOAP_ENV}}}Envelope"
    assert len(root.findall(f".//{{{DS}}}Signature")) == 1
    assert security_of(root).find(f"{{{DS}}}Signature") is not None
    good = xmlsec1_verify(data, keys.cert_pem, tmp_path, "signed")
    assert good.returncode == 0, good.stderr
    assert "OK" in good.stdout + good.stderr

    assert data.count(INSZ.encode()) == 1
    tampered = data.replace(f"<tax:Insz>{INSZ}</tax:Insz>".encode(), b"<tax:Insz>48021420213</tax:Insz>")
    assert tampered != data
    parse(tampered)  # still well-formed: the refusal below is the digest's
    bad = xmlsec1_verify(tampered, keys.cert_pem, tmp_path, "tampered")
    assert bad.returncode != 0, bad.stdout + bad.stderr


@pytest.mark.parametrize("config", list(node_soap.CONFIGS))
def test_security_header_shape(config: str, signed: dict[str, bytes]) -> None:
    """mustUnderstand, token and key reference, algorithms, transforms and Ids are those the config promises."""
    root = parse(signed[config])
    security = security_of(root)
    assert security.get(f"{{{SOAP_ENV}}}mustUnderstand") == "1"
    token = security.find(f"{{{WSSE}}}BinarySecurityToken")
    assert token is not None and token.get(f"{{{WSU}}}Id")
    strs = security.findall(f"{{{DS}}}Signature/{{{DS}}}KeyInfo/{{{WSSE}}}SecurityTokenReference/{{{WSSE}}}Reference")
    assert [r.get("URI") for r in strs] == [f"#{token.get(f'{{{WSU}}}Id')}"]

    info = security.find(f"{{{DS}}}Signature/{{{DS}}}SignedInfo")
    assert info is not None
    assert info.find(f"{{{DS}}}CanonicalizationMethod").get("Algorithm") == EXC
    assert info.find(f"{{{DS}}}SignatureMethod").get("Algorithm") == RSA_SHA256
    assert root.find(f".//{{{EXC}}}InclusiveNamespaces") is None

    refs = referenced(root)
    assert set(refs) == set(TRANSFORMS[config])
    for name, ref in refs.items():
        transforms = tuple(t.get("Algorithm") for t in ref.iterfind(f"{{{DS}}}Transforms/{{{DS}}}Transform"))
        assert transforms == TRANSFORMS[config][name], name
        assert ref.find(f"{{{DS}}}DigestMethod").get("Algorithm") == SHA256

    targets = {
        "Body": root.find(f"{{{SOAP_ENV}}}Body"),
        "Caller": root.find(f"{{{SOAP_ENV}}}Header/{{{KP}}}Caller"),
        "Timestamp": security.find(f"{{{WSU}}}Timestamp"),
    }
    id_name = f"{{{WSU}}}Id" if config in WSU_ID_CONFIGS else "Id"
    for name in refs:
        target = targets[name]
        assert target is not None, f"no {name} where WS-Security puts it"
        assert refs[name].get("URI") == f"#{target.get(id_name)}", f"{name} is not referenced by its {id_name}"


@pytest.mark.parametrize("config", list(node_soap.CONFIGS))
def test_timestamp_lifetime(config: str, signed: dict[str, bytes]) -> None:
    """Created is about now and Expires - Created is the config's lifetime (soap's own is 10 minutes)."""
    stamp = security_of(parse(signed[config])).find(f"{{{WSU}}}Timestamp")
    assert stamp is not None
    created = datetime.fromisoformat(stamp.findtext(f"{{{WSU}}}Created").replace("Z", "+00:00"))
    expires = datetime.fromisoformat(stamp.findtext(f"{{{WSU}}}Expires").replace("Z", "+00:00"))
    assert abs((created - datetime.now(created.tzinfo)).total_seconds()) < 120
    assert (expires - created).total_seconds() == TTL_SECONDS[config]


def test_one_node_process_per_batch(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of several envelopes starts node once."""
    node_soap.ensure_installed()
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(list(args))
        return real_run(args, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(node_soap.subprocess, "run", counting)
    unsigned = unsigned_lookup("75041214531", INSZ, date(2026, 1, 1))
    out = node_soap.sign([("xml-crypto-id", unsigned), ("wssecuritycert-caller", unsigned)] * 2, keys)
    assert len(out) == 4 and all(b"SignatureValue" in o for o in out)
    assert len(calls) == 1 and calls[0][0] == "node"


def test_node_failure_carries_its_stderr(keys: Keys) -> None:
    """An input the library cannot sign raises NodeSignError with node's own message."""
    with pytest.raises(node_soap.NodeSignError, match="prefixed SOAP Envelope"):
        node_soap.sign([("wssecuritycert-default", b"<Envelope/>")], keys)
    other_prefix = unsigned_lookup("75041214531", INSZ, date(2026, 1, 1)).replace(b"kp:", b"c:")
    with pytest.raises(node_soap.NodeSignError, match=r"name\(\.\)='kp:Caller'"):
        node_soap.sign([("wssecuritycert-caller", other_prefix.replace(b"xmlns:kp", b"xmlns:c"))], keys)


def test_unknown_config_is_refused_before_node_runs(keys: Keys) -> None:
    """A config name sign.js does not know is a ValueError, not a node crash."""
    with pytest.raises(ValueError, match="unknown node-soap config"):
        node_soap.sign([("wssecuritycert-nonsense", b"")], keys)
