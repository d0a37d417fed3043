"""One request, one transaction: when the audit record cannot be written after the service's effects, none of the
effects stays and nothing is delivered; the caller is told Server.AuditUnavailable.

The fault is injected for real: a trigger in the stack's database refuses the audit record of one person only (so
the tests running beside these are untouched), on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select, text

from integrator.outbox import OutboxEntry
from repository.applications import Application
from repository.models import DirectoryEntry
from services.applications import INSTITUTIONS
from services.demo_applications import PURPOSE_APPLICATION
from services.demo_organisations import KRUISDORP
from tests.e2e import application_calls, directory_calls
from tests.e2e.application_calls import application, eventually, intake, submit
from tests.e2e.directory_calls import new_person, register_person, today
from tests.support import fault_of

DISABILITY = "DISABILITY_ALLOWANCE"


@contextmanager
def audit_refused_for(stack, person: str) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Every audit record naming the person is refused by the database itself while this lasts."""
    name = f"refuse_audit_{uuid.uuid4().hex[:12]}"
    postgres = stack.database_url.startswith("postgresql")
    with stack.sessions() as session:
        if postgres:
            session.execute(text(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                                 f"RAISE EXCEPTION 'audit refused by the test'; END $$"))
            session.execute(text(f"CREATE TRIGGER {name} BEFORE INSERT ON audit_records FOR EACH ROW "
                                 f"WHEN (NEW.person = '{person}') EXECUTE FUNCTION {name}()"))
        else:
            session.execute(text(f"CREATE TRIGGER {name} BEFORE INSERT ON audit_records "
                                 f"WHEN NEW.person = '{person}' BEGIN SELECT RAISE(ABORT, 'audit refused'); END"))
        session.commit()
    try:
        yield
    finally:
        with stack.sessions() as session:
            session.execute(text(f"DROP TRIGGER {name}" + (" ON audit_records" if postgres else "")))
            if postgres:
                session.execute(text(f"DROP FUNCTION {name}()"))
            session.commit()


def entries_of(stack, person: str) -> int:  # type: ignore[no-untyped-def]
    with stack.sessions() as session:
        return len(session.execute(select(DirectoryEntry.id).where(DirectoryEntry.insz == person)).all())


def test_a_registration_whose_audit_fails_leaves_no_entry(stack) -> None:  # type: ignore[no-untyped-def]
    person, caller = new_person(), directory_calls.kruisdorp(stack)
    with audit_refused_for(stack, person):
        reply = directory_calls.directory_post(stack, caller, "RegisterPerson",
                                               {"Insz": person, "Purpose": PURPOSE_APPLICATION, "Start": today()})
        assert reply.status_code == 503 and fault_of(reply).code == "Server.AuditUnavailable"
        assert entries_of(stack, person) == 0, "the effect was rolled back with its audit record"
    answer = register_person(stack, caller, person, today(), purpose=PURPOSE_APPLICATION)
    assert answer.body["Created"] is True, "the refused registration left nothing behind: this one is the first"
    assert entries_of(stack, person) == 1


def test_an_application_whose_audit_fails_is_neither_stored_nor_delivered(stack) -> None:  # type: ignore[no-untyped-def]
    caller = application_calls.kruisdorp(stack)
    person = application_calls.applicant(stack, caller)
    fields = application(DISABILITY, person)
    message_id = str(uuid.uuid4())
    with audit_refused_for(stack, person):
        reply = application_calls.post(stack, caller, "SubmitApplication", application_calls.wire(fields),
                                       message_id)
        assert reply.status_code == 503 and fault_of(reply).code == "Server.AuditUnavailable"
    with stack.sessions() as session:
        stored = session.execute(select(Application.id).where(Application.insz == person)).all()
        queued = session.execute(select(OutboxEntry.id).where(OutboxEntry.ticket == fault_of(reply).ticket)).all()
    assert (stored, queued) == ([], []), "no application and no delivery owed: the transaction was rolled back"
    # the same MessageId again, now audited: the first submission, delivered once after its commit
    answered = submit(stack, caller, fields, message_id)
    assert answered.record.outcome == "OK" and answered.ticket != fault_of(reply).ticket
    store = intake(stack, DISABILITY)
    filed = eventually(lambda: store.received(answered.ticket), f"{INSTITUTIONS[DISABILITY]} receives the application")
    assert (filed.insz, filed.attempts, filed.municipality) == (person, 1, KRUISDORP.enterprise_number)
    assert store.received(fault_of(reply).ticket) is None, "the refused submission never reached the institution"
