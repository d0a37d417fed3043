"""The client library (kruispunt_client) accepts the answers the integrator signs (integrator.answer), only when
they are bound to the request just sent."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kruispunt_client import AnswerRefused, KruispuntSignature, Trust
from lxml import etree

from integrator.answer import fault_payload, signed_answer
from integrator.faults import ContractViolation
from integrator.pki import create_ca, issue, write_crl
from integrator.wssec.sign import SigningKey, new_envelope


@pytest.fixture
def parties(tmp_path: Path):  # type: ignore[no-untyped-def]
    ca = create_ca(tmp_path)
    integrator = issue(ca, tmp_path, "integrator", common_name="integrator")
    client = issue(ca, tmp_path, "client", common_name="client")
    trust = Trust.from_files([ca.cert_path], write_crl(ca, tmp_path / "ca.crl", []))
    plugin = KruispuntSignature(client, trust, integrator.load_cert())
    return plugin, SigningKey.from_identity(integrator)


def sent(plugin: KruispuntSignature) -> str:
    root, _header, body = new_envelope()
    etree.SubElement(body, "{urn:x}Question")
    plugin.apply(root, {})
    assert plugin.request_digest is not None
    return plugin.request_digest


def answer(key: SigningKey, payload: etree._Element, digest: str | None) -> etree._Element:
    data = signed_answer(key, payload, ticket="KP-20261128-" + "a" * 32, received=datetime.now(UTC),
                         message_id=None, request_digest=base64.b64decode(digest) if digest else None)
    return etree.fromstring(data)


def test_an_answer_bound_to_the_request_is_accepted(parties) -> None:  # type: ignore[no-untyped-def]
    plugin, key = parties
    digest = sent(plugin)
    plugin.verify(answer(key, etree.Element("{urn:x}Answer"), digest))


def test_an_answer_without_binding_is_refused(parties) -> None:  # type: ignore[no-untyped-def]
    plugin, key = parties
    sent(plugin)
    with pytest.raises(AnswerRefused, match="RequestSignatureDigest"):
        plugin.verify(answer(key, etree.Element("{urn:x}Answer"), None))


def test_an_answer_bound_to_another_request_is_refused(parties) -> None:  # type: ignore[no-untyped-def]
    plugin, key = parties
    earlier = sent(plugin)
    sent(plugin)
    with pytest.raises(AnswerRefused, match="RequestSignatureDigest"):
        plugin.verify(answer(key, etree.Element("{urn:x}Answer"), earlier))


def test_a_refusal_of_an_unverifiable_request_may_lack_the_binding(parties) -> None:  # type: ignore[no-untyped-def]
    plugin, key = parties
    sent(plugin)
    fault = fault_payload(ContractViolation("bad"), "KP-20261128-" + "b" * 32)
    plugin.verify(answer(key, fault, None))


def test_an_answer_signed_by_another_certificate_of_the_network_is_refused(parties, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plugin, _key = parties
    digest = sent(plugin)
    other = issue(create_ca(tmp_path / "other"), tmp_path, "other", common_name="other")
    with pytest.raises(AnswerRefused, match="not validly signed"):  # not issued by the client's trust anchor
        plugin.verify(answer(SigningKey.from_identity(other), etree.Element("{urn:x}Answer"), digest))


def test_a_changed_answer_is_refused(parties) -> None:  # type: ignore[no-untyped-def]
    plugin, key = parties
    digest = sent(plugin)
    changed = answer(key, etree.Element("{urn:x}Answer", attrib={"Value": "1"}), digest)
    changed.find(".//{urn:x}Answer").set("Value", "2")
    with pytest.raises(AnswerRefused, match="not validly signed"):
        plugin.verify(changed)
