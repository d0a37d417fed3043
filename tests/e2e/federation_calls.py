"""Helpers for the federation fault tests: the CLI as an operator runs it, signed StatusSource calls (as a
municipality, or forwarded as an integrator), test services owned by the federal integrator, and a tiny
impostor integrator that answers with whatever signed envelope it is given."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import requests
from kruispunt_client.xml import build
from lxml import etree

from integrator import commands
from integrator.envelope import EnvelopeLimits, parse_envelope
from integrator.namespaces import KP, q
from integrator.pki import Identity, fingerprint
from integrator.ticket import new_ticket
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope, signature_digest
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import SecurityPolicy, verify_envelope
from repository import registry
from services.backends.persons import PERSONS
from services.backends.status_source import SOURCES
from services.demo_organisations import KRUISDORP, OFFICIALS, PURPOSE_TAX
from tests.federation import Integrator
from tests.support import PROJECT, post

SS = "urn:kruispunt:backends:StatusSource:v1"
FD = "urn:kruispunt:Federation:v1"
OFFICIAL = OFFICIALS[0]  # Kruisdorp's tax official, granted FederalStatus at the regional integrator
PERSON = PERSONS[0]
TICKET = re.compile(r"KP-[0-9]{8}-[0-9a-f]{32}")
PEER_LINE = re.compile(r"^(?P<name>\S+)\s+(?P<url>\S+)\s+cursor (?P<cursor>\d+)\s+versions (?P<versions>\d+)\s+"
                       r"last sync (?P<last>never|\S+ \S+)(?:  last error: (?P<error>.*))?$")
APPLIED = re.compile(r"^(?P<peer>\S+): (?P<applied>\d+) change\(s\) applied, cursor (?P<cursor>\d+) of (?P<head>\d+)",
                     re.M)


# --- the operator's command line ---------------------------------------------------------------------
def kruispunt(integrator: Integrator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "integrator.faces.cli", *args], env=integrator.env, cwd=PROJECT,
                          capture_output=True, text=True, timeout=120, check=False)


def sync(integrator: Integrator, peer: str) -> subprocess.CompletedProcess[str]:
    return kruispunt(integrator, "peer", "sync", peer, "--quiet")


@dataclass(frozen=True)
class Synced:
    applied: int
    cursor: int
    head: int


def synced(integrator: Integrator, peer: str) -> Synced:
    """Run a sync that must succeed; what the CLI says it applied."""
    done = sync(integrator, peer)
    assert done.returncode == 0, f"sync {peer} at {integrator.name}: {done.stdout}{done.stderr}"
    match = APPLIED.search(done.stdout)
    assert match is not None and match["peer"] == peer, done.stdout
    return Synced(int(match["applied"]), int(match["cursor"]), int(match["head"]))


def sync_chain(federation) -> None:  # type: ignore[no-untyped-def]
    """Social-security pulls from federal, then regional from social-security."""
    synced(federation.social, "federal")
    synced(federation.regional, "social-security")


@dataclass(frozen=True)
class PeerLine:
    name: str
    url: str
    cursor: int
    versions: int
    last_sync: str
    last_error: str | None


def peer_list(integrator: Integrator) -> dict[str, PeerLine]:
    done = kruispunt(integrator, "peer", "list")
    assert done.returncode == 0, done.stderr
    lines: dict[str, PeerLine] = {}
    for line in done.stdout.splitlines():
        match = PEER_LINE.match(line)
        assert match is not None, f"unexpected peer list line: {line!r}"
        lines[match["name"]] = PeerLine(match["name"], match["url"], int(match["cursor"]), int(match["versions"]),
                                        match["last"], match["error"])
    return lines


# --- services owned by the federal integrator ------------------------------------------------------------
def unique_service(prefix: str = "FedTest") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def register_at_federal(federation, name: str, version: str = "1.0", *,  # type: ignore[no-untyped-def]
                        federated: bool = True, status: str = "active") -> int:
    """A StatusSource service owned by the federal integrator, served by FederalStatus's backend; its change
    sequence number at the federal integrator."""
    federal = federation.federal
    docs = commands.read_documents(PROJECT / "wsdl" / "StatusSource-v1.wsdl", PROJECT)
    source = SOURCES[0]
    with federal.sessions() as session:
        commands.register_service(session, name, version, docs, federal.enterprise_number,
                                  f"federation fault test {name}", federated=federated)
        row = registry.set_lifecycle(session, name, version, status)
        commands.add_backend(session, f"{name}/v{version.split('.')[0]}", source.name,
                             f"http://127.0.0.1:{federation.backend_port}/",
                             (federal.var_dir / "pki" / f"backend-{source.name}.crt").read_bytes(),
                             idempotent=["get_statuses"])
        seq = row.change_seq
        session.commit()
    return seq


def grant_at_regional(federation, name: str) -> None:  # type: ignore[no-untyped-def]
    """Kruisdorp's tax official may call the service at the regional integrator."""
    with federation.regional.sessions() as session:
        commands.add_access_right(session, KRUISDORP.enterprise_number, name)
        commands.add_grant(session, KRUISDORP.enterprise_number, OFFICIAL.insz, name, PURPOSE_TAX)
        session.commit()


# --- calls --------------------------------------------------------------------------------------------------
def status_payload(insz: str = PERSON.insz, on: date = date(2026, 1, 1)) -> etree._Element:
    return build(f"{{{SS}}}get_statuses", {"insz": insz, "reference_date": on})


def municipal_call(federation, service: str, at: Integrator | None = None) -> requests.Response:  # type: ignore[no-untyped-def]
    """Kruisdorp's tax official asks for a person's statuses, at the regional integrator unless told."""
    root, header, body = new_envelope()
    caller = build(q(KP, "Caller"), {"Official": OFFICIAL.insz, "Purpose": PURPOSE_TAX,
                                     "MessageId": str(uuid.uuid4())})
    header.append(caller)
    body.append(status_payload())
    sign_envelope(root, SigningKey.from_identity(federation.regional_identity), headers=[caller])
    target = at or federation.regional
    return post(target.base_url, etree.tostring(root), path=f"/soap/{service}/v1")


def forwarded_request(signer: Identity, via: list[str]) -> bytes:
    """A request as an integrator forwards it: its own kp:Caller and a signed kp:OnBehalfOf naming Kruisdorp."""
    root, header, body = new_envelope()
    caller = build(q(KP, "Caller"), {"Official": OFFICIAL.insz, "Purpose": PURPOSE_TAX,
                                     "MessageId": str(uuid.uuid4())})
    behalf = build(q(KP, "OnBehalfOf"), {
        "Organisation": KRUISDORP.enterprise_number, "Official": OFFICIAL.insz, "Purpose": PURPOSE_TAX,
        "MessageId": str(uuid.uuid4()), "Ticket": new_ticket(datetime.now(UTC)), "Via": via})
    header.append(caller)
    header.append(behalf)
    body.append(status_payload())
    sign_envelope(root, SigningKey.from_identity(signer), headers=[caller, behalf])
    return etree.tostring(root)


def forwarded_call(target: Integrator, signer: Identity, service: str, via: list[str]) -> requests.Response:
    return post(target.base_url, forwarded_request(signer, via), path=f"/soap/{service}/v1")


def request_digest(request: bytes) -> str:
    """What an answer must quote in kp:Answer/RequestSignatureDigest to be bound to this request."""
    return base64.b64encode(signature_digest(etree.fromstring(request))).decode()


@dataclass(frozen=True)
class SignedAnswer:
    """An integrator's answer after checking its signature against the network's CA."""

    signer: str  # SHA-256 fingerprint of the signing certificate
    answer: etree._Element  # the kp:Answer header
    payload: etree._Element


def signed_answer(integrator: Integrator, response: requests.Response) -> SignedAnswer:
    pki = integrator.var_dir / "pki"
    trust = TrustStore.from_files([pki / "ca.crt"], pki / "ca.crl")
    verified = verify_envelope(parse_envelope(response.content, EnvelopeLimits()), trust, SecurityPolicy(),
                               datetime.now(UTC))
    answer = verified.headers.get(q(KP, "Answer"))
    assert answer is not None and verified.payload is not None
    return SignedAnswer(fingerprint(verified.certificate), answer, verified.payload)


def tickets_in(text: str) -> list[str]:
    return TICKET.findall(text)


# --- an impostor integrator -----------------------------------------------------------------------------

