"""BIS number allocation under concurrency, on SQLite and PostgreSQL (the `migrated` fixture runs both): many
threads creating at once get distinct valid numbers, one identity gets one number, a full range is exhausted.
The e-Creabis handler runs for real against the database; these creations have incomplete birth dates, so it
needs no National Register (that path is covered end to end in tests/e2e/test_creabis.py)."""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from stdnum.be import bis as stdnum_bis

from integrator import commands
from integrator.faults import KruispuntFault
from integrator.service import CallContext, HandlerResult
from integrator.ticket import new_ticket
from integrator.transaction import until_no_conflict
from repository import bis
from repository.bis_numbers import PartialDate, compose, sequences
from repository.queries import OrganisationView
from services.creabis import BisNumbersExhausted, CreabisExactMatch, create_bis_number
from services.demo_organisations import enterprise_number
from tests.e2e.creabis_calls import fresh_name


@pytest.fixture
def organisation(migrated: sessionmaker[Session]) -> OrganisationView:
    number = enterprise_number(10_000_000 + uuid.uuid4().int % 9_000_000)
    with migrated() as session:
        created = commands.add_organisation(session, number, "Testgemeente", "municipality", "11002")
        session.commit()
        return OrganisationView(created.id, number, created.name, created.kind, created.nis_code)


@dataclass(frozen=True)
class Call:
    """A CreateBisNumber as the pipeline serves it: in a transaction of its own, served again after a conflict."""

    sessions: sessionmaker[Session]
    organisation: OrganisationView
    message_id: str

    def __call__(self, request: dict[str, Any]) -> HandlerResult:
        now = datetime.now(UTC)
        with self.sessions() as session:
            ctx = CallContext(new_ticket(now), now, self.organisation, "00000000097", "IDENTIFICATION",
                              self.message_id, backends=None, session=session, after_commit=lambda step: None)
            result = until_no_conflict(session, lambda: create_bis_number(request, ctx), "CreateBisNumber")
            session.commit()
            return result


def context(sessions: sessionmaker[Session], organisation: OrganisationView,
            message_id: str | None = None) -> Call:
    return Call(sessions, organisation, message_id or str(uuid.uuid4()))


def request(last_name: str, birth: str, gender: str | None, document: str = "P1") -> dict[str, Any]:
    person = {"LastName": last_name, "FirstNames": "Test", "BirthDate": birth, "Nationality": "PL"}
    if gender:
        person["Gender"] = gender
    return {"Person": person, "Evidence": {"DocumentType": "PASSPORT", "DocumentNumber": document,
                                           "IssuingCountry": "PL"}}


def a_month() -> str:
    """A birth month (YYYY-MM) no other test of the run uses, with high probability."""
    return f"{random.randrange(1920, 1999)}-{random.randrange(1, 13):02d}"


def concurrently(calls: list[tuple[dict[str, Any], Call]]) -> list[HandlerResult | KruispuntFault]:
    start = threading.Barrier(len(calls))

    def one(call: tuple[dict[str, Any], Call]) -> HandlerResult | KruispuntFault:
        start.wait()
        try:
            return call[1](call[0])
        except KruispuntFault as fault:
            return fault

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, calls))


def test_many_concurrent_creations_on_one_birth_date_get_distinct_valid_numbers(
        migrated: sessionmaker[Session], organisation: OrganisationView) -> None:
    month = a_month()
    outcomes = concurrently([(request(fresh_name("Namesake"), month, "F"),
                              context(migrated, organisation)) for _ in range(10)])
    numbers = [o.body["Insz"] for o in outcomes if isinstance(o, HandlerResult)]
    refused = [f"{type(o).__name__}: {o}" for o in outcomes if not isinstance(o, HandlerResult)]
    assert len(numbers) == 10 and len(set(numbers)) == 10, refused
    assert len({n[:6] for n in numbers}) == 1
    for number in numbers:
        assert stdnum_bis.is_valid(number) and int(number[6:9]) % 2 == 0 and stdnum_bis.get_gender(number) == "F"


def test_one_identity_created_concurrently_gets_one_number(migrated: sessionmaker[Session],
                                                           organisation: OrganisationView) -> None:
    same = request(fresh_name("Once"), a_month(), "M", document="EK42")
    outcomes = concurrently([(same, context(migrated, organisation)) for _ in range(6)])
    created = [o for o in outcomes if isinstance(o, HandlerResult)]
    assert len(created) == 1, outcomes
    insz = created[0].body["Insz"]
    refused = [o for o in outcomes if not isinstance(o, HandlerResult)]
    assert all(isinstance(o, CreabisExactMatch) and insz in o.reason for o in refused), refused


def test_concurrent_retries_with_one_message_id_answer_one_number(migrated: sessionmaker[Session],
                                                                 organisation: OrganisationView) -> None:
    same, message_id = request(fresh_name("Retry"), a_month(), None), str(uuid.uuid4())
    outcomes = concurrently([(same, context(migrated, organisation, message_id)) for _ in range(4)])
    assert all(isinstance(o, HandlerResult) for o in outcomes), outcomes
    assert len({o.body["Insz"] for o in outcomes if isinstance(o, HandlerResult)}) == 1
    assert sorted(o.body["Created"] for o in outcomes if isinstance(o, HandlerResult)) == [False, False, False, True]


def test_a_full_range_of_sequence_numbers_is_exhausted(migrated: sessionmaker[Session],
                                                       organisation: OrganisationView) -> None:
    month = a_month()
    born = PartialDate(int(month[:4]), int(month[5:]))
    now = datetime.now(UTC)
    with migrated() as session:
        taken = {n[6:9] for n in bis.numbers_with_prefix(session, compose(born, "F", 2)[:6])}
        for sequence in sequences("F"):
            if f"{sequence:03d}" in taken:
                continue
            session.add(bis.BisPerson(
                insz=compose(born, "F", sequence), identity_key=uuid.uuid4().hex, last_name="Filler",
                first_names="F", birth_year=born.year, birth_month=born.month, gender="F", nationality="PL",
                evidence_type="PASSPORT", evidence_number="X", evidence_country="PL", created_at=now,
                created_by=organisation.id, created_ticket=new_ticket(now), message_id=str(uuid.uuid4()),
                request_digest="0" * 64))
        session.commit()
    with pytest.raises(BisNumbersExhausted) as raised:
        context(migrated, organisation)(request(fresh_name("Late"), month, "F"))
    assert "are taken" in raised.value.reason
    man = context(migrated, organisation)(request(fresh_name("Late"), month, "M"))
    assert int(man.body["Insz"][6:9]) % 2 == 1  # the men's range is another one
