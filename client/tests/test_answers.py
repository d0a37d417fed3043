"""Answers are accepted only when the integrator signed them, as the profile places what is signed, freshly, and
in answer to the request just sent; everything else raises AnswerRefused."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

import independent
from conftest import Network, Party
from independent import AnswerSpec
from kruispunt_client import AnswerRefused, CertificateRefused, KruispuntSignature, caller_header, verify_answer
from kruispunt_client.namespaces import KP, SOAP_ENV, q

RESPONSE = "{urn:x}Response"


def plugin(network: Network, pinned: bool = True) -> KruispuntSignature:
    return KruispuntSignature(network.municipality.identity, network.trust(),
                              network.integrator.certificate if pinned else None)


def send(signature: KruispuntSignature) -> str:
    """Sign a request as zeep hands it to the plugin; the binding its answer must quote."""
    root = etree.Element(q(SOAP_ENV, "Envelope"), nsmap={"soap-env": SOAP_ENV})
    etree.SubElement(root, q(SOAP_ENV, "Header")).append(caller_header("75041214531", "MUNICIPAL_TAX_EXEMPTION"))
    etree.SubElement(etree.SubElement(root, q(SOAP_ENV, "Body")), "{urn:x}Question").text = "?"
    signature.apply(root, {})
    assert signature.request_digest is not None
    return signature.request_digest


def answer_by(party: Party, spec: AnswerSpec) -> etree._Element:
    return independent.answer(party.key.key, party.certificate, spec)


def response(text: str = "fine") -> etree._Element:
    element = etree.Element(RESPONSE)
    etree.SubElement(element, "{urn:x}Text").text = text
    return element


def test_an_answer_bound_to_the_request_is_accepted(network: Network) -> None:
    signature = plugin(network)
    digest = send(signature)
    envelope = answer_by(network.integrator, AnswerSpec(digest, response()))
    assert signature.verify(envelope) is envelope


def test_verify_answer_returns_only_what_is_signed(network: Network) -> None:
    envelope = answer_by(network.integrator, AnswerSpec("x", response()))
    verified = verify_answer(envelope, network.trust())
    assert verified.payload is not None and verified.payload.tag == RESPONSE
    assert set(verified.headers) == {q(KP, "Answer")}
    assert verified.certificate == network.integrator.certificate
    assert verified.expires - verified.created == timedelta(minutes=5)


def test_an_answer_to_an_earlier_request_is_refused(network: Network) -> None:
    signature = plugin(network)
    earlier = send(signature)
    send(signature)
    with pytest.raises(AnswerRefused, match="RequestSignatureDigest"):
        signature.verify(answer_by(network.integrator, AnswerSpec(earlier, response())))


def test_an_answer_without_binding_is_refused(network: Network) -> None:
    signature = plugin(network)
    send(signature)
    with pytest.raises(AnswerRefused, match="RequestSignatureDigest"):
        signature.verify(answer_by(network.integrator, AnswerSpec(None, response())))


def test_a_refusal_of_an_unverifiable_request_may_lack_the_binding(network: Network) -> None:
    signature = plugin(network)
    send(signature)
    fault = etree.Element(q(SOAP_ENV, "Fault"))
    etree.SubElement(fault, "faultcode").text = "soapenv:Client.Security.SignatureInvalid"
    etree.SubElement(fault, "faultstring").text = "not signed"
    envelope = answer_by(network.integrator, AnswerSpec(None, fault))
    assert signature.verify(envelope) is envelope


def test_an_answer_whose_kp_answer_is_not_signed_is_refused(network: Network) -> None:
    signature = plugin(network)
    digest = send(signature)
    with pytest.raises(AnswerRefused, match="no signed kp:Answer"):
        signature.verify(answer_by(network.integrator, AnswerSpec(digest, response(), sign_answer_header=False)))


@pytest.mark.parametrize("change", ["payload text", "ticket", "timestamp"])
def test_a_changed_answer_is_refused(network: Network, change: str) -> None:
    signature = plugin(network)
    digest = send(signature)
    envelope = answer_by(network.integrator, AnswerSpec(digest, response("fine")))
    genuine = copy.deepcopy(envelope)
    target = {"payload text": ".//{urn:x}Text", "ticket": f".//{q(KP, 'Ticket')}",
              "timestamp": ".//{*}Created"}[change]
    node = envelope.find(target)
    assert node is not None and node.text
    node.text = node.text[:-1] + ("1" if node.text[-1] != "1" else "2")
    with pytest.raises(AnswerRefused, match="not validly signed"):
        signature.verify(envelope)
    assert signature.verify(genuine) is genuine  # only the change differs


def test_an_answer_signed_by_another_organisation_of_the_network_is_refused(network: Network) -> None:
    signature = plugin(network)
    digest = send(signature)
    envelope = answer_by(network.colleague, AnswerSpec(digest, response()))
    verify_answer(envelope, network.trust())  # validly signed, by a certificate the network trusts...
    with pytest.raises(AnswerRefused, match="not the integrator's"):  # ...but not the integrator's
        signature.verify(envelope)


@pytest.mark.parametrize("who", ["outsider", "revoked"])
def test_an_answer_signed_by_a_certificate_the_network_does_not_vouch_for_is_refused(network: Network,
                                                                                      who: str) -> None:
    signature = plugin(network, pinned=False)
    digest = send(signature)
    with pytest.raises(CertificateRefused, match="not issued by a trust anchor" if who == "outsider" else "revoked"):
        signature.verify(answer_by(getattr(network, who), AnswerSpec(digest, response())))


def test_an_answer_whose_token_was_swapped_for_the_integrators_certificate_is_refused(network: Network) -> None:
    signature = plugin(network)
    digest = send(signature)
    envelope = answer_by(network.colleague, AnswerSpec(digest, response()))
    token = envelope.find(".//{*}BinarySecurityToken")
    assert token is not None
    token.text = independent.answer(network.integrator.key.key, network.integrator.certificate,
                                    AnswerSpec(digest)).findtext(".//{*}BinarySecurityToken")
    with pytest.raises(AnswerRefused, match="not validly signed"):
        signature.verify(envelope)


@pytest.mark.parametrize(("created", "ttl", "reason"), [
    (timedelta(minutes=-20), timedelta(minutes=5), "not current"),
    (timedelta(minutes=5), timedelta(minutes=5), "not current"),
    (timedelta(0), timedelta(minutes=11), "lives 660 s"),
    (timedelta(0), timedelta(0), "lives 0 s"),
])
def test_an_answer_that_is_not_fresh_is_refused(network: Network, created: timedelta, ttl: timedelta,
                                                reason: str) -> None:
    signature = plugin(network)
    digest = send(signature)
    spec = AnswerSpec(digest, response(), created=datetime.now(UTC) + created, ttl=ttl)
    with pytest.raises(AnswerRefused, match=reason):
        signature.verify(answer_by(network.integrator, spec))


def test_a_signed_body_moved_aside_for_another_is_refused(network: Network) -> None:
    signature = plugin(network)
    digest = send(signature)
    envelope = answer_by(network.integrator, AnswerSpec(digest, response("the signed one")))
    header, body = envelope[0], envelope[1]
    wrapper = etree.SubElement(header, "{urn:x}Wrapper")
    wrapper.append(body)  # the signed Body, Id and all, now inside a header block...
    forged = etree.SubElement(envelope, q(SOAP_ENV, "Body"))  # ...and another one where zeep reads
    forged.append(response("forged"))
    with pytest.raises(AnswerRefused, match="not where the profile puts signed content"):
        signature.verify(envelope)


def test_an_id_given_twice_is_refused(network: Network) -> None:
    signature = plugin(network)
    digest = send(signature)
    envelope = answer_by(network.integrator, AnswerSpec(digest, response()))
    extra = etree.SubElement(envelope[0], "{urn:x}Extra")
    extra.set("Id", "answer")
    with pytest.raises(AnswerRefused, match="given to two elements"):
        signature.verify(envelope)


def test_a_comment_inside_signed_text_is_refused(network: Network) -> None:
    signature = plugin(network)
    digest = send(signature)
    envelope = answer_by(network.integrator, AnswerSpec(digest, response("1000")))
    text = envelope.find(".//{urn:x}Text")
    assert text is not None
    text.text = "1"
    comment = etree.Comment(" c ")
    comment.tail = "000"  # exclusive c14n without comments digests "1000"; a reader of .text sees "1"
    text.append(comment)
    with pytest.raises(AnswerRefused, match="comment"):
        signature.verify(envelope)


def test_an_answer_without_security_header_is_refused(network: Network) -> None:
    signature = plugin(network)
    digest = send(signature)
    envelope = answer_by(network.integrator, AnswerSpec(digest, response()))
    security = envelope.find(".//{*}Security")
    assert security is not None
    envelope[0].remove(security)
    with pytest.raises(AnswerRefused, match="exactly one wsse:Security header"):
        signature.verify(envelope)


def test_the_request_digest_is_per_thread(network: Network) -> None:
    import threading

    signature = plugin(network)
    mine = send(signature)
    theirs: list[str] = []
    worker = threading.Thread(target=lambda: theirs.append(send(signature)))
    worker.start()
    worker.join()
    assert signature.request_digest == mine != theirs[0]
    assert base64.b64decode(mine)
