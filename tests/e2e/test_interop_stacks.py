"""Requests signed by every other WS-Security stack (WSS4J, node-soap/xml-crypto, xmlsec1, zeep/python-xmlsec), in
every configuration it knows, sent to the live integrator on SQLite and PostgreSQL: each one is answered with the
statuses the reference backends hold, signed by the integrator and bound to the request, and audited as Kruisdorp's
granted official; the one configuration that leaves kp:Caller unsigned is refused, saying what to sign.

Each stack signs all its configurations in one batch (one JVM, one node process) with Kruisdorp's own key, the first
time one of them is needed; every message goes out once (a replay is refused), and a batch that has grown old is
signed afresh, so no Timestamp is stale when it is sent. A stack that is not installed fails these tests (the CI
installs them all) unless KRUISPUNT_INTEROP_OPTIONAL is set."""

from __future__ import annotations

import base64
import functools
import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import ModuleType

import pytest
import requests
from lxml import etree
from signxml.verifier import XMLVerifier

from integrator.namespaces import DS, KP, SOAP_ENV, q
from integrator.pki import Identity, fingerprint
from services.backends.persons import PERSONS, Person
from services.backends.status_source import SOURCES
from services.demo_organisations import KRUISDORP, OFFICIALS, PURPOSE_TAX
from tests.e2e.test_security_faults import RESPONSE_SIGNATURE, assert_no_traceback, refused, sha256_hex
from tests.interop.common import Keys, unsigned_lookup
from tests.interop.common import require as require_stack
from tests.interop.stacks import STACKS
from tests.support import TAX_NS, audit_record, fault_of, post

pytestmark = pytest.mark.e2e

OFFICIAL, PERSON, ON = OFFICIALS[0], PERSONS[0], date(2026, 1, 1)  # Kruisdorp's tax office, granted the service
SERVICE, OPERATION = "TaxExemptionStatus/v1", "GetTaxExemptionStatuses"
TX = f"{{{TAX_NS}}}"
UNSIGNED_CALLER = ("node-soap", "wssecuritycert-default")  # WSSecurityCert's defaults sign Body and Timestamp only
ACCEPTED = [(other.STACK, config) for other in STACKS for config in other.CONFIGS
            if (other.STACK, config) != UNSIGNED_CALLER]
# The shortest Timestamp a stack writes lives 300 s: a batch older than this is signed again before use.
FRESH_FOR = timedelta(seconds=150)


@functools.cache
def _problem(other: ModuleType) -> str | None:
    return other.available()  # type: ignore[no-any-return]


def require(other: ModuleType) -> None:
    """Fail (or, with KRUISPUNT_INTEROP_OPTIONAL, skip) when a stack is not installed here."""
    require_stack(other.STACK, _problem(other))


# --- signing, lazily and once per stack ------------------------------------------------------------------------
@dataclass(frozen=True)
class SignedRequest:
    stack: str
    config: str
    message_id: str
    data: bytes


@dataclass
class Batch:
    signed_at: float
    requests: dict[str, SignedRequest]


@dataclass
class Signers:
    """Every other stack's signer with one key; per stack, one batch of all its configurations, signed on first
    demand. A message is handed out once; a batch older than FRESH_FOR (or one already used up) is signed again."""

    keys: dict[str, Keys]
    batches: dict[str, Batch] = field(default_factory=dict)
    runs: dict[str, list[float]] = field(default_factory=dict)  # per stack: seconds each batch took

    def take(self, name: str, config: str) -> SignedRequest:
        other = next(s for s in STACKS if s.STACK == name)
        require(other)
        batch = self.batches.get(name)
        if batch is None or time.monotonic() - batch.signed_at > FRESH_FOR.total_seconds() \
                or config not in batch.requests:
            batch = self.batches[name] = self._sign(other)
        return batch.requests.pop(config)

    def _sign(self, other: ModuleType) -> Batch:
        jobs = [(config, str(uuid.uuid4())) for config in other.CONFIGS]
        started = time.monotonic()
        outputs = other.sign([(config, unsigned_lookup(OFFICIAL.insz, PERSON.insz, ON, message_id))
                              for config, message_id in jobs], self.keys[other.STACK])
        self.runs.setdefault(other.STACK, []).append(time.monotonic() - started)
        return Batch(started, {config: SignedRequest(other.STACK, config, message_id, data)
                               for (config, message_id), data in zip(jobs, outputs, strict=True)})


@pytest.fixture(scope="module")
def signers(stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signers]:  # type: ignore[no-untyped-def]
    """The other stacks, signing with Kruisdorp's real organisation certificate (issued by the demo CA)."""
    ca = stack.pki.var_dir / "pki" / "ca.crt"
    keys = {other.STACK: Keys(cert_pem=stack.pki.kruisdorp.cert_path, key_pem=stack.pki.kruisdorp.key_path,
                              ca_pem=ca, workdir=tmp_path_factory.mktemp(f"interop-{other.STACK}"))
            for other in STACKS}
    made = Signers(keys)
    yield made
    print("\n" + "; ".join(f"{name}: {len(runs)} batch(es), {', '.join(f'{r:.1f} s' for r in runs)}"
                           for name, runs in made.runs.items()))


# --- what the integrator answers -------------------------------------------------------------------------------
def expected_statuses(who: Person, on: date) -> list[tuple[str, str, str, str | None]]:
    """(code, source, start, end) of the periods persons.py holds on that date, as the answer writes them."""
    source_of = {spec.code: spec.name for spec in SOURCES}
    return sorted((p.code, source_of[p.code], p.start.isoformat(), p.end.isoformat() if p.end else None)
                  for p in who.periods if p.start <= on and (p.end is None or on <= p.end))


def outcome(response: requests.Response) -> str:
    """What the integrator said, for an assertion message: the fault's code and reason when it is one."""
    try:
        seen = fault_of(response)
    except (AssertionError, etree.XMLSyntaxError):
        return f"HTTP {response.status_code}: {response.text[:1000]}"
    return f"HTTP {response.status_code} {seen.code}: {seen.reason}"


def signature_value_digest(data: bytes) -> str:
    """Base64 SHA-256 of a request's (decoded) SignatureValue: what kp:Answer quotes to bind the answer to it."""
    value = etree.fromstring(data).findtext(f".//{q(DS, 'SignatureValue')}") or ""
    return base64.b64encode(hashlib.sha256(base64.b64decode("".join(value.split()))).digest()).decode()


def signed_parts(response: requests.Response, integrator: Identity) -> dict[str, etree._Element]:
    """The elements the answer's signature covers, verified by signxml with the integrator's certificate."""
    root = etree.fromstring(response.content)
    results = XMLVerifier().verify(root, x509_cert=integrator.load_cert(), expect_config=RESPONSE_SIGNATURE)
    return {result.signed_xml.tag: result.signed_xml for result in results}


@pytest.mark.parametrize(("name", "config"), ACCEPTED, ids=[f"{name}-{config}" for name, config in ACCEPTED])
def test_request_signed_by_another_stack_is_answered_signed_and_audited(stack, signers: Signers, name: str,  # type: ignore[no-untyped-def]
                                                                       config: str) -> None:
    request = signers.take(name, config)
    response = post(stack.base_url, request.data)
    assert_no_traceback(response)
    assert response.status_code == 200, f"{name} {config}: {outcome(response)}"
    ticket = response.headers["X-Kruispunt-Ticket"]
    assert ticket

    parts = signed_parts(response, stack.pki.integrator)
    answer, body = parts[q(KP, "Answer")], parts[q(SOAP_ENV, "Body")]
    assert (answer.findtext(q(KP, "Ticket")), answer.findtext(q(KP, "MessageId"))) == (ticket, request.message_id)
    assert answer.findtext(q(KP, "RequestSignatureDigest")) == signature_value_digest(request.data)
    found = body.find(f"{TX}GetTaxExemptionStatusesResponse")
    assert found is not None, outcome(response)
    assert (found.findtext(f"{TX}Insz"), found.findtext(f"{TX}ReferenceDate"), found.findtext(f"{TX}Complete")) == (
        PERSON.insz, ON.isoformat(), "true")
    statuses = sorted((s.findtext(f"{TX}Code"), s.findtext(f"{TX}Source"), s.findtext(f"{TX}Start"),
                       s.findtext(f"{TX}End")) for s in found.iterfind(f"{TX}Status"))
    assert statuses == expected_statuses(PERSON, ON) and statuses
    consulted = {s.findtext(f"{TX}Name"): s.findtext(f"{TX}Outcome") for s in found.iterfind(f"{TX}Sources/{TX}Source")}
    assert consulted == dict.fromkeys((spec.name for spec in SOURCES), "CONSULTED")

    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code) == ("OK", None), record.detail
    assert (record.organisation, record.official, record.purpose, record.message_id) == (
        KRUISDORP.enterprise_number, OFFICIAL.insz, PURPOSE_TAX, request.message_id)
    assert (record.service, record.operation, record.person) == (SERVICE, OPERATION, PERSON.insz)
    assert record.certificate == fingerprint(stack.pki.kruisdorp.load_cert())
    assert (record.request_digest, record.response_digest) == (sha256_hex(request.data), sha256_hex(response.content))


def test_node_soap_signing_only_body_and_timestamp_is_refused_as_unsigned_caller(stack, signers: Signers) -> None:  # type: ignore[no-untyped-def]
    request = signers.take(*UNSIGNED_CALLER)
    refusal = refused(stack, request.data, "Client.Security.UnsignedContent", status=400)
    assert "kp:Caller" in refusal.fault.reason and "sign" in refusal.fault.reason, refusal.fault.reason
    record = refusal.record
    assert record.detail == refusal.fault.reason
    assert (record.service, record.certificate) == (SERVICE, fingerprint(stack.pki.kruisdorp.load_cert()))
    # Nothing the unsigned header claims is attributed: no official, purpose, organisation or message id.
    assert (record.organisation, record.official, record.purpose, record.message_id, record.person) == (
        None, None, None, None, None)


def test_every_configuration_of_every_stack_is_sent() -> None:
    cases = {*ACCEPTED, UNSIGNED_CALLER}
    assert cases == {(other.STACK, config) for other in STACKS for config in other.CONFIGS}
    assert UNSIGNED_CALLER[1] in next(s for s in STACKS if s.STACK == UNSIGNED_CALLER[0]).CONFIGS

