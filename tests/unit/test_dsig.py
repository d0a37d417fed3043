"""The request path's XML-DSig (integrator/wssec/dsig.py, c14n.py, tokens.py) on its own: what it refuses and why,
the InclusiveNamespaces "#default" token lxml cannot pass to libxml2, the key-reference forms, and that its
signatures verify with signxml, the project's second verifier."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from kruispunt_client.xml import build
from lxml import etree
from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod
from signxml.verifier import XMLVerifier

from integrator.envelope import Envelope
from integrator.faults import AlgorithmRefused, KeyReferenceUnsupported, SecurityMissing, SignatureInvalid
from integrator.namespaces import DS, EXC_C14N, KP, WSSE, q
from integrator.pki import Identity, create_ca, issue
from integrator.wssec import dsig
from integrator.wssec.c14n import canonical, with_prefix_list
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope
from integrator.wssec.tokens import X509_PKIPATH, Signer, signing_certificate
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import SecurityPolicy, verify_envelope
from tests.interop.common import SAMPLES

SIGNED_INFO, REFERENCE = q(DS, "SignedInfo"), q(DS, "Reference")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Identity, Identity]:
    directory = tmp_path_factory.mktemp("dsig")
    ca = create_ca(directory)
    return ca, issue(ca, directory, "signer", common_name="Testgemeente")


@pytest.fixture(scope="module")
def key(pki: tuple[Identity, Identity]) -> SigningKey:
    return SigningKey.from_identity(pki[1])


def signed(key: SigningKey) -> etree._Element:
    root, header, body = new_envelope()
    caller = build(q(KP, "Caller"), {"Official": "75041214531", "Purpose": "P", "MessageId": "m"})
    header.append(caller)
    body.append(build("{urn:x}Question", {"Value": "42"}))
    return sign_envelope(root, key, headers=[caller], now=datetime.now(UTC))


def signature_of(root: etree._Element) -> etree._Element:
    return next(root.iter(q(DS, "Signature")))


def test_our_signature_verifies_with_signxml_and_with_the_request_path(key: SigningKey,
                                                                       pki: tuple[Identity, Identity]) -> None:
    data = etree.tostring(signed(key))
    config = SignatureConfiguration(require_x509=True, expect_references=True,
                                    signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
                                    digest_algorithms=frozenset({DigestAlgorithm.SHA256}))
    results = XMLVerifier().verify(etree.fromstring(data), x509_cert=key.cert, expect_config=config)
    assert len(results) == 3
    root = etree.fromstring(data)
    verified = verify_envelope(Envelope.of(root), TrustStore.from_files([pki[0].cert_path], None), SecurityPolicy(),
                               datetime.now(UTC))
    assert verified.payload is not None and verified.payload.tag == "{urn:x}Question"
    assert set(verified.headers) == {q(KP, "Caller")}


@pytest.mark.parametrize(("where", "algorithm", "setting"), [
    ("SignatureMethod", "http://www.w3.org/2000/09/xmldsig#rsa-sha1", "signatureAlgorithm"),
    ("SignatureMethod", "http://www.w3.org/2000/09/xmldsig#hmac-sha1", "signatureAlgorithm"),
    ("CanonicalizationMethod", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315", "signatureC14nAlgorithm"),
    ("CanonicalizationMethod", f"{EXC_C14N}WithComments", "signatureC14nAlgorithm"),
    ("DigestMethod", "http://www.w3.org/2000/09/xmldsig#sha1", "signatureDigestAlgorithm"),
    ("Transform", "http://www.w3.org/TR/1999/REC-xpath-19991116", "XPath"),
], ids=["rsa-sha1", "hmac", "inclusive c14n", "c14n with comments", "sha1 digest", "xpath transform"])
def test_algorithms_outside_the_profile_are_refused_naming_the_setting(key: SigningKey, where: str, algorithm: str,
                                                                       setting: str) -> None:
    signature = signature_of(signed(key))
    next(signature.iter(q(DS, where))).set("Algorithm", algorithm)
    with pytest.raises(AlgorithmRefused) as caught:
        dsig.read_signature(signature, 16)
    assert setting in caught.value.reason


def test_the_enveloped_signature_transform_is_read_as_such(key: SigningKey) -> None:
    signature = signature_of(signed(key))
    transforms = next(signature.iter(q(DS, "Transforms")))
    transforms.insert(0, etree.Element(q(DS, "Transform"), Algorithm=dsig.Transform.ENVELOPED))
    read = dsig.read_signature(signature, 16)
    assert [r.enveloped for r in read.info.references] == [True, False, False]


def test_exclusive_c14n_must_be_the_last_transform(key: SigningKey) -> None:
    signature = signature_of(signed(key))
    transforms = next(signature.iter(q(DS, "Transforms")))
    transforms.append(etree.Element(q(DS, "Transform"), Algorithm=dsig.Transform.ENVELOPED))
    with pytest.raises(AlgorithmRefused):
        dsig.read_signature(signature, 16)


@pytest.mark.parametrize("uri", ["", "http://example.org/doc", "#xpointer(id('x'))", "#"])
def test_references_other_than_to_an_id_are_refused(key: SigningKey, uri: str) -> None:
    signature = signature_of(signed(key))
    next(signature.iter(REFERENCE)).set("URI", uri)
    with pytest.raises(SignatureInvalid):
        dsig.read_signature(signature, 16)


def test_two_references_to_one_element_are_refused(key: SigningKey) -> None:
    signature = signature_of(signed(key))
    references = list(signature.iter(REFERENCE))
    references[1].set("URI", references[0].get("URI", ""))
    with pytest.raises(SignatureInvalid, match="same element"):
        dsig.read_signature(signature, 16)


def test_signature_parts_out_of_schema_order_are_refused(key: SigningKey) -> None:
    signature = signature_of(signed(key))
    signature.append(signature[0])  # SignedInfo moved behind KeyInfo
    with pytest.raises(SignatureInvalid, match="in that order"):
        dsig.read_signature(signature, 16)


def test_digest_value_that_is_not_base64_is_refused(key: SigningKey) -> None:
    signature = signature_of(signed(key))
    next(signature.iter(q(DS, "DigestValue"))).text = "not*base64"
    with pytest.raises(SignatureInvalid, match="base64"):
        dsig.read_signature(signature, 16)


# --- InclusiveNamespaces "#default" ------------------------------------------------------------------------
@pytest.mark.parametrize(("document", "prefixes", "expected"), [
    # the default namespace in scope at the apex but unused there: rendered only when "#default" is listed
    (b'<r xmlns="urn:d"><x:s xmlns:x="urn:x"><x:y/></x:s></r>', ("#default",),
     b'<x:s xmlns="urn:d" xmlns:x="urn:x"><x:y></x:y></x:s>'),
    (b'<r xmlns="urn:d"><x:s xmlns:x="urn:x"><x:y/></x:s></r>', (),
     b'<x:s xmlns:x="urn:x"><x:y></x:y></x:s>'),
    # listed: rendered on the apex, so a descendant using it no longer declares it
    (b'<r xmlns="urn:d"><x:s xmlns:x="urn:x"><y/></x:s></r>', ("#default",),
     b'<x:s xmlns="urn:d" xmlns:x="urn:x"><y></y></x:s>'),
    # a descendant changing the default without using it declares it when listed (inclusive rule), and undeclares
    (b'<r xmlns="urn:d"><x:s xmlns:x="urn:x"><x:q xmlns="urn:e"><x:t/></x:q><x:z xmlns=""><w/></x:z></x:s></r>',
     ("#default", "x"),
     b'<x:s xmlns="urn:d" xmlns:x="urn:x"><x:q xmlns="urn:e"><x:t></x:t></x:q><x:z xmlns=""><w></w></x:z></x:s>'),
    # no default namespace anywhere: "#default" changes nothing
    (b'<r><x:s xmlns:x="urn:x" a="1&lt;2"><x:y>t</x:y></x:s></r>', ("#default",),
     b'<x:s xmlns:x="urn:x" a="1&lt;2"><x:y>t</x:y></x:s>'),
], ids=["listed", "not listed", "used below", "changed below", "none in scope"])
def test_default_namespace_in_the_prefix_list_is_rendered_as_exclusive_c14n_says(document: bytes,
                                                                                 prefixes: tuple[str, ...],
                                                                                 expected: bytes) -> None:
    assert canonical(etree.fromstring(document)[0], prefixes) == expected
    assert with_prefix_list(etree.fromstring(document)[0], prefixes) == expected


# --- key references -----------------------------------------------------------------------------------------
def _security_and_key_info(key: SigningKey) -> tuple[etree._Element, etree._Element, dict[str, etree._Element]]:
    root = signed(key)
    envelope = Envelope.of(root)
    signature = signature_of(root)
    return signature.getparent(), signature.find(q(DS, "KeyInfo")), envelope.ids


def test_a_pkipath_token_names_its_last_certificate_as_the_signer(key: SigningKey,
                                                                  pki: tuple[Identity, Identity]) -> None:
    security, key_info, ids = _security_and_key_info(key)
    token = security.find(q(WSSE, "BinarySecurityToken"))
    certificates = [pki[0].load_cert(), key.cert]  # the issuer first, the signer last
    ders = [c.public_bytes(Encoding.DER) for c in certificates]
    body = b"".join(ders)
    token.set("ValueType", X509_PKIPATH)
    token.text = base64.b64encode(b"\x30\x82" + len(body).to_bytes(2, "big") + body).decode()
    signer = signing_certificate(security, key_info, ids, None, 16_384)
    assert signer.certificate == key.cert


def test_a_pkipath_token_that_is_not_a_sequence_of_certificates_is_refused(key: SigningKey) -> None:
    security, key_info, ids = _security_and_key_info(key)
    token = security.find(q(WSSE, "BinarySecurityToken"))
    token.set("ValueType", X509_PKIPATH)
    token.text = base64.b64encode(b"\x30\x05\x01\x02\x03").decode()
    with pytest.raises(SecurityMissing, match="X509PKIPathv1"):
        signing_certificate(security, key_info, ids, None, 16_384)


def test_a_reference_to_an_element_that_is_not_a_token_of_this_header_is_refused(key: SigningKey) -> None:
    security, key_info, ids = _security_and_key_info(key)
    body_id = next(i for i, e in ids.items() if e.tag.endswith("}Body"))
    key_info[0][0].set("URI", f"#{body_id}")
    with pytest.raises(SecurityMissing, match="BinarySecurityToken"):
        signing_certificate(security, key_info, ids, None, 16_384)


def test_references_to_registered_certificates_need_a_directory(key: SigningKey) -> None:
    """Answers from backends and peers name their signer by token: there is no repository to look it up in."""
    security, key_info, ids = _security_and_key_info(key)
    reference = key_info[0]
    reference.remove(reference[0])
    etree.SubElement(reference, q(WSSE, "KeyIdentifier"),
                     ValueType="http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"
                     ).text = base64.b64encode(b"x" * 20).decode()
    with pytest.raises(KeyReferenceUnsupported, match="BinarySecurityToken"):
        signing_certificate(security, key_info, ids, None, 16_384)


def test_token_type_other_than_x509_is_refused(key: SigningKey) -> None:
    security, key_info, ids = _security_and_key_info(key)
    key_info[0].set("{http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd}TokenType",
                    "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0")
    with pytest.raises(KeyReferenceUnsupported, match="TokenType"):
        signing_certificate(security, key_info, ids, None, 16_384)


def test_a_certificate_broken_past_its_outer_structure_is_refused_as_the_callers_fault(key: SigningKey) -> None:
    """cryptography reads a certificate's names and extensions only when asked: a token whose issuer name is
    broken must be refused when it is read, not raise deep in the trust checks (it was a 500)."""
    der = bytearray(key.cert.public_bytes(Encoding.DER))
    at = der.find(b"kruispunt demo CA")
    der[at - 2] = 0x05  # the issuer's string becomes a NULL
    with pytest.raises(SecurityMissing, match=r"well-formed X\.509"):
        Signer.of(bytes(der))


def test_prefix_lists_are_applied_as_libxml2_applies_them() -> None:
    """The PrefixList is applied by kruispunt (libxml2 would cost elements x prefixes x namespaces in scope); for
    every prefix libxml2 can be given, both give the same canonical form, on every element of every stored sample
    and of a document that redeclares and undeclares namespaces below the apex."""
    nested = etree.fromstring(
        b'<r xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b" xmlns:u="urn:unused"><a:s b:at="1"><a:t xmlns:a="urn:a2" '
        b'xmlns:b="urn:b"><u:v xmlns:u="urn:u2"/><w xmlns=""/></a:t><b:x>text</b:x></a:s></r>')
    roots = [nested] + [etree.fromstring(p.read_bytes()) for p in sorted(SAMPLES.glob("*/*.xml"))]
    compared = 0
    for root in roots:
        prefixes = sorted({p for e in root.iter() for p in e.nsmap if p})
        for element in root.iter():
            for count in range(1, len(prefixes) + 1):
                chosen = prefixes[-count:]
                expected = etree.tostring(element, method="c14n", exclusive=True, inclusive_ns_prefixes=chosen)
                assert with_prefix_list(element, chosen) == expected, (element.tag, chosen)
                assert canonical(element, chosen) == expected, (element.tag, chosen)
                compared += 1
    assert compared > 1_000
