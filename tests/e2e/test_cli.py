"""`kruispunt call` as a municipality's operator runs it: a real process against the running stack; and the service
desk's administration commands as a new operator would try them, each a real process on SQLite and PostgreSQL: every
bad input one line on stderr and exit status 1 with nothing stored, every act audited under the ticket it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from integrator import commands
from repository.credentials import authenticate, challenge_for
from repository.models import Administrator, Backend, Grant, GrantStatus, Official, Organisation
from services.backends.persons import PERSONS, make_insz
from services.backends.status_source import SOURCES
from services.demo_organisations import KRUISDORP, OFFICIALS, enterprise_number
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


# --- the service desk's administration commands -------------------------------------------------------------------
@dataclass(frozen=True)
class Desk:
    """The CLI on a database of its own kind (SQLite or PostgreSQL), with a fresh organisation and official."""

    env: dict[str, str]
    sessions: sessionmaker[Session]
    org: str
    official: str
    pki_dir: str

    def run(self, *words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "integrator.faces.cli", *words], env=self.env, cwd=PROJECT,
                              capture_output=True, text=True, timeout=120, check=False)


def new_insz() -> str:
    n = uuid.uuid4().int
    return make_insz(date(1950, 1, 1) + timedelta(days=n % 18_000), 1 + (n >> 20) % 997)


def new_number() -> str:
    return enterprise_number(3_000_000 + uuid.uuid4().int % 6_000_000)


@pytest.fixture
def desk(pki, database_url: str, migrated: sessionmaker[Session]) -> Desk:  # type: ignore[no-untyped-def]
    org, official = new_number(), new_insz()
    with migrated() as session:
        commands.add_organisation(session, org, "Gemeente Proef", "municipality", "11002")
        commands.add_official(session, org, official, "Proef Ambtenaar")
        session.commit()
    env = dict(os.environ, KRUISPUNT_VAR=str(pki.var_dir), KRUISPUNT_DATABASE_URL=database_url,
               KRUISPUNT_OPERATOR="desk-tester")
    return Desk(env, migrated, org, official, str(pki.var_dir / "pki"))


def refused_line(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit status 1, nothing on stdout, one line on stderr naming what is wrong, no traceback."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kruispunt: "), done.stderr
    for word in expected:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def acted(desk: Desk, done: subprocess.CompletedProcess[str], operation: str, *, organisation: str | None,
          person: str | None, detail: str) -> None:
    """Exit status 0 and one ticket printed, whose audit record says who (the operator), what, to whom and why."""
    assert done.returncode == 0, done.stdout + done.stderr
    tickets = TICKET.findall(done.stdout)
    assert len(tickets) == 1, done.stdout
    record = audit_record(desk.sessions, tickets[0])
    assert (record.outcome, record.operation, record.organisation, record.person, record.channel) == (
        "OK", operation, organisation, person, "cli")
    assert record.detail is not None and record.detail.startswith("by service-desk:desk-tester: "), record.detail
    assert detail in record.detail, record.detail


def grants_of(desk: Desk, official: str) -> list[Grant]:
    with desk.sessions() as session:
        return list(session.execute(select(Grant).join(Official).where(Official.insz == official)
                                    .order_by(Grant.id)).scalars())


def test_a_nine_digit_enterprise_number_is_refused_and_not_stored(desk: Desk) -> None:
    ten = new_number()
    nine = ten[1:] if ten.startswith("0") else "207123407"
    refused_line(desk.run("org", "add", "--enterprise-number", nine, "--name", "Negen", "--kind", "municipality"),
                 nine, "ten digits")
    with desk.sessions() as session:
        assert session.execute(select(Organisation).where(Organisation.name == "Negen")).first() is None


def test_a_nis_code_that_is_not_five_digits_is_refused(desk: Desk) -> None:
    number = new_number()
    refused_line(desk.run("org", "add", "--enterprise-number", number, "--name", "Letters", "--kind",
                          "municipality", "--nis-code", "abc"), "NIS code 'abc'", "five digits")
    with desk.sessions() as session:
        assert session.execute(select(Organisation).where(Organisation.enterprise_number == number)).first() is None
    done = desk.run("org", "add", "--enterprise-number", number, "--name", "Letters", "--kind", "municipality",
                    "--nis-code", "44021")
    acted(desk, done, "AddOrganisation", organisation=number, person=None, detail="registered municipality Letters")
    assert number in desk.run("org", "list").stdout


def test_grant_dates_in_reverse_order_are_refused(desk: Desk) -> None:
    with desk.sessions() as session:
        commands.add_access_right(session, desk.org, "TaxExemptionStatus")
        session.commit()
    refused_line(desk.run("grant", "add", "--org", desk.org, "--official", desk.official, "--service",
                          "TaxExemptionStatus", "--purpose", "MUNICIPAL_TAX_EXEMPTION", "--reason", "tax office",
                          "--valid-from", "2026-05-01", "--valid-until", "2026-01-01"),
                 "Client.Access.PeriodInvalid", "2026-01-01", "2026-05-01")
    assert grants_of(desk, desk.official) == []


def test_a_grant_for_an_unknown_official_is_one_line_not_a_traceback(desk: Desk) -> None:
    with desk.sessions() as session:
        commands.add_access_right(session, desk.org, "TaxExemptionStatus")
        session.commit()
    stranger = new_insz()
    refused_line(desk.run("grant", "add", "--org", desk.org, "--official", stranger, "--service",
                          "TaxExemptionStatus", "--purpose", "MUNICIPAL_TAX_EXEMPTION", "--reason", "tax office"),
                 "Client.Access.OfficialUnknown", stranger)
    refused_line(desk.run("grant", "add", "--org", new_number(), "--official", stranger, "--service",
                          "TaxExemptionStatus", "--purpose", "P_X", "--reason", "x"), "no organisation")


def test_a_grant_or_access_right_for_a_service_that_does_not_exist_is_refused(desk: Desk) -> None:
    refused_line(desk.run("access", "add", "--org", desk.org, "--service", "NoSuchService"),
                 "Client.Access.ServiceUnknown", "NoSuchService")
    refused_line(desk.run("grant", "add", "--org", desk.org, "--official", desk.official, "--service",
                          "NoSuchService", "--purpose", "P_X", "--reason", "x"), "Client.Access.ServiceUnknown")
    assert grants_of(desk, desk.official) == []


def test_a_backend_for_a_service_that_does_not_exist_is_refused(desk: Desk) -> None:
    name = f"nowhere-{uuid.uuid4().hex[:8]}"
    cert = f"{desk.pki_dir}/backend-{SOURCES[0].name}.crt"
    refused_line(desk.run("backend", "add", "--service", "NoSuchService/v1", "--name", name, "--url",
                          "http://127.0.0.1:9/", "--cert", cert), "NoSuchService/v1")
    with desk.sessions() as session:
        assert session.execute(select(Backend).where(Backend.name == name)).first() is None
    done = desk.run("backend", "add", "--service", "TaxExemptionStatus/v1", "--name", name, "--url",
                    "http://127.0.0.1:9/", "--cert", cert)
    acted(desk, done, "RegisterBackend", organisation=None, person=None, detail=f"backend {name}")
    assert name in desk.run("backend", "list", "--service", "TaxExemptionStatus/v1").stdout
    done = desk.run("backend", "end", "--service", "TaxExemptionStatus/v1", "--name", name, "--reason", "moved")
    acted(desk, done, "EndBackend", organisation=None, person=None, detail="reason: moved")
    with desk.sessions() as session:
        assert session.execute(select(Backend.active).where(Backend.name == name)).scalar_one() is False


def test_grant_add_list_end_and_revoke_are_audited_acts(desk: Desk) -> None:
    done = desk.run("access", "add", "--org", desk.org, "--service", "TaxExemptionStatus")
    acted(desk, done, "AddAccessRight", organisation=desk.org, person=None, detail="TaxExemptionStatus")
    done = desk.run("grant", "add", "--org", desk.org, "--official", desk.official, "--service", "TaxExemptionStatus",
                    "--purpose", "MUNICIPAL_TAX_EXEMPTION", "--reason", "works at the tax office")
    acted(desk, done, "GrantAccess", organisation=desk.org, person=desk.official,
          detail="reason: works at the tax office")
    [made] = grants_of(desk, desk.official)
    assert (made.status, made.granted_by, made.reason) == (GrantStatus.ACTIVE, "service-desk:desk-tester",
                                                           "works at the tax office")
    listed = desk.run("grant", "list", "--org", desk.org)
    assert listed.returncode == 0 and str(made.id) in listed.stdout and "works at the tax office" in listed.stdout

    last = datetime.now(UTC).date() + timedelta(days=30)
    done = desk.run("grant", "end", "--org", desk.org, "--id", str(made.id), "--on", last.isoformat(),
                    "--reason", "moves to another office")
    acted(desk, done, "EndGrant", organisation=desk.org, person=desk.official, detail=f"ends on {last}")
    [ended] = grants_of(desk, desk.official)
    assert (ended.status, ended.valid_until, ended.end_reason) == (GrantStatus.ENDED, last, "moves to another office")

    done = desk.run("grant", "revoke", "--org", desk.org, "--id", str(made.id), "--reason", "left the municipality")
    acted(desk, done, "RevokeGrant", organisation=desk.org, person=desk.official,
          detail="reason: left the municipality")
    [revoked] = grants_of(desk, desk.official)
    assert (revoked.status, revoked.revoke_reason, revoked.revoked_by) == (
        GrantStatus.REVOKED, "left the municipality", "service-desk:desk-tester")
    refused_line(desk.run("grant", "revoke", "--org", desk.org, "--id", str(made.id), "--reason", "again"),
                 "Client.Access.GrantState", "revoked already")
    refused_line(desk.run("grant", "end", "--org", desk.org, "--id", "999999999", "--reason", "x"),
                 "Client.Access.GrantUnknown")

    done = desk.run("access", "revoke", "--org", desk.org, "--service", "TaxExemptionStatus", "--reason", "ended")
    acted(desk, done, "RevokeAccessRight", organisation=desk.org, person=None, detail="reason: ended")
    assert desk.run("access", "list", "--org", desk.org).stdout == ""


def test_officials_and_administrators_from_the_command_line(desk: Desk) -> None:
    colleague = new_insz()
    done = desk.run("official", "add", "--org", desk.org, "--insz", colleague, "--name", "Co Llega", "--email",
                    "co@proef.be", "--department", "personeel")
    acted(desk, done, "RegisterOfficial", organisation=desk.org, person=colleague, detail="registered official")
    refused_line(desk.run("official", "add", "--org", desk.org, "--insz", new_insz(), "--name", "X", "--email",
                          "not-an-address"), "Client.Access.EmailInvalid")
    refused_line(desk.run("official", "add", "--org", desk.org, "--insz", "85073003329", "--name", "X"),
                 "Client.Contract.InszInvalid")
    done = desk.run("admin", "designate", "--org", desk.org, "--official", desk.official, "--role", "local")
    acted(desk, done, "DesignateAdministrator", organisation=desk.org, person=desk.official,
          detail="as local administrator")
    refused_line(desk.run("admin", "designate", "--org", desk.org, "--official", colleague, "--role", "local"),
                 "Client.Access.LocalAdministratorTaken", desk.official)
    done = desk.run("admin", "designate", "--org", desk.org, "--official", colleague, "--role", "co")
    acted(desk, done, "DesignateAdministrator", organisation=desk.org, person=colleague, detail="as co administrator")
    listed = desk.run("admin", "list", "--org", desk.org).stdout
    assert desk.official in listed and colleague in listed

    done = desk.run("official", "end", "--org", desk.org, "--insz", colleague, "--reason", "long leave")
    acted(desk, done, "DeactivateOfficial", organisation=desk.org, person=colleague, detail="reason: long leave")
    assert "deactivated" in desk.run("official", "list", "--org", desk.org).stdout
    with desk.sessions() as session:
        row = session.execute(select(Official).where(Official.insz == colleague)).scalar_one()
        assert (row.active, row.deactivation_reason, row.email) == (False, "long leave", "co@proef.be")
        assert session.execute(select(Administrator.role).where(Administrator.official_id == row.id)
                               ).scalar_one() == "co"
    done = desk.run("official", "reactivate", "--org", desk.org, "--insz", colleague, "--reason", "back")
    acted(desk, done, "ReactivateOfficial", organisation=desk.org, person=colleague, detail="reason: back")
    done = desk.run("admin", "withdraw", "--org", desk.org, "--official", colleague, "--reason", "other job")
    acted(desk, done, "WithdrawAdministrator", organisation=desk.org, person=colleague, detail="reason: other job")


def test_an_operations_own_access_right_can_be_given_and_granted(desk: Desk) -> None:
    """BisRegister's updates need a right of their own (BisRegister.Update, Operation.access), not a service name:
    the CLI knows it as a code-backed right; a made-up right next to it is still refused."""
    done = desk.run("access", "add", "--org", desk.org, "--service", "BisRegister.Update")
    acted(desk, done, "AddAccessRight", organisation=desk.org, person=None, detail="BisRegister.Update")
    done = desk.run("grant", "add", "--org", desk.org, "--official", desk.official, "--service", "BisRegister.Update",
                    "--purpose", "POPULATION_REGISTER", "--reason", "keeps BIS addresses up to date")
    acted(desk, done, "GrantAccess", organisation=desk.org, person=desk.official,
          detail="reason: keeps BIS addresses up to date")
    refused_line(desk.run("access", "add", "--org", desk.org, "--service", "BisRegister.Delete"),
                 "Client.Access.ServiceUnknown")


def test_the_service_desk_issues_an_officials_portal_credentials(desk: Desk) -> None:
    """Printed once (user number, password, the card's 24 codes), audited without a secret; the printed secrets
    pass the portal's log-on checks."""
    done = desk.run("official", "credentials", "--org", desk.org, "--insz", desk.official, "--token", "card",
                    "--reason", "first log-on")
    acted(desk, done, "IssueCredentials", organisation=desk.org, person=desk.official, detail="reason: first log-on")
    user_number = re.search(r"user number: (\d+)", done.stdout)
    password = re.search(r"password: +(\S+)", done.stdout)
    codes = dict(re.findall(r"(\d+)\. ([A-Z0-9]{6})", done.stdout))
    assert user_number and password and len(codes) == 24, done.stdout
    record = audit_record(desk.sessions, TICKET.findall(done.stdout)[0])
    detail = record.detail or ""
    assert password.group(1) not in detail and not any(code in detail for code in codes.values())
    with desk.sessions() as session:
        challenge = challenge_for(session, user_number.group(1))
        assert authenticate(session, user_number.group(1), password.group(1), codes[str(challenge.position)],
                            challenge, datetime.now(UTC)) is not None
    refused_line(desk.run("official", "credentials", "--org", desk.org, "--insz", new_insz(), "--token", "totp",
                          "--reason", "x"), "Client.Access.OfficialUnknown")
