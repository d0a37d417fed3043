"""`kruispunt call` as a municipality's operator runs it: a real process against the running stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date

from services.backends.persons import PERSONS
from services.backends.status_source import SOURCES
from services.demo_organisations import KRUISDORP, OFFICIALS
from tests.support import PROJECT, audit_record

ON = date(2026, 1, 1)
TICKET = re.compile(r"KP-[0-9]{8}-[0-9a-f]{32}")


def kruispunt_call(stack, official: str, insz: str, on: date = ON) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = dict(os.environ, KRUISPUNT_VAR=str(stack.pki.var_dir), KRUISPUNT_DATABASE_URL=stack.database_url)
    return subprocess.run(
        [sys.executable, "-m", "integrator.faces.cli", "call", "--url", stack.base_url, "--org",
         KRUISDORP.enterprise_number, "--official", official, "--insz", insz, "--date", on.isoformat()],
        env=env, cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False,
    )


def test_call_prints_the_statuses_and_an_audited_ticket(stack) -> None:
    person = PERSONS[5]  # Jozef Maes: an ended period and two open ones
    held = [p for p in person.periods if p.start <= ON and (p.end is None or ON <= p.end)]
    ended = [p for p in person.periods if p not in held]
    assert held and ended
    done = kruispunt_call(stack, OFFICIALS[0].insz, person.insz)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    source_of = {spec.code: spec.name for spec in SOURCES}
    status_lines = [line.split() for line in out.splitlines()
                    if line.startswith("  ") and not line.strip().startswith("source ")]
    assert sorted((words[0], words[1]) for words in status_lines) == sorted((p.code, source_of[p.code]) for p in held)
    for spec in SOURCES:
        assert re.search(rf"source {re.escape(spec.name)}\s+CONSULTED", out), out
    assert "complete: True" in out
    tickets = TICKET.findall(out)
    assert len(tickets) == 1, out
    record = audit_record(stack.sessions, tickets[0])
    assert (record.outcome, record.person, record.official) == ("OK", person.insz, OFFICIALS[0].insz)


def test_call_as_official_without_grant_exits_2_with_grant_missing(stack) -> None:
    done = kruispunt_call(stack, OFFICIALS[1].insz, PERSONS[0].insz)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Client.Caller.GrantMissing" in done.stdout
    tickets = TICKET.findall(done.stdout)
    assert tickets, done.stdout
    record = audit_record(stack.sessions, tickets[0])
    assert (record.outcome, record.fault_code) == ("FAULT", "Client.Caller.GrantMissing")
