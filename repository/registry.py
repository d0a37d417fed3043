"""Registering service versions, moving them through their lifecycle, and the change feed peers pull."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from repository.compatibility import BreakingChange, breaking_changes
from repository.documents import CompiledContract, DocumentSet
from repository.models import Change, ServiceDocument, ServiceVersion

STATUSES = ("draft", "active", "deprecated", "retired")
TRANSITIONS = {
    "draft": {"active", "retired"},
    "active": {"deprecated", "retired"},
    "deprecated": {"active", "retired"},
    "retired": set(),
}
CALLABLE = ("active", "deprecated")
FEED_LOCK = 0x6B70_6665  # "kpfe": the PostgreSQL advisory lock that orders the change feed


class RegistrationRefused(ValueError):
    """A version cannot be registered or moved; problems says why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class BreakingChangesRefused(RegistrationRefused):
    """A new minor version breaks the previous minor of the same major version."""

    def __init__(self, changes: list[BreakingChange]) -> None:
        self.changes = changes
        super().__init__([str(c) for c in changes])


def parse_version(text: str) -> tuple[int, int]:
    """'1.2' -> (1, 2); refuse anything else."""
    major, dot, minor = text.partition(".")
    if not (major.isdigit() and dot and minor.isdigit()):
        raise RegistrationRefused([f"version {text!r} must be major.minor, e.g. 1.0"])
    return int(major), int(minor)


def find_version(session: Session, name: str, version: str) -> ServiceVersion | None:
    major, minor = parse_version(version)
    return session.execute(select(ServiceVersion).where(
        ServiceVersion.name == name, ServiceVersion.major == major, ServiceVersion.minor == minor)
    ).scalar_one_or_none()


def documents(session: Session, version: ServiceVersion) -> DocumentSet:
    rows = session.execute(select(ServiceDocument).where(ServiceDocument.version_id == version.id)).scalars()
    return DocumentSet(version.wsdl, {row.path: bytes(row.content) for row in rows})


def document_listing(session: Session, version_ids: list[int]) -> dict[int, tuple[list[str], bytes]]:
    """For many versions at once: their document paths, and their WSDL's content (two queries in all)."""
    listing: dict[int, tuple[list[str], bytes]] = {i: ([], b"") for i in version_ids}
    if not version_ids:
        return listing
    for version_id, path in session.execute(select(ServiceDocument.version_id, ServiceDocument.path)
                                            .where(ServiceDocument.version_id.in_(version_ids))):
        listing[version_id][0].append(path)
    wsdl_rows = session.execute(
        select(ServiceDocument.version_id, ServiceDocument.content)
        .join(ServiceVersion, ServiceVersion.id == ServiceDocument.version_id)
        .where(ServiceDocument.version_id.in_(version_ids), ServiceDocument.path == ServiceVersion.wsdl))
    for version_id, content in wsdl_rows:
        listing[version_id] = (listing[version_id][0], bytes(content))
    return listing


def record_change(session: Session, version: ServiceVersion, kind: str, now: datetime | None = None) -> int:
    """Append to the change feed and stamp the version with its sequence number."""
    return record_changes(session, [(version, kind)], now)[0]


def record_changes(session: Session, changes: list[tuple[ServiceVersion, str]],
                   now: datetime | None = None) -> list[int]:
    """Append many changes in order, in one statement, and stamp each version with its sequence number."""
    if not changes:
        return []
    now = now or datetime.now(UTC)
    if session.get_bind().dialect.name == "postgresql":
        # sequence numbers must be handed out in commit order, or a peer whose cursor passed a number still
        # uncommitted would never see that change: writers of the feed take turns until they commit
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_LOCK})
    session.flush()  # versions need their ids
    seqs = list(session.execute(
        insert(Change).returning(Change.seq, sort_by_parameter_order=True),
        [{"version_id": version.id, "kind": kind, "at": now} for version, kind in changes],
    ).scalars())
    for (version, _), seq in zip(changes, seqs, strict=True):
        version.change_seq = seq
        version.updated_at = now
    return seqs


def register_version(
    session: Session, name: str, version: str, docs: DocumentSet, *, owner: str, description: str = "",
    federated: bool = False,
) -> tuple[ServiceVersion, CompiledContract]:
    """Store a new draft version after checking its documents; a minor version must not break its predecessor."""
    major, minor = parse_version(version)
    if find_version(session, name, version) is not None:
        raise RegistrationRefused([f"{name} {version} is already registered; register a new version instead"])
    compiled = docs.compile()
    previous = session.execute(
        select(ServiceVersion).where(ServiceVersion.name == name, ServiceVersion.major == major,
                                     ServiceVersion.minor < minor, ServiceVersion.status != "draft")
        .order_by(ServiceVersion.minor.desc()).limit(1)
    ).scalar_one_or_none()
    if previous is not None:
        changes = breaking_changes(documents(session, previous).compile(), compiled)
        if changes:
            raise BreakingChangesRefused(changes)
    row = ServiceVersion(name=name, major=major, minor=minor, description=description, owner=owner,
                         status="draft", wsdl=docs.wsdl, federated=federated, origin="local",
                         updated_at=datetime.now(UTC))
    session.add(row)
    session.flush()
    session.add_all([ServiceDocument(version_id=row.id, path=p, content=c) for p, c in docs.files.items()])
    record_change(session, row, "created")
    return row, compiled


def set_lifecycle(
    session: Session, name: str, version: str, status: str, *, sunset: date | None = None,
    successor: str | None = None,
) -> ServiceVersion:
    """draft → active → deprecated (with a sunset date) → retired (naming its successor, if any)."""
    row = find_version(session, name, version)
    if row is None:
        raise RegistrationRefused([f"{name} {version} is not registered"])
    if row.origin_peer_id is not None:
        raise RegistrationRefused([f"{name} {version} belongs to integrator {row.origin}; change it there"])
    if status not in STATUSES or status not in TRANSITIONS[row.status]:
        raise RegistrationRefused([f"{name} {version} cannot go from {row.status} to {status}"])
    if status == "deprecated" and sunset is None:
        raise RegistrationRefused(["a deprecated version needs a sunset date"])
    row.status = status
    row.sunset = sunset if status in ("deprecated", "retired") else None
    if successor is not None:
        row.successor = successor
    record_change(session, row, "retired" if status == "retired" else "lifecycle")
    return row


def set_federated(session: Session, name: str, version: str, federated: bool) -> ServiceVersion:
    row = find_version(session, name, version)
    if row is None:
        raise RegistrationRefused([f"{name} {version} is not registered"])
    row.federated = federated
    record_change(session, row, "updated" if federated else "withdrawn")
    return row


def current_version(session: Session, name: str, major: int) -> ServiceVersion | None:
    """What /soap/{name}/v{major} serves: the highest callable minor, else the highest retired one."""
    rows = session.execute(
        select(ServiceVersion).where(ServiceVersion.name == name, ServiceVersion.major == major,
                                     ServiceVersion.status != "draft")
        .order_by(ServiceVersion.minor.desc())
    ).scalars().all()
    return next((r for r in rows if r.status in CALLABLE), rows[0] if rows else None)


def list_versions(session: Session, *, callable_only: bool = False) -> list[ServiceVersion]:
    query = select(ServiceVersion).order_by(ServiceVersion.name, ServiceVersion.major, ServiceVersion.minor)
    if callable_only:
        query = query.where(ServiceVersion.status.in_(CALLABLE))
    return list(session.execute(query).scalars())


@dataclass(frozen=True)
class FeedItem:
    """One entry of the change feed: the version's whole current state, documents included."""

    seq: int
    kind: str
    version: ServiceVersion
    docs: DocumentSet


def changes_since(session: Session, cursor: int, limit: int) -> tuple[list[FeedItem], int]:
    """Versions open to federation (or just withdrawn from it) changed after cursor; and the feed's head."""
    head = session.execute(select(func.coalesce(func.max(Change.seq), 0))).scalar_one()
    last_kind = (select(Change.kind).where(Change.seq == ServiceVersion.change_seq).scalar_subquery())
    rows = session.execute(
        select(ServiceVersion, last_kind)
        .where(ServiceVersion.change_seq > cursor, ServiceVersion.status != "draft")
        .where(ServiceVersion.federated | (last_kind == "withdrawn"))
        .order_by(ServiceVersion.change_seq).limit(limit)
    ).all()
    files: dict[int, dict[str, bytes]] = {v.id: {} for v, _ in rows}
    if files:
        for doc in session.execute(select(ServiceDocument).where(ServiceDocument.version_id.in_(files))).scalars():
            files[doc.version_id][doc.path] = bytes(doc.content)
    return [FeedItem(v.change_seq, kind, v, DocumentSet(v.wsdl, files[v.id])) for v, kind in rows], int(head)
