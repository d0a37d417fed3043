"""National Register update proposals: stored durably, routed to the competent municipality, decided once.

The queries here are the whole life of a proposal: submitted (once per proposer MessageId), pulled and
acknowledged by the competent municipality, decided with a conditional UPDATE (so two concurrent decisions cannot
both win), listed for the proposer and, when undecided too long, as overdue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    Select,
    String,
    Text,
    UniqueConstraint,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from repository.base import Base
from repository.models import Organisation

SUBMITTED, ACKNOWLEDGED, ACCEPTED, REJECTED = "SUBMITTED", "ACKNOWLEDGED", "ACCEPTED", "REJECTED"
UNDECIDED = (SUBMITTED, ACKNOWLEDGED)
STATES = (SUBMITTED, ACKNOWLEDGED, ACCEPTED, REJECTED)


class Proposal(Base):
    """One proposal: who proposed what about whom, which municipality decides, and where it stands."""

    __tablename__ = "proposals"
    __table_args__ = (UniqueConstraint("proposer_id", "message_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(48), unique=True)  # public id: the submitting ticket
    proposer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    proposer_official: Mapped[str] = mapped_column(String(11))
    message_id: Mapped[str] = mapped_column(String(100))  # the proposer's MessageId: a retry is the same proposal
    request_digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of what was proposed: a retry must match it
    insz: Mapped[str] = mapped_column(String(11), index=True)
    field: Mapped[str] = mapped_column(String(20))
    proposed_value: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)  # the evidence's description
    document_name: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the attached evidence, if any
    document_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    document: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    competent_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    state: Mapped[str] = mapped_column(String(12), default=SUBMITTED, index=True)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_ticket: Mapped[str | None] = mapped_column(String(48), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(11), nullable=True)
    reject_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    update_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), nullable=True)  # the NR update owed


@dataclass(frozen=True)
class Page:
    """Proposals in submission order, and whether more follow the last one."""

    proposals: list[Proposal]
    more: bool


class CursorUnknown(LookupError):
    """A paging cursor that is not the reference of a proposal in the listing."""


def competent_municipality(session: Session, nis_code: str) -> Organisation | None:
    """The municipality of the network with this NIS code (where the National Register registers the person)."""
    return session.execute(select(Organisation).where(Organisation.kind == "municipality",
                                                      Organisation.nis_code == nis_code)
                           .order_by(Organisation.id).limit(1)).scalar_one_or_none()


def by_message(session: Session, proposer_id: int, message_id: str) -> Proposal | None:
    return session.execute(select(Proposal).where(Proposal.proposer_id == proposer_id,
                                                  Proposal.message_id == message_id)).scalar_one_or_none()


def by_reference(session: Session, reference: str) -> Proposal | None:
    return session.execute(select(Proposal).where(Proposal.reference == reference)).scalar_one_or_none()


def submit(session: Session, proposal: Proposal) -> Proposal:
    """Store a new proposal in the caller's transaction (flushed: a concurrent retry with the same MessageId that
    stored it first makes this an IntegrityError, and the caller's transaction is served again)."""
    session.add(proposal)
    session.flush()
    return proposal


def _cursor(session: Session, scope: Select[tuple[Proposal]], after: str | None) -> int | None:
    """The id of the proposal a cursor names, within the listing's scope (whatever its state now)."""
    if after is None:
        return None
    cursor = session.execute(scope.with_only_columns(Proposal.id).where(Proposal.reference == after)
                             ).scalar_one_or_none()
    if cursor is None:
        raise CursorUnknown(after)
    return cursor


def _page(session: Session, query: Select[tuple[Proposal]], cursor: int | None, max_count: int) -> Page:
    if cursor is not None:
        query = query.where(Proposal.id > cursor)
    rows = list(session.execute(query.order_by(Proposal.id).limit(max_count + 1)).scalars())
    return Page(rows[:max_count], len(rows) > max_count)


def pending(session: Session, competent_id: int, after: str | None, max_count: int) -> Page:
    """The competent municipality's proposals it has not acknowledged, oldest first, after the cursor (any of
    its proposals: one acknowledged since it was handed out stays a valid cursor)."""
    scope = select(Proposal).where(Proposal.competent_id == competent_id)
    return _page(session, scope.where(Proposal.state == SUBMITTED), _cursor(session, scope, after), max_count)


def of_organisation(session: Session, organisation_id: int, state: str | None, after: str | None, max_count: int,
                    *, addressed: bool = False) -> Page:
    """The organisation's own proposals, or with addressed those addressed to it as competent municipality
    (optionally in one state), oldest first, after the cursor."""
    column = Proposal.competent_id if addressed else Proposal.proposer_id
    scope = select(Proposal).where(column == organisation_id)
    query = scope if state is None else scope.where(Proposal.state == state)
    return _page(session, query, _cursor(session, scope, after), max_count)


def acknowledge(session: Session, proposal: Proposal, now: datetime) -> bool:
    """Mark a submitted proposal acknowledged (conditional, so twice is harmless); True when it was new."""
    done = session.execute(update(Proposal).where(Proposal.id == proposal.id, Proposal.state == SUBMITTED)
                           .values(state=ACKNOWLEDGED, acknowledged_at=now)).rowcount
    return bool(done)


def decide(session: Session, proposal_id: int, state: str, *, now: datetime, ticket: str, official: str,
           reason: str | None) -> bool:
    """Record the decision unless one was recorded first (the conditional UPDATE is the only arbiter: two
    concurrent decisions cannot both see an undecided row). The caller commits; True when this one won."""
    won = session.execute(update(Proposal).where(Proposal.id == proposal_id, Proposal.state.in_(UNDECIDED))
                          .values(state=state, decided_at=now, decision_ticket=ticket, decided_by=official,
                                  reject_reason=reason)).rowcount
    return bool(won)


def owe_update(session: Session, proposal_id: int, entry_id: int) -> None:
    """Link an accepted proposal to the outbox entry that carries its National Register update."""
    session.execute(update(Proposal).where(Proposal.id == proposal_id).values(update_id=entry_id))


def overdue(session: Session, before: datetime, organisation_id: int | None = None) -> list[Proposal]:
    """Undecided proposals submitted before the moment, oldest first; only those the organisation proposed or
    decides when one is given (operators see all)."""
    query = select(Proposal).where(Proposal.state.in_(UNDECIDED), Proposal.submitted_at < before)
    if organisation_id is not None:
        query = query.where(or_(Proposal.proposer_id == organisation_id, Proposal.competent_id == organisation_id))
    return list(session.execute(query.order_by(Proposal.submitted_at, Proposal.id)).scalars())


def organisations(session: Session, ids: set[int]) -> dict[int, Organisation]:
    """The organisations a list of proposals names (proposers and municipalities), by id."""
    if not ids:
        return {}
    return {o.id: o for o in session.execute(select(Organisation).where(Organisation.id.in_(ids))).scalars()}
