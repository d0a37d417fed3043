"""Federation when things go wrong, over real sockets: three integrators as separate gunicorn processes (federal
and regional on SQLite, social-security on PostgreSQL), synced with the operator's CLI and called with signed
requests. Incremental sync, lifecycle moves and withdrawals travelling down the chain, a peer that is down, an
impostor peer, forwarded requests that loop or go too far, and a backend fault relayed back through two hops.

The federation fixture is shared: every test syncs what it needs first, uses its own service names, and puts back
in `finally` whatever process it stops.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

import pytest
from kruispunt_client.xml import build
from lxml import etree
from sqlalchemy import delete, func, select

from integrator import commands
from integrator.contract import Contract
from integrator.faults import PeerRefused
from integrator.federation import FEDERATION_PATH, PeerClient
from integrator.namespaces import KP, q
from integrator.pki import create_ca, fingerprint, issue
from integrator.ticket import new_ticket
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope, signature_digest
from integrator.wssec.trust import TrustStore
from repository import registry
from repository.models import Certificate, Peer, ServiceVersion
from repository.peers import PeerView
from services import demo_organisations
from services.backends.status_source import SOURCES
from tests.e2e.federation_calls import (
    FD,
    PERSON,
    SS,
    forwarded_call,
    forwarded_request,
    grant_at_regional,
    kruispunt,
    municipal_call,
    peer_list,
    register_at_federal,
    request_digest,
    signed_answer,
    sync,
    sync_chain,
    synced,
    tickets_in,
    unique_service,
)
from tests.federation import SERVICE
from tests.support import PROJECT, answering_server, audit_record, fault_of, gunicorn, post, wait_for

pytestmark = pytest.mark.e2e

SERVICE_KEY = f"{SERVICE}/v1"


def versions_at(integrator, name: str) -> dict[str, ServiceVersion]:  # type: ignore[no-untyped-def]
    with integrator.sessions() as session:
        rows = session.execute(select(ServiceVersion).where(ServiceVersion.name == name)).scalars().all()
        session.expunge_all()
    return {row.version: row for row in rows}


def version_count(integrator) -> int:  # type: ignore[no-untyped-def]
    with integrator.sessions() as session:
        return int(session.execute(select(func.count()).select_from(ServiceVersion)).scalar_one())


def peer_row(integrator, name: str) -> Peer:  # type: ignore[no-untyped-def]
    with integrator.sessions() as session:
        row = session.execute(select(Peer).where(Peer.name == name)).scalar_one()
        session.expunge(row)
    return row


def status_codes(payload: etree._Element) -> list[str]:
    return sorted(c.text or "" for c in payload.iter(f"{{{SS}}}code"))


# --- 1. sync and incremental sync --------------------------------------------------------------------------
def test_a_sync_carries_only_the_versions_that_changed_since_the_cursor(federation) -> None:
    social = federation.social
    synced(social, "federal")  # whatever earlier tests left behind
    before = peer_list(social)["federal"]
    stored = peer_row(social, "federal")
    assert (before.cursor, before.versions) == (stored.cursor, stored.synced_versions)
    assert before.url == federation.federal.base_url and before.last_sync != "never"
    assert before.versions >= 1  # FederalStatus at least
    assert versions_at(social, SERVICE)["1.0"].origin == "federal"
    idle = synced(social, "federal")
    assert (idle.applied, idle.cursor) == (0, before.cursor)
    count = version_count(social)

    name, closed = unique_service(), unique_service("Closed")
    seq = register_at_federal(federation, name)  # two changes at federal (created, active): one version travels
    first = synced(social, "federal")
    assert (first.applied, first.cursor) == (1, seq)
    after = peer_list(social)["federal"]
    assert (after.cursor, after.versions, after.last_error) == (seq, before.versions + 1, None)
    row = versions_at(social, name)["1.0"]
    assert (row.status, row.origin, row.federated, row.origin_peer_id) == ("active", "federal", True, stored.id)

    seq_minor = register_at_federal(federation, name, "1.1")
    register_at_federal(federation, closed, federated=False)  # not open to federation: never travels
    with federation.federal.sessions() as session:
        seq_old = registry.set_lifecycle(session, name, "1.0", "deprecated", sunset=date(2031, 1, 31)).change_seq
        session.commit()
    second = synced(social, "federal")
    assert (second.applied, second.cursor) == (2, max(seq_minor, seq_old))
    assert {v: (r.status, r.sunset) for v, r in versions_at(social, name).items()} == {
        "1.0": ("deprecated", date(2031, 1, 31)), "1.1": ("active", None)}
    assert versions_at(social, closed) == {}
    assert version_count(social) == count + 2
    assert peer_list(social)["federal"].versions == before.versions + 3

    again = synced(social, "federal")
    assert (again.applied, again.cursor) == (0, second.cursor)
    assert version_count(social) == count + 2


# --- 2. lifecycle moves travel down the chain --------------------------------------------------------------
def test_deprecation_and_retirement_reach_the_regional_integrator(federation) -> None:
    name, successor = unique_service(), f"{unique_service('Next')} v1"
    register_at_federal(federation, name)
    grant_at_regional(federation, name)
    sync_chain(federation)
    reply = municipal_call(federation, name)
    assert reply.status_code == 200, reply.text
    answer = signed_answer(federation.regional, reply)
    assert answer.signer == fingerprint(federation.regional.identity.load_cert())
    assert answer.answer.find(q(KP, "Deprecation")) is None
    assert status_codes(answer.payload) == ["INCREASED_REIMBURSEMENT"]
    assert len(answer.answer.findall(q(KP, "UpstreamTicket"))) == 2  # answered by the federal backend

    sunset = date(2030, 6, 30)
    with federation.federal.sessions() as session:
        registry.set_lifecycle(session, name, "1.0", "deprecated", sunset=sunset, successor=successor)
        session.commit()
    sync_chain(federation)
    for integrator in (federation.social, federation.regional):
        row = versions_at(integrator, name)["1.0"]
        assert (row.status, row.sunset, row.successor, row.origin) == ("deprecated", sunset, successor, "federal")
    reply = municipal_call(federation, name)
    assert reply.status_code == 200, reply.text
    answer = signed_answer(federation.regional, reply)
    deprecation = answer.answer.find(q(KP, "Deprecation"))
    assert deprecation is not None
    assert (deprecation.findtext(q(KP, "Sunset")), deprecation.findtext(q(KP, "Successor"))) == (
        "2030-06-30", successor)
    assert status_codes(answer.payload) == ["INCREASED_REIMBURSEMENT"]  # deprecated still answers

    with federation.federal.sessions() as session:
        registry.set_lifecycle(session, name, "1.0", "retired", successor=successor)
        session.commit()
    sync_chain(federation)
    assert versions_at(federation.regional, name)["1.0"].status == "retired"
    refused = municipal_call(federation, name)
    fault = fault_of(refused)
    assert (fault.http_status, fault.code, fault.source) == (410, "Client.Service.Retired", None)
    assert fault.reason == f"{name} 1.0 is retired; use {successor} instead."
    record = audit_record(federation.regional.sessions, fault.ticket)
    assert (record.outcome, record.fault_code, record.service) == ("FAULT", "Client.Service.Retired", f"{name}/v1")
    assert record.forwarded_to is None  # refused at regional: nothing was forwarded


# --- 3. a peer that is down ---------------------------------------------------------------------------------
def test_a_peer_that_is_down_fails_the_sync_and_the_calls_and_the_next_sync_resumes(federation) -> None:
    federal, social, regional = federation.federal, federation.social, federation.regional
    sync_chain(federation)
    cursor = peer_list(social)["federal"].cursor
    name = unique_service()
    reason = "Integrator federal cannot be reached: ConnectionError."
    federal.stop()
    try:
        failed = sync(social, "federal")
        assert failed.returncode == 2, failed.stdout + failed.stderr
        assert failed.stderr.strip() == (
            f"sync federal failed: Server.Federation.PeerUnavailable: {reason} (resumes from cursor {cursor})")
        assert failed.stdout == ""
        line = peer_list(social)["federal"]
        assert (line.cursor, line.last_error) == (cursor, f"Server.Federation.PeerUnavailable: {reason}")
        assert peer_row(social, "federal").cursor == cursor

        # regional forwards a call for FederalStatus to social-security, which cannot reach the owner
        reply = forwarded_call(social, regional.identity, SERVICE, [regional.enterprise_number])
        fault = fault_of(reply)
        assert (fault.http_status, fault.code, fault.source, fault.reason) == (
            502, "Server.Federation.PeerUnavailable", "federal", reason)
        assert signed_answer(social, reply).signer == fingerprint(social.identity.load_cert())
        record = audit_record(social.sessions, fault.ticket)
        assert (record.outcome, record.fault_code, record.detail) == ("FAULT", "Server.Federation.PeerUnavailable",
                                                                      reason)
        assert (record.came_from, record.forwarded_to, record.forwarded_tickets) == ("regional", "federal", None)
        assert record.organisation == demo_organisations.KRUISDORP.enterprise_number

        seq = register_at_federal(federation, name)  # federal's operators work on while it is down
    finally:
        federal.start(federation.log_dir)
    resumed = synced(social, "federal")
    assert (resumed.applied, resumed.cursor) == (1, seq)  # only what changed after the kept cursor
    line = peer_list(social)["federal"]
    assert (line.cursor, line.last_error) == (seq, None)
    assert versions_at(social, name)["1.0"].status == "active"
    back = municipal_call(federation, SERVICE)
    assert back.status_code == 200, back.text


def test_a_peer_down_two_hops_away_is_reported_to_the_caller(federation) -> None:
    federal, social, regional = federation.federal, federation.social, federation.regional
    sync_chain(federation)
    reason = "Integrator federal cannot be reached: ConnectionError."
    federal.stop()
    try:
        reply = municipal_call(federation, SERVICE)
    finally:
        federal.start(federation.log_dir)
    fault = fault_of(reply)
    # social-security could not reach federal; regional passes social-security's refusal on as it came
    assert (fault.http_status, fault.code, fault.source) == (502, "Server.Federation.PeerUnavailable",
                                                             "social-security")
    assert fault.reason.startswith(f"{reason} (integrator social-security, ticket ")
    (social_ticket,) = tickets_in(fault.reason)
    at_regional = audit_record(regional.sessions, fault.ticket)
    assert (at_regional.outcome, at_regional.fault_code, at_regional.forwarded_to) == (
        "FAULT", "Server.Federation.PeerUnavailable", "social-security")
    at_social = audit_record(social.sessions, social_ticket)
    assert (at_social.outcome, at_social.fault_code, at_social.detail) == (
        "FAULT", "Server.Federation.PeerUnavailable", reason)
    assert (at_social.came_from, at_social.came_from_ticket, at_social.forwarded_to) == (
        "regional", fault.ticket, "federal")


def test_a_successful_sync_with_nothing_new_clears_the_last_error(federation) -> None:
    federal, social = federation.federal, federation.social
    synced(social, "federal")
    federal.stop()
    try:
        failed = sync(social, "federal")
        assert failed.returncode == 2
        assert peer_list(social)["federal"].last_error is not None
    finally:
        federal.start(federation.log_dir)
    after = synced(social, "federal")
    assert after.applied == 0
    assert peer_list(social)["federal"].last_error is None


# --- 4. an impostor peer; a forward from an integrator that is not a peer -------------------------------------
@pytest.mark.parametrize("signed_by", ["rogue-ca", "unregistered-certificate"])
def test_a_sync_from_an_impostor_is_refused_and_applies_nothing(federation, tmp_path, signed_by: str) -> None:
    social = federation.social
    rogue_ca = create_ca(tmp_path / "rogue", common_name="kruispunt demo CA")  # the network CA's name, not its key
    number = demo_organisations.enterprise_number(2000040)
    impostor = issue(rogue_ca, tmp_path / "rogue", "impostor", common_name="kruispunt impostor",
                     organization="impostor", serial_number=number)
    # the rogue CA's certificate, or one the network's CA issued, but to another integrator than this peer
    signer = impostor if signed_by == "rogue-ca" else federation.regional.identity
    peer, fake = f"impostor-{uuid.uuid4().hex[:8]}", unique_service("Fake")
    docs = commands.read_documents(PROJECT / "wsdl" / "StatusSource-v1.wsdl", PROJECT)
    change = build(f"{{{FD}}}GetChangesResponse", {"Head": 1, "Change": [{
        "Seq": 1, "Kind": "created", "Name": fake, "Version": "1.0", "Description": "not a real service",
        "Owner": number, "Origin": peer, "Status": "active", "Wsdl": docs.wsdl,
        "Document": [{"Path": p, "Content": base64.b64encode(c).decode()} for p, c in sorted(docs.files.items())]}]})
    Contract(PROJECT / "xsd" / "Federation" / "v1" / "Federation.xsd").validate(change)  # a well-formed feed page

    def answer(request: bytes) -> bytes:
        now = datetime.now(UTC)
        root, header, body = new_envelope()
        bound = build(q(KP, "Answer"), {
            "Ticket": new_ticket(now), "Received": now, "Answered": now,
            "RequestSignatureDigest": base64.b64encode(signature_digest(etree.fromstring(request))).decode()})
        header.append(bound)
        body.append(etree.fromstring(etree.tostring(change)))
        sign_envelope(root, SigningKey.from_identity(signer), headers=[bound])
        return etree.tostring(root)

    with answering_server(answer) as (url, received):
        with social.sessions() as session:
            commands.add_peer(session, peer, url, impostor.cert_path.read_bytes(), number)
            session.commit()
        try:
            failed = sync(social, peer)
            assert len(received) == 1  # it did ask the impostor
            assert failed.returncode == 2, failed.stdout + failed.stderr
            assert failed.stdout == ""
            prefix = f"sync {peer} failed: Server.Federation.PeerInvalidAnswer: Integrator {peer} answered"
            if signed_by == "rogue-ca":
                expected = f"{prefix} HTTP 200 with a message that is refused: Client.Security.CertificateUntrusted"
            else:
                expected = f"{prefix} with a certificate that is not the one registered for it."
            assert failed.stderr.startswith(expected), failed.stderr
            assert failed.stderr.rstrip().endswith("(resumes from cursor 0)")
            line = peer_list(social)[peer]
            assert (line.cursor, line.versions) == (0, 0)
            assert line.last_error is not None and line.last_error.startswith("Server.Federation.PeerInvalidAnswer: ")
            assert versions_at(social, fake) == {}
        finally:
            with social.sessions() as session:
                session.execute(delete(Peer).where(Peer.name == peer))
                session.execute(delete(Certificate).where(
                    Certificate.fingerprint == fingerprint(impostor.load_cert())))
                session.commit()


def test_a_request_forwarded_by_an_integrator_that_is_not_a_peer_is_refused(federation) -> None:
    federal, regional = federation.federal, federation.regional  # regional is no peer of federal's
    reply = forwarded_call(federal, regional.identity, SERVICE, [regional.enterprise_number])
    fault = fault_of(reply)
    assert (fault.http_status, fault.code, fault.source) == (403, "Client.Federation.PeerUnknown", None)
    assert signed_answer(federal, reply).signer == fingerprint(federal.identity.load_cert())
    record = audit_record(federal.sessions, fault.ticket)
    assert (record.outcome, record.fault_code, record.service) == (
        "FAULT", "Client.Federation.PeerUnknown", SERVICE_KEY)
    assert record.certificate == fingerprint(regional.identity.load_cert())
    assert (record.came_from, record.forwarded_to, record.organisation) == (None, None, None)


# --- 5. loops and the hop limit -----------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "code", "status"), [
    ("regional,social", None, 200),  # two integrators before federal: within the limit
    ("federal,social", "Client.Federation.Loop", 400),
    ("social,federal", "Client.Federation.Loop", 400),
    ("regional,other,social", "Client.Federation.HopLimit", 400),
])
def test_forwarded_requests_that_loop_or_pass_too_many_integrators_are_refused(
        federation, path: str, code: str | None, status: int) -> None:
    numbers = {"federal": federation.federal.enterprise_number, "social": federation.social.enterprise_number,
               "regional": federation.regional.enterprise_number,
               "other": demo_organisations.enterprise_number(2000050)}
    via = [numbers[hop] for hop in path.split(",")]
    federal = federation.federal
    request = forwarded_request(federation.social.identity, via)
    reply = post(federal.base_url, request, path=f"/soap/{SERVICE}/v1")
    assert reply.status_code == status, reply.text
    answer = signed_answer(federal, reply)
    assert answer.signer == fingerprint(federal.identity.load_cert())
    ticket = answer.answer.findtext(q(KP, "Ticket")) or ""
    record = audit_record(federal.sessions, ticket)
    assert (record.service, record.certificate) == (SERVICE_KEY, fingerprint(federation.social.identity.load_cert()))
    if code is None:
        assert answer.answer.findtext(q(KP, "RequestSignatureDigest")) == request_digest(request)
        assert status_codes(answer.payload) == ["INCREASED_REIMBURSEMENT"]
        assert (record.outcome, record.fault_code, record.came_from) == ("OK", None, "social-security")
        assert record.organisation == demo_organisations.KRUISDORP.enterprise_number
        return
    fault = fault_of(reply)
    assert (fault.code, fault.ticket, fault.source) == (code, ticket, None)
    assert " → ".join(via) in fault.reason
    assert (record.outcome, record.fault_code) == ("FAULT", code)


def test_a_fault_answer_is_bound_to_the_request_it_refuses(federation) -> None:
    federal = federation.federal
    request = forwarded_request(federation.social.identity, [federal.enterprise_number])
    reply = post(federal.base_url, request, path=f"/soap/{SERVICE}/v1")
    assert fault_of(reply).code == "Client.Federation.Loop"
    answer = signed_answer(federal, reply)
    assert answer.answer.findtext(q(KP, "RequestSignatureDigest")) == request_digest(request)


# --- 6. a fault at the owner, relayed back ------------------------------------------------------------------
@contextmanager
def backend_down(federation) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """FederalStatus's one backend process is stopped, then started again exactly as the fixture does."""
    federation.backend.terminate()
    federation.backend.wait(timeout=30)
    try:
        yield
    finally:
        federation.backend = gunicorn("services.backends.wsgi:create_app()", federation.backend_port,
                                      dict(federation.federal.env, KRUISPUNT_BACKEND=SOURCES[0].name),
                                      log=federation.log_dir / "backend.log")
        wait_for(f"http://127.0.0.1:{federation.backend_port}/?wsdl")


OWNER_REASON = f"No backend of {SERVICE_KEY} could answer: {SOURCES[0].name}: Server.Backend.Unavailable."


def test_a_backend_fault_at_the_owner_is_answered_to_the_forwarding_peer(federation) -> None:
    federal, social, regional = federation.federal, federation.social, federation.regional
    via = [regional.enterprise_number, social.enterprise_number]
    with backend_down(federation):
        reply = forwarded_call(federal, social.identity, SERVICE, via)
    back = forwarded_call(federal, social.identity, SERVICE, via)  # the backend is back: so are the answers
    assert back.status_code == 200, back.text
    fault = fault_of(reply)
    assert (fault.http_status, fault.code, fault.source, fault.reason) == (
        502, "Server.Backend.Unavailable", SERVICE_KEY, OWNER_REASON)
    assert signed_answer(federal, reply).signer == fingerprint(federal.identity.load_cert())
    record = audit_record(federal.sessions, fault.ticket)
    assert (record.outcome, record.fault_code, record.detail) == ("FAULT", "Server.Backend.Unavailable", OWNER_REASON)
    assert (record.came_from, record.forwarded_to, record.organisation) == (
        "social-security", None, demo_organisations.KRUISDORP.enterprise_number)


def test_a_backend_fault_at_the_owner_reaches_the_caller_through_both_integrators(federation) -> None:
    federal, social, regional = federation.federal, federation.social, federation.regional
    sync_chain(federation)
    with backend_down(federation):
        reply = municipal_call(federation, SERVICE)
    back = municipal_call(federation, SERVICE)
    assert back.status_code == 200, back.text
    fault = fault_of(reply)
    assert (fault.http_status, fault.code, fault.source) == (502, "Server.Backend.Unavailable", "social-security")
    assert signed_answer(regional, reply).signer == fingerprint(regional.identity.load_cert())
    assert fault.reason.startswith(f"{OWNER_REASON} (integrator federal, ticket ")
    federal_ticket, social_ticket = tickets_in(fault.reason)
    assert fault.reason.endswith(f"(integrator social-security, ticket {social_ticket})")

    at_regional = audit_record(regional.sessions, fault.ticket)
    assert (at_regional.outcome, at_regional.fault_code, at_regional.forwarded_to) == (
        "FAULT", "Server.Backend.Unavailable", "social-security")
    at_social = audit_record(social.sessions, social_ticket)
    assert (at_social.outcome, at_social.fault_code, at_social.came_from, at_social.came_from_ticket,
            at_social.forwarded_to) == ("FAULT", "Server.Backend.Unavailable", "regional", fault.ticket, "federal")
    at_federal = audit_record(federal.sessions, federal_ticket)
    assert (at_federal.outcome, at_federal.fault_code, at_federal.came_from, at_federal.came_from_ticket) == (
        "FAULT", "Server.Backend.Unavailable", "social-security", social_ticket)
    assert (at_federal.detail, at_federal.forwarded_to) == (OWNER_REASON, None)


def test_a_refusal_relayed_by_the_middle_integrator_is_passed_on_and_audited(federation) -> None:
    name = unique_service()
    register_at_federal(federation, name)
    grant_at_regional(federation, name)
    sync_chain(federation)
    with federation.federal.sessions() as session:
        registry.set_lifecycle(session, name, "1.0", "retired")
        session.commit()
    synced(federation.social, "federal")  # regional has not synced yet: it still forwards
    fault = fault_of(municipal_call(federation, name))
    assert (fault.http_status, fault.code, fault.source) == (410, "Client.Service.Retired", "social-security")
    assert fault.reason.startswith(f"{name} 1.0 is retired. (integrator social-security, ticket ")
    (social_ticket,) = tickets_in(fault.reason)
    record = audit_record(federation.regional.sessions, fault.ticket)
    assert (record.outcome, record.fault_code) == ("FAULT", "Client.Service.Retired")
    assert (record.forwarded_to, record.forwarded_tickets) == ("social-security", social_ticket)


# --- 7. withdrawn from federation ---------------------------------------------------------------------------
def test_a_version_withdrawn_from_federation_is_retired_downstream(federation) -> None:
    federal, social, regional = federation.federal, federation.social, federation.regional
    name = unique_service()
    register_at_federal(federation, name)
    grant_at_regional(federation, name)
    sync_chain(federation)
    reply = municipal_call(federation, name)
    assert reply.status_code == 200, reply.text

    done = kruispunt(federal, "service", "federate", "--name", name, "--version", "1.0", "--withdraw")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{name} 1.0: withdrawn from federation\n"
    own = versions_at(federal, name)["1.0"]
    assert (own.status, own.federated) == ("active", False)  # still served to federal's own customers
    assert synced(social, "federal").applied == 1
    learnt = versions_at(social, name)["1.0"]
    assert (learnt.status, learnt.federated, learnt.origin) == ("retired", False, "federal")

    # social-security refuses it now, to regional forwarding a call for it
    at_social = fault_of(forwarded_call(social, regional.identity, name, [regional.enterprise_number]))
    assert (at_social.http_status, at_social.code, at_social.source, at_social.reason) == (
        410, "Client.Service.Retired", None, f"{name} 1.0 is retired.")
    assert audit_record(social.sessions, at_social.ticket).forwarded_to is None
    # and federal no longer accepts it from a peer
    closed = fault_of(forwarded_call(federal, social.identity, name, [social.enterprise_number]))
    assert (closed.http_status, closed.code) == (403, "Client.Caller.AccessDenied")
    assert closed.reason == f"Service {name} is not open to federation at this integrator."

    assert synced(regional, "social-security").applied >= 1
    row = versions_at(regional, name)["1.0"]
    assert (row.status, row.federated) == ("retired", False)
    refused = fault_of(municipal_call(federation, name))
    assert (refused.http_status, refused.code, refused.source) == (410, "Client.Service.Retired", None)
    assert refused.reason == f"{name} 1.0 is retired."
    record = audit_record(regional.sessions, refused.ticket)
    assert (record.outcome, record.fault_code, record.forwarded_to) == ("FAULT", "Client.Service.Retired", None)


def test_a_sync_larger_than_a_request_is_paged_and_applied_at_the_default_limits(federation) -> None:
    """80 versions with their documents are more than the 1 MiB a request may be: the feed pages still arrive."""
    synced(federation.social, "federal")  # catch up first
    names = [unique_service("Bulk") for _ in range(80)]
    for name in names:
        register_at_federal(federation, name)
    result = synced(federation.social, "federal")
    assert result.applied == 80 and result.cursor == result.head
    with federation.social.sessions() as session:
        arrived = session.execute(select(func.count()).select_from(ServiceVersion)
                                  .where(ServiceVersion.name.in_(names))).scalar_one()
    assert arrived == 80


def test_the_callers_files_are_checked_where_the_caller_is_a_customer_not_again_upstream(federation) -> None:
    """A version that concerns a person carries its person setting down the federation: the regional integrator
    (Kruisdorp's own) checks Kruisdorp's files; social-security and federal, which know nothing of them, do not."""
    federal, regional = federation.federal, federation.regional
    name = unique_service("Person")
    register_at_federal(federation, name)
    with federal.sessions() as session:
        row = session.execute(select(ServiceVersion).where(ServiceVersion.name == name)).scalar_one()
        row.person_element = "insz"
        registry.record_change(session, row, "updated")
        session.commit()
    grant_at_regional(federation, name)
    sync_chain(federation)
    assert versions_at(regional, name)["1.0"].person_element == "insz"

    refused = fault_of(municipal_call(federation, name))
    assert (refused.http_status, refused.code) == (403, "Client.Caller.PersonNotInFiles")
    record = audit_record(regional.sessions, refused.ticket)
    assert (record.fault_code, record.person, record.forwarded_to) == (
        "Client.Caller.PersonNotInFiles", PERSON.insz, None)

    with regional.sessions() as session:
        commands.add_directory_entry(session, demo_organisations.KRUISDORP.enterprise_number, PERSON.insz,
                                     demo_organisations.PURPOSE_TAX, date(2000, 1, 1))
        session.commit()
    answered = municipal_call(federation, name)
    assert answered.status_code == 200, answered.text
    header = signed_answer(regional, answered).answer
    tickets = [t.text for t in header.iterfind(q(KP, "UpstreamTicket"))]
    assert len(tickets) == 2  # through social-security to federal, neither of which has Kruisdorp's files


def test_the_change_feed_answers_registered_peers_only(federation) -> None:
    """The regional integrator is social-security's peer, not federal's: federal's feed refuses it, audited."""
    federal, regional = federation.federal, federation.regional
    settings = regional.settings
    client = PeerClient(SigningKey.from_identity(regional.identity),
                        TrustStore.from_files(settings.trust_anchor_paths, settings.crl_path), settings.peer_limits)
    as_if_peer = PeerView(0, "federal", federal.base_url, federal.identity.cert_path.read_text(),
                          federal.enterprise_number, 0)
    request = build(f"{{{FD}}}GetChangesRequest", {"Cursor": 0, "Limit": 10})
    caller = build(q(KP, "Caller"), {"Official": settings.operator_insz, "Purpose": "FEDERATION_SYNC",
                                     "MessageId": str(uuid.uuid4())})
    with pytest.raises(PeerRefused) as refused:
        client.call(as_if_peer, FEDERATION_PATH, request, [caller], f"{FD}:GetChanges")
    assert (refused.value.code, refused.value.HTTP_STATUS) == ("Client.Federation.PeerUnknown", 403)
    record = audit_record(federal.sessions, refused.value.tickets[0])
    assert (record.service, record.fault_code, record.came_from) == (
        "Federation/v1", "Client.Federation.PeerUnknown", None)
