"""Federation between integrators: signed calls to a peer, pulling its change feed, forwarding requests."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import requests
from cryptography import x509
from kruispunt_client.xml import build
from lxml import etree
from requests.adapters import HTTPAdapter
from sqlalchemy.orm import Session, sessionmaker

from integrator.envelope import EnvelopeLimits, parse_envelope
from integrator.faults import KruispuntFault, PeerInvalidAnswer, PeerRefused, PeerUnavailable
from integrator.namespaces import KP, SOAP_ENV, q
from integrator.pki import fingerprint
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope, signature_digest
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import SecurityPolicy, verify_envelope
from repository.documents import DocumentSet
from repository.peers import PeerView, RemoteVersion, apply_page, record_sync_error

FD = "urn:kruispunt:Federation:v1"
FEDERATION_PATH = "/soap/Federation/v1"
SYNC_PURPOSE = "FEDERATION_SYNC"
PAGE = 500
PAGE_BYTES = 8 * 1024 * 1024  # documents per page, before base64 (a peer accepts 64 MiB answers by default)


@dataclass(frozen=True)
class PeerAnswer:
    payload: etree._Element
    ticket: str
    upstream: tuple[str, ...]


class PeerClient:
    """Signs requests to peers with this integrator's key; accepts only the registered peer's signed answers."""

    def __init__(self, key: SigningKey, trust: TrustStore, limits: EnvelopeLimits, timeout: float = 30.0) -> None:
        self.key, self.trust, self.limits, self.timeout = key, trust, limits, timeout
        self.http = requests.Session()
        self.http.trust_env = False  # peers are reached directly (and reading the environment per call is slow)
        self.http.mount("http://", HTTPAdapter(pool_maxsize=32))
        self.http.mount("https://", HTTPAdapter(pool_maxsize=32))

    def call(self, peer: PeerView, path: str, payload: etree._Element, headers: list[etree._Element],
             soap_action: str = "") -> PeerAnswer:
        root, header, body = new_envelope()
        for element in headers:
            header.append(element)
        body.append(payload)
        sign_envelope(root, self.key, headers=headers)
        try:
            reply = self.http.post(f"{peer.url.rstrip('/')}{path}", data=etree.tostring(root), timeout=self.timeout,
                                   headers={"Content-Type": "text/xml; charset=utf-8",
                                            "SOAPAction": f'"{soap_action}"'})
        except requests.RequestException as exc:
            raise PeerUnavailable(f"Integrator {peer.name} cannot be reached: {type(exc).__name__}.",
                                  source=peer.name) from None
        return self._read(peer, reply, signature_digest(root))

    def _read(self, peer: PeerView, reply: requests.Response, request_digest: bytes) -> PeerAnswer:
        try:
            envelope = parse_envelope(reply.content, self.limits)
            verified = verify_envelope(envelope, self.trust, SecurityPolicy(), datetime.now(UTC))
        except KruispuntFault as fault:
            raise PeerInvalidAnswer(f"Integrator {peer.name} answered HTTP {reply.status_code} with a message that "
                                    f"is refused: {fault.code}: {fault.reason}", source=peer.name) from None
        registered = x509.load_pem_x509_certificate(peer.certificate_pem.encode())
        if verified.fingerprint != fingerprint(registered):
            raise PeerInvalidAnswer(f"Integrator {peer.name} answered with a certificate that is not the one "
                                    "registered for it.", source=peer.name)
        answer = verified.headers.get(q(KP, "Answer"))
        if answer is None or answer.findtext(q(KP, "RequestSignatureDigest")) != base64.b64encode(
                request_digest).decode():
            raise PeerInvalidAnswer(f"Integrator {peer.name} sent an answer not bound to this request.",
                                    source=peer.name)
        ticket = answer.findtext(q(KP, "Ticket")) or ""
        upstream = tuple(t.text or "" for t in answer.iterfind(q(KP, "UpstreamTicket")))
        payload = verified.payload
        if payload is None:
            raise PeerInvalidAnswer(f"Integrator {peer.name} answered with an empty Body.", source=peer.name)
        if payload.tag == q(SOAP_ENV, "Fault"):
            detail = payload.find(f"detail/{q(KP, 'FaultDetail')}")
            code = detail.findtext(q(KP, "Code")) if detail is not None else None
            reason = detail.findtext(q(KP, "Reason")) if detail is not None else payload.findtext("faultstring")
            raise PeerRefused(f"{reason} (integrator {peer.name}, ticket {ticket})", source=peer.name,
                              remote_code=code or "Server.Internal", remote_status=reply.status_code,
                              tickets=(ticket, *upstream))
        return PeerAnswer(payload, ticket, upstream)


@dataclass(frozen=True)
class Forwarded:
    """The original caller, as the forwarding integrator vouches for them."""

    organisation: str
    official: str
    purpose: str
    message_id: str
    ticket: str
    via: tuple[str, ...]


def forward(client: PeerClient, peer: PeerView, path: str, payload: etree._Element, soap_action: str,
            on_behalf_of: Forwarded) -> PeerAnswer:
    """Send a request on to the integrator that owns the service, signed by us, naming the original caller."""
    caller = build(q(KP, "Caller"), {"Official": on_behalf_of.official, "Purpose": on_behalf_of.purpose,
                                     "MessageId": str(uuid.uuid4())})
    behalf = build(q(KP, "OnBehalfOf"), {
        "Organisation": on_behalf_of.organisation, "Official": on_behalf_of.official,
        "Purpose": on_behalf_of.purpose, "MessageId": on_behalf_of.message_id, "Ticket": on_behalf_of.ticket,
        "Via": list(on_behalf_of.via)})
    return client.call(peer, path, payload, [caller, behalf], soap_action)


@dataclass(frozen=True)
class SyncResult:
    peer: str
    applied: int
    cursor: int
    head: int
    conflicts: list[str]


def sync_peer(client: PeerClient, sessions: sessionmaker[Session], peer: PeerView, operator_insz: str,
              progress: Callable[[int, int], None] | None = None, page: int = PAGE) -> SyncResult:
    """Pull the peer's changes since our cursor, page by page; each page is applied with its cursor in one
    transaction, so an interrupted sync resumes where it stopped."""
    cursor, applied, conflicts, head = peer.cursor, 0, [], peer.cursor
    while True:
        request = build(f"{{{FD}}}GetChangesRequest", {"Cursor": cursor, "Limit": page})
        caller = build(q(KP, "Caller"), {"Official": operator_insz, "Purpose": SYNC_PURPOSE,
                                         "MessageId": str(uuid.uuid4())})
        try:
            answer = client.call(peer, FEDERATION_PATH, request, [caller], f"{FD}:GetChanges")
        except KruispuntFault as fault:
            with sessions() as session:
                record_sync_error(session, peer, f"{fault.code}: {fault.reason}")
                session.commit()
            raise
        head = int(answer.payload.findtext(f"{{{FD}}}Head") or 0)
        items = [_remote(node) for node in answer.payload.iterfind(f"{{{FD}}}Change")]
        if not items:
            with sessions() as session:
                apply_page(session, peer, [], cursor)  # nothing new: still a successful sync (clears last_error)
                session.commit()
            break
        cursor = items[-1].seq
        with sessions() as session:
            conflicts += apply_page(session, peer, items, cursor)
            session.commit()
        applied += len(items)
        if progress is not None:
            progress(cursor, head)
        if cursor >= head:
            break
    return SyncResult(peer.name, applied, cursor, head, conflicts)


def _text(node: etree._Element, name: str) -> str:
    return node.findtext(f"{{{FD}}}{name}") or ""


def _remote(node: etree._Element) -> RemoteVersion:
    files = {d.findtext(f"{{{FD}}}Path") or "": base64.b64decode(d.findtext(f"{{{FD}}}Content") or "")
             for d in node.iterfind(f"{{{FD}}}Document")}
    sunset = _text(node, "Sunset")
    return RemoteVersion(
        seq=int(_text(node, "Seq")), kind=_text(node, "Kind"), name=_text(node, "Name"),
        version=_text(node, "Version"), description=_text(node, "Description"), owner=_text(node, "Owner"),
        origin=_text(node, "Origin"), status=_text(node, "Status"),
        sunset=date.fromisoformat(sunset) if sunset else None, successor=_text(node, "Successor") or None,
        docs=DocumentSet(_text(node, "Wsdl"), files), person_element=_text(node, "PersonElement") or None)


def change_entry(item: Any, own_name: str) -> dict[str, Any]:
    """One feed item as the GetChanges answer carries it."""
    version = item.version
    return {
        "Seq": item.seq, "Kind": item.kind, "Name": version.name, "Version": version.version,
        "Description": version.description, "Owner": version.owner,
        "Origin": own_name if version.origin == "local" else version.origin, "Status": version.status,
        "Sunset": version.sunset, "Successor": version.successor, "Wsdl": version.wsdl,
        "PersonElement": version.person_element,
        "Document": [{"Path": p, "Content": base64.b64encode(c).decode()} for p, c in sorted(item.docs.files.items())],
    }
