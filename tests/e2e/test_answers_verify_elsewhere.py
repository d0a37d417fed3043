"""What the live integrator signs verifies with other WS-Security stacks: a lookup's answer and a signed fault (WS-
Security envelopes: xmlsec1 with the integrator's certificate, WSS4J's WSSecurityEngine trusting the demo CA), and
an Applications receipt (a separate document with an enveloped signature: xmlsec1 and Santuario with the
integrator's certificate); a copy with one text changed inside what is signed is refused by both.

Answers are fetched afresh when they are older than FRESH_FOR, so WSS4J never judges an expired Timestamp. A stack
that is not installed fails these tests (the CI installs them all) unless KRUISPUNT_INTEROP_OPTIONAL is set."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import ModuleType

import pytest
from cryptography.x509.oid import NameOID
from lxml import etree

from integrator.namespaces import KP, SOAP_ENV, WSU, q
from services.backends.persons import PERSONS
from services.demo_organisations import OFFICIALS
from tests.e2e.application_calls import DISABILITY, applicant, application, kruisdorp, submit
from tests.interop.common import require as require_stack
from tests.interop.java import wss4j
from tests.interop.xmlsec import xmlsec1_stack
from tests.support import TAX_NS, Request, fault_of, post

pytestmark = pytest.mark.e2e

GRANTED, UNGRANTED = OFFICIALS[0], OFFICIALS[1]  # Kruisdorp's tax office (granted), its population office (not)
PERSON, ON = PERSONS[0], date(2026, 1, 1)
RECEIPT = "{urn:kruispunt:Applications:v1}ApplicationReceipt"
ANSWER_PARTS = {q(SOAP_ENV, "Body"), q(WSU, "Timestamp"), q(KP, "Answer")}
FRESH_FOR = timedelta(seconds=120)  # an answer's Timestamp lives 300 s
VERIFIERS: dict[str, ModuleType] = {"xmlsec1": xmlsec1_stack, "wss4j": wss4j}
KINDS = ("lookup-answer", "signed-fault", "signed-receipt")


@functools.cache
def _problem(verifier: ModuleType) -> str | None:
    return verifier.available()  # type: ignore[no-any-return]


def require(verifier: ModuleType) -> None:
    """Fail (or, with KRUISPUNT_INTEROP_OPTIONAL, skip) when a verifying stack is not installed here."""
    require_stack(verifier.STACK, _problem(verifier))


# --- the integrator's signed messages --------------------------------------------------------------------------
def lookup_answer(stack) -> bytes:  # type: ignore[no-untyped-def]
    reply = post(stack.base_url, Request(stack.pki.kruisdorp, GRANTED.insz, PERSON.insz, ON).signed())
    assert reply.status_code == 200, reply.text[:1000]
    assert etree.fromstring(reply.content).find(f"{q(SOAP_ENV, 'Body')}/{{{TAX_NS}}}GetTaxExemptionStatusesResponse") \
        is not None
    return reply.content


def signed_fault(stack) -> bytes:  # type: ignore[no-untyped-def]
    reply = post(stack.base_url, Request(stack.pki.kruisdorp, UNGRANTED.insz, PERSON.insz, ON).signed())
    seen = fault_of(reply)
    assert (seen.http_status, seen.code) == (403, "Client.Caller.GrantMissing"), seen.reason
    return reply.content


def signed_receipt(stack) -> bytes:  # type: ignore[no-untyped-def]
    caller = kruisdorp(stack)
    return submit(stack, caller, application(DISABILITY, applicant(stack, caller))).signed_receipt


def _changed_text(name: str, new: Callable[[str], str]) -> Callable[[bytes], bytes]:
    """A tamperer: the text of the first element with this local name (any prefix) replaced by new(text)."""
    pattern = re.compile(rb"(<(?:[\w.-]+:)?" + name.encode() + rb"(?:\s[^>]*)?>)([^<]+)(</)")

    def tamper(data: bytes) -> bytes:
        match = pattern.search(data)
        assert match is not None, f"no {name} with text"
        text = match.group(2).decode()
        assert new(text) != text
        return data[:match.start(2)] + new(text).encode() + data[match.end(2):]

    return tamper


@dataclass(frozen=True)
class Kind:
    """One kind of signed message: how to get it, whether its signature is enveloped, how to tamper with it inside
    what the signature covers, and which element(s) WSS4J must report as signed."""

    fetch: Callable[..., bytes]
    enveloped: bool
    tamper: Callable[[bytes], bytes]
    signed: frozenset[str]


MESSAGES: dict[str, Kind] = {
    "lookup-answer": Kind(lookup_answer, False, _changed_text("Complete", lambda t: {"true": "false"}.get(t, "true")),
                          frozenset(ANSWER_PARTS)),
    "signed-fault": Kind(signed_fault, False, _changed_text("Reason", lambda t: t + " (or so)"),
                         frozenset(ANSWER_PARTS)),
    "signed-receipt": Kind(signed_receipt, True, _changed_text("FileNumber", lambda t: t + "-forged"),
                           frozenset({RECEIPT})),
}


@dataclass
class Fetched:
    """The integrator's signed messages, each fetched on first use and again once older than FRESH_FOR."""

    stack: object
    got: dict[str, tuple[float, bytes]] = field(default_factory=dict)

    def __call__(self, kind: str) -> bytes:
        at, data = self.got.get(kind, (0.0, b""))
        if not data or time.monotonic() - at > FRESH_FOR.total_seconds():
            at, data = time.monotonic(), MESSAGES[kind].fetch(self.stack)
            self.got[kind] = (at, data)
        return data


@pytest.fixture(scope="module")
def signed_by_integrator(stack) -> Fetched:  # type: ignore[no-untyped-def]
    return Fetched(stack)


@dataclass(frozen=True)
class Judged:
    ok: bool
    error: str
    signed: tuple[str, ...] | None  # what WSS4J says the signature covers (xmlsec1 does not say)
    subject: str | None


def judge(stack, verifier: str, kind: str, data: bytes) -> Judged:  # type: ignore[no-untyped-def]
    """The verifier's verdict on one of the integrator's messages: the integrator's certificate for an enveloped
    signature and for xmlsec1, the demo CA for WSS4J's WS-Security engine (it takes the certificate from the
    message's BinarySecurityToken)."""
    require(VERIFIERS[verifier])
    pki = stack.pki.var_dir / "pki"
    certificate, ca = pki / "integrator.crt", pki / "ca.crt"
    enveloped = MESSAGES[kind].enveloped
    if verifier == "xmlsec1":
        said = (xmlsec1_stack.verify_enveloped if enveloped else xmlsec1_stack.verify)(data, certificate)
        return Judged(said.ok, said.error, None, None)
    verdict = wss4j.verify_enveloped(data, certificate) if enveloped else wss4j.verify(data, ca)
    return Judged(verdict.ok, verdict.error or "", verdict.signed, verdict.subject)


def integrator_common_name(stack) -> str:  # type: ignore[no-untyped-def]
    cert = stack.pki.integrator.load_cert()
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


CASES = [(verifier, kind) for kind in KINDS for verifier in VERIFIERS]
IDS = [f"{kind}-{verifier}" for verifier, kind in CASES]


@pytest.mark.parametrize(("verifier", "kind"), CASES, ids=IDS)
def test_integrators_signed_message_verifies_with_another_stack(stack, signed_by_integrator: Fetched,  # type: ignore[no-untyped-def]
                                                                verifier: str, kind: str) -> None:
    data = signed_by_integrator(kind)
    verdict = judge(stack, verifier, kind, data)
    assert verdict.ok, f"{verifier} refused the integrator's {kind}: {verdict.error}"
    if verifier == "wss4j":
        assert verdict.signed is not None and set(verdict.signed) == MESSAGES[kind].signed, verdict.signed
        assert f"CN={integrator_common_name(stack)}" in (verdict.subject or ""), verdict.subject


@pytest.mark.parametrize(("verifier", "kind"), CASES, ids=IDS)
def test_integrators_message_changed_inside_the_signature_is_refused_by_another_stack(  # type: ignore[no-untyped-def]
        stack, signed_by_integrator: Fetched, verifier: str, kind: str) -> None:
    data = signed_by_integrator(kind)
    tampered = MESSAGES[kind].tamper(data)
    assert tampered != data
    verdict = judge(stack, verifier, kind, tampered)
    assert not verdict.ok, f"{verifier} accepted the integrator's {kind} with a text changed"
    if verifier == "xmlsec1":
        assert "data and digest do not match" in verdict.error, verdict.error
    elif MESSAGES[kind].enveloped:
        assert "digest" in verdict.error.lower(), verdict.error
    else:
        assert verdict.error.startswith("FailedCheck: "), verdict.error


def test_the_tampering_changes_text_inside_what_is_signed() -> None:
    """Each tamperer changes an element of the signed Body (or of the signed receipt), nothing else."""
    samples = {
        "lookup-answer": b'<e xmlns:tx="t"><tx:Complete>true</tx:Complete><tx:Complete>true</tx:Complete></e>',
        "signed-fault": b'<e xmlns:kp="k"><kp:Reason>no grant for this</kp:Reason></e>',
        "signed-receipt": b'<ApplicationReceipt xmlns="a"><FileNumber>SOC/1</FileNumber></ApplicationReceipt>',
    }
    changed = {kind: MESSAGES[kind].tamper(data) for kind, data in samples.items()}
    assert changed == {
        "lookup-answer": b'<e xmlns:tx="t"><tx:Complete>false</tx:Complete><tx:Complete>true</tx:Complete></e>',
        "signed-fault": b'<e xmlns:kp="k"><kp:Reason>no grant for this (or so)</kp:Reason></e>',
        "signed-receipt": b'<ApplicationReceipt xmlns="a"><FileNumber>SOC/1-forged</FileNumber></ApplicationReceipt>',
    }

