"""XML-DSig on the one parsed tree: read a SignedInfo (refusing what the profile does not allow, with the setting
to change), check reference digests and the signature value, and make signatures the same way.

Only what the WS-Security X.509 token profile uses is spoken: exclusive c14n (with InclusiveNamespaces), RSA
with SHA-2, references to elements by Id, and the enveloped-signature transform where it changes nothing.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from integrator.faults import (
    AlgorithmRefused,
    EnvelopeMalformed,
    PrefixListTooLong,
    SignatureInvalid,
    TooManyReferences,
)
from integrator.namespaces import DS, EXC_C14N, q
from integrator.wssec.c14n import canonical


class SignatureMethod(StrEnum):
    RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
    RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"


class DigestMethod(StrEnum):
    SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
    SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
    SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"


class Transform(StrEnum):
    EXC_C14N = EXC_C14N
    ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"


_SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    SignatureMethod.RSA_SHA256: hashes.SHA256, SignatureMethod.RSA_SHA384: hashes.SHA384,
    SignatureMethod.RSA_SHA512: hashes.SHA512}
_DIGESTS = {DigestMethod.SHA256: "sha256", DigestMethod.SHA384: "sha384", DigestMethod.SHA512: "sha512"}
_HASHLIB = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
INCLUSIVE_NAMESPACES = q(EXC_C14N, "InclusiveNamespaces")
SIGNED_INFO, REFERENCE = q(DS, "SignedInfo"), q(DS, "Reference")
_TRANSFORMS, _TRANSFORM = q(DS, "Transforms"), q(DS, "Transform")
_DIGEST_METHOD, _DIGEST_VALUE = q(DS, "DigestMethod"), q(DS, "DigestValue")
_C14N_METHOD, _SIGNATURE_METHOD = q(DS, "CanonicalizationMethod"), q(DS, "SignatureMethod")
_SIGNATURE_VALUE, _KEY_INFO, _OBJECT = q(DS, "SignatureValue"), q(DS, "KeyInfo"), q(DS, "Object")
_ALLOWED = "exclusive c14n (http://www.w3.org/2001/10/xml-exc-c14n#)"


class Reference(NamedTuple):
    """One ds:Reference as read: the Id it names, how to canonicalise it, the digest it must have."""

    target: str  # the Id value of the referenced element
    prefixes: tuple[str, ...]  # InclusiveNamespaces PrefixList of its exc-c14n transform
    digest: str  # hashlib name
    value: bytes
    enveloped: bool  # it carries the enveloped-signature transform (allowed where it is a no-op)


class SignedInfo(NamedTuple):
    """A ds:SignedInfo as read, every algorithm one the profile allows."""

    element: etree._Element
    prefixes: tuple[str, ...]  # InclusiveNamespaces PrefixList of the CanonicalizationMethod
    hash: type[hashes.HashAlgorithm]
    references: tuple[Reference, ...]


class Signature(NamedTuple):
    """A ds:Signature as read: its SignedInfo, its value, and the ds:KeyInfo that names the key (if any)."""

    info: SignedInfo
    value: bytes
    key_info: etree._Element | None


def read_signature(signature: etree._Element, max_references: int, max_prefixes: int = 64) -> Signature:
    """Read a ds:Signature (SignedInfo, SignatureValue, KeyInfo, in the order of the schema); refuse, naming the
    element and the setting to change, what the profile does not allow."""
    children = list(signature)  # comments are gone since parsing, processing instructions refused
    tags = [child.tag for child in children]
    if tags[:2] != [SIGNED_INFO, _SIGNATURE_VALUE] or any(t != _KEY_INFO and t != _OBJECT for t in tags[2:]):
        raise SignatureInvalid("ds:Signature must hold ds:SignedInfo, ds:SignatureValue and ds:KeyInfo, in that "
                               "order.")
    key_info = [child for child, tag in zip(children, tags, strict=True) if tag == _KEY_INFO]
    if len(key_info) > 1:
        raise SignatureInvalid("ds:Signature holds more than one ds:KeyInfo.")
    return Signature(_signed_info(children[0], max_references, max_prefixes),
                     _base64(children[1].text or "", "ds:SignatureValue"), key_info[0] if key_info else None)


def _signed_info(info: etree._Element, max_references: int, max_prefixes: int) -> SignedInfo:
    children = list(info)
    tags = [child.tag for child in children]
    if tags[:2] != [_C14N_METHOD, _SIGNATURE_METHOD] or any(t != REFERENCE for t in tags[2:]):
        raise SignatureInvalid("ds:SignedInfo must hold ds:CanonicalizationMethod, ds:SignatureMethod and "
                               "ds:Reference elements, in that order.")
    c14n, method, elements = children[0], children[1], children[2:]
    if c14n.get("Algorithm") != EXC_C14N:
        raise AlgorithmRefused(
            f"ds:CanonicalizationMethod is {c14n.get('Algorithm')}; set the canonicalisation to {_ALLOWED} "
            "(WSS4J/CXF: signatureC14nAlgorithm; SoapUI: Signature Canonicalization).")
    algorithm = method.get("Algorithm", "")
    if algorithm not in _SIGNATURE_HASHES:
        raise AlgorithmRefused(
            f"ds:SignatureMethod {algorithm or '(none)'} is refused; sign with RSA-SHA256 "
            f"({SignatureMethod.RSA_SHA256}) (WSS4J/CXF: signatureAlgorithm; SoapUI: Signature Algorithm).")
    if len(method):
        raise AlgorithmRefused("ds:SignatureMethod must not carry parameters (HMACOutputLength); sign with RSA.")
    if not elements:
        raise SignatureInvalid("ds:SignedInfo holds no ds:Reference; sign the Body, the Timestamp and kp:Caller.")
    if len(elements) > max_references:
        raise TooManyReferences(
            f"The signature holds {len(elements)} references; at most {max_references} are accepted "
            "(KRUISPUNT_MAX_REFERENCES). Sign the Body, the Timestamp and kp:Caller.")
    references = tuple(_reference(r, max_prefixes) for r in elements)
    targets = [r.target for r in references]
    if len(set(targets)) != len(targets):
        raise SignatureInvalid("Two ds:Reference elements name the same element; reference each element once.")
    return SignedInfo(info, _prefix_list(c14n, max_prefixes), _SIGNATURE_HASHES[algorithm], references)


def digest_matches(reference: Reference, element: etree._Element) -> bool:
    computed = _HASHLIB[reference.digest](_canonical(element, reference.prefixes)).digest()
    return hmac.compare_digest(computed, reference.value)


class RsaOperations:
    """How many RSA signatures this process made and checked: the benches count the work a request path really
    does instead of assuming it (bench/lookup.py efficiency). A lock costs nothing next to an RSA operation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {"sign": 0, "verify": 0}
        self.listener: Callable[[str], None] | None = None  # the integrator's metrics (integrator/faces/wsgi.py)

    def count(self, operation: str) -> None:
        with self._lock:
            self._counts[operation] += 1
        if self.listener is not None:
            self.listener(operation)

    def counts(self) -> dict[str, int]:
        """{"sign": n, "verify": m} so far."""
        with self._lock:
            return dict(self._counts)


RSA_OPERATIONS = RsaOperations()


def signature_matches(info: SignedInfo, value: bytes, key: rsa.RSAPublicKey) -> bool:
    RSA_OPERATIONS.count("verify")
    try:
        key.verify(value, _canonical(info.element, info.prefixes), padding.PKCS1v15(), info.hash())
    except InvalidSignature:
        return False
    return True


def _canonical(element: etree._Element, prefixes: tuple[str, ...]) -> bytes:
    """canonical() of what a caller sent: what libxml2 cannot canonicalise is the caller's XML's fault."""
    try:
        return canonical(element, prefixes)
    except etree.C14NError:
        raise EnvelopeMalformed(
            f"{element.tag} cannot be canonicalised (exclusive C14N refuses, for one, a relative namespace URI such "
            "as xmlns=\"relative\" in it or above it); declare absolute namespace URIs.") from None


def _signature_template() -> tuple[etree._Element, etree._Element]:
    """A ds:Signature with its constant SignedInfo head, and one ds:Reference with its constant parts: signing
    copies them (a C-level deep copy) instead of building a dozen elements each time. Each thread has its own: a
    copy shares the name dictionary of the document it is copied from, and that must not be written to by two
    threads at once."""
    signature = etree.Element(q(DS, "Signature"), nsmap={"ds": DS})
    info = etree.SubElement(signature, SIGNED_INFO)
    etree.SubElement(info, _C14N_METHOD, Algorithm=EXC_C14N)
    etree.SubElement(info, _SIGNATURE_METHOD, Algorithm=SignatureMethod.RSA_SHA256)
    reference = etree.Element(REFERENCE, nsmap={"ds": DS})
    transforms = etree.SubElement(reference, _TRANSFORMS)
    etree.SubElement(transforms, _TRANSFORM, Algorithm=EXC_C14N)
    etree.SubElement(reference, _DIGEST_METHOD, Algorithm=DigestMethod.SHA256)
    etree.SubElement(reference, _DIGEST_VALUE)
    return signature, reference


_TEMPLATES = threading.local()  # per thread: libxml2's name dictionaries are not shared between threads


def _templates() -> tuple[etree._Element, etree._Element]:
    made = getattr(_TEMPLATES, "made", None)
    if made is None:
        made = _TEMPLATES.made = _signature_template()
    return made


def copied(element: etree._Element) -> etree._Element:
    """A copy of the element with its subtree, made by lxml in C (copy.deepcopy's memo and dispatch skipped: about
    half the cost for a template)."""
    return element.__deepcopy__(None)


def sign(targets: list[tuple[str, etree._Element]], key: rsa.RSAPrivateKey, key_info: etree._Element,
         parent: etree._Element) -> etree._Element:
    """Append to parent a ds:Signature over the (Id, element) targets: exc-c14n, RSA-SHA256, SHA-256."""
    signature_template, reference_template = _templates()
    signature = copied(signature_template)
    parent.append(signature)
    info = signature[0]
    for ident, element in targets:
        reference = copied(reference_template)
        reference.set("URI", f"#{ident}")
        reference[2].text = binascii.b2a_base64(hashlib.sha256(canonical(element)).digest(), newline=False).decode()
        info.append(reference)
    value = key.sign(canonical(info), padding.PKCS1v15(), hashes.SHA256())
    RSA_OPERATIONS.count("sign")
    etree.SubElement(signature, _SIGNATURE_VALUE).text = binascii.b2a_base64(value, newline=False).decode()
    signature.append(key_info)
    return signature


def _reference(element: etree._Element, max_prefixes: int) -> Reference:
    uri = element.get("URI")
    if uri is None or not uri.startswith("#") or len(uri) < 2 or uri.startswith("#xpointer("):
        raise SignatureInvalid(
            f"ds:Reference URI={uri!r} is refused: reference each signed element by its Id (URI=\"#the-id\").")
    children = list(element)  # comments are gone since parsing, processing instructions refused
    tags = [child.tag for child in children]
    if tags[-2:] != [_DIGEST_METHOD, _DIGEST_VALUE] or tags[:-2] not in ([], [_TRANSFORMS]):
        raise SignatureInvalid(f"ds:Reference {uri} must hold ds:Transforms, ds:DigestMethod and ds:DigestValue, "
                               "in that order.")
    digest_method = children[-2].get("Algorithm", "")
    if digest_method not in _DIGESTS:
        raise AlgorithmRefused(
            f"ds:DigestMethod {digest_method or '(none)'} is refused; digest with SHA-256 ({DigestMethod.SHA256}) "
            "(WSS4J/CXF: signatureDigestAlgorithm; SoapUI: Digest Algorithm).")
    transforms = list(children[0]) if len(children) == 3 else []
    if not transforms or transforms[-1].get("Algorithm") != EXC_C14N or not all(
            t.tag == _TRANSFORM and t.get("Algorithm") == Transform.ENVELOPED for t in transforms[:-1]):
        found = [t.get("Algorithm") if t.tag == _TRANSFORM else t.tag for t in transforms]
        raise AlgorithmRefused(
            f"ds:Reference {uri} has the transforms {found or 'none'}; use {_ALLOWED} as the (last) transform, "
            "optionally after the enveloped-signature transform. XPath, XSLT and inclusive c14n are refused.")
    last = transforms[-1]
    return Reference(uri[1:], _prefix_list(last, max_prefixes) if len(last) else (), _DIGESTS[digest_method],
                     _base64(children[-1].text or "", "ds:DigestValue"), len(transforms) > 1)


def _prefix_list(holder: etree._Element, max_prefixes: int) -> tuple[str, ...]:
    found = [child for child in holder if child.tag == INCLUSIVE_NAMESPACES]
    if len(found) > 1:
        raise SignatureInvalid("More than one ec:InclusiveNamespaces under one transform; write one PrefixList.")
    prefixes = tuple((found[0].get("PrefixList") or "").split()) if found else ()
    if len(prefixes) > max_prefixes:
        raise PrefixListTooLong(
            f"An ec:InclusiveNamespaces PrefixList names {len(prefixes)} prefixes; at most {max_prefixes} are "
            "accepted (KRUISPUNT_MAX_INCLUSIVE_PREFIXES). List the prefixes declared above the signed element, as "
            "WSS4J does.")
    return prefixes


def _base64(text: str, label: str) -> bytes:
    try:
        return decode_base64(text)
    except ValueError:
        raise SignatureInvalid(f"{label} is not base64.") from None


def decode_base64(text: str) -> bytes:
    """Strict base64 (xs:base64Binary: line breaks and spaces allowed); ValueError for anything else."""
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        try:
            return binascii.a2b_base64("".join(text.split()), strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(str(exc)) from None
