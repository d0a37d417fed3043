"""The happy path, as a municipality's back office lives it."""

from __future__ import annotations

from datetime import date

from services.backends.persons import PERSONS
from services.demo_organisations import OFFICIALS
from tests.support import Request, audit_record, post


def test_signed_lookup_is_answered_signed_and_audited(stack) -> None:
    person = PERSONS[0]
    official = OFFICIALS[0]
    reply = post(stack.base_url, Request(stack.pki.kruisdorp, official.insz, person.insz, date(2026, 1, 1)).signed())
    assert reply.status_code == 200, reply.text
    ticket = reply.headers["X-Kruispunt-Ticket"]
    record = audit_record(stack.sessions, ticket)
    assert record.outcome == "OK"
    assert record.person == person.insz
