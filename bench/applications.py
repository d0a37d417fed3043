#!/usr/bin/env python3
"""What does store-and-forward with a signed receipt cost, and how fast does a backlog drain?

One run, side by side on the same machine (see bench/README.md, "bench/applications.py"):

  (A) SubmitApplication (POST /soap/Applications/v1, Kind DISABILITY_ALLOWANCE, signed by Gemeente Kruisdorp's
      official for purpose SOCIAL_APPLICATION) with the disability-applications intake up: the integrator stores
      the application, its signed receipt and an outbox entry in one transaction, forwards it inline, and re-signs
      the receipt as DELIVERED;
  (S) the same with the intake stopped: stored with a FORWARDING_PENDING receipt, the inline attempt refused
      (connection refused), the entry left to the background forwarders;
  (D) drain: the intake started again, the time until every entry (S) left PENDING is DELIVERED by the workers'
      background forwarders (KRUISPUNT_OUTBOX_INTERVAL_SECONDS, --outbox-interval, 1 s here);
  (P) baseline: bench/passthrough.py's case P, a generic pass-through lookup through the same integrator.

Same load generator (wrk with bench/pool.lua, else the Python one) and connections for A, S and P; every request is
signed before the timed part, each with its own kp:Caller/MessageId (SubmitApplication is retry-safe: a repeated
MessageId would be answered from the first submission) and about a demo person in Kruisdorp's files. Every answer is
checked (HTTP 200 and Delivery/State DELIVERED for A, PENDING for S); afterwards the database and the intake's store
are checked too (each application stored once, delivered, filed by the intake exactly once, receipts verified).
Run from the project root:  .venv/bin/python bench/applications.py [--duration 20] [--connections 16]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import math
import os
import platform
import sqlite3
import sys
import time
import uuid
from collections import Counter
from contextlib import ExitStack, closing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

BENCH = Path(__file__).resolve().parent
for _path in (BENCH.parent, BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from cpu import CpuMeter, tree_cpu_seconds  # noqa: E402  (bench/: the modules the benches share)
from demo_stack import audit_outcomes, kruisdorp_key_files, prepare_stack  # noqa: E402
from loadgen import HEADERS, LoadGenerator, add_options, describe_bad, run_python  # noqa: E402
from passthrough import _signed as _signed_lookup  # noqa: E402  (case P exactly as bench/passthrough.py signs it)
from profiling import PROFILE_CATEGORIES, PY_SPY_MISSING, PySpy, find_py_spy, profile_lines  # noqa: E402
from report import (  # noqa: E402
    describe_url,
    load_header,
    load_problems,
    load_row,
    result_line,
    stage_table,
    summarise,
    write_json,
)
from servers import (  # noqa: E402
    Processes,
    Run,
    free_port,
    gunicorn_settings,
    run_bench,
    server_env,
    start_backend,
    start_configured,
    wait_for,
    worker_pids,
)
from signing import KEYS, SignerPool  # noqa: E402
from sync import fresh_database  # noqa: E402  (a fresh PostgreSQL database, dropped afterwards)

from repository.base import aware  # noqa: E402  (stored times as UTC, as the integrator reads them)

AP = "urn:kruispunt:Applications:v1"
APP_PATH = "/soap/Applications/v1"
PASS_PATH = "/soap/StatusSource/v1"
INTAKE = "disability-applications"  # the competent institution for DISABILITY_ALLOWANCE
OTHER_INTAKE = "pension-applications"  # registered on a free port too (never started: not used here)
KIND = "DISABILITY_ALLOWANCE"
SERVICE = "Applications/v1"
PDF = b"%PDF-1.4\n% a medical certificate, synthetic, for the bench\n%%EOF\n"
# HTTP 200 and this text: only a SubmitApplicationResponse carries a Delivery/State (a fault never does)
EXPECT = {"A": "State>DELIVERED</", "S": "State>PENDING</", "P": "get_statusesResponse"}
LABELS = {"A": "(A) submit, intake up: store+forward", "S": "(S) submit, intake down: stored, pending",
          "P": "(P) generic pass-through (baseline)"}
WIDTH = 44


# --- signing --------------------------------------------------------------------------------------------------
def application_fields(person: Any, member: Any, file_number: str) -> dict[str, Any]:
    """An application about a demo person (in Kruisdorp's files for SOCIAL_APPLICATION), in the XSD's order: a
    household of another demo person (by INSZ) and a child by name, one small PDF."""
    return {
        "Kind": KIND, "Insz": person.insz, "LastName": person.last_name, "FirstNames": person.first_names,
        "BirthDate": person.birth, "FileNumber": file_number,
        "Household": {"Member": [{"Insz": member.insz, "Relationship": "SPOUSE"},
                                 {"LastName": person.last_name, "FirstNames": "Jan", "BirthDate": date(2012, 6, 1),
                                  "Relationship": "CHILD"}]},
        "Document": [{"Name": "medisch-attest.pdf", "MimeType": "application/pdf",
                      "Content": base64.b64encode(PDF).decode()}],
    }


def signed_application(official: str, person_index: int, message_id: str, key: Any) -> tuple[bytes, Any]:
    """(envelope bytes, the SubmitApplicationRequest element sent): Body, Timestamp and kp:Caller (purpose
    SOCIAL_APPLICATION, the given MessageId) signed with key, as tests/e2e/application_calls.py signs."""
    from kruispunt_client.xml import build
    from lxml import etree

    from integrator.namespaces import KP, q
    from integrator.wssec.sign import new_envelope, sign_envelope
    from services.backends.persons import PERSONS
    from services.demo_applications import PURPOSE_APPLICATION

    person = PERSONS[person_index % len(PERSONS)]
    member = PERSONS[(person_index + 1) % len(PERSONS)]
    payload = build(f"{{{AP}}}SubmitApplicationRequest",
                    application_fields(person, member, f"BENCH/{message_id[-12:]}"))
    root, header, body = new_envelope()
    caller = build(q(KP, "Caller"), {"Official": official, "Purpose": PURPOSE_APPLICATION, "MessageId": message_id})
    header.append(caller)
    body.append(payload)
    sign_envelope(root, key, headers=[caller], now=datetime.now(UTC))
    return etree.tostring(root), payload


def tag_hex(tag: str) -> str:
    """A run's tag (at most 4 ASCII characters: A, S1, WA...) as the 8 hex digits a MessageId starts with."""
    return tag.encode().hex().rjust(8, "0")[:8]


def message_id(tag: str) -> str:
    """A new MessageId (the kp:Caller schema wants a UUID) whose first group says which run sent it, so the outbox
    entries of each run can be told apart afterwards."""
    return f"{tag_hex(tag)}{str(uuid.uuid4())[8:]}"


def _signed(spec: tuple[str, str, int, str]) -> bytes:
    kind, official, index, tag = spec
    if kind == "P":
        from services.backends.persons import PERSONS

        return _signed_lookup(("pass", official, PERSONS[index % len(PERSONS)].insz, tag))
    return signed_application(official, index, message_id(tag), KEYS["org"])[0]


class Signer:
    """Processes that sign SubmitApplication requests (their tag in the MessageId, see message_id()) and (P) lookups,
    the demo persons in turn."""

    def __init__(self, keys: dict[str, tuple[Path, Path]], processes: int) -> None:
        from services.demo_organisations import OFFICIALS

        self.applicant_official = OFFICIALS[0].insz  # An Verhoeven, Kruisdorp: granted Applications
        self.pool = SignerPool(keys, processes)
        self.index = 0

    def sign(self, kind: str, count: int, tag: str = "") -> tuple[list[bytes], float]:
        start, self.index = self.index, self.index + count
        extra = date.today().isoformat() if kind == "P" else tag
        specs = [(kind, self.applicant_official, start + i, extra) for i in range(count)]
        began = time.perf_counter()
        bodies = self.pool.map(_signed, specs)
        return bodies, time.perf_counter() - began

    def close(self) -> None:
        self.pool.close()


# --- the stack ------------------------------------------------------------------------------------------------
class Stack:
    """The integrator (gunicorn -c gunicorn.conf.py), the disability-applications intake and the health-insurance
    status source (for P), each backend as `kruispunt run` starts it, in a fresh KRUISPUNT_VAR."""

    def __init__(self, args: argparse.Namespace, procs: Processes, work: Path, database_url: str | None) -> None:
        from services.backends.status_source import SOURCES

        self.args, self.procs = args, procs
        self.gconf = gunicorn_settings(args)
        args.database_url = database_url
        self.settings, ports, self.database_url = prepare_stack(args, work / "var", (INTAKE, OTHER_INTAKE))
        self.source = SOURCES[0]  # StatusSource/v1's backend, as in bench/passthrough.py
        self.intake_port, source_port = ports[INTAKE], ports[self.source.name]
        self.state_dir = work / "backend-state"
        self.port = free_port()
        self.env = server_env(args, self.gconf, KRUISPUNT_VAR=str(self.settings.var_dir),
                              KRUISPUNT_DATABASE_URL=self.database_url, KRUISPUNT_BACKEND_STATE=str(self.state_dir),
                              KRUISPUNT_OUTBOX_INTERVAL_SECONDS=f"{args.outbox_interval:g}")
        self.source_backend = start_backend(procs, self.source.name, source_port, self.env)
        self.intake: Any = None
        self.start_intake()
        self.integrator = start_configured(procs, "integrator", self.port, self.env)
        wait_for(f"http://127.0.0.1:{source_port}/?wsdl", self.source_backend, procs, f"backend-{self.source.name}")
        self.wait_intake()
        wait_for(f"http://127.0.0.1:{self.port}/health/ready", self.integrator, procs, "integrator")
        self.urls = {k: f"http://127.0.0.1:{self.port}{APP_PATH}" for k in ("A", "S")}
        self.urls["P"] = f"http://127.0.0.1:{self.port}{PASS_PATH}"
        from integrator.database import make_engine, session_factory

        self.engine = make_engine(self.database_url)
        self.sessions = session_factory(self.engine)

    def start_intake(self) -> None:
        self.intake = start_backend(self.procs, INTAKE, self.intake_port, self.env)

    def wait_intake(self) -> None:
        wait_for(f"http://127.0.0.1:{self.intake_port}/?wsdl", self.intake, self.procs, f"backend-{INTAKE}")

    def stop_intake(self) -> None:
        self.procs.stop(f"backend-{INTAKE}")
        self.intake = None

    def keys(self) -> dict[str, tuple[Path, Path]]:
        return {"org": kruisdorp_key_files(self.settings.pki_dir)}

    def servers(self) -> dict[str, list[int]]:
        found = {"integrator": [self.integrator.pid], "status source": [self.source_backend.pid]}
        if self.intake is not None:
            found["intake"] = [self.intake.pid]
        return found

    def close(self) -> None:
        self.engine.dispose()


def post(url: str, data: bytes) -> tuple[int, bytes]:
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        conn.request("POST", parsed.path or "/", data, HEADERS)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def sanity(stack: Stack, case: str) -> dict[str, Any]:
    """One submission checked as its receiver would: the answer signed by the integrator and bound to the request,
    Delivery/State as expected, the receipt signed by the integrator over this very application (digest), with
    the same ticket and, for A, the institution's reference; for A the intake filed it once."""
    from kruispunt_client.receipt import application_digest, verify_receipt
    from lxml import etree

    from integrator.envelope import EnvelopeLimits, parse_envelope
    from integrator.namespaces import KP, q
    from integrator.pki import Identity, fingerprint
    from integrator.wssec.sign import SigningKey, signature_digest
    from integrator.wssec.trust import TrustStore
    from integrator.wssec.verify import SecurityPolicy, verify_envelope
    from services.demo_organisations import OFFICIALS

    settings = stack.settings
    trust = TrustStore.from_files(settings.trust_anchor_paths, settings.crl_path)
    cert, key = stack.keys()["org"]
    integrator = Identity("i", settings.pki_dir / "integrator.crt", settings.pki_dir / "integrator.key").load_cert()
    data, sent = signed_application(OFFICIALS[0].insz, 0, message_id("X" + case),
                                    SigningKey.from_identity(Identity("org", cert, key)))
    status, body = post(stack.urls[case], data)
    if status != 200:
        text = f"HTTP {status}\n" + body.decode(errors="replace")
        raise RuntimeError(f"{LABELS[case]}: {describe_bad(text)}")
    verified = verify_envelope(parse_envelope(body, EnvelopeLimits().scaled(10_000_000)), trust, SecurityPolicy(),
                               datetime.now(UTC))
    if fingerprint(verified.certificate) != fingerprint(integrator):
        raise RuntimeError(f"{LABELS[case]}: the answer is not signed by the integrator")
    answer = verified.headers.get(q(KP, "Answer"))
    wanted = base64.b64encode(signature_digest(etree.fromstring(data))).decode()
    if answer is None or answer.findtext(q(KP, "RequestSignatureDigest")) != wanted:
        raise RuntimeError(f"{LABELS[case]}: the answer is not bound to the request")
    payload = verified.payload
    if payload is None or payload.tag != f"{{{AP}}}SubmitApplicationResponse":
        raise RuntimeError(f"{LABELS[case]}: not a SubmitApplicationResponse: {etree.tostring(payload)[:500]!r}")
    ticket = payload.findtext(f"{{{AP}}}Ticket")
    state = payload.findtext(f"{{{AP}}}Delivery/{{{AP}}}State")
    reference = payload.findtext(f"{{{AP}}}Delivery/{{{AP}}}InstitutionReference")
    receipt = verify_receipt(base64.b64decode(payload.findtext(f"{{{AP}}}SignedReceipt") or ""), integrator)
    want_state, want_forwarding = ("DELIVERED", "DELIVERED") if case == "A" else ("PENDING", "FORWARDING_PENDING")
    problems = []
    if state != want_state or receipt.forwarding != want_forwarding:
        problems.append(f"state {state}, receipt {receipt.forwarding}")
    if receipt.ticket != ticket or receipt.application_digest != application_digest(sent):
        problems.append("the receipt is not about this application (ticket or digest)")
    if receipt.institution != INTAKE or receipt.kind != KIND:
        problems.append(f"receipt institution {receipt.institution}, kind {receipt.kind}")
    if case == "A":
        filed = intake_filed(stack, [ticket or ""])
        if not reference or receipt.institution_reference != reference or filed.get(ticket, (None, 0))[1] != 1:
            problems.append(f"institution reference {reference} / receipt {receipt.institution_reference}, "
                            f"filed {filed.get(ticket)}")
    if problems:
        raise RuntimeError(f"{LABELS[case]}: sanity check failed: {'; '.join(problems)}")
    return {"bytes_out": len(data), "bytes_in": len(body), "ticket": ticket, "state": state,
            "institution_reference": reference, "receipt_bytes": len(base64.b64decode(
                payload.findtext(f"{{{AP}}}SignedReceipt") or ""))}


def intake_filed(stack: Stack, references: list[str]) -> dict[str, tuple[str, int]]:
    """What the intake filed for these references (its own SQLite store): reference -> (file reference, deliveries
    that reached it)."""
    path = stack.state_dir / f"{INTAKE}.sqlite"
    if not path.exists():
        return {}
    wanted = set(references)
    with closing(sqlite3.connect(path, timeout=30)) as db:
        rows = db.execute("SELECT reference, file_reference, attempts FROM applications").fetchall()
    return {r: (f, int(n)) for r, f, n in rows if r in wanted}


# --- load -----------------------------------------------------------------------------------------------------
def pool_size(args: argparse.Namespace, rate: float, duration: float, connections: int, factor: float) -> int:
    return max(args.min_pool, math.ceil(rate * duration * factor) + 4 * connections)


def warm_up(stack: Stack, signer: Signer, args: argparse.Namespace, kind: str, count: int,
            warnings: list[str]) -> float:
    """A pool of `count` requests with the Python client (every worker, route and contract caches, keep-alive
    pools); its rate sizes the measured pools (the requests are single-use)."""
    bodies, seconds = signer.sign(kind, count, "W" + kind)
    print(f"{LABELS[kind][:3]} warming up: {len(bodies)} requests (signed in {seconds:.1f} s)", flush=True)
    began = time.time()
    warm = run_python(stack.urls[kind], bodies, unique=True, expect=EXPECT[kind], connections=args.connections,
                      duration=None, limit=len(bodies), processes=args.client_processes)
    if not warm["good"] or warm["bad"] > 0.05 * warm["requests"]:
        raise RuntimeError(f"{LABELS[kind]} warm-up failed: {warm['good']} good, {warm['bad']} bad "
                           f"{warm['statuses']}; first bad answer:\n{warm['first_bad']}")
    if warm["bad"]:  # not measured, but reported (the first calls of a route may race its contract compilation)
        warnings.append(f"{LABELS[kind][:3]} warm-up: {warm['bad']} of {warm['requests']} answers were not good "
                        f"{warm['statuses']}; first: {(warm['first_bad'] or '')[:300]}")
        print(f"warning: {warnings[-1]}", flush=True)
    return warm["requests"] / max(1e-3, time.time() - began - 0.5)


def measure(kind: str, stack: Stack, signer: Signer, args: argparse.Namespace, load: LoadGenerator, size: int,
            duration: float, connections: int, name: str) -> dict[str, Any]:
    """One measured run: its pool signed right before (MessageId tag = name), CPU of the servers from /proc."""
    bodies, sign_seconds = signer.sign(kind, size, name)
    print(f"{LABELS[kind]}: {duration:g} s at {connections} connection(s), pool {size} (signed in "
          f"{sign_seconds:.1f} s)", flush=True)
    with CpuMeter(stack.servers()) as cpu:
        result = load.run(stack.urls[kind], bodies, unique=True, expect=EXPECT[kind], duration=duration, name=name,
                          connections=connections)
    result = summarise(result, cpu)
    result.update(kind=kind, tag=name, pool=size, pool_sign_seconds=sign_seconds, connections=connections)
    result["stage_breakdown"] = stage_table(result)
    return result


# --- the outbox -----------------------------------------------------------------------------------------------
def outbox_of(stack: Stack, tag: str | None = None, state: str | None = None) -> list[Any]:
    """(application message_id, ticket, outbox entry id, state, attempts, next_attempt_at, delivered_at,
    created_at) of the bench's applications, optionally those of one run (its MessageId tag), or in one state."""
    from sqlalchemy import select

    from integrator.outbox import OutboxEntry
    from repository.applications import Application

    query = (select(Application.message_id, Application.ticket, OutboxEntry.id, OutboxEntry.state,
                    OutboxEntry.attempts, OutboxEntry.next_attempt_at, OutboxEntry.delivered_at,
                    OutboxEntry.created_at)
             .join(OutboxEntry, OutboxEntry.id == Application.delivery_id)
             .where(OutboxEntry.service == SERVICE))
    if tag is not None:
        query = query.where(Application.message_id.like(f"{tag_hex(tag)}-%"))
    if state is not None:
        query = query.where(OutboxEntry.state == state)
    with stack.sessions() as session:
        return list(session.execute(query).all())


def settle(stack: Stack, timeout: float = 30.0) -> float:
    """Wait until the submissions still in flight when the load generator stopped are stored and have had their
    inline attempt (no new application for a second, no pending entry with 0 attempts); the seconds waited."""
    began = time.monotonic()
    last = None
    while time.monotonic() - began < timeout:
        rows = outbox_of(stack)
        pending = [r.attempts for r in rows if r.state == "PENDING"]
        now = (len(rows), len(pending), min(pending, default=1))
        if now == last and now[2] >= 1:
            break
        last = now
        time.sleep(1.0)
    return time.monotonic() - began


def over_schedule(pending: list[Any], now: datetime) -> dict[str, Any]:
    """Entries attempted more often than integrator.outbox.backoff() allows since they were created: after the
    inline attempt at 0 s, a failed entry is due again 2, 4, 8, ... s after each failure, so n attempts take at
    least 2 + 4 + ... + 2^(n-1) s. More attempts mean some entry was tried again before it was due."""
    from integrator.outbox import backoff

    def most(window: float) -> int:
        n, t = 1, 0.0
        while True:
            t += backoff(n).total_seconds()
            if t > window:
                return n
            n += 1

    allowed = {r.id: most((now - (aware(r.created_at) or now)).total_seconds()) for r in pending}
    over = [(r.id, r.attempts, allowed[r.id]) for r in pending if r.attempts > allowed[r.id]]
    return {"entries": len(over), "extra_attempts": sum(a - m for _, a, m in over),
            "examples": [{"id": i, "attempts": a, "at_most": m} for i, a, m in over[:10]]}


def drain(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Start the intake again and poll the outbox until every entry left PENDING is DELIVERED (or --drain-timeout).
    Time zero is the intake's start command; the background forwarders do all the work."""
    from sqlalchemy import func, select, update

    from integrator.outbox import OutboxEntry

    settled = settle(stack)
    pending = outbox_of(stack, state="PENDING")
    ids = [row.id for row in pending]
    if not ids:
        raise RuntimeError("(D): nothing is pending in the outbox after (S)")
    snapshot = {"entries": len(ids), "settled_s": settled, "attempts_so_far": sum(r.attempts for r in pending),
                "attempts_max": max(r.attempts for r in pending),
                "over_schedule": over_schedule(pending, datetime.now(UTC))}
    if args.drain_due_now:  # a bench intervention, not a product feature: every entry due at once
        with stack.sessions() as session:
            session.execute(update(OutboxEntry).where(OutboxEntry.id.in_(ids))
                            .values(next_attempt_at=datetime.now(UTC)))
            session.commit()
        pending = outbox_of(stack, state="PENDING")
    print(f"(D) {len(ids)} entries pending after (S) ({snapshot['attempts_so_far']} failed attempts so far, at most "
          f"{snapshot['attempts_max']} per entry); starting the intake", flush=True)
    t0 = datetime.now(UTC)
    began = time.monotonic()
    due_of = {r.id: max(0.0, ((aware(r.next_attempt_at) or t0) - t0).total_seconds()) for r in pending}
    due = sorted(due_of.values())
    timeline: list[tuple[float, int]] = []
    with CpuMeter({"integrator": [stack.integrator.pid]}) as cpu:
        stack.start_intake()
        stack.wait_intake()
        ready = time.monotonic() - began
        intake_booted = tree_cpu_seconds([stack.intake.pid])  # its start-up is not a delivery's cost
        deadline = began + args.drain_timeout
        while True:
            with stack.sessions() as session:
                counts = dict(session.execute(select(OutboxEntry.state, func.count()).where(OutboxEntry.id.in_(ids))
                                              .group_by(OutboxEntry.state)).all())
            elapsed = time.monotonic() - began
            done = counts.get("DELIVERED", 0)
            if not timeline or timeline[-1][1] != done:
                timeline.append((round(elapsed, 3), done))
            if counts.get("PENDING", 0) == 0 or time.monotonic() > deadline:
                break
            time.sleep(args.drain_poll)
        intake_cpu = tree_cpu_seconds([stack.intake.pid]) - intake_booted
    backlog = set(ids)
    rows = [r for r in outbox_of(stack) if r.id in backlog]
    delivered = sorted(((aware(r.delivered_at) or t0) - t0).total_seconds() for r in rows if r.state == "DELIVERED")
    states = Counter(r.state for r in rows)
    seconds = delivered[-1] if delivered else math.nan
    first = delivered[0] if delivered else math.nan
    per_second = Counter(int(x) for x in delivered)
    # the forwarders' pace: the entries already due (back-off over) within 5 s of the restart, from the first
    # delivery until the last of them was delivered
    early = [((aware(r.delivered_at) or t0) - t0).total_seconds() for r in rows
             if r.state == "DELIVERED" and due_of.get(r.id, math.inf) <= 5.0]
    pace = len(early) / (max(early) - first) if len(early) > 1 and max(early) > first else math.nan
    out = {
        **snapshot, "due_now": args.drain_due_now, "states": dict(states), "intake_ready_s": ready,
        "seconds": seconds, "rate": len(delivered) / seconds if delivered and seconds > 0 else math.nan,
        "first_delivery_s": first,
        "pace": pace, "pace_entries": len(early), "pace_until_s": max(early) if early else math.nan,
        "last_due_s": due[-1] if due else math.nan, "due_within_5s": sum(1 for d in due if d <= 5.0),
        "due_quartiles_s": [due[int(q * (len(due) - 1))] for q in (0.25, 0.5, 0.75)] if due else [],
        "per_second": [per_second.get(i, 0) for i in range(int(seconds) + 1)] if delivered else [],
        "poll_timeline": timeline, "timed_out": states.get("PENDING", 0) > 0,
        "attempts_total": sum(r.attempts for r in rows),
        "cpu_seconds": {"integrator": cpu.used["integrator"], "intake": intake_cpu},
        "machine_busy": cpu.machine_busy, "other_load_cores": cpu.others,
    }
    out["cpu_ms_per_entry"] = {k: v * 1e3 / max(1, len(delivered)) for k, v in out["cpu_seconds"].items()}
    return out


def check_outcomes(stack: Stack, tags: dict[str, str], measured: dict[str, dict[str, Any]],
                   sample_size: int) -> dict[str, Any]:
    """After the drain: every bench application stored once with its outbox entry DELIVERED, the intake filed each
    ticket exactly once (A: at the first, inline attempt), the stored receipts (a sample) verify and say what the
    answer said (A: DELIVERED with the institution's reference; S: FORWARDING_PENDING)."""
    from kruispunt_client.receipt import verify_receipt

    from integrator.pki import Identity
    from repository.applications import Application

    settings = stack.settings
    integrator = Identity("i", settings.pki_dir / "integrator.crt", settings.pki_dir / "integrator.key").load_cert()
    out: dict[str, Any] = {}
    problems: list[str] = []
    for case, tag in tags.items():
        rows = outbox_of(stack, tag)
        filed = intake_filed(stack, [r.ticket for r in rows])
        states = Counter(r.state for r in rows)
        filed_once = sum(1 for r in rows if filed.get(r.ticket, ("", 0))[1] == 1)
        inline = sum(1 for r in rows if r.attempts == 1)
        sample = rows[:: max(1, len(rows) // sample_size)][:sample_size]
        receipts = []
        with stack.sessions() as session:
            for r in sample:
                app = session.query(Application).filter_by(ticket=r.ticket).one()
                receipts.append(verify_receipt(app.receipt.encode(), integrator))
        want = "DELIVERED" if case.startswith("A") else "FORWARDING_PENDING"
        bad_receipts = sum(1 for rc in receipts if rc.forwarding != want or rc.insz is None
                           or (want == "DELIVERED") != bool(rc.institution_reference))
        good = measured.get(tag, {}).get("good", 0)
        out[case] = {"stored": len(rows), "good_answers": good, "states": dict(states), "filed_once": filed_once,
                     "deliveries_reaching_intake": sum(filed.get(r.ticket, ("", 0))[1] for r in rows),
                     "delivered_first_attempt": inline, "receipts_checked": len(receipts),
                     "receipts_bad": bad_receipts}
        if len(rows) < good:
            problems.append(f"{case}: {len(rows)} applications stored, fewer than {good} good answers")
        if states.get("DELIVERED", 0) != len(rows):
            problems.append(f"{case}: outbox entries not all DELIVERED: {dict(states)}")
        if filed_once != len(rows):
            problems.append(f"{case}: the intake filed {filed_once} of {len(rows)} exactly once")
        if case.startswith("A") and inline != len(rows):
            problems.append(f"{case}: {len(rows) - inline} entries needed more than the inline attempt")
        if bad_receipts:
            problems.append(f"{case}: {bad_receipts} of {len(receipts)} stored receipts do not say {want}")
    out["problems"] = problems
    return out


# --- profile --------------------------------------------------------------------------------------------------
def profile(stack: Stack, signer: Signer, args: argparse.Namespace, load: LoadGenerator, work: Path,
            rate: float) -> dict[str, Any]:
    """py-spy record --gil on the integrator's workers and the intake during an extra, unmeasured (A) run."""
    spy = find_py_spy()
    if spy is None:
        return {"error": PY_SPY_MISSING}
    seconds = max(5.0, args.profile)
    bodies, _ = signer.sign("A", pool_size(args, rate, seconds + 2, args.connections, args.pool_factor), "PA")
    targets = {"integrator": worker_pids(stack.integrator.pid), "intake": worker_pids(stack.intake.pid)}
    spies = PySpy(spy, targets, seconds, work, "pyspy-app")
    print(f"(A) profiling with py-spy for {seconds:g} s (unmeasured)", flush=True)
    time.sleep(0.5)
    load.run(stack.urls["A"], bodies, unique=True, expect=EXPECT["A"], duration=seconds, name="a-profile")
    found: dict[str, Any] = {label: {"samples": s.total, "categories": s.shares(s.categories, 14),
                                     "self": s.shares(s.own, 14)} for label, s in spies.samples().items()}
    found["categories_known"] = [name for name, _ in PROFILE_CATEGORIES]
    return found


# --- report ---------------------------------------------------------------------------------------------------
def cpu_text(r: dict[str, Any]) -> str:
    c = r.get("cpu_ms_per_request") or {}
    parts = [f"{k} {v:.1f}" for k, v in c.items() if k != "load generator" and v >= 0.05]
    return " + ".join(parts)


def report(run: dict[str, Any]) -> str:
    loaded, unloaded, d = run["loaded"], run.get("unloaded") or {}, run["drain"]
    a, s, p = loaded["A"], loaded["S"], loaded.get("P")
    g = run["gunicorn"]
    lines = [
        f"kruispunt applications benchmark  {run['started']}  {run['cores']} cores  python {run['python']}",
        f"integrator: gunicorn.conf.py, {g['workers']} workers x {g['worker_class']} x {g['threads']} threads, "
        f"KRUISPUNT_OUTBOX_INTERVAL_SECONDS={run['outbox_interval']:g} (bench setting; default 5); backends "
        f"{INTAKE} and {run['source']} 1 worker x gthread x 4 threads; database {run['database']}",
        f"load generator: {run['load_generator']}; {run['connections']} connections; {run['duration']:g} s per "
        f"case (P {run['baseline_duration']:g} s), unloaded {run['unloaded_seconds']:g} s at 1 connection",
        f"sanity: one A and one S submission checked end to end (answer signed and bound, receipt verified over the "
        f"application's digest, A filed once by the intake); request {run['sanity']['A']['bytes_out']} bytes, "
        f"answer {run['sanity']['A']['bytes_in']} bytes, receipt {run['sanity']['A']['receipt_bytes']} bytes",
        "",
        load_header(WIDTH, "CPU ms/call (servers, /proc)"),
    ]
    for kind in ("A", "S", "P"):
        r = loaded.get(kind)
        if r:
            lines.append(load_row(LABELS[kind], WIDTH, r) + cpu_text(r))
    for kind in ("A", "S", "P"):
        r = unloaded.get(kind)
        if r:
            lines.append(load_row(LABELS[kind][:3] + " at 1 connection (unloaded)", WIDTH, r) + cpu_text(r))
    lines.append(f"{'(D) drain of the (S) backlog':{WIDTH}}{d['rate']:9.1f} entries/s: "
                 f"{d['states'].get('DELIVERED', 0)}/{d['entries']} delivered in {d['seconds']:.1f} s after the "
                 "intake's start command; "
                 f"CPU/entry integrator {d['cpu_ms_per_entry']['integrator']:.1f} + intake "
                 f"{d['cpu_ms_per_entry']['intake']:.1f}")

    def ratio(x: float, y: float) -> str:
        return f"{x / y:.2f}" if y else "n/a"

    lines += [
        "",
        f"ratio S/A throughput          {ratio(s['throughput_rps'], a['throughput_rps'])}   p50 "
        f"{ratio(s['latency_ms']['p50'], a['latency_ms']['p50'])}   p99 "
        f"{ratio(s['latency_ms']['p99'], a['latency_ms']['p99'])}",
    ]
    if p:
        lines.append(f"ratio A/P throughput          {ratio(a['throughput_rps'], p['throughput_rps'])}   p50 "
                     f"{ratio(a['latency_ms']['p50'], p['latency_ms']['p50'])}   (a submission costs "
                     f"{ratio(p['throughput_rps'], a['throughput_rps'])}x a pass-through lookup)")
    if unloaded.get("A") and unloaded.get("S"):
        ua, us = unloaded["A"]["latency_ms"]["p50"], unloaded["S"]["latency_ms"]["p50"]
        text = (f"unloaded p50                  A {ua:.1f} ms, S {us:.1f} ms: forwarding inline and re-signing the "
                f"receipt add {ua - us:.1f} ms")
        if unloaded.get("P"):
            text += f"; P {unloaded['P']['latency_ms']['p50']:.1f} ms"
        lines.append(text)
    cpu_a = sum(v for k, v in (a.get("cpu_ms_per_request") or {}).items() if k != "load generator")
    cpu_s = sum(v for k, v in (s.get("cpu_ms_per_request") or {}).items() if k != "load generator")
    if cpu_a and cpu_s:
        lines.append(f"CPU per submission (servers)  A {cpu_a:.1f} ms, S {cpu_s:.1f} ms (S includes the "
                     f"forwarders' failing retries meanwhile): CPU-bound ceilings on {run['cores']} cores A "
                     f"{run['cores'] * 1e3 / cpu_a:.0f}/s, S {run['cores'] * 1e3 / cpu_s:.0f}/s")
    lines += [
        f"drain rate vs A               {ratio(d['rate'], a['throughput_rps'])} (end to end); the forwarders' pace "
        f"over the {d['pace_entries']} entries due within 5 s of the restart ({d['first_delivery_s']:.1f} to "
        f"{d['pace_until_s']:.1f} s): {d['pace']:.1f}/s = {ratio(d['pace'], a['throughput_rps'])} of A",
        f"  the backlog: {d['entries']} entries, {d['attempts_so_far']} failed attempts during the outage "
        f"({d['attempts_so_far'] - d['entries']} of them the forwarders' retries; at most {d['attempts_max']} per "
        f"entry; {d['over_schedule']['entries']} entries tried more often than the back-off allows, "
        f"{d['over_schedule']['extra_attempts']} extra attempts)",
        f"  due (back-off) at restart: {d['due_within_5s']} within 5 s, quartiles "
        + ", ".join(f"{x:.1f}" for x in d["due_quartiles_s"]) + f" s, the last {d['last_due_s']:.1f} s"
        + (" (--drain-due-now: all made due at restart)" if d["due_now"] else ""),
        f"  intake ready {d['intake_ready_s']:.1f} s after its start command; deliveries per second: "
        + " ".join(str(n) for n in d["per_second"][:90]) + (" ..." if len(d["per_second"]) > 90 else ""),
        f"machine busy: A {a['machine_busy']:.0%}, S {s['machine_busy']:.0%}, D {d['machine_busy']:.0%}; cores kept "
        f"busy by other processes meanwhile: A {a['other_load_cores']:.2f}, S {s['other_load_cores']:.2f}, D "
        f"{d['other_load_cores']:.2f}",
    ]
    sa, ss = a.get("stage_breakdown") or {}, s.get("stage_breakdown") or {}
    if sa and ss:
        lines += ["", f"where a submission's time goes (Server-Timing, mean ms over {sa['responses']} A / "
                      f"{ss['responses']} S measured responses; 'handle' = store + receipt + inline forwarding)",
                  f"  {'stage':10}{'A ms':>9}{'S ms':>9}{'A 1conn':>9}{'S 1conn':>9}"]
        ua = ((unloaded.get("A") or {}).get("stage_breakdown") or {}).get("stages", {})
        us = ((unloaded.get("S") or {}).get("stage_breakdown") or {}).get("stages", {})
        for name in sa["stages"]:
            lines.append(f"  {name:10}{sa['stages'][name]['mean_ms']:9.2f}"
                         f"{ss['stages'].get(name, {}).get('mean_ms', math.nan):9.2f}"
                         f"{ua.get(name, {}).get('mean_ms', math.nan):9.2f}"
                         f"{us.get(name, {}).get('mean_ms', math.nan):9.2f}")
        lines.append(f"  {'total':10}{sa['total_ms']:9.2f}{ss['total_ms']:9.2f}   (client-side mean latency A "
                     f"{a['latency_ms']['mean']:.2f}, S {s['latency_ms']['mean']:.2f} ms)")
    c = run["outcomes"]
    lines += ["", "after the drain: " + "; ".join(
        f"{case} {o['stored']} stored ({o['good_answers']} good answers), {o['states'].get('DELIVERED', 0)} delivered, "
        f"{o['filed_once']} filed exactly once, {o['delivered_first_attempt']} at the first attempt, "
        f"{o['receipts_checked'] - o['receipts_bad']}/{o['receipts_checked']} sampled receipts right"
        for case, o in c.items() if case != "problems")]
    if run.get("audit"):
        lines.append(f"audit records at the integrator (incl. warm-up): {run['audit']}")
    for warning in run.get("warnings") or []:
        lines += [f"warning (not measured): {warning}"]
    lines += ["", result_line(run["problems"], "every measured answer was HTTP 200 with the expected Delivery/State, "
                                               "every backlog entry was delivered, every application filed once")]
    prof = run.get("profile") or {}
    if prof.get("error"):
        lines.append(f"profile: {prof['error']}")
    for label in ("integrator", "intake"):
        r = prof.get(label)
        if r and r.get("samples"):
            lines += profile_lines(label, "(A, unmeasured)", r, 12)
    return "\n".join(lines)


def problems_of(run: dict[str, Any]) -> list[str]:
    found = []
    for group in ("loaded", "unloaded"):
        for kind, r in (run.get(group) or {}).items():
            tag = f"{group} {LABELS[kind][:3]}"
            found += load_problems(tag, r, socket_errors="{tag}: {n} socket errors {socket_errors}",
                                   exhausted="{tag}: the request pool ran out; raise --pool-factor")
            if not r["good"]:
                found.append(f"{tag}: no good answer at all")
    d = run["drain"]
    if d["timed_out"]:
        found.append(f"(D): {d['states'].get('PENDING', 0)} of {d['entries']} entries still PENDING after "
                     f"--drain-timeout {run['drain_timeout']:g} s")
    if d["states"].get("REFUSED"):
        found.append(f"(D): {d['states']['REFUSED']} entries REFUSED by the intake")
    return found + run["outcomes"]["problems"]


# --- main -----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--duration", type=float, default=20.0, help="seconds measured for (A) and for (S)")
    p.add_argument("--baseline-duration", type=float, default=10.0, help="seconds measured for (P) (0: skip P)")
    p.add_argument("--unloaded", type=float, default=5.0, help="seconds per case at 1 connection (0: skip)")
    p.add_argument("--connections", type=int, default=16, help="concurrent connections, every case")
    p.add_argument("--outbox-interval", type=float, default=1.0,
                   help="KRUISPUNT_OUTBOX_INTERVAL_SECONDS of the integrator (the product's default is 5)")
    p.add_argument("--drain-timeout", type=float, default=120.0, help="give up (D) after this many seconds")
    p.add_argument("--drain-poll", type=float, default=0.2, help="seconds between outbox polls during (D)")
    p.add_argument("--drain-due-now", action="store_true",
                   help="make every backlog entry due at the restart (a bench intervention in the outbox table) to "
                        "time the forwarders alone, without the retry back-off")
    p.add_argument("--workers", type=int, default=None, help="integrator gunicorn workers (gunicorn.conf.py's)")
    p.add_argument("--threads", type=int, default=None, help="integrator gthread threads (gunicorn.conf.py's)")
    p.add_argument("--database-url", default=None,
                   help="a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/postgres: a fresh database "
                        "kp_bench_sync_app_<hex> is created there and dropped afterwards; default: fresh SQLite")
    p.add_argument("--access-log", action="store_true", help="keep gunicorn's access log on (default: off)")
    add_options(p)  # --install, --python-client, --wrk-threads, --client-processes
    p.add_argument("--sign-processes", type=int, default=os.cpu_count() or 1, help="processes signing the pools")
    p.add_argument("--warmup-pool", type=int, default=150, help="A (and P) requests sent to warm up")
    p.add_argument("--pool-factor", type=float, default=3.0, help="pool = warm-up rate x duration x this (S: x2)")
    p.add_argument("--min-pool", type=int, default=200, help="smallest pool")
    p.add_argument("--receipt-sample", type=int, default=25, help="stored receipts verified per case afterwards")
    p.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                   help="before (S), py-spy the integrator and the intake under an extra, unmeasured (A) load")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, PKI, database)")
    p.add_argument("--output", type=Path, default=None,
                   help="JSON file (default: bench/results/applications-<time>.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(args, "kruispunt-bench-app-", lambda bench_run: bench(args, bench_run))


def bench(args: argparse.Namespace, bench_run: Run) -> int:
    with ExitStack() as stack_of:
        database_url = stack_of.enter_context(fresh_database(args.database_url, bench_run.work / "var" /
                                                             "kruispunt.db", "app", args.keep)) \
            if args.database_url else None
        return _bench(args, bench_run, database_url)


def _bench(args: argparse.Namespace, bench_run: Run, database_url: str | None) -> int:
    procs, work = bench_run.procs, bench_run.work
    load = LoadGenerator(args, procs, work)
    print(f"work dir {work}; load generator: {load.name}", flush=True)
    stack = Stack(args, procs, work, database_url)
    bench_run.cleanups.append(stack.close)
    signer = Signer(stack.keys(), args.sign_processes)
    bench_run.cleanups.append(signer.close)
    checked = {"A": sanity(stack, "A")}
    print(f"sanity (A): delivered, institution reference {checked['A']['institution_reference']}", flush=True)
    warnings: list[str] = []
    rates = {"A": warm_up(stack, signer, args, "A", args.warmup_pool, warnings)}
    if args.baseline_duration > 0:
        rates["P"] = warm_up(stack, signer, args, "P", args.warmup_pool, warnings)
    print("warm-up rates: " + ", ".join(f"{k} {v:.1f}/s" for k, v in rates.items()), flush=True)

    loaded: dict[str, dict[str, Any]] = {}
    unloaded: dict[str, dict[str, Any]] = {}
    c = args.connections
    loaded["A"] = measure("A", stack, signer, args, load, pool_size(args, rates["A"], args.duration, c,
                                                                    args.pool_factor), args.duration, c, "A")
    if args.baseline_duration > 0:
        loaded["P"] = measure("P", stack, signer, args, load, pool_size(args, rates["P"], args.baseline_duration, c,
                                                                        args.pool_factor),
                              args.baseline_duration, c, "P")
    if args.unloaded > 0:
        for kind in ("A", "P") if args.baseline_duration > 0 else ("A",):
            unloaded[kind] = measure(kind, stack, signer, args, load, pool_size(args, 100, args.unloaded, 1, 1.0),
                                     args.unloaded, 1, kind + "1")
    run: dict[str, Any] = {}
    if args.profile:
        run["profile"] = profile(stack, signer, args, load, work, loaded["A"]["throughput_rps"])

    settle(stack)  # submissions still in flight must reach the intake before it stops
    print(f"stopping the {INTAKE} intake", flush=True)
    stack.stop_intake()
    checked["S"] = sanity(stack, "S")
    print(f"sanity (S): stored, {checked['S']['state']}", flush=True)
    if args.unloaded > 0:  # first: the forwarders' failing retries of the loaded run's backlog would weigh on it
        unloaded["S"] = measure("S", stack, signer, args, load, pool_size(args, 100, args.unloaded, 1, 1.0),
                                args.unloaded, 1, "S1")
    loaded["S"] = measure("S", stack, signer, args, load, pool_size(args, rates["A"], args.duration, c,
                                                                    2 * args.pool_factor), args.duration, c, "S")
    drained = drain(stack, args)
    print(f"(D) {drained['states']} after {drained['seconds']:.1f} s", flush=True)
    measured = {r["tag"]: r for r in (*loaded.values(), *unloaded.values())}
    tags = {f"{tag} ({c if len(tag) == 1 else 1} conn)": tag for tag in ("A", "A1", "S", "S1") if tag in measured}
    run.update({
        "started": bench_run.started.isoformat(timespec="seconds"), "cores": os.cpu_count(),
        "python": platform.python_version(), "gunicorn": stack.gconf, "source": stack.source.name,
        "database": describe_url(stack.database_url), "load_generator": load.name, "connections": c,
        "duration": args.duration, "baseline_duration": args.baseline_duration, "unloaded_seconds": args.unloaded,
        "outbox_interval": args.outbox_interval, "drain_timeout": args.drain_timeout, "warmup_rates": rates,
        "sanity": checked, "warnings": warnings, "loaded": loaded, "unloaded": unloaded, "drain": drained,
        "outcomes": check_outcomes(stack, tags, measured, max(1, args.receipt_sample)),
    })
    try:
        run["audit"] = audit_outcomes(stack.database_url)
    except Exception as exc:  # informative only
        run["audit"] = {"error": str(exc)}
    run["problems"] = problems_of(run)
    a, s = loaded["A"], loaded["S"]
    run["derived"] = {
        "ratio_S_over_A_throughput": s["throughput_rps"] / a["throughput_rps"],
        "ratio_S_over_A_p50": s["latency_ms"]["p50"] / a["latency_ms"]["p50"],
        "ratio_S_over_A_p99": s["latency_ms"]["p99"] / a["latency_ms"]["p99"],
        "ratio_drain_over_A": drained["rate"] / a["throughput_rps"],
        "ratio_drain_pace_over_A": drained["pace"] / a["throughput_rps"],
    }
    if "P" in loaded:
        run["derived"]["ratio_A_over_P_throughput"] = a["throughput_rps"] / loaded["P"]["throughput_rps"]
    print("\n" + report(run))
    write_json(run, args.output, "applications", bench_run.started)
    return 0 if not run["problems"] else 2


if __name__ == "__main__":
    sys.exit(main())
