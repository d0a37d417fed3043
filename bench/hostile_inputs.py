"""The requests of bench/hostile.py: the envelopes its cases are made of, how they are signed, and the filling.

Unsigned hostile documents are written as bytes (fast, and free to be malformed in ways lxml would not write);
everything signed is built as a tree around the demo official's tax-exemption lookup and signed with
integrator.wssec.sign.sign_envelope and the demo organisation's key, as tests/support.py's Request(...).signed()
does. Where a case needs references sign_envelope does not make (several Ids on one element, an exc-c14n
PrefixList), resign() rewrites the SignedInfo over the final tree with the project's own canonical() and re-signs
it with the same key, as a WS-Security stack that writes such references would.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from kruispunt_client.xml import build
from lxml import etree

from integrator.namespaces import DS, EXC_C14N, KP, SOAP_ENV, WSSE, WSU, q
from integrator.wssec.c14n import canonical
from integrator.wssec.sign import SigningKey, sign_envelope

TAX_NS = "urn:kruispunt:TaxExemptionStatus:v1"
TAX_PATH = "/soap/TaxExemptionStatus/v1"
PURPOSE = "MUNICIPAL_TAX_EXEMPTION"
BENCH_NS = "urn:kruispunt:bench:hostile"
HEADER, BODY = q(SOAP_ENV, "Header"), q(SOAP_ENV, "Body")
SIGNED_INFO, REFERENCE = q(DS, "SignedInfo"), q(DS, "Reference")
INCLUSIVE = q(EXC_C14N, "InclusiveNamespaces")
BST = q(WSSE, "BinarySecurityToken")


@dataclass(frozen=True)
class Maker:
    """What making a request needs: the demo official's key, who asks about whom, the size to fill to, and a
    certificate anyone can copy from the integrator's signed answers (for requests made without a key)."""

    key: SigningKey
    official: str
    insz: str
    size: int
    copied_cert_b64: str


@dataclass
class Tree:
    """A lookup being built: the envelope's parts, the signed kp:Caller header and the request element."""

    root: etree._Element
    header: etree._Element
    body: etree._Element
    caller: etree._Element
    payload: etree._Element


# --- bytes ----------------------------------------------------------------------------------------------------
def raw(body: bytes = b"", *, root: bytes = b"", header: bytes = b"", prolog: bytes = b"") -> bytes:
    """An unsigned SOAP 1.1 envelope around body, written as bytes; root: more of the Envelope's start tag."""
    head = b"<soapenv:Header>" + header + b"</soapenv:Header>" if header else b""
    return (prolog + b'<soapenv:Envelope xmlns:soapenv="' + SOAP_ENV.encode() + b'"' + root + b">" + head
            + b"<soapenv:Body>" + body + b"</soapenv:Body></soapenv:Envelope>")


def attributes(count: int, prefix: bytes = b"a") -> bytes:
    return b"".join(b' %s%d=""' % (prefix, i) for i in range(count))


def declarations(count: int, prefix: bytes = b"p") -> bytes:
    return b"".join(b' xmlns:%s%d="urn:n%d"' % (prefix, i, i) for i in range(count))


def nested(depth: int, inner: bytes = b"") -> bytes:
    return b"<a>" * depth + inner + b"</a>" * depth


def laughs(levels: int = 10) -> str:
    """The internal subset of the billion-laughs document: each entity ten of the one before."""
    lines = ['<!ENTITY lol0 "lol">']
    lines += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    return "".join(lines)


def doctype(subset: str, body: str, encoding: str = "utf-8") -> bytes:
    """A request with a DOCTYPE (internal subset) before the Envelope, in the given encoding."""
    declaration = f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
    text = (f"{declaration}<!DOCTYPE soapenv:Envelope [{subset}]>"
            + raw(body.encode()).decode())
    return text.encode(encoding)


# --- trees ----------------------------------------------------------------------------------------------------
def lookup(maker: Maker, nsmap: dict[str | None, str] | None = None) -> Tree:
    """The demo official's GetTaxExemptionStatuses envelope (kp:Caller with a fresh MessageId), not signed yet;
    nsmap: more namespaces declared on the Envelope."""
    root = etree.Element(q(SOAP_ENV, "Envelope"), nsmap={"soapenv": SOAP_ENV, "wsu": WSU, **(nsmap or {})})
    header = etree.SubElement(root, HEADER)
    body = etree.SubElement(root, BODY, {q(WSU, "Id"): "body"})  # the same Body, the same digest: computed once
    caller = build(q(KP, "Caller"), {"Official": maker.official, "Purpose": PURPOSE, "MessageId": str(uuid.uuid4())})
    header.append(caller)
    payload = build(f"{{{TAX_NS}}}GetTaxExemptionStatusesRequest",
                    {"Insz": maker.insz, "ReferenceDate": date.today()})
    body.append(payload)
    return Tree(root, header, body, caller, payload)


def sign(tree: Tree, maker: Maker, headers: Sequence[etree._Element] = ()) -> None:
    """Sign Body, a fresh Timestamp, kp:Caller and the given header blocks, as the product's clients do."""
    sign_envelope(tree.root, maker.key, headers=[tree.caller, *headers], now=datetime.now(UTC))


def documents(parent: etree._Element, chars: int, piece: int = 500_000, tag: str = "Document") -> None:
    """chars characters of base64-like text under parent, in elements of at most piece characters each (one text
    node may hold at most KRUISPUNT_MAX_TEXT_CHARS)."""
    while chars > 0:
        etree.SubElement(parent, f"{{{TAX_NS}}}{tag}").text = "QUJD" * (min(piece, chars) // 4) + "A" * (
            min(piece, chars) % 4)
        chars -= piece


def ids_on(element: etree._Element, count: int, namespaces: Sequence[str]) -> list[str]:
    """count more Id attributes on element (Id, ID, id, then {ns}Id in the given namespaces), their values."""
    names = ["Id", "ID", "id", *(f"{{{ns}}}Id" for ns in namespaces)][:count]
    if len(names) < count:
        raise ValueError(f"{count} Ids need {count - 3} namespaces")
    for index, name in enumerate(names):
        element.set(name, f"alias-{index}")
    return [f"alias-{index}" for index in range(count)]


_DIGESTS: dict[tuple[bytes, tuple[tuple[str, str], ...], tuple[str, ...]], str] = {}
SIZING = {"on": False}  # while fit() sizes a request: digests are placeholders of the same length


def digest(element: etree._Element, prefixes: Sequence[str]) -> str:
    """The SHA-256 digest (base64) of element's exclusive canonical form with this PrefixList, as the receiver
    computes it: on the parsed bytes (lxml passes libxml2 only the listed prefixes its parsers have seen, so a
    built tree can give another form). Computed once for equal content: a long PrefixList makes one such digest
    cost seconds (bench/hostile.py's PrefixList classes)."""
    if SIZING["on"]:
        return _b64(bytes(32))
    key = (hashlib.sha256(etree.tostring(element)).digest(),
           tuple(sorted((k or "", v) for k, v in element.nsmap.items())), tuple(prefixes))
    if key not in _DIGESTS:
        path = []
        node = element
        while (parent := node.getparent()) is not None:
            path.append(parent.index(node))
            node = parent
        found = etree.fromstring(etree.tostring(node))
        for position in reversed(path):
            found = found[position]
        _DIGESTS[key] = _b64(hashlib.sha256(canonical(found, tuple(prefixes))).digest())
    return _DIGESTS[key]


def resign(tree: Tree, key: SigningKey | None, references: Sequence[tuple[str, etree._Element]],
           prefixes: Sequence[str] = ()) -> None:
    """Rewrite the SignedInfo sign_envelope made: these (Id, element) references in this order, each with the
    exc-c14n PrefixList prefixes when given, digests over the final tree, and a new SignatureValue made with key
    (None: 256 random bytes, what someone without the key would send)."""
    info = next(tree.root.iter(SIGNED_INFO))
    template = info.find(REFERENCE)
    assert template is not None
    for old in info.findall(REFERENCE):
        info.remove(old)
    for ident, element in references:
        reference = copy.deepcopy(template)
        reference.set("URI", f"#{ident}")
        if prefixes:
            etree.SubElement(reference[0][0], INCLUSIVE, PrefixList=" ".join(prefixes), nsmap={"ec": EXC_C14N})
        reference[2].text = digest(element, prefixes)
        info.append(reference)
    value = (key.key.sign(canonical(info), padding.PKCS1v15(), hashes.SHA256()) if key is not None
             else os.urandom(256))
    signature = info.getparent()
    assert signature is not None
    signature.find(q(DS, "SignatureValue")).text = _b64(value)  # type: ignore[union-attr]


def reference_ids(tree: Tree) -> dict[str, str]:
    """The wsu:Id sign_envelope gave Body, Timestamp and kp:Caller, by name."""
    stamp = next(tree.root.iter(q(WSU, "Timestamp")))
    return {name: element.get(q(WSU, "Id")) or "" for name, element in
            (("Body", tree.body), ("Timestamp", stamp), ("Caller", tree.caller))}


def serialise(tree: Tree) -> bytes:
    return etree.tostring(tree.root)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- filling --------------------------------------------------------------------------------------------------
def fit(make: Callable[[int], bytes], size: int) -> int:
    """The largest n for which make(n) is at most size bytes: estimated from a small probe, estimated again from
    that estimate's size, then stepped down until it fits."""
    SIZING["on"] = True
    try:
        base = len(make(0))
        if base > size:
            return 0
        n = 16
        for _ in range(2):
            per = max(1e-9, (len(make(n)) - base) / n)
            n = max(1, int((size - base) / per))
        while n > 0 and len(make(n)) > size:
            n = min(n - 1, int(n * 0.999))
        return n
    finally:
        SIZING["on"] = False
