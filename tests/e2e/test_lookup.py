"""The tax-exemption status lookup end to end: the client library, plain zeep, every refusal a caller can meet,
and authentic sources that are down, answer garbage, answer unsigned or answer too late."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import zeep
from kruispunt_client import AnswerRefused, KruispuntClient, KruispuntSignature, Trust, fault_detail, load_certificates
from kruispunt_client.xml import build
from lxml import etree
from sqlalchemy import select
from zeep.exceptions import Fault
from zeep.plugins import HistoryPlugin

from integrator.namespaces import DS, KP, SOAP_ENV, q
from integrator.pki import Identity
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope
from repository.models import Backend
from services.backends.persons import PERSONS, Person, make_insz
from services.backends.status_source import NS as SOURCE_NS
from services.backends.status_source import SOURCES
from services.demo_organisations import BRUGSTEDE, KRUISDORP, OFFICIALS, PURPOSE_TAX
from tests.support import TAX_NS, TAX_PATH, Request, audit_record, fault_of, post, reset_circuits

SERVICE = "TaxExemptionStatus/v1"
OPERATION = "GetTaxExemptionStatuses"
SOURCE_FOR_CODE = {spec.code: spec.name for spec in SOURCES}
SOURCE_NAMES = {spec.name for spec in SOURCES}
GRANTED = OFFICIALS[0]  # Kruisdorp, tax office, granted the service
UNGRANTED = OFFICIALS[1]  # Kruisdorp, population office, no grant
BRUGSTEDE_OFFICIAL = OFFICIALS[2]  # Brugstede, granted at Brugstede
ON = date(2026, 1, 1)
TX = f"{{{TAX_NS}}}"


def person(name: str) -> Person:
    return next(p for p in PERSONS if p.name == name)


def expected_statuses(who: Person, on: date) -> list[tuple[str, str, date, date | None]]:
    """What persons.py says holds on that date: (code, source whose SourceSpec has that code, start, end)."""
    return sorted((p.code, SOURCE_FOR_CODE[p.code], p.start, p.end) for p in who.periods
                  if p.start <= on and (p.end is None or on <= p.end))


def assert_audited(stack, ticket: str, who: str, *, outcome: str = "OK", official: str = GRANTED.insz,
                   purpose: str = PURPOSE_TAX):  # type: ignore[no-untyped-def]
    record = audit_record(stack.sessions, ticket)
    assert (record.outcome, record.fault_code, record.person, record.official, record.purpose, record.organisation,
            record.service, record.operation) == (outcome, None, who, official, purpose,
                                                  KRUISDORP.enterprise_number, SERVICE, OPERATION)
    return record


# --- the client library ----------------------------------------------------------------------------------------
def library_client(stack) -> KruispuntClient:  # type: ignore[no-untyped-def]
    return KruispuntClient(f"{stack.base_url}{TAX_PATH}?wsdl", stack.pki.kruisdorp, stack.settings.trust_anchor_paths,
                           integrator_cert=stack.settings.pki_dir / "integrator.crt", crl=stack.settings.crl_path)


@pytest.fixture(scope="module")
def client(stack) -> KruispuntClient:  # type: ignore[no-untyped-def]
    return library_client(stack)


LOOKUPS = [
    ("Maria Janssens", date(2026, 1, 1)),  # two open-ended statuses
    ("Maria Janssens", date(2013, 2, 1)),  # after one start, before the other
    ("Ahmed El Amrani", date(2026, 4, 30)),  # last day of a closed period
    ("Ahmed El Amrani", date(2026, 5, 1)),  # the day after it
    ("Ahmed El Amrani", date(2024, 5, 1)),  # first day of a period
    ("Sofie Claes", date(2019, 9, 30)),
    ("Sofie Claes", date(2025, 3, 15)),
    ("Nathalie Dubois", date(2022, 12, 31)),
    ("Nathalie Dubois", date(2023, 1, 1)),
    ("Jozef Maes", date(2020, 12, 31)),
    ("Jozef Maes", date(2021, 1, 1)),
    ("Jozef Maes", date(2005, 12, 31)),  # before anything
]


def test_lookup_cases_cover_periods_that_hold_and_periods_that_do_not() -> None:
    expectations = [expected_statuses(person(name), on) for name, on in LOOKUPS]
    assert any(len(e) >= 2 for e in expectations) and any(not e for e in expectations)
    assert {code for e in expectations for code, *_ in e} == set(SOURCE_FOR_CODE)


@pytest.mark.parametrize(("name", "on"), LOOKUPS, ids=[f"{n.split()[0]}-{d}" for n, d in LOOKUPS])
def test_library_lookup_returns_exactly_the_periods_valid_on_the_date(stack, client, name: str, on: date) -> None:
    who = person(name)
    answer = client.tax_exemption_statuses(who.insz, on, official=GRANTED.insz, purpose=PURPOSE_TAX)
    body = answer.body
    assert (body.Insz, body.ReferenceDate, body.Complete) == (who.insz, on, True)
    assert sorted((s.Code, s.Source, s.Start, s.End) for s in body.Status) == expected_statuses(who, on)
    assert sorted((s.Name, s.Outcome, s.Reason) for s in body.Sources.Source) == sorted(
        (n, "CONSULTED", None) for n in SOURCE_NAMES)
    assert_audited(stack, answer.ticket, who.insz)


def test_library_lookup_of_person_without_statuses_is_an_empty_complete_list(stack, client) -> None:
    who = person("Luc Wouters")
    assert who.periods == ()
    answer = client.tax_exemption_statuses(who.insz, ON, official=GRANTED.insz, purpose=PURPOSE_TAX)
    assert list(answer.body.Status) == []
    assert answer.body.Complete is True
    assert {s.Name: s.Outcome for s in answer.body.Sources.Source} == dict.fromkeys(SOURCE_NAMES, "CONSULTED")
    assert_audited(stack, answer.ticket, who.insz)


def test_library_surfaces_a_refusal_as_a_fault_with_its_detail(stack, client) -> None:
    with pytest.raises(Fault) as raised:
        client.tax_exemption_statuses(PERSONS[0].insz, ON, official=UNGRANTED.insz, purpose=PURPOSE_TAX)
    detail = fault_detail(raised.value)
    assert detail["Code"] == "Client.Caller.GrantMissing"
    record = audit_record(stack.sessions, detail["Ticket"])
    assert (record.outcome, record.fault_code, record.official) == ("FAULT", "Client.Caller.GrantMissing",
                                                                   UNGRANTED.insz)


def test_library_refuses_a_tampered_answer(stack) -> None:
    library = library_client(stack)
    history = HistoryPlugin()
    library.client.plugins.append(history)
    library.tax_exemption_statuses(PERSONS[0].insz, ON, official=GRANTED.insz, purpose=PURPOSE_TAX)
    received = history.last_received["envelope"]
    genuine = copy.deepcopy(received)
    assert library.signature.verify(genuine) is genuine  # the untouched answer passes: only the tampering differs
    tampered = copy.deepcopy(received)
    codes = tampered.findall(f".//{TX}Status/{TX}Code")
    assert codes, "the answer for this person must hold statuses"
    codes[0].text = "DISABILITY_ALLOWANCE" if codes[0].text != "DISABILITY_ALLOWANCE" else "INCREASED_REIMBURSEMENT"
    with pytest.raises(AnswerRefused, match="not validly signed"):
        library.signature.verify(tampered)


# --- plain zeep with the wsse plugin ---------------------------------------------------------------------------
@dataclass
class PlainZeep:
    client: zeep.Client
    signature: KruispuntSignature
    history: HistoryPlugin

    def call(self, insz: str, on: date, official: str = GRANTED.insz) -> object:
        caller = build(q(KP, "Caller"), {"Official": official, "Purpose": PURPOSE_TAX,
                                         "MessageId": str(uuid.uuid4())})
        return self.client.service.GetTaxExemptionStatuses(Insz=insz, ReferenceDate=on, _soapheaders=[caller])


@pytest.fixture
def plain(stack) -> PlainZeep:  # type: ignore[no-untyped-def]
    trust = Trust.from_files(stack.settings.trust_anchor_paths, stack.settings.crl_path)
    pin = load_certificates([stack.settings.pki_dir / "integrator.crt"])[0]
    signature = KruispuntSignature(stack.pki.kruisdorp, trust, pin)
    history = HistoryPlugin(maxlen=4)
    return PlainZeep(zeep.Client(f"{stack.base_url}{TAX_PATH}?wsdl", wsse=signature, plugins=[history]),
                     signature, history)


def test_plain_zeep_lookup_is_answered_with_ticket_bound_to_the_request(stack, plain: PlainZeep) -> None:
    who = person("Sofie Claes")
    result = plain.call(who.insz, ON)
    ticket = result.header.answer.Ticket
    assert ticket.startswith("KP-")
    assert sorted((s.Code, s.Source, s.Start, s.End) for s in result.body.Status) == expected_statuses(who, ON)
    sent_value = plain.history.last_sent["envelope"].findtext(f".//{q(DS, 'SignatureValue')}")
    expected_digest = base64.b64encode(hashlib.sha256(base64.b64decode(sent_value)).digest()).decode()
    answer_header = plain.history.last_received["envelope"].find(f"{q(SOAP_ENV, 'Header')}/{q(KP, 'Answer')}")
    assert answer_header.findtext(q(KP, "RequestSignatureDigest")) == expected_digest
    assert answer_header.findtext(q(KP, "Ticket")) == ticket
    assert_audited(stack, ticket, who.insz)


def test_answer_to_an_earlier_request_is_refused_as_not_bound_to_the_request_just_sent(plain: PlainZeep) -> None:
    plain.call(PERSONS[0].insz, ON)
    first_answer = copy.deepcopy(plain.history.last_received["envelope"])
    plain.call(PERSONS[2].insz, ON)
    second_answer = copy.deepcopy(plain.history.last_received["envelope"])
    assert plain.signature.verify(second_answer) is second_answer
    with pytest.raises(AnswerRefused, match="RequestSignatureDigest"):
        plain.signature.verify(first_answer)


# --- refusals ----------------------------------------------------------------------------------------------------
def refused(stack, data: bytes, code: str, http_status: int):  # type: ignore[no-untyped-def]
    reply = post(stack.base_url, data)
    seen = fault_of(reply)
    assert (seen.http_status, seen.code) == (http_status, code), seen.reason
    assert seen.ticket == reply.headers["X-Kruispunt-Ticket"]
    assert seen.ticket in seen.faultstring
    record = audit_record(stack.sessions, seen.ticket)
    assert (record.outcome, record.fault_code, record.detail, record.service) == ("FAULT", code, seen.reason,
                                                                                   SERVICE)
    return seen, record


def with_check_digits_wrong(insz: str) -> str:
    return f"{insz[:9]}{(int(insz[9:]) + 1) % 100:02d}"


def test_insz_with_wrong_check_digits_is_refused_naming_the_value(stack) -> None:
    bad = with_check_digits_wrong(PERSONS[0].insz)
    seen, record = refused(stack, Request(stack.pki.kruisdorp, GRANTED.insz, bad, ON).signed(),
                           "Client.Contract.InszInvalid", 400)
    assert bad in seen.reason
    assert record.official == GRANTED.insz


def test_official_without_grant_is_refused_grant_missing(stack) -> None:
    seen, record = refused(stack, Request(stack.pki.kruisdorp, UNGRANTED.insz, PERSONS[0].insz, ON).signed(),
                           "Client.Caller.GrantMissing", 403)
    assert UNGRANTED.insz in seen.reason
    assert (record.official, record.person) == (UNGRANTED.insz, PERSONS[0].insz)


def test_official_not_registered_is_refused_official_unknown(stack) -> None:
    stranger = make_insz(date(1970, 3, 3), 301)
    assert stranger not in {o.insz for o in OFFICIALS}
    seen, record = refused(stack, Request(stack.pki.kruisdorp, stranger, PERSONS[0].insz, ON).signed(),
                           "Client.Caller.OfficialUnknown", 403)
    assert stranger in seen.reason
    assert record.official == stranger


def test_caller_claiming_another_organisation_than_the_certificate_is_refused(stack) -> None:
    request = Request(stack.pki.kruisdorp, GRANTED.insz, PERSONS[0].insz, ON, organisation=BRUGSTEDE.enterprise_number)
    seen, _ = refused(stack, request.signed(), "Client.Caller.OrganisationMismatch", 403)
    assert BRUGSTEDE.enterprise_number in seen.reason and KRUISDORP.enterprise_number in seen.reason


def test_official_of_another_organisation_signed_with_kruisdorps_certificate_is_unknown(stack) -> None:
    assert BRUGSTEDE_OFFICIAL.organisation == BRUGSTEDE.enterprise_number and BRUGSTEDE_OFFICIAL.grants
    seen, _ = refused(stack, Request(stack.pki.kruisdorp, BRUGSTEDE_OFFICIAL.insz, PERSONS[0].insz, ON).signed(),
                      "Client.Caller.OfficialUnknown", 403)
    assert KRUISDORP.enterprise_number in seen.reason


def test_purpose_the_official_has_no_grant_for_is_refused_grant_missing(stack) -> None:
    request = Request(stack.pki.kruisdorp, GRANTED.insz, PERSONS[0].insz, ON, purpose="SOCIAL_HOUSING_ALLOCATION")
    seen, record = refused(stack, request.signed(), "Client.Caller.GrantMissing", 403)
    assert "SOCIAL_HOUSING_ALLOCATION" in seen.reason
    assert record.purpose == "SOCIAL_HOUSING_ALLOCATION"


def test_schema_violation_is_refused_with_the_path_in_the_reason(stack) -> None:
    request = Request(stack.pki.kruisdorp, GRANTED.insz, PERSONS[0].insz, "yesterday")  # type: ignore[arg-type]
    seen, _ = refused(stack, request.signed(), "Client.Contract.Invalid", 400)
    assert re.search(r"at /\S*GetTaxExemptionStatusesRequest/\S*ReferenceDate\b", seen.reason), seen.reason
    assert "yesterday" in seen.reason


def test_unknown_operation_element_is_refused_operation_unknown(stack) -> None:
    request = Request(stack.pki.kruisdorp, GRANTED.insz, PERSONS[0].insz, ON)
    root, caller = request.envelope()
    body = root.find(q(SOAP_ENV, "Body"))
    for child in list(body):
        body.remove(child)
    body.append(build(f"{TX}GetEverybodysStatusesRequest", {"Insz": PERSONS[0].insz}))
    sign_envelope(root, SigningKey.from_identity(stack.pki.kruisdorp), headers=[caller])
    seen, record = refused(stack, etree.tostring(root), "Client.Contract.OperationUnknown", 400)
    assert "GetEverybodysStatusesRequest" in seen.reason
    assert record.operation is None


# --- authentic sources that fail ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lookup:
    ticket: str
    complete: bool
    statuses: list[tuple[str, str]]
    sources: dict[str, tuple[str, str | None]]


def lookup(stack, who: Person, on: date = ON) -> Lookup:  # type: ignore[no-untyped-def]
    reply = post(stack.base_url, Request(stack.pki.kruisdorp, GRANTED.insz, who.insz, on).signed())
    assert reply.status_code == 200, reply.text[:1000]
    response = etree.fromstring(reply.content).find(f"{q(SOAP_ENV, 'Body')}/{TX}GetTaxExemptionStatusesResponse")
    assert response is not None, reply.text[:1000]
    return Lookup(
        ticket=reply.headers["X-Kruispunt-Ticket"],
        complete=response.findtext(f"{TX}Complete") == "true",
        statuses=sorted((s.findtext(f"{TX}Code"), s.findtext(f"{TX}Source")) for s in response.iter(f"{TX}Status")),
        sources={s.findtext(f"{TX}Name"): (s.findtext(f"{TX}Outcome"), s.findtext(f"{TX}Reason"))
                 for s in response.iter(f"{TX}Source") if s.find(f"{TX}Name") is not None},
    )


def assert_only_source_unavailable(stack, seen: Lookup, who: Person, down: str, code: str) -> None:  # type: ignore[no-untyped-def]
    assert seen.complete is False
    outcome, reason = seen.sources[down]
    assert outcome == "UNAVAILABLE"
    assert reason is not None and reason.startswith(code), reason
    assert {n: o for n, (o, _) in seen.sources.items() if n != down} == dict.fromkeys(SOURCE_NAMES - {down},
                                                                                        "CONSULTED")
    assert seen.statuses == sorted((c, s) for c, s, *_ in expected_statuses(who, ON) if s != down)
    record = audit_record(stack.sessions, seen.ticket)
    assert record.outcome == "PARTIAL"
    assert record.fault_code is None
    assert f"{down}: {code}" in (record.detail or "")


def test_source_down_gives_a_partial_answer_naming_it_and_recovers_when_it_is_back(stack) -> None:
    who = person("Sofie Claes")  # has a disability allowance
    stack.stop_backend("disability")
    try:
        seen = lookup(stack, who)
        assert_only_source_unavailable(stack, seen, who, "disability", "Server.Backend.Unavailable")
    finally:
        stack.start_backend("disability")
        reset_circuits(stack.sessions, SERVICE, ["disability"])
    again = lookup(stack, who)
    assert again.complete is True
    assert again.statuses == sorted((c, s) for c, s, *_ in expected_statuses(who, ON))
    assert audit_record(stack.sessions, again.ticket).outcome == "OK"


class _Impostor(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


@contextmanager
def impostor(stack, name: str, body: bytes, *, delay: float = 0.0, chunks: int = 1,  # type: ignore[no-untyped-def]
             pause: float = 0.0) -> Iterator[None]:
    """Replace a real backend by a small HTTP server on its port that answers 200 with `body`: after `delay` s,
    in `chunks` pieces `pause` s apart."""
    released = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if delay and released.wait(delay):
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            size = -(-len(body) // chunks)
            for at in range(0, len(body), size):
                if at and released.wait(pause):
                    return
                self.wfile.write(body[at:at + size])
                self.wfile.flush()

        def log_message(self, *args: object) -> None:
            pass

    stack.stop_backend(name)
    server = None
    try:
        server = _Impostor(("127.0.0.1", stack.backend_ports[name]), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield
    finally:
        released.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        stack.start_backend(name)
        reset_circuits(stack.sessions, SERVICE, [name])


def genuine_answer(stack, name: str, insz: str, on: date = ON) -> bytes:  # type: ignore[no-untyped-def]
    """A real, signed answer of a reference backend, asked directly with the integrator's key."""
    root, _header, body = new_envelope()
    body.append(build(f"{{{SOURCE_NS}}}get_statuses", {"insz": insz, "reference_date": on}))
    sign_envelope(root, SigningKey.from_identity(stack.pki.integrator))
    reply = requests.post(f"http://127.0.0.1:{stack.backend_ports[name]}/", data=etree.tostring(root), timeout=30,
                          headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
    assert reply.status_code == 200 and b"get_statusesResponse" in reply.content, reply.text[:500]
    return reply.content


FORGED_PERIOD = b"""<?xml version="1.0"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
                  xmlns:ss="urn:kruispunt:backends:StatusSource:v1">
  <soapenv:Body><ss:get_statusesResponse><ss:get_statusesResult><ss:StatusPeriod>
    <ss:code>INCOME_GUARANTEE_ELDERLY</ss:code><ss:start>2000-01-01</ss:start>
  </ss:StatusPeriod></ss:get_statusesResult></ss:get_statusesResponse></soapenv:Body>
</soapenv:Envelope>"""


def _not_xml(stack) -> bytes:  # type: ignore[no-untyped-def]
    return b"this is not xml"


def _unsigned(stack) -> bytes:  # type: ignore[no-untyped-def]
    return FORGED_PERIOD


def _signed_by_another_source(stack) -> bytes:  # type: ignore[no-untyped-def]
    pki = stack.settings.pki_dir
    other = Identity("health-insurance", pki / "backend-health-insurance.crt", pki / "backend-health-insurance.key")
    root = etree.fromstring(FORGED_PERIOD)
    return etree.tostring(sign_envelope(root, SigningKey.from_identity(other)))


@pytest.mark.parametrize("answer", [_not_xml, _unsigned, _signed_by_another_source],
                         ids=["not-xml", "unsigned-envelope", "signed-by-another-source"])
def test_source_answering_something_unacceptable_is_reported_invalid_answer(stack, answer) -> None:
    who = person("Luc Wouters")  # the forged period would be the only status he has
    with impostor(stack, "pension-service", answer(stack)):
        seen = lookup(stack, who)
    assert_only_source_unavailable(stack, seen, who, "pension-service", "Server.Backend.InvalidAnswer")
    assert seen.statuses == []


def test_signed_answer_about_another_person_replayed_by_a_source_is_not_accepted(stack) -> None:
    about_maria = genuine_answer(stack, "pension-service", person("Maria Janssens").insz)
    assert b"INCOME_GUARANTEE_ELDERLY" in about_maria
    luc = person("Luc Wouters")
    with impostor(stack, "pension-service", about_maria):
        seen = lookup(stack, luc)
    assert ("INCOME_GUARANTEE_ELDERLY", "pension-service") not in seen.statuses
    assert seen.sources["pension-service"][0] == "UNAVAILABLE"


@pytest.fixture
def short_timeout(stack) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """social-integration's timeout lowered to 0.5 s in the repository (the stack does not cache it)."""
    name = "social-integration"
    query = select(Backend).where(Backend.service == SERVICE, Backend.name == name)
    with stack.sessions() as session:
        row = session.execute(query).scalar_one()
        original, row.timeout_seconds = row.timeout_seconds, 0.5
        session.commit()
    try:
        yield name
    finally:
        with stack.sessions() as session:
            session.execute(query).scalar_one().timeout_seconds = original
            session.commit()


def test_source_slower_than_its_timeout_is_reported_timeout(stack, short_timeout: str) -> None:
    who = person("Ahmed El Amrani")
    with impostor(stack, short_timeout, genuine_answer(stack, short_timeout, who.insz), delay=10.0):
        started = time.monotonic()
        seen = lookup(stack, who)
        elapsed = time.monotonic() - started
    assert_only_source_unavailable(stack, seen, who, short_timeout, "Server.Backend.Timeout")
    assert "0.5 s" in seen.sources[short_timeout][1]
    assert elapsed < 8.0  # it did not wait for the (genuine, acceptable) answer


def test_source_trickling_its_answer_past_its_timeout_is_reported_timeout(stack, short_timeout: str) -> None:
    who = person("Ahmed El Amrani")
    answer = genuine_answer(stack, short_timeout, who.insz)
    with impostor(stack, short_timeout, answer, chunks=24, pause=0.15):  # each gap well inside 0.5 s; 3.45 s in all
        seen = lookup(stack, who)
    assert_only_source_unavailable(stack, seen, who, short_timeout, "Server.Backend.Timeout")
