"""e-Creabis v1: search a person's identity in the National Register and the BIS register (ranked by similarity),
create a BIS number for a person who is in neither, and list the BIS numbers the calling official created.

CreateBisNumber is retry-safe: the caller's MessageId is the idempotency key (per organisation). A creation also
puts the person in the creating organisation's files (reference directory) for the caller's purpose from today,
in the same transaction: the organisation that asked for the number has a file on the person by definition.
Creating a number writes the BIS register: it needs the access right and grant BisRegister.Update, as the
register's updates do (an organisation that may only search is refused with Client.Caller.AccessDenied)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date
from functools import cache
from typing import Any

from sqlalchemy.orm import Session

from integrator.config import PROJECT_ROOT
from integrator.contract import Contract
from integrator.dispatch import BackendContract
from integrator.faults import ClientFault, IdempotencyConflict, KruispuntFault
from integrator.service import CallContext, HandlerResult, ServiceDefinition, operation
from repository import bis, directory
from repository.base import aware
from repository.bis_numbers import (
    BirthDateError,
    NumbersExhausted,
    PartialDate,
    compose,
    free_sequence,
    parse_birth_date,
    prefix,
    sequence_of,
    sequences,
)
from services.bis_register import UPDATE
from services.matching import Identity, Scored, identity_key, is_exact, relevant, score

NS = "urn:kruispunt:Creabis:v1"
NR_NS = "urn:kruispunt:backends:NationalRegister:v1"
NR_XSD = "backends/NationalRegister/v1/NationalRegister.xsd"
NR_BACKEND = "national-register"
NATIONAL_REGISTER, BIS_REGISTER = "NATIONAL_REGISTER", "BIS_REGISTER"
DEFAULT_RESULTS = 10
PAGE_SIZE = 20  # ListCreatedBisNumbers' default page (the XSD allows at most 100)


# --- this service's faults (one fault family: integrator/faults.py) ---------------------------------------
class CreabisExactMatch(ClientFault):
    CODE = "Client.Creabis.ExactMatch"
    HTTP_STATUS = 409


class BirthDateImpossible(ClientFault):
    CODE = "Client.Creabis.BirthDateImpossible"


class BisNumbersExhausted(KruispuntFault):
    CODE = "Server.Creabis.NumbersExhausted"
    HTTP_STATUS = 503


@cache
def national_register() -> BackendContract:
    return BackendContract(contract=Contract(PROJECT_ROOT / "xsd" / NR_XSD), request=f"{{{NR_NS}}}search_persons",
                           response=f"{{{NR_NS}}}search_personsResponse")


@dataclass(frozen=True)
class Candidate:
    insz: str
    identity: Identity
    source: str


def born(text: str | None, today: date) -> PartialDate:
    try:
        return parse_birth_date(text, today)
    except BirthDateError as error:
        raise BirthDateImpossible(str(error)) from None


def national_register_persons(ctx: CallContext, born_from: date | None, born_until: date | None) -> list[Candidate]:
    """Everyone the National Register knows born in the window (a backend fault propagates)."""
    answer = ctx.backends.call(national_register(), {"born_from": born_from, "born_until": born_until},
                               name=NR_BACKEND)
    found = (answer.get("search_personsResult") or {}).get("NrPerson") or []
    persons = [p for p in (found if isinstance(found, list) else [found]) if p]
    return [Candidate(p["insz"], Identity(p["last_name"], p["first_names"], _full(p["birth_date"]),
                                          p["gender"] if p["gender"] in ("M", "F") else None, p["nationality"]),
                      NATIONAL_REGISTER) for p in persons]


def _full(day: date) -> PartialDate:
    return PartialDate(day.year, day.month, day.day)


def register_candidates(rows: list[bis.BisPerson]) -> list[Candidate]:
    return [Candidate(r.insz, Identity(r.last_name, r.first_names, r.born, r.gender, r.nationality), BIS_REGISTER)
            for r in rows]


# --- SearchPersons ------------------------------------------------------------------------------------------------
def search_persons(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    asked = Identity(request["LastName"], request.get("FirstNames") or "",
                     born(request.get("BirthDate"), ctx.received_at.date()), request.get("Gender"),
                     request.get("Nationality"))
    year = asked.born.year
    window = (date(year - 1, 1, 1), date(year + 1, 12, 31)) if year is not None else (None, None)
    sources: list[dict[str, Any]] = []
    candidates: list[Candidate] = []
    try:
        candidates += national_register_persons(ctx, *window)
        sources.append({"Name": NATIONAL_REGISTER, "Outcome": "CONSULTED"})
    except KruispuntFault as fault:
        sources.append({"Name": NATIONAL_REGISTER, "Outcome": "UNAVAILABLE", "Reason": f"{fault.code}: {fault.reason}"})
    session = ctx.session
    candidates += register_candidates(bis.born_around(session, year))
    sources.append({"Name": BIS_REGISTER, "Outcome": "CONSULTED"})
    ranked = sorted(((score(asked, c.identity), c) for c in candidates), key=lambda sc: (-sc[0].score, sc[1].insz))
    shown = [(s, c) for s, c in ranked if relevant(s)][: int(request.get("MaxResults") or DEFAULT_RESULTS)]
    complete = all(s["Outcome"] == "CONSULTED" for s in sources)
    body = {"Complete": complete, "Source": sources, "Candidate": [_candidate(s, c) for s, c in shown]}
    # every person shown is personal data handed out: the audit record names them
    detail = f"{len(shown)} candidate(s) of {len(candidates)}: {' '.join(c.insz for _, c in shown) or '-'}"
    if not complete:
        return HandlerResult(body, outcome="PARTIAL", detail=f"{detail}; National Register not consulted")
    return HandlerResult(body, detail=detail)


def _candidate(scored: Scored, candidate: Candidate) -> dict[str, Any]:
    who = candidate.identity
    return {"Insz": candidate.insz, "LastName": who.last_name, "FirstNames": who.first_names,
            "BirthDate": who.born.text(), "Gender": who.gender, "Nationality": who.nationality or "",
            "Source": candidate.source, "Score": f"{scored.score:.1f}",
            "MatchedOn": [{"Criterion": r.criterion, "Match": r.match, "Similarity": f"{r.similarity:.3f}"}
                          for r in scored.reasons]}


# --- CreateBisNumber ----------------------------------------------------------------------------------------------
def create_bis_number(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """One number per identity and per MessageId: a retry answers the first number; a race for the same identity
    is won by one request, the other is refused with CreabisExactMatch naming the winner's number."""
    person, evidence = request["Person"], request["Evidence"]
    asked = Identity(person["LastName"].strip(), person["FirstNames"].strip(),
                     born(person.get("BirthDate"), ctx.received_at.date()), person.get("Gender"),
                     person["Nationality"])
    digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
    session = ctx.session
    earlier = bis.by_message(session, ctx.organisation.id, ctx.message_id)
    if earlier is not None:
        return _retried(earlier, digest, ctx)
    full = asked.born.full
    if full is not None:
        match = next((c for c in national_register_persons(ctx, full, full) if is_exact(asked, c.identity)), None)
        if match is not None:
            raise CreabisExactMatch(_exact_reason(match.insz, NATIONAL_REGISTER))
    key = identity_key(asked, (evidence["DocumentType"], evidence["DocumentNumber"], evidence["IssuingCountry"]))
    # a concurrent creation that takes the number, the identity or the MessageId first makes this transaction
    # conflict: the pipeline serves it again, and _create then finds what the winner stored
    return _create(session, request, asked, key, digest, ctx)


def _create(session: Session, request: dict[str, Any], asked: Identity, key: str, digest: str,
            ctx: CallContext) -> HandlerResult:
    earlier = bis.by_message(session, ctx.organisation.id, ctx.message_id)
    if earlier is not None:  # a concurrent retry of this very request won
        return _retried(earlier, digest, ctx)
    same = bis.by_identity(session, key)
    if same is None and asked.born.full is not None:
        same = next((r for r in bis.born_on(session, asked.born)
                     if is_exact(asked, Identity(r.last_name, r.first_names, r.born, r.gender, r.nationality))), None)
    if same is not None and (same.created_by, same.message_id) == (ctx.organisation.id, ctx.message_id):
        return _retried(same, digest, ctx)  # a concurrent retry of this very request committed in between
    if same is not None:
        raise CreabisExactMatch(_exact_reason(same.insz, BIS_REGISTER))
    first6 = prefix(asked.born, asked.gender)
    try:
        sequence = free_sequence((sequence_of(n) for n in bis.numbers_with_prefix(session, first6)), asked.gender)
    except NumbersExhausted:
        raise BisNumbersExhausted(
            f"All {len(sequences(asked.gender))} BIS sequence numbers for birth date code {first6} "
            f"(gender {asked.gender or 'unknown'}) are taken; the integrator's service desk can help.") from None
    evidence, now = request["Evidence"], ctx.received_at
    row = bis.BisPerson(
        insz=compose(asked.born, asked.gender, sequence), identity_key=key, last_name=asked.last_name,
        first_names=asked.first_names, birth_year=asked.born.year, birth_month=asked.born.month,
        birth_day=asked.born.day, gender=asked.gender, nationality=asked.nationality or "",
        evidence_type=evidence["DocumentType"], evidence_number=evidence["DocumentNumber"].strip(),
        evidence_country=evidence["IssuingCountry"], created_at=now, created_by=ctx.organisation.id,
        created_by_official=ctx.official, created_ticket=ctx.ticket, message_id=ctx.message_id, request_digest=digest)
    session.add(row)
    session.flush()
    address = request.get("Address")
    if address:
        fields = bis.AddressFields(address["Street"], address["HouseNumber"], address["Postcode"],
                                   address["Municipality"], address["Country"])
        valid_from = address.get("ValidFrom") or now.date()
        bis.add_address(session, row, fields, valid_from, bis.Recorded(now, ctx.organisation.id, ctx.ticket))
    directory.register(session, ctx.organisation.id, row.insz, ctx.purpose, now.date())
    return HandlerResult(_answer(row, created=True), detail=f"created BIS number {row.insz}")


def _retried(earlier: bis.BisPerson, digest: str, ctx: CallContext) -> HandlerResult:
    if earlier.request_digest != digest:
        raise IdempotencyConflict(
            f"MessageId {ctx.message_id} was used for another CreateBisNumber request (ticket "
            f"{earlier.created_ticket}); a retry must repeat the request unchanged, a new request needs a new "
            "MessageId.")
    return HandlerResult(_answer(earlier, created=False),
                         detail=f"retry: BIS number {earlier.insz} created by {earlier.created_ticket}")


def _exact_reason(insz: str, source: str) -> str:
    where = "National Register" if source == NATIONAL_REGISTER else "BIS register"
    return (f"The {where} already has this person as {insz} (same names, birth date and gender); use that number "
            "instead of creating a BIS number.")


def _answer(row: bis.BisPerson, created: bool) -> dict[str, Any]:
    at = aware(row.created_at)
    return {
        "Insz": row.insz,
        "Created": created,
        "Person": {"LastName": row.last_name, "FirstNames": row.first_names, "BirthDate": row.born.text(),
                   "Gender": row.gender, "Nationality": row.nationality},
        "CreatedAt": at.astimezone(UTC),
        "CreatedTicket": row.created_ticket,
        "InFilesFrom": at.astimezone(UTC).date(),
    }


# --- ListCreatedBisNumbers ----------------------------------------------------------------------------------------
def list_created_bis_numbers(request: dict[str, Any], ctx: CallContext) -> HandlerResult:
    """The BIS numbers the calling official created for their organisation, newest first, one page of them."""
    page, size = int(request.get("Page") or 1), int(request.get("PageSize") or PAGE_SIZE)
    total, rows = bis.created_by_official(ctx.session, ctx.organisation.id, ctx.official, page, size)
    found = [_created(row) for row in rows]
    # every person listed is personal data handed out: the audit record names them
    shown = " ".join(row.insz for row in rows) or "-"
    return HandlerResult({"Total": total, "Page": page, "PageSize": size, "BisNumber": found},
                         detail=f"{len(found)} of {total} BIS number(s): {shown}")


def _created(row: bis.BisPerson) -> dict[str, Any]:
    return {"Insz": row.insz, "LastName": row.last_name, "FirstNames": row.first_names,
            "BirthDate": row.born.text(), "Gender": row.gender, "Nationality": row.nationality,
            "CreatedAt": aware(row.created_at).astimezone(UTC), "CreatedTicket": row.created_ticket}


SERVICE = ServiceDefinition(
    name="Creabis",
    version="v1",
    title="e-Creabis: identity search and BIS numbers",
    description=("Search a person by name, birth date (full or partial), gender and nationality in the National "
                 "Register and the BIS register, ranked by similarity; create a BIS number for a person found in "
                 "neither, with the identity document as evidence; list the BIS numbers you created."),
    wsdl="Creabis-v1.wsdl",
    xsd="Creabis/v1/Creabis.xsd",
    operations=(
        operation(NS, "SearchPersons", search_persons),
        operation(NS, "CreateBisNumber", create_bis_number, retry_safe=True, access=UPDATE),
        operation(NS, "ListCreatedBisNumbers", list_created_bis_numbers),
    ),
)

