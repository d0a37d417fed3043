"""The security stage of issue 8 over real sockets: the limits on what makes XML expensive, each refused with its own
fault code before any signature work; SOAP 1.1 mustUnderstand; the key-reference forms accepted and refused; the
enveloped-signature transform; what the profile allows on kp:Caller. Every refusal is checked with refused():
code, status, ticket, the integrator's signature and the audit record."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from integrator.namespaces import BASE64_BINARY, DS, EXC_C14N, SOAP_ENV, WSSE, WSU, WSU_ID, X509_TOKEN, q
from integrator.wssec.dsig import Transform
from integrator.wssec.sign import SigningKey
from integrator.wssec.tokens import SKI, THUMBPRINT_SHA1
from repository.certificates import subject_key_identifier
from tests.e2e.test_security_faults import (
    ATTACKER,
    BODY,
    HEADER,
    SECURITY,
    answered,
    assert_nothing_attributed,
    hand_signed,
    lookup,
    refused,
    signed_after,
    transform,
)

pytestmark = pytest.mark.e2e
MUST_UNDERSTAND = q(SOAP_ENV, "mustUnderstand")
SIGNATURE, KEY_INFO, STR = q(DS, "Signature"), q(DS, "KeyInfo"), q(WSSE, "SecurityTokenReference")


def security_of(root: etree._Element) -> etree._Element:
    security = root.find(f"{HEADER}/{SECURITY}")
    assert security is not None
    return security


def rekeyed(stack, replace: Callable[[etree._Element, SigningKey], None]) -> bytes:  # type: ignore[no-untyped-def]
    """A request signed as usual whose KeyInfo (not covered by the signature) is then rewritten: the token and its
    direct reference give way to another key reference form."""
    key = SigningKey.from_identity(stack.pki.kruisdorp)

    def rewrite(root: etree._Element) -> None:
        security = security_of(root)
        reference = security.find(f"{SIGNATURE}/{KEY_INFO}/{STR}")
        assert reference is not None
        for child in list(reference):
            reference.remove(child)
        security.remove(security.find(q(WSSE, "BinarySecurityToken")))
        replace(reference, key)

    return lookup(stack.pki.kruisdorp).signed(after=rewrite)


# --- key references -------------------------------------------------------------------------------------
def test_issuer_serial_reference_to_a_registered_certificate_is_accepted(stack) -> None:
    def issuer_serial(reference: etree._Element, key: SigningKey) -> None:
        pair = etree.SubElement(etree.SubElement(reference, q(DS, "X509Data")), q(DS, "X509IssuerSerial"))
        etree.SubElement(pair, q(DS, "X509IssuerName")).text = key.cert.issuer.rfc4514_string()
        etree.SubElement(pair, q(DS, "X509SerialNumber")).text = str(key.cert.serial_number)

    answered(stack, rekeyed(stack, issuer_serial))


@pytest.mark.parametrize("value_type", [SKI, THUMBPRINT_SHA1], ids=["SubjectKeyIdentifier", "ThumbprintSHA1"])
def test_key_identifier_of_a_registered_certificate_is_accepted(stack, value_type: str) -> None:
    def identifier(reference: etree._Element, key: SigningKey) -> None:
        value = (subject_key_identifier(key.cert) if value_type == SKI
                 else hashlib.sha1(key.cert.public_bytes(Encoding.DER)).digest())
        etree.SubElement(reference, q(WSSE, "KeyIdentifier"), ValueType=value_type,
                         EncodingType=BASE64_BINARY).text = base64.b64encode(value).decode()

    answered(stack, rekeyed(stack, identifier))


def test_issuer_serial_of_a_certificate_nobody_registered_is_refused(stack) -> None:
    def unknown(reference: etree._Element, key: SigningKey) -> None:
        pair = etree.SubElement(etree.SubElement(reference, q(DS, "X509Data")), q(DS, "X509IssuerSerial"))
        etree.SubElement(pair, q(DS, "X509IssuerName")).text = key.cert.issuer.rfc4514_string()
        etree.SubElement(pair, q(DS, "X509SerialNumber")).text = str(key.cert.serial_number + 1)

    refusal = refused(stack, rekeyed(stack, unknown), "Client.Security.CertificateNotRegistered")
    assert "BinarySecurityToken" in refusal.fault.reason
    assert_nothing_attributed(refusal.record)


def test_thumbprint_of_a_certificate_nobody_registered_is_refused(stack) -> None:
    def unknown(reference: etree._Element, key: SigningKey) -> None:
        etree.SubElement(reference, q(WSSE, "KeyIdentifier"), ValueType=THUMBPRINT_SHA1).text = base64.b64encode(
            hashlib.sha1(b"not a certificate").digest()).decode()

    refused(stack, rekeyed(stack, unknown), "Client.Security.CertificateNotRegistered")


def test_key_name_instead_of_a_token_reference_is_refused_naming_the_forms_accepted(stack) -> None:
    def key_name(reference: etree._Element, key: SigningKey) -> None:
        key_info = reference.getparent()
        key_info.remove(reference)
        etree.SubElement(key_info, q(DS, "KeyName")).text = "Gemeente Kruisdorp"

    refusal = refused(stack, rekeyed(stack, key_name), "Client.Security.Missing")
    assert "IssuerSerial" in refusal.fault.reason and "ThumbprintSHA1" in refusal.fault.reason


def test_unknown_key_identifier_type_is_refused_as_unsupported(stack) -> None:
    def kerberos(reference: etree._Element, key: SigningKey) -> None:
        etree.SubElement(reference, q(WSSE, "KeyIdentifier"),
                         ValueType="http://docs.oasis-open.org/wss/oasis-wss-kerberos-token-profile-1.1#Kerberosv5APREQSHA1"
                         ).text = base64.b64encode(b"ticket").decode()

    refusal = refused(stack, rekeyed(stack, kerberos), "Client.Security.KeyReferenceUnsupported")
    assert "X509SubjectKeyIdentifier" in refusal.fault.reason


def test_binary_security_token_over_the_token_limit_is_refused_before_decoding(stack) -> None:
    def bloat(root: etree._Element) -> None:
        token = security_of(root).find(q(WSSE, "BinarySecurityToken"))
        token.text = (token.text or "") + "A" * 20_000

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=bloat), "Client.Security.TokenTooLarge")
    assert "KRUISPUNT_MAX_TOKEN_CHARS" in refusal.fault.reason


# --- signatures: references and transforms --------------------------------------------------------------
def test_more_references_than_allowed_are_refused_before_any_digest(stack) -> None:
    def crowd(root: etree._Element) -> None:
        info = security_of(root).find(f"{SIGNATURE}/{q(DS, 'SignedInfo')}")
        first = info.find(q(DS, "Reference"))
        for _ in range(20):
            info.append(etree.fromstring(etree.tostring(first)))

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=crowd), "Client.Security.TooManyReferences")
    assert "KRUISPUNT_MAX_REFERENCES" in refusal.fault.reason


def test_enveloped_signature_transform_outside_the_signature_is_accepted(stack) -> None:
    data = hand_signed(lookup(stack.pki.kruisdorp),
                       body_transforms=(transform(Transform.ENVELOPED), transform(EXC_C14N)))
    answered(stack, data)


# --- SOAP: mustUnderstand and actors ---------------------------------------------------------------------
def test_unknown_header_marked_must_understand_is_refused_with_the_soap_fault(stack) -> None:
    def addressing(root: etree._Element) -> None:
        action = etree.SubElement(root.find(HEADER), q("http://www.w3.org/2005/08/addressing", "Action"))
        action.set(MUST_UNDERSTAND, "1")
        action.text = "urn:kruispunt:TaxExemptionStatus:v1:GetTaxExemptionStatuses"

    refusal = refused(stack, signed_after(lookup(stack.pki.kruisdorp), addressing), "MustUnderstand")
    assert refusal.fault.faultstring.startswith("The header {http://www.w3.org/2005/08/addressing}Action")
    root = etree.fromstring(refusal.response.content)
    assert root.findtext(f"{BODY}/{q(SOAP_ENV, 'Fault')}/faultcode") == "soapenv:MustUnderstand"


@pytest.mark.parametrize("flag", ["0", "false"])
def test_unknown_header_not_marked_must_understand_is_ignored(stack, flag: str) -> None:
    def note(root: etree._Element) -> None:
        etree.SubElement(root.find(HEADER), q(ATTACKER, "Note"), {MUST_UNDERSTAND: flag}).text = "ignore me"

    answered(stack, signed_after(lookup(stack.pki.kruisdorp), note))


def test_unknown_must_understand_header_for_another_actor_is_ignored(stack) -> None:
    def elsewhere(root: etree._Element) -> None:
        etree.SubElement(root.find(HEADER), q(ATTACKER, "Routing"),
                         {MUST_UNDERSTAND: "1", q(SOAP_ENV, "actor"): "urn:example:another-node"})

    answered(stack, signed_after(lookup(stack.pki.kruisdorp), elsewhere))


@pytest.mark.parametrize("flag", ["1", "true"])
def test_security_header_with_must_understand_one_or_true_is_understood(stack, flag: str) -> None:
    answered(stack, lookup(stack.pki.kruisdorp).signed(after=lambda root: security_of(root).set(MUST_UNDERSTAND,
                                                                                                flag)))


def test_must_understand_with_a_value_soap_does_not_know_is_refused_as_malformed(stack) -> None:
    refused(stack, lookup(stack.pki.kruisdorp).signed(after=lambda root: security_of(root).set(MUST_UNDERSTAND,
                                                                                                "yes")),
            "Client.Envelope.Malformed")


def test_security_header_addressed_to_another_actor_is_refused_as_missing(stack) -> None:
    data = lookup(stack.pki.kruisdorp).signed(
        after=lambda root: security_of(root).set(q(SOAP_ENV, "actor"), "urn:example:gateway"))
    refusal = refused(stack, data, "Client.Security.Missing")
    assert "actor" in refusal.fault.reason


def test_request_without_a_timestamp_is_refused_as_security_missing(stack) -> None:
    def untimed(root: etree._Element) -> None:
        security = security_of(root)
        security.remove(security.find(q(WSU, "Timestamp")))

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=untimed), "Client.Security.Missing")
    assert "wsu:Timestamp" in refusal.fault.reason
    assert_nothing_attributed(refusal.record)


# --- limits on what makes XML expensive -------------------------------------------------------------------
def _padded(stack, build: Callable[[etree._Element], None]) -> bytes:  # type: ignore[no-untyped-def]
    return lookup(stack.pki.kruisdorp).signed(after=build)


def test_element_with_more_attributes_than_allowed_is_refused(stack) -> None:
    def crowded(root: etree._Element) -> None:
        etree.SubElement(root.find(HEADER), q(ATTACKER, "Crowded"), {f"a{i}": "1" for i in range(65)})

    refusal = refused(stack, _padded(stack, crowded), "Client.Envelope.TooManyAttributes")
    assert "KRUISPUNT_MAX_ATTRIBUTES_PER_ELEMENT" in refusal.fault.reason
    assert_nothing_attributed(refusal.record)


def test_start_tag_of_a_hundred_thousand_attributes_is_refused_before_parsing(stack) -> None:
    def crowded(root: etree._Element) -> None:
        etree.SubElement(root.find(HEADER), q(ATTACKER, "Crowded"), {f"a{i}": "1" for i in range(90_000)})

    data = _padded(stack, crowded)
    assert len(data) < 1_048_576
    refusal = refused(stack, data, "Client.Envelope.TagTooLong")
    assert "KRUISPUNT_MAX_TAG_BYTES" in refusal.fault.reason
    assert_nothing_attributed(refusal.record)


def test_attributes_spread_over_many_elements_are_refused_past_the_total(stack) -> None:
    def spread(root: etree._Element) -> None:
        holder = etree.SubElement(root.find(HEADER), q(ATTACKER, "Spread"))
        for _ in range(200):
            etree.SubElement(holder, "e", {f"a{j}": "1" for j in range(40)})

    refusal = refused(stack, _padded(stack, spread), "Client.Envelope.TooManyAttributes")
    assert "KRUISPUNT_MAX_ATTRIBUTES" in refusal.fault.reason


def test_more_namespace_declarations_than_allowed_are_refused(stack) -> None:
    def declarations(root: etree._Element) -> None:
        holder = etree.SubElement(root.find(HEADER), q(ATTACKER, "Namespaces"))
        for i in range(1_100):
            etree.SubElement(holder, q(f"urn:n:{i}", "e"), nsmap={f"n{i}": f"urn:n:{i}"})

    refusal = refused(stack, _padded(stack, declarations), "Client.Envelope.TooManyNamespaces")
    assert "KRUISPUNT_MAX_NAMESPACES" in refusal.fault.reason


def test_more_elements_than_allowed_are_refused(stack) -> None:
    def many(root: etree._Element) -> None:
        holder = etree.SubElement(root.find(HEADER), q(ATTACKER, "Many"))
        for _ in range(30_000):
            etree.SubElement(holder, "e")

    refusal = refused(stack, _padded(stack, many), "Client.Envelope.TooManyElements")
    assert "KRUISPUNT_MAX_ELEMENTS" in refusal.fault.reason


def test_text_longer_than_allowed_is_refused(stack) -> None:
    def long_text(root: etree._Element) -> None:
        etree.SubElement(root.find(HEADER), q(ATTACKER, "Long")).text = "x" * 900_000

    refused(stack, _padded(stack, long_text), "Client.Envelope.TextTooLong")


def test_more_id_attributes_than_allowed_are_refused(stack) -> None:
    def ids(root: etree._Element) -> None:
        holder = etree.SubElement(root.find(HEADER), q(ATTACKER, "Ids"))
        for i in range(100):
            etree.SubElement(holder, "e", {WSU_ID: f"decoy-{i}"})

    refusal = refused(stack, _padded(stack, ids), "Client.Envelope.TooManyIds")
    assert_nothing_attributed(refusal.record)


def test_sixty_attributes_on_one_header_element_are_within_the_limit(stack) -> None:
    """The limit is on more than 64 attributes on one element, as the fault table says: 60 are served."""
    def sixty(root: etree._Element) -> None:
        etree.SubElement(root.find(HEADER), q(ATTACKER, "Sixty"), {f"a{i}": "1" for i in range(60)})

    answered(stack, _padded(stack, sixty))


def test_x509_token_sent_without_value_type_is_refused_naming_the_value_type(stack) -> None:
    def untyped(root: etree._Element) -> None:
        token = security_of(root).find(q(WSSE, "BinarySecurityToken"))
        del token.attrib["ValueType"]

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=untyped),
                      "Client.Security.KeyReferenceUnsupported")
    assert X509_TOKEN.rsplit("#", 1)[1] in refusal.fault.reason


def test_a_prefix_list_longer_than_allowed_is_refused(stack) -> None:
    def long_list(root: etree._Element) -> None:
        transform = security_of(root).find(f"{SIGNATURE}/{q(DS, 'SignedInfo')}/{q(DS, 'Reference')}/"
                                           f"{q(DS, 'Transforms')}/{q(DS, 'Transform')}")
        etree.SubElement(transform, q(EXC_C14N, "InclusiveNamespaces"),
                         PrefixList=" ".join(f"p{i}" for i in range(65)))

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=long_list), "Client.Security.PrefixListTooLong")
    assert "KRUISPUNT_MAX_INCLUSIVE_PREFIXES" in refusal.fault.reason


def test_two_references_to_one_element_under_two_id_attributes_are_refused(stack) -> None:
    """The Body named twice, once by wsu:Id and once by a second Id attribute: each reference would digest the
    whole Body again (sixteen references, sixteen times the work)."""
    def alias(root: etree._Element) -> None:
        body = root.find(BODY)
        body.set("Id", "body-alias")
        info = security_of(root).find(f"{SIGNATURE}/{q(DS, 'SignedInfo')}")
        second = etree.fromstring(etree.tostring(info.find(q(DS, "Reference"))))
        second.set("URI", "#body-alias")
        info.append(second)

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=alias), "Client.Security.SignatureInvalid")
    assert "same element" in refusal.fault.reason


def test_more_namespaces_in_scope_than_allowed_are_refused(stack) -> None:
    def nested(root: etree._Element) -> None:
        holder = etree.SubElement(root.find(HEADER), q(ATTACKER, "Nested"))
        for level in range(40):
            holder = etree.SubElement(holder, q(ATTACKER, "n"), nsmap={f"p{level}x{i}": f"urn:{level}:{i}"
                                                                        for i in range(4)})

    refusal = refused(stack, lookup(stack.pki.kruisdorp).signed(after=nested), "Client.Envelope.TooManyNamespaces")
    assert "KRUISPUNT_MAX_NAMESPACES_IN_SCOPE" in refusal.fault.reason
