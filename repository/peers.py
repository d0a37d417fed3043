"""Peers and the versions learnt from them: registration, cursors, applying a page of a peer's change feed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.orm import Session

from repository.documents import DocumentSet
from repository.models import Certificate, Organisation, Peer, ServiceDocument, ServiceVersion
from repository.registry import parse_version, record_changes


@dataclass(frozen=True)
class RemoteVersion:
    """One entry of a peer's change feed, as the peer sent it."""

    seq: int
    kind: str
    name: str
    version: str
    description: str
    owner: str
    origin: str
    status: str
    sunset: date | None
    successor: str | None
    docs: DocumentSet
    person_element: str | None = None


@dataclass(frozen=True)
class PeerView:
    id: int
    name: str
    url: str
    certificate_pem: str
    enterprise_number: str
    cursor: int


def peer_view(peer: Peer, enterprise_number: str) -> PeerView:
    return PeerView(peer.id, peer.name, peer.url, peer.certificate_pem, enterprise_number, peer.cursor)


def find_peer(session: Session, name: str) -> PeerView | None:
    row = session.execute(select(Peer, Organisation.enterprise_number).join(Organisation)
                          .where(Peer.name == name)).first()
    return peer_view(row[0], row[1]) if row else None


def peer_by_id(session: Session, peer_id: int) -> PeerView | None:
    row = session.execute(select(Peer, Organisation.enterprise_number).join(Organisation)
                          .where(Peer.id == peer_id)).first()
    return peer_view(row[0], row[1]) if row else None


def peer_by_certificate(session: Session, fingerprint: str) -> PeerView | None:
    """The peer whose organisation owns this certificate, if the organisation is a registered peer."""
    row = session.execute(
        select(Peer, Organisation.enterprise_number).join(Organisation)
        .join(Certificate, Certificate.organisation_id == Organisation.id)
        .where(Certificate.fingerprint == fingerprint)
    ).first()
    return peer_view(row[0], row[1]) if row else None


def list_peers(session: Session) -> list[Peer]:
    return list(session.execute(select(Peer).order_by(Peer.name)).scalars())


def apply_page(session: Session, peer: PeerView, items: list[RemoteVersion], cursor: int) -> list[str]:
    """Apply one page of a peer's feed and move its cursor, in the caller's transaction; return conflicts."""
    conflicts: list[str] = []
    now = datetime.now(UTC)
    keys = [(item.name, *parse_version(item.version)) for item in items]
    known = {(r.name, r.major, r.minor): r for r in session.execute(select(ServiceVersion).where(
        tuple_(ServiceVersion.name, ServiceVersion.major, ServiceVersion.minor).in_(keys))).scalars()} if keys else {}
    applied: list[tuple[ServiceVersion, RemoteVersion]] = []
    for item, (_, major, minor) in zip(items, keys, strict=True):
        row = known.get((item.name, major, minor))
        if row is not None and row.origin_peer_id != peer.id:
            conflicts.append(f"{item.name} {item.version}: already registered here (origin {row.origin}); kept ours")
            continue
        if row is None:
            row = ServiceVersion(name=item.name, major=major, minor=minor, origin_peer_id=peer.id, updated_at=now)
            session.add(row)
        row.description, row.owner, row.origin = item.description, item.owner, item.origin
        row.status = "retired" if item.kind == "withdrawn" else item.status
        row.sunset, row.successor, row.wsdl = item.sunset, item.successor, item.docs.wsdl
        row.person_element = item.person_element
        row.federated = item.kind != "withdrawn"  # passed on to our own peers, one level further
        known[(item.name, major, minor)] = row  # the same version twice in a page: the later state wins
        applied.append((row, item))
    record_changes(session, [(row, item.kind) for row, item in applied], now)  # flushes: new rows get their ids
    if applied:
        session.execute(delete(ServiceDocument).where(ServiceDocument.version_id.in_({r.id for r, _ in applied})))
        latest = {row.id: item for row, item in applied}
        session.execute(insert(ServiceDocument), [{"version_id": version_id, "path": p, "content": c}
                                                  for version_id, item in latest.items()
                                                  for p, c in item.docs.files.items()])
    stored = session.get(Peer, peer.id)
    assert stored is not None
    stored.cursor = cursor
    stored.last_sync_at = now
    stored.synced_versions = (stored.synced_versions or 0) + len(items) - len(conflicts)
    stored.last_error = "; ".join(conflicts)[:2000] or None
    return conflicts


def record_sync_error(session: Session, peer: PeerView, error: str) -> None:
    stored = session.get(Peer, peer.id)
    if stored is not None:
        stored.last_error = error[:2000]
        stored.last_sync_at = datetime.now(UTC)
