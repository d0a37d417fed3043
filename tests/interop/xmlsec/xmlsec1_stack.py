"""The xmlsec1 stack: WS-Security templates built with lxml, signed and verified by the `xmlsec1` command.

xmlsec1 knows XML-DSig but not WS-Security: it fills in DigestValue and SignatureValue of a template we build,
ignores KeyInfo children it does not know (our wsse:SecurityTokenReference) and, when verifying, takes the key
from the certificate we hand it. That makes it the oracle for "does this signature verify with this key?"."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from tests.interop.common import KP, SOAP_ENV, Keys, parse

STACK = "xmlsec1"
XMLSEC1 = "xmlsec1"
TIMEOUT_SECONDS = 30.0

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
EC = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N = EC
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
X509_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0"
X509V3 = f"{X509_PROFILE}#X509v3"
X509_SKI = f"{X509_PROFILE}#X509SubjectKeyIdentifier"
THUMBPRINT_SHA1 = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"
BASE64_BINARY = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
XSD = "http://www.w3.org/2001/XMLSchema"
DEFAULT_NS = "urn:kruispunt:interop:default-namespace"  # declared on the Envelope by default-namespace-prefix-lists
TIMESTAMP_SECONDS = 300

CONFIGS: dict[str, str] = {
    "bst-direct": "BinarySecurityToken + STR/Reference to it; exc-c14n, rsa-sha256, sha256; Body, Timestamp, Caller",
    "bst-direct-inclusive-prefixes": "as bst-direct, with ec:InclusiveNamespaces PrefixList (xmlns:xsd on the "
    "Envelope, soapenv, wsse) in CanonicalizationMethod and every Reference's exc-c14n transform",
    "issuer-serial": "no BinarySecurityToken; STR/ds:X509Data/ds:X509IssuerSerial (RFC 4514 issuer, decimal serial)",
    "ski": "no BinarySecurityToken; STR/wsse:KeyIdentifier X509SubjectKeyIdentifier (base64 SKI extension)",
    "thumbprint": "no BinarySecurityToken; STR/wsse:KeyIdentifier ThumbprintSHA1 (base64 SHA-1 of the DER cert)",
    "id-unprefixed": "as bst-direct, but plain Id attributes (not wsu:Id) on Body, Timestamp and Caller",
    "must-understand-true": 'as bst-direct, with soapenv:mustUnderstand="true" on wsse:Security',
    "default-namespace-prefix-lists": f'as bst-direct, with a default namespace (xmlns="{DEFAULT_NS}", used by no '
    'element) on the Envelope and "#default" in the PrefixList of CanonicalizationMethod and of every Reference\'s '
    "exc-c14n transform: exclusive c14n then renders that declaration in every digest and in SignedInfo",
}

# Per-element PrefixLists for bst-direct-inclusive-prefixes: each names prefixes in scope there but not
# visibly used, so exclusive c14n renders declarations it would otherwise leave out.
_PREFIXES = {"SignedInfo": "soapenv wsse xsd", "Body": "xsd", "Timestamp": "soapenv wsse xsd", "Caller": "soapenv xsd"}
# For default-namespace-prefix-lists: "#default" everywhere, alone or next to a prefix in scope but not used there.
_DEFAULT_PREFIXES = {"SignedInfo": "#default soapenv", "Body": "#default", "Timestamp": "#default wsse",
                     "Caller": "#default"}
_PREFIX_LISTS = {"bst-direct-inclusive-prefixes": _PREFIXES, "default-namespace-prefix-lists": _DEFAULT_PREFIXES}


class Xmlsec1Error(RuntimeError):
    """xmlsec1 could not sign a template (or could not be run)."""


@dataclass(frozen=True)
class Verdict:
    """What the oracle decided: ok, or not ok and why (xmlsec1's own words where it said any)."""

    ok: bool
    error: str = ""


def available() -> str | None:
    """None when xmlsec1 can be run here, else why not."""
    if shutil.which(XMLSEC1) is None:
        return "xmlsec1 is not on PATH (Debian package xmlsec1)"
    try:
        result = subprocess.run([XMLSEC1, "--version"], capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"xmlsec1 --version failed: {exc}"
    if result.returncode != 0 or not result.stdout.startswith("xmlsec1"):
        return f"xmlsec1 --version answered {result.returncode}: {result.stdout}{result.stderr}"
    return None


# --- building the template ---------------------------------------------------------------------------


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _exc_c14n(parent: etree._Element, tag: str, prefixes: str | None) -> etree._Element:
    """Append a CanonicalizationMethod or Transform for exclusive c14n, with a PrefixList if given."""
    method = etree.SubElement(parent, _q(DS, tag), Algorithm=EXC_C14N)
    if prefixes is not None:
        etree.SubElement(method, _q(EC, "InclusiveNamespaces"), nsmap={"ec": EC}, PrefixList=prefixes)
    return method


def _with_envelope_namespace(root: etree._Element, prefix: str | None = "xsd", uri: str = XSD) -> etree._Element:
    """The same envelope with xmlns:xsd (or the given declaration) on it: in scope, unused, everywhere below."""
    nsmap: dict[Any, str] = {**root.nsmap, prefix: uri}
    new_root = etree.Element(root.tag, attrib=dict(root.attrib), nsmap=nsmap)
    new_root.text = root.text
    for child in list(root):
        new_root.append(child)
    return new_root


def _redeclare(element: etree._Element, prefix: str, uri: str) -> etree._Element:
    """Replace element (in place in its parent) by a copy that also declares xmlns:prefix=uri."""
    parent = element.getparent()
    if parent is None:
        raise ValueError("cannot redeclare namespaces on the root")
    nsmap: dict[Any, str] = {p: u for p, u in element.nsmap.items() if parent.nsmap.get(p) != u}
    nsmap[prefix] = uri
    copy = etree.SubElement(parent, element.tag, attrib=dict(element.attrib), nsmap=nsmap)
    copy.text, copy.tail = element.text, element.tail
    copy.extend(list(element))
    parent.replace(element, copy)
    return copy


def key_identifiers(cert: x509.Certificate) -> dict[str, str]:
    """IssuerSerial, SKI and SHA-1 thumbprint of a certificate, as the STR variants carry them."""
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    return {
        "issuer": cert.issuer.rfc4514_string(),
        "serial": str(cert.serial_number),
        "ski": base64.b64encode(ski).decode(),
        "thumbprint": base64.b64encode(hashlib.sha1(cert.public_bytes(Encoding.DER)).digest()).decode(),
    }


def build_template(config: str, unsigned: bytes, cert: x509.Certificate, now: datetime | None = None) -> bytes:
    """The WS-Security envelope for one config, with a ds:Signature template whose values are still empty."""
    if config not in CONFIGS:
        raise ValueError(f"unknown config {config!r}; known: {sorted(CONFIGS)}")
    root = parse(unsigned)
    prefix_lists = _PREFIX_LISTS.get(config)
    if config == "bst-direct-inclusive-prefixes":
        root = _with_envelope_namespace(root)
    elif config == "default-namespace-prefix-lists":
        root = _with_envelope_namespace(root, None, DEFAULT_NS)
    header = root.find(_q(SOAP_ENV, "Header"))
    body = root.find(_q(SOAP_ENV, "Body"))
    caller = header.find(_q(KP, "Caller")) if header is not None else None
    if header is None or body is None or caller is None:
        raise ValueError("the envelope needs a soapenv:Header with kp:Caller and a soapenv:Body")

    security = etree.Element(_q(WSSE, "Security"), nsmap={"wsse": WSSE, "wsu": WSU})
    security.set(_q(SOAP_ENV, "mustUnderstand"), "true" if config == "must-understand-true" else "1")
    header.insert(0, security)

    token_id = _new_id("X509")
    if config not in ("issuer-serial", "ski", "thumbprint"):
        token = etree.SubElement(security, _q(WSSE, "BinarySecurityToken"),
                                 EncodingType=BASE64_BINARY, ValueType=X509V3)
        token.set(_q(WSU, "Id"), token_id)
        token.text = base64.b64encode(cert.public_bytes(Encoding.DER)).decode()

    moment = now or datetime.now(UTC)
    timestamp = etree.SubElement(security, _q(WSU, "Timestamp"))
    etree.SubElement(timestamp, _q(WSU, "Created")).text = _utc(moment)
    etree.SubElement(timestamp, _q(WSU, "Expires")).text = _utc(moment + timedelta(seconds=TIMESTAMP_SECONDS))

    unprefixed = config == "id-unprefixed"
    id_attr = "Id" if unprefixed else _q(WSU, "Id")
    if not unprefixed:  # declare xmlns:wsu where it is used, as WSS4J does, rather than let lxml invent ns0
        body, caller = _redeclare(body, "wsu", WSU), _redeclare(caller, "wsu", WSU)
    references: list[tuple[str, str]] = []  # (Id, which element)
    for element, prefix, name in ((body, "id", "Body"), (timestamp, "TS", "Timestamp"), (caller, "id", "Caller")):
        element_id = _new_id(prefix)
        element.set(id_attr, element_id)
        references.append((element_id, name))

    signature = etree.SubElement(security, _q(DS, "Signature"), nsmap={"ds": DS})
    signed_info = etree.SubElement(signature, _q(DS, "SignedInfo"))
    _exc_c14n(signed_info, "CanonicalizationMethod", prefix_lists["SignedInfo"] if prefix_lists else None)
    etree.SubElement(signed_info, _q(DS, "SignatureMethod"), Algorithm=RSA_SHA256)
    for element_id, name in references:
        reference = etree.SubElement(signed_info, _q(DS, "Reference"), URI="#" + element_id)
        transforms = etree.SubElement(reference, _q(DS, "Transforms"))
        _exc_c14n(transforms, "Transform", prefix_lists[name] if prefix_lists else None)
        etree.SubElement(reference, _q(DS, "DigestMethod"), Algorithm=SHA256)
        etree.SubElement(reference, _q(DS, "DigestValue"))
    etree.SubElement(signature, _q(DS, "SignatureValue"))
    key_info = etree.SubElement(signature, _q(DS, "KeyInfo"))
    _security_token_reference(etree.SubElement(key_info, _q(WSSE, "SecurityTokenReference")), config, cert, token_id)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _security_token_reference(str_: etree._Element, config: str, cert: x509.Certificate, token_id: str) -> None:
    ids = key_identifiers(cert)
    if config == "issuer-serial":
        data = etree.SubElement(str_, _q(DS, "X509Data"))
        issuer_serial = etree.SubElement(data, _q(DS, "X509IssuerSerial"))
        etree.SubElement(issuer_serial, _q(DS, "X509IssuerName")).text = ids["issuer"]
        etree.SubElement(issuer_serial, _q(DS, "X509SerialNumber")).text = ids["serial"]
    elif config in ("ski", "thumbprint"):
        identifier = etree.SubElement(str_, _q(WSSE, "KeyIdentifier"), EncodingType=BASE64_BINARY,
                                      ValueType=X509_SKI if config == "ski" else THUMBPRINT_SHA1)
        identifier.text = ids[config]
    else:
        etree.SubElement(str_, _q(WSSE, "Reference"), URI="#" + token_id, ValueType=X509V3)


# --- running xmlsec1 ---------------------------------------------------------------------------------

# The elements our templates give an Id that a Reference points at: xmlsec1 has to be told about them.
SIGNED_ELEMENTS: tuple[tuple[str, str], ...] = ((SOAP_ENV, "Body"), (WSU, "Timestamp"), (KP, "Caller"))


def _id_attr_args(names: Iterable[tuple[str | None, str]]) -> list[str]:
    """--id-attr:Id [ns:]name for each element name. xmlsec1 splits the namespace off at the last colon and
    matches the attribute by its local name, so both wsu:Id and a plain Id are registered."""
    args: list[str] = []
    for ns, local in dict.fromkeys(names):
        args += ["--id-attr:Id", f"{ns}:{local}" if ns else local]
    return args


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([XMLSEC1, *args], capture_output=True, text=True, timeout=TIMEOUT_SECONDS)


def sign_command(template: Path, output: Path, keys: Keys) -> list[str]:
    """The xmlsec1 arguments that sign one template."""
    return ["--sign", "--privkey-pem", f"{keys.key_pem},{keys.cert_pem}", *_id_attr_args(SIGNED_ELEMENTS),
            "--output", str(output), str(template)]


def sign(jobs: list[tuple[str, bytes]], keys: Keys) -> list[bytes]:
    """Sign each (config, unsigned envelope) with xmlsec1; the signed bytes as xmlsec1 wrote them."""
    cert = x509.load_pem_x509_certificate(keys.cert_pem.read_bytes())
    folder = keys.workdir / "xmlsec1"
    folder.mkdir(parents=True, exist_ok=True)
    signed: list[bytes] = []
    for number, (config, unsigned) in enumerate(jobs):
        template_bytes = build_template(config, unsigned, cert)
        stem = f"{number:03d}-{config}-{uuid.uuid4().hex[:8]}"
        template, output = folder / f"{stem}.template.xml", folder / f"{stem}.signed.xml"
        template.write_bytes(template_bytes)
        command = sign_command(template, output, keys)
        try:
            result = _run(command)
        except subprocess.TimeoutExpired as exc:
            raise Xmlsec1Error(f"xmlsec1 timed out after {TIMEOUT_SECONDS}s signing {config}") from exc
        if result.returncode != 0 or not output.exists():
            raise Xmlsec1Error(f"{XMLSEC1} {' '.join(command)}\nexited {result.returncode} signing {config}:\n"
                               f"{result.stderr.strip()}")
        data = output.read_bytes()
        if _key_info(template_bytes) != _key_info(data):
            raise Xmlsec1Error(f"xmlsec1 changed ds:KeyInfo while signing {config}")
        signed.append(data)
    return signed


def _key_info(data: bytes) -> bytes:
    """The canonical form of the document's one ds:KeyInfo."""
    found = parse(data).findall(f".//{_q(DS, 'KeyInfo')}")
    if len(found) != 1:
        raise Xmlsec1Error(f"expected one ds:KeyInfo, found {len(found)}")
    return etree.tostring(found[0], method="c14n", exclusive=True)


# --- the oracle --------------------------------------------------------------------------------------

# "key-name" is the only KeyInfo child xmlsec1 may act on: with its defaults it would also take the key from a
# ds:KeyValue (or an X509Data certificate) in the message itself, and so accept a signature made with any key.
ONLY_GIVEN_KEY = ["--enabled-key-data", "key-name"]


def verify_command(document: Path, cert_pem: Path, id_elements: Iterable[tuple[str | None, str]],
                   reference_uris: str) -> list[str]:
    """The xmlsec1 arguments that verify one document with one certificate's public key and nothing else."""
    return ["--verify", "--pubkey-cert-pem", str(cert_pem), *ONLY_GIVEN_KEY,
            "--enabled-reference-uris", reference_uris, *_id_attr_args(id_elements), str(document)]


def _id_elements(root: etree._Element) -> list[tuple[str | None, str]]:
    """(namespace, local name) of every element carrying an attribute named Id in any namespace."""
    names: list[tuple[str | None, str]] = []
    for element in root.iter("*"):
        if any(etree.QName(attribute).localname == "Id" for attribute in element.attrib):
            qname = etree.QName(element)
            names.append((qname.namespace, qname.localname))
    return names


def _summary(stderr: str) -> str:
    """xmlsec1's verdict word: OK, FAIL (a digest or the signature value does not match) or ERROR."""
    for line in stderr.splitlines():
        if line in ("OK", "FAIL", "ERROR"):
            return line
    return "?"


def _oracle(data: bytes, cert_pem: Path, reference_uris: str, ws_security: bool) -> Verdict:
    try:
        root = parse(data)
    except etree.XMLSyntaxError as exc:
        return Verdict(False, f"not well-formed XML: {exc}")
    if root.getroottree().docinfo.internalDTD is not None:  # any <!DOCTYPE>, with or without a subset
        return Verdict(False, "a document type declaration is not allowed (it could declare IDs or entities)")
    signatures = root.findall(f".//{_q(DS, 'Signature')}")
    if len(signatures) != 1:
        return Verdict(False, f"expected exactly one ds:Signature, found {len(signatures)}")
    if ws_security and etree.QName(signatures[0].getparent()) != etree.QName(WSSE, "Security"):
        return Verdict(False, "the ds:Signature is not a child of wsse:Security")
    with tempfile.TemporaryDirectory(prefix="xmlsec1-verify-") as folder:
        document = Path(folder) / "document.xml"
        document.write_bytes(data)
        command = verify_command(document, Path(cert_pem), _id_elements(root), reference_uris)
        try:
            result = _run(command)
        except subprocess.TimeoutExpired:
            return Verdict(False, f"xmlsec1 timed out after {TIMEOUT_SECONDS}s")
    summary = _summary(result.stderr)
    if result.returncode == 0 and summary == "OK":
        return Verdict(True)
    return Verdict(False, f"xmlsec1 exited {result.returncode} ({summary}):\n{result.stderr.strip()}")


def verify(data: bytes, cert_pem: Path) -> Verdict:
    """Does the one ds:Signature (in wsse:Security) of a WS-Security envelope verify with cert_pem's key?
    Only same-document References (#id) are followed; the KeyInfo is not used to find the key."""
    return _oracle(data, cert_pem, "same-doc", ws_security=True)


def verify_enveloped(data: bytes, cert_pem: Path) -> Verdict:
    """Does the enveloped signature (Reference URI="") of a plain document verify with cert_pem's key?"""
    return _oracle(data, cert_pem, "empty", ws_security=False)
