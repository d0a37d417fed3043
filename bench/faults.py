#!/usr/bin/env python3
"""Faults under load: two integrator instances sharing one PostgreSQL database answer tax-exemption lookups and
SubmitApplication calls for --duration seconds while a worker is SIGKILLed every --kill-every seconds (the
instances in turn), PostgreSQL is restarted once and an application intake backend is stopped and started again.

Set-up (see bench/README.md, "bench/faults.py"): a fresh database (--db-name, kp_faults, dropped and recreated on
the PostgreSQL server of --pg-url), the demo PKI and data as bench/demo_stack.py prepares them, the four status
sources and both application intakes as real gunicorn processes, and two integrators (gunicorn -c gunicorn.conf.py,
--workers each, different ports, the same database, var dir and PKI).

Load: --clients client processes per instance, each alternating a lookup and a SubmitApplication (DISABILITY_ALLOWANCE
and PENSION in turn), every request freshly signed by Gemeente Kruisdorp's official, a new connection per request and
a client-side --timeout (a request that hits it was left hanging). A submission that got no answer or a 5xx is retried
with the same MessageId (a new signature; SubmitApplication is retry-safe), as a careful caller would. Every request
is recorded: instance, kind, HTTP status, fault code, ticket (X-Kruispunt-Ticket), the application's ticket and
delivery state, latency, time sent.

Afterwards the outbox is left to drain; then the database (audit records, applications, outbox) and the intakes' own
stores are checked against what the callers were told. Run from the project root:

  .venv/bin/python bench/faults.py [--duration 180] [--kill-every 20] [--clients 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
for _path in (BENCH.parent, BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from applications import application_fields  # noqa: E402  (bench/: the modules the benches share)
from cpu import MachineLoad  # noqa: E402
from demo_stack import kruisdorp_key_files, prepare_stack  # noqa: E402
from loadgen import HEADERS, percentile  # noqa: E402
from report import describe_url, write_json  # noqa: E402
from servers import (  # noqa: E402
    RESULTS,
    Processes,
    Run,
    child_signals,
    free_port,
    gunicorn_settings,
    run_bench,
    server_env,
    start_backend,
    start_configured,
    wait_for,
    worker_pids,
)
from signing import signed_envelope  # noqa: E402

TAX_PATH = "/soap/TaxExemptionStatus/v1"
APP_PATH = "/soap/Applications/v1"
TAX_NS = "urn:kruispunt:TaxExemptionStatus:v1"
AP_NS = "urn:kruispunt:Applications:v1"
KP_NS = "urn:kruispunt:common:v1"
INTAKES = {"DISABILITY_ALLOWANCE": "disability-applications", "PENSION": "pension-applications"}
KINDS = tuple(INTAKES)
AUDIT_UNAVAILABLE = "Server.AuditUnavailable"  # by design the one fault without an audit record
INSTANCES = ("A", "B")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Fault|Exit|Timeout)\b(: .*)?$")
LOST_AT_KILL = 1.0  # a connection error this close to a kill of its instance's worker is the kill's doing
DEAD_SLACK = 1.0  # before the first refused readiness probe of a dead instance: its refusals are the death's
SNAPSHOT_ENV = "KRUISPUNT_FAULTS_SNAPSHOT"  # set in the re-executed bench: the copy of the tree it runs from
SNAPSHOT_PARTS = ("integrator", "services", "repository", "client", "xsd", "wsdl", "bench", "gunicorn.conf.py",
                  "pyproject.toml", "setup.cfg", "alembic.ini", "Makefile")


# --- requests (in the client processes) ---------------------------------------------------------------------
def lookup_request(official: str, insz: str, key: Any) -> bytes:
    """GetTaxExemptionStatuses for today, signed as tests/support.py's Request(...).signed() does."""
    from kruispunt_client.xml import build
    from lxml import etree

    payload = build(f"{{{TAX_NS}}}GetTaxExemptionStatusesRequest", {"Insz": insz, "ReferenceDate": date.today()})
    return etree.tostring(signed_envelope(payload, key, official))


def application_request(official: str, person_index: int, message_id: str, kind: str, key: Any) -> bytes:
    """SubmitApplication as bench/applications.py signs it (Body, Timestamp, kp:Caller with this MessageId), of
    the given kind; the same MessageId always carries the same application (its retries are retries)."""
    from kruispunt_client.xml import build
    from lxml import etree

    from integrator.namespaces import KP, q
    from integrator.wssec.sign import new_envelope, sign_envelope
    from services.backends.persons import PERSONS
    from services.demo_applications import PURPOSE_APPLICATION

    person = PERSONS[person_index % len(PERSONS)]
    member = PERSONS[(person_index + 1) % len(PERSONS)]
    fields = application_fields(person, member, f"FAULTS/{message_id[-12:]}")
    fields["Kind"] = kind
    root, header, body = new_envelope()
    caller = build(q(KP, "Caller"), {"Official": official, "Purpose": PURPOSE_APPLICATION, "MessageId": message_id})
    header.append(caller)
    body.append(build(f"{{{AP_NS}}}SubmitApplicationRequest", fields))
    sign_envelope(root, key, headers=[caller], now=datetime.now(UTC))
    return etree.tostring(root)


def read_answer(data: bytes, record: dict[str, Any]) -> None:
    """What the answer says: the fault's code and reason, a lookup's Complete, an application's ticket and state."""
    from lxml import etree

    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        record["body"] = data[:300].decode(errors="replace")
        return
    code = root.findtext(f".//{{{KP_NS}}}FaultDetail/{{{KP_NS}}}Code")
    if code is None:
        raw = root.findtext(".//faultcode")
        code = raw.split(":", 1)[-1] if raw else None
    if code is not None:
        record["code"] = code
        record["reason"] = (root.findtext(f".//{{{KP_NS}}}FaultDetail/{{{KP_NS}}}Reason")
                            or root.findtext(".//faultstring") or "")[:300]
    complete = root.findtext(f".//{{{TAX_NS}}}Complete")
    if complete is not None:
        record["complete"] = complete == "true"
    app_ticket = root.findtext(f".//{{{AP_NS}}}SubmitApplicationResponse/{{{AP_NS}}}Ticket")
    if app_ticket is not None:
        record["app_ticket"] = app_ticket
        record["state"] = root.findtext(f".//{{{AP_NS}}}Delivery/{{{AP_NS}}}State")


def exchange(port: int, path: str, body: bytes, timeout: float) -> dict[str, Any]:
    """POST one request on a new connection; status, ticket and answer, or the error; latency."""
    record: dict[str, Any] = {"sent": time.time(), "status": None}
    began = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = b""
    try:
        conn.request("POST", path, body, HEADERS)
        reply = conn.getresponse()
        data = reply.read()
        record["status"] = reply.status
        record["ticket"] = reply.getheader("X-Kruispunt-Ticket")
    except TimeoutError:
        record["err"] = "timeout"
    except (OSError, http.client.HTTPException) as exc:
        record["err"] = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        conn.close()
    record["lat"] = time.perf_counter() - began
    if data:
        read_answer(data, record)
    return record


def retryable(record: dict[str, Any]) -> bool:
    """What a careful caller retries (with the same MessageId): no answer at all, or a server-side fault."""
    return record["status"] is None or record["status"] >= 500


@dataclass(frozen=True)
class ClientSpec:
    client: int
    instance: str
    port: int
    cert: str
    key: str
    out: str
    start_at: float
    deadline: float
    retry_until: float  # a submission without an answer is retried until then (past the deadline)
    timeout: float
    retries: int


def client_main(spec: ClientSpec) -> None:
    """One client process: lookups and submissions in turn until the deadline, one JSON line per request."""
    from integrator.pki import Identity
    from integrator.wssec.sign import SigningKey
    from services.backends.persons import PERSONS
    from services.demo_organisations import OFFICIALS

    child_signals()
    key = SigningKey.from_identity(Identity("org", Path(spec.cert), Path(spec.key)))
    official = OFFICIALS[0].insz  # An Verhoeven, Kruisdorp: granted TaxExemptionStatus and Applications
    base = {"instance": spec.instance, "client": spec.client}
    n = 0
    with open(spec.out, "a") as out:

        def write(record: dict[str, Any]) -> None:
            out.write(json.dumps(record) + "\n")
            out.flush()

        time.sleep(max(0.0, spec.start_at - time.time()))
        while time.time() < spec.deadline:
            person = spec.client * 7 + n
            if n % 2 == 0:
                insz = PERSONS[person % len(PERSONS)].insz
                record = exchange(spec.port, TAX_PATH, lookup_request(official, insz, key), spec.timeout)
                write({**base, "kind": "lookup", "seq": n, "attempt": 1, **record})
            else:
                kind = KINDS[(n // 2) % len(KINDS)]
                message_id = str(uuid.uuid4())
                for attempt in range(1, spec.retries + 2):
                    body = application_request(official, person, message_id, kind, key)
                    record = exchange(spec.port, APP_PATH, body, spec.timeout)
                    write({**base, "kind": "submit", "seq": n, "app_kind": kind, "mid": message_id,
                           "attempt": attempt, **record})
                    if not retryable(record) or attempt > spec.retries or time.time() > spec.retry_until:
                        break
                    time.sleep(min(8.0, 2.0 ** (attempt - 1)))
            n += 1


# --- the timeline ---------------------------------------------------------------------------------------------
class Timeline:
    """Every injection and every observed change (workers, readiness), with seconds since the load started."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def log(self, event: str, quiet: bool = False, **detail: Any) -> dict[str, Any]:
        now = time.time()
        entry = {"t": round(now - self.t0, 3), "wall": now, "event": event, **detail}
        with self.lock:
            self.events.append(entry)
        if not quiet:
            extra = " ".join(f"{k}={v}" for k, v in detail.items())
            print(f"  [{entry['t']:7.2f} s] {event} {extra}", flush=True)
        return entry

    def first(self, event: str, **match: Any) -> dict[str, Any] | None:
        return next((e for e in self.events if e["event"] == event
                     and all(e.get(k) == v for k, v in match.items())), None)

    def all(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]


# --- the stack ------------------------------------------------------------------------------------------------
@dataclass
class Instance:
    name: str
    port: int
    process: Any = None
    restarting: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    """The reference backends and two integrator instances over one database, var dir and PKI."""

    args: argparse.Namespace
    procs: Processes
    settings: Any
    database_url: str
    ports: dict[str, int]
    env: dict[str, str]
    gconf: dict[str, Any]
    state_dir: Path
    instances: dict[str, Instance] = field(default_factory=dict)

    @classmethod
    def start(cls, args: argparse.Namespace, procs: Processes, work: Path, database_url: str) -> Stack:
        gconf = gunicorn_settings(args)
        settings, ports, url = prepare_stack(argparse.Namespace(database_url=database_url), work / "var",
                                             tuple(INTAKES.values()))
        state_dir = work / "backend-state"
        env = server_env(args, gconf, KRUISPUNT_VAR=str(settings.var_dir), KRUISPUNT_DATABASE_URL=url,
                         KRUISPUNT_BACKEND_STATE=str(state_dir),
                         KRUISPUNT_OUTBOX_INTERVAL_SECONDS=f"{args.outbox_interval:g}",
                         KRUISPUNT_OUTBOX_LEASE_SECONDS=f"{args.lease:g}")
        stack = cls(args, procs, settings, url, ports, env, gconf, state_dir)
        for name, port in ports.items():
            start_backend(procs, name, port, env)
        for name in INSTANCES:
            instance = Instance(name, free_port())
            instance.process = start_configured(procs, f"integrator-{name}", instance.port, env)
            stack.instances[name] = instance
        for name in ports:
            stack.wait_backend(name)
        for instance in stack.instances.values():
            wait_for(f"{instance.url}/health/ready", instance.process, procs, f"integrator-{instance.name}")
        return stack

    def wait_backend(self, name: str) -> None:
        wait_for(f"http://127.0.0.1:{self.ports[name]}/?wsdl", self.procs.running[f"backend-{name}"], self.procs,
                 f"backend-{name}")

    def stop_backend(self, name: str) -> None:
        """SIGTERM to the backend's gunicorn (its process group), waiting for it to exit."""
        self.procs.stop(f"backend-{name}", grace=30)

    def start_backend(self, name: str) -> None:
        start_backend(self.procs, name, self.ports[name], self.env)
        self.wait_backend(name)

    def restart_instance(self, instance: Instance) -> None:
        """Start a dead instance's gunicorn again on its port (what a supervisor such as systemd would do)."""
        instance.process = start_configured(self.procs, f"integrator-{instance.name}", instance.port, self.env)

    def key_files(self) -> tuple[Path, Path]:
        return kruisdorp_key_files(self.settings.pki_dir)


# --- PostgreSQL -----------------------------------------------------------------------------------------------
def admin_url(args: argparse.Namespace) -> str:
    from sqlalchemy.engine import make_url

    return make_url(args.pg_url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database(args: argparse.Namespace) -> Iterator[str]:
    """--db-name dropped and created again on the server of --pg-url; dropped afterwards unless --keep."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = args.db_name
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise SystemExit(f"--db-name {name!r}: lower-case letters, digits and _ only")
    with psycopg.connect(admin_url(args), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        if args.keep:
            print(f"kept PostgreSQL database {name}", file=sys.stderr)
        else:
            try:
                with psycopg.connect(admin_url(args), autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # the server may be down if the run failed mid-outage; say so
                print(f"could not drop database {name}: {exc}", file=sys.stderr)


def pg_ctl(args: argparse.Namespace, action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *args.pg_cluster.split(), action],
                          capture_output=True, text=True, timeout=120)


def pg_running(args: argparse.Namespace) -> bool:
    return pg_ctl(args, "status").returncode == 0


def wait_pg(args: argparse.Namespace, timeout: float = 60.0) -> bool:
    import psycopg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(admin_url(args), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except Exception:
            time.sleep(0.1)
    return False


def pg_accepts(args: argparse.Namespace) -> bool:
    import psycopg

    try:
        with psycopg.connect(admin_url(args), connect_timeout=1) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


def ensure_pg_up(args: argparse.Namespace) -> None:
    """The safety net of every exit: PostgreSQL must be running when this bench ends (other people use it)."""
    if not pg_running(args):
        print("PostgreSQL is down: starting it again", file=sys.stderr, flush=True)
        done = pg_ctl(args, "start")
        print(f"pg_ctlcluster start: rc {done.returncode} {done.stderr.strip()}", file=sys.stderr, flush=True)


# --- injections -----------------------------------------------------------------------------------------------
def kill_worker(stack: Stack, timeline: Timeline, name: str, why: str) -> None:
    instance = stack.instances[name]
    if instance.process.poll() is not None:
        timeline.log("kill-skipped", instance=name, reason=f"master exited rc {instance.process.returncode}")
        return
    pids = sorted(worker_pids(instance.process.pid))
    if not pids:
        timeline.log("kill-skipped", instance=name, reason="no worker running")
        return
    pid = random.choice(pids)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        timeline.log("kill-skipped", instance=name, reason=f"worker {pid} already gone")
        return
    timeline.log("kill", instance=name, pid=pid, workers=pids, why=why)


class Injector:
    """The schedule: a worker SIGKILLed every --kill-every s (instances in turn), PostgreSQL stopped at --pg-at for
    --pg-down s, the --backend stopped at --backend-at for --backend-down s; plus a monitor of every instance's
    workers and readiness. Each runs in its own thread, so a long injection never delays the kills."""

    def __init__(self, stack: Stack, args: argparse.Namespace, timeline: Timeline) -> None:
        self.stack, self.args, self.timeline = stack, args, timeline
        self.stop = threading.Event()
        self.probes: list[dict[str, Any]] = []
        self.threads = [threading.Thread(target=self._guard(f), name=f.__name__, daemon=True)
                        for f in (self._kills, self._postgres, self._backend, self._workers, self._readiness,
                                  self._probes)]

    def _guard(self, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except Exception as exc:
                self.timeline.log("injector-error", thread=body.__name__, error=f"{type(exc).__name__}: {exc}")
        return run

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        """Stop the kills and the monitor; wait for the outages to end (PostgreSQL and the backend back up)."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=180)

    def _at(self, seconds: float) -> bool:
        """Sleep until `seconds` after the load started; False if told to stop meanwhile."""
        return not self.stop.wait(max(0.0, self.timeline.t0 + seconds - time.time()))

    def _kills(self) -> None:
        for i, at in enumerate(kill_times(self.args)):
            if not self._at(at):
                return
            kill_worker(self.stack, self.timeline, INSTANCES[i % len(INSTANCES)], "schedule")

    def _postgres(self) -> None:
        """Stop, wait --pg-down s, start; a prober notes when new connections are first refused and first accepted
        again (the outage as the integrators see it)."""
        if self.args.pg_down < 0 or not self._at(self.args.pg_at):
            return
        self.timeline.log("pg-stop")
        try:
            stopped: dict[str, Any] = {}
            stopper = threading.Thread(target=lambda: stopped.update(done=pg_ctl(self.args, "stop")), daemon=True)
            stopper.start()
            self._probe_until(False, "pg-refusing", 30.0)
            stopper.join(timeout=120)
            done = stopped.get("done")
            self.timeline.log("pg-stopped", rc=done.returncode if done else None,
                              out=(done.stdout + done.stderr).strip()[:200] if done else "stop command still running")
            if self.args.kill_during_outage:
                time.sleep(min(1.0, self.args.pg_down / 2))
                kill_worker(self.stack, self.timeline, INSTANCES[-1], "during the PostgreSQL outage")
            time.sleep(self.args.pg_down)  # not cut short by stop: the outage is what it is
        finally:
            self.timeline.log("pg-start")
            started: dict[str, Any] = {}
            starter = threading.Thread(target=lambda: started.update(done=pg_ctl(self.args, "start")), daemon=True)
            starter.start()
            self._probe_until(True, "pg-accepting", 90.0)
            starter.join(timeout=120)
            done = started.get("done")
            self.timeline.log("pg-up", rc=done.returncode if done else None, accepting=wait_pg(self.args),
                              out=(done.stdout + done.stderr).strip()[:200] if done else "start command still running")

    def _probe_until(self, accepting: bool, event: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pg_accepts(self.args) == accepting:
                self.timeline.log(event)
                return
            time.sleep(0.05)
        self.timeline.log(f"{event}-not-seen", seconds=timeout)

    def _backend(self) -> None:
        name = self.args.backend
        if self.args.backend_down < 0 or not self._at(self.args.backend_at):
            return
        self.timeline.log("backend-stop", backend=name)
        self.stack.stop_backend(name)
        self.timeline.log("backend-stopped", backend=name)
        try:
            time.sleep(self.args.backend_down)
        finally:
            self.timeline.log("backend-start", backend=name)
            self.stack.start_backend(name)
            self.timeline.log("backend-up", backend=name)

    def _probes(self) -> None:
        """From 2 s before PostgreSQL is stopped until 20 s after it accepts connections again: on each instance
        one freshly signed lookup after another (the clients back off between retries; these show when each
        instance answers 200 again). Recorded with the clients' requests, kind "probe"."""
        from integrator.pki import Identity
        from integrator.wssec.sign import SigningKey
        from services.backends.persons import PERSONS
        from services.demo_organisations import OFFICIALS

        if self.args.pg_down < 0 or not self._at(self.args.pg_at - 2.0):
            return
        cert, key_path = self.stack.key_files()
        key = SigningKey.from_identity(Identity("org", cert, key_path))
        lock = threading.Lock()

        def probe_instance(instance: Instance) -> None:
            n = 0
            while True:
                back = self.timeline.first("pg-accepting") or self.timeline.first("pg-up")
                if (back is not None and time.time() > back["wall"] + 20) or (self.stop.is_set() and back is None):
                    return
                body = lookup_request(OFFICIALS[0].insz, PERSONS[n % len(PERSONS)].insz, key)
                record = exchange(instance.port, TAX_PATH, body, self.args.timeout)
                with lock:
                    self.probes.append({"instance": instance.name, "client": -2, "kind": "probe", "seq": n,
                                        "attempt": 1, **record})
                n += 1
                time.sleep(0.1)

        threads = [threading.Thread(target=probe_instance, args=(i,), daemon=True)
                   for i in self.stack.instances.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _workers(self) -> None:
        """Every 0.2 s: each instance's master alive, and its workers (pids): when a killed worker is replaced. A
        master that exited is started again (--supervise), as systemd's Restart= would."""
        seen: dict[tuple[str, str], Any] = {}
        while not self.stop.wait(0.2):
            for name, instance in self.stack.instances.items():
                process = instance.process
                rc = process.poll()
                if rc is not None and ("master", f"{name}:{process.pid}") not in seen:
                    seen[("master", f"{name}:{process.pid}")] = rc
                    self.timeline.log("master-exited", instance=name, pid=process.pid, rc=rc)
                    if self.args.supervise and not instance.restarting:
                        instance.restarting = True
                        threading.Thread(target=self._guard(lambda i=instance: self._restart(i)),
                                         daemon=True).start()
                pids = sorted(worker_pids(process.pid)) if rc is None else []
                if pids != seen.get(("workers", name)):
                    seen[("workers", name)] = pids
                    self.timeline.log("workers", quiet=True, instance=name, pids=pids)

    def _restart(self, instance: Instance) -> None:
        """Start the instance again after 1 s, then every 2 s while it keeps dying, until it is ready (or the
        bench stops)."""
        try:
            while True:
                time.sleep(1.0)
                self.stack.restart_instance(instance)
                self.timeline.log("instance-restart", instance=instance.name, pid=instance.process.pid)
                try:
                    wait_for(f"{instance.url}/health/live", instance.process, self.stack.procs,
                             f"integrator-{instance.name}", timeout=120)
                    self.timeline.log("instance-live", instance=instance.name, pid=instance.process.pid)
                    return
                except (RuntimeError, TimeoutError) as exc:
                    self.timeline.log("instance-restart-failed", instance=instance.name,
                                      reason=str(exc).splitlines()[0][:120])
                    if self.stop.wait(1.0):
                        return
        finally:
            instance.restarting = False

    def _readiness(self) -> None:
        """Every 0.5 s per instance (one thread each): GET /health/ready, its changes logged."""
        def watch(instance: Instance) -> None:
            last = None
            while not self.stop.wait(0.5):
                state = probe(f"{instance.url}/health/ready")
                if state != last:
                    last = state
                    self.timeline.log("ready", instance=instance.name, state=state)

        watchers = [threading.Thread(target=watch, args=(i,), daemon=True) for i in self.stack.instances.values()]
        for thread in watchers:
            thread.start()
        for thread in watchers:
            thread.join()


def probe(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=3) as reply:
            return str(reply.status)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace").strip()
        if text.startswith("<"):
            words = " ".join(re.sub(r"<[^>]+>", " ", text).split())
            return f"{exc.code} {words[:60]} (HTML, not the integrator's)"
        return f"{exc.code} {text[:80]}"
    except (urllib.error.URLError, OSError) as exc:
        return f"no answer ({type(getattr(exc, 'reason', exc)).__name__})"


def schedule_text(args: argparse.Namespace) -> str:
    kills = kill_times(args)
    parts = [f"worker SIGKILL at {', '.join(f'{t:g}' for t in kills)} s (instances A, B in turn)" if kills
             else "no kills"]
    parts.append(f"PostgreSQL stopped at {args.pg_at:g} s for {args.pg_down:g} s" if args.pg_down >= 0
                 else "no PostgreSQL restart")
    if args.kill_during_outage and args.pg_down >= 0:
        parts.append("one more kill (instance B) while PostgreSQL is down")
    parts.append(f"{args.backend} stopped at {args.backend_at:g} s for {args.backend_down:g} s"
                 if args.backend_down >= 0 else "no backend outage")
    return "; ".join(parts)


def kill_times(args: argparse.Namespace) -> list[float]:
    if args.kill_every <= 0:
        return []
    n = int((args.duration - 1e-9) // args.kill_every)
    return [k * args.kill_every for k in range(1, n + 1)]


# --- the run --------------------------------------------------------------------------------------------------
def sanity(stack: Stack, timeout: float) -> list[dict[str, Any]]:
    """Before the load: on each instance one lookup answered complete and one submission of each kind accepted,
    then delivered (inline or by the forwarders) within 30 s."""
    import psycopg

    from integrator.pki import Identity
    from integrator.wssec.sign import SigningKey
    from services.backends.persons import PERSONS
    from services.demo_organisations import OFFICIALS

    cert, key_path = stack.key_files()
    key = SigningKey.from_identity(Identity("org", cert, key_path))
    official = OFFICIALS[0].insz
    found = []
    for name, instance in stack.instances.items():
        record = exchange(instance.port, TAX_PATH, lookup_request(official, PERSONS[0].insz, key), timeout)
        found.append({"instance": name, "client": -1, "kind": "lookup", "seq": 0, "attempt": 1, **record})
        if record["status"] != 200 or not record.get("complete"):
            raise RuntimeError(f"sanity lookup on {name}: {record}")
        for i, kind in enumerate(KINDS):
            mid = str(uuid.uuid4())
            record = exchange(instance.port, APP_PATH, application_request(official, i, mid, kind, key), timeout)
            found.append({"instance": name, "client": -1, "kind": "submit", "seq": i + 1, "app_kind": kind,
                          "mid": mid, "attempt": 1, **record})
            if record["status"] != 200 or record.get("state") not in ("DELIVERED", "PENDING"):
                raise RuntimeError(f"sanity submission on {name}: {record}")
    tickets = [r["app_ticket"] for r in found if r.get("app_ticket")]
    deadline = time.monotonic() + 30
    with psycopg.connect(_psycopg_url(stack.database_url), autocommit=True) as conn:
        while True:
            states = dict(conn.execute("SELECT a.ticket, o.state FROM applications a JOIN outbox o ON "
                                       "o.id = a.delivery_id WHERE a.ticket = ANY(%s)", (tickets,)).fetchall())
            if len(states) == len(tickets) and set(states.values()) == {"DELIVERED"}:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"sanity submissions not delivered within 30 s: {states}")
            time.sleep(0.2)
    return found


def run_clients(stack: Stack, args: argparse.Namespace, work: Path, timeline: Timeline,
                bench_run: Run) -> list[dict[str, Any]]:
    cert, key = stack.key_files()
    out_dir = work / "clients"
    out_dir.mkdir()
    start_at = time.time() + 1.0
    timeline.t0 = start_at
    specs = []
    for i in range(args.clients * len(INSTANCES)):
        name = INSTANCES[i % len(INSTANCES)]
        specs.append(ClientSpec(i, name, stack.instances[name].port, str(cert), str(key),
                                str(out_dir / f"client-{i}.jsonl"), start_at, start_at + args.duration,
                                start_at + args.duration + 60, args.timeout, args.retries))
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=client_main, args=(spec,), daemon=True) for spec in specs]
    for process in processes:
        process.start()

    def stop_clients() -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)

    injector = Injector(stack, args, timeline)
    try:
        time.sleep(max(0.0, start_at - time.time()))
        injector.start()
        timeline.log("load-start", clients=len(specs))
        for process in processes:
            process.join(timeout=max(1.0, start_at + args.duration + 60 + 2 * args.timeout - time.time()))
        timeline.log("load-end", still_running=sum(p.is_alive() for p in processes))
    finally:  # also on Ctrl-C: an outage in progress ends (PostgreSQL and the backend back up) before anything else
        stop_clients()
        injector.finish()
    return read_records(out_dir) + injector.probes


def read_records(out_dir: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(out_dir.glob("client-*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records


def drain(database_url: str, args: argparse.Namespace, timeline: Timeline) -> dict[str, Any]:
    """Wait until no outbox entry is PENDING (the background forwarders deliver what the intake missed and what
    killed workers left leased), at most --drain-timeout seconds."""
    import psycopg

    began = time.monotonic()
    timeline.log("drain-start")
    states: dict[str, int] = {}
    with psycopg.connect(_psycopg_url(database_url), autocommit=True) as conn:
        while True:
            states = dict(conn.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
            if not states.get("PENDING") or time.monotonic() - began > args.drain_timeout:
                break
            time.sleep(1.0)
    seconds = time.monotonic() - began
    timeline.log("drain-end", states=states, seconds=round(seconds, 1))
    return {"seconds": seconds, "states": states, "timed_out": bool(states.get("PENDING"))}


def _psycopg_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- what the database and the intakes hold -------------------------------------------------------------------
def database_state(database_url: str, state_dir: Path) -> dict[str, Any]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(_psycopg_url(database_url), row_factory=dict_row) as conn:
        audit = conn.execute("SELECT ticket, outcome, fault_code, service, operation, message_id, detail, "
                             "received_at, answered_at FROM audit_records").fetchall()
        apps = conn.execute(
            "SELECT a.ticket, a.message_id, a.kind, a.institution, a.received_at, o.id AS entry, o.state, "
            "o.attempts, o.created_at, o.delivered_at, o.last_error, o.lease_owner, o.backend "
            "FROM applications a JOIN outbox o ON o.id = a.delivery_id").fetchall()
        outbox = conn.execute("SELECT id, kind, backend, ticket, state, attempts, created_at, delivered_at, "
                              "last_error FROM outbox").fetchall()
    intake: dict[str, dict[str, dict[str, Any]]] = {}
    for name in INTAKES.values():
        path = state_dir / f"{name}.sqlite"
        intake[name] = {}
        if path.exists():
            with closing(sqlite3.connect(path, timeout=30)) as db:
                for reference, file_reference, attempts, filed_at in db.execute(
                        "SELECT reference, file_reference, attempts, filed_at FROM applications"):
                    intake[name][reference] = {"file_reference": file_reference, "attempts": int(attempts),
                                               "filed_at": filed_at}
    return {"audit": {r["ticket"]: r for r in audit}, "applications": apps, "outbox": outbox, "intake": intake}


# --- analysis -------------------------------------------------------------------------------------------------
def window(timeline: Timeline, start: str, end: str) -> tuple[float, float] | None:
    a, b = timeline.first(start), timeline.first(end)
    return (a["wall"], b["wall"]) if a and b else None


def pg_window(timeline: Timeline) -> tuple[float, float] | None:
    """The outage as the integrators saw it: from the stop command (a fast shutdown ends the open sessions at
    once) until new connections are accepted again (the prober's time; the start command's end without it)."""
    return window(timeline, "pg-stop", "pg-accepting") or window(timeline, "pg-stop", "pg-up")


def instance_down(timeline: Timeline) -> list[tuple[str, float, float]]:
    """(instance, from, until): its gunicorn master had exited until the restarted one was live again."""
    return instance_spans(timeline.events)


def instance_spans(events: list[dict[str, Any]]) -> list[tuple[str, float, float]]:
    """From the first refused readiness probe before the master's exit (a halting master closes its listener,
    then waits for its other workers) until the restarted instance was live."""
    found = []
    for exited in (e for e in events if e["event"] == "master-exited"):
        name = exited["instance"]
        refused = [e["wall"] for e in events if e["event"] == "ready" and e["instance"] == name
                   and "ConnectionRefused" in e["state"] and exited["wall"] - 15 <= e["wall"] <= exited["wall"]]
        live = next((e for e in events if e["event"] == "instance-live" and e["instance"] == name
                     and e["wall"] > exited["wall"]), None)
        found.append((name, min([exited["wall"], *refused]), live["wall"] if live else float("inf")))
    return found


def overlaps(record: dict[str, Any], span: tuple[float, float] | None, slack: float = 0.0) -> bool:
    return span is not None and record["sent"] <= span[1] + slack and record["sent"] + record["lat"] >= span[0] - slack


def label(record: dict[str, Any]) -> str:
    if record["status"] is None:
        return "timeout" if record.get("err") == "timeout" else "no answer"
    return str(record["status"])


def short(record: dict[str, Any], t0: float) -> dict[str, Any]:
    keep = ("instance", "kind", "app_kind", "status", "code", "ticket", "app_ticket", "state", "mid", "attempt",
            "err", "reason")
    out = {k: record[k] for k in keep if record.get(k) is not None}
    out["t"] = round(record["sent"] - t0, 2)
    out["lat_s"] = round(record["lat"], 3)
    return out


def analyse(records: list[dict[str, Any]], db: dict[str, Any], timeline: Timeline,
            args: argparse.Namespace) -> dict[str, Any]:
    t0 = timeline.t0
    audit, apps, intake = db["audit"], db["applications"], db["intake"]
    pg = pg_window(timeline)
    backend = window(timeline, "backend-stop", "backend-up")
    kills = timeline.all("kill")
    down = instance_down(timeline)
    checks: list[dict[str, Any]] = []

    def check(name: str, problems: list[dict[str, Any]], counted: str, note: str = "") -> None:
        checks.append({"check": name, "result": "FAIL" if problems else "PASS", "counts": counted,
                       "failures": len(problems), "examples": problems[:8], "note": note})

    answered = [r for r in records if r["status"] is not None]
    ok = [r for r in answered if r["status"] == 200]
    faults = [r for r in answered if r["status"] != 200]

    # 1. no HTTP 500
    five_hundred = [short(r, t0) for r in answered if r["status"] == 500]
    check("no HTTP 500", five_hundred, f"{len(five_hundred)} of {len(answered)} answers were HTTP 500")

    # 2. nobody left hanging
    hanging = [short(r, t0) for r in records if r.get("err") == "timeout" or r["lat"] >= args.timeout]
    check("no request left hanging", hanging,
          f"{len(hanging)} of {len(records)} requests hit the {args.timeout:g} s client timeout")

    # 3. every 200 has exactly one audit record, OK or PARTIAL (and PARTIAL exactly when a lookup is incomplete)
    bad_ok = []
    for r in ok:
        a = audit.get(r.get("ticket") or "")
        if a is None:
            bad_ok.append({**short(r, t0), "problem": "no audit record with the answer's ticket"})
        elif a["outcome"] not in ("OK", "PARTIAL"):
            bad_ok.append({**short(r, t0), "problem": f"audit outcome {a['outcome']} {a['fault_code']}"})
        elif r["kind"] in ("lookup", "probe") and (a["outcome"] == "PARTIAL") == bool(r.get("complete")):
            bad_ok.append({**short(r, t0), "problem": f"Complete={r.get('complete')} but audit {a['outcome']}"})
    check("every 200 has exactly one audit record (OK/PARTIAL)", bad_ok,
          f"{len(ok) - len(bad_ok)} of {len(ok)} answers 200 with their record",
          "audit_records.ticket is the primary key: never more than one")

    # 4. every fault answer has its audit record with its code (Server.AuditUnavailable: none, by design)
    bad_fault = []
    unaudited = [r for r in faults if r.get("code") == AUDIT_UNAVAILABLE]
    for r in faults:
        if r.get("code") is None:
            bad_fault.append({**short(r, t0), "problem": "not a SOAP fault", "body": r.get("body")})
            continue
        if r["code"] == AUDIT_UNAVAILABLE:
            continue
        a = audit.get(r.get("ticket") or "")
        if a is None:
            bad_fault.append({**short(r, t0), "problem": "no audit record with the fault's ticket"})
        elif a["outcome"] != "FAULT" or a["fault_code"] != r["code"]:
            bad_fault.append({**short(r, t0), "problem": f"audit says {a['outcome']} {a['fault_code']}"})
    recorded_anyway = [short(r, t0) for r in unaudited if (r.get("ticket") or "") in audit]
    check("every fault answer has its audit record", bad_fault,
          f"{len(faults) - len(unaudited) - len(bad_fault)} of {len(faults) - len(unaudited)} faults with their "
          f"record; {len(unaudited)} {AUDIT_UNAVAILABLE} (unaudited by design, {len(recorded_anyway)} of them "
          "audited after all)")

    # 5. every accepted application stored once and delivered exactly once
    submits = [r for r in records if r["kind"] == "submit"]
    accepted = [r for r in ok if r["kind"] == "submit"]
    by_ticket = {a["ticket"]: a for a in apps}
    app_tickets: dict[str, dict[str, Any]] = {}
    tickets_of_mid: dict[str, set[str]] = defaultdict(set)
    for r in accepted:
        if r.get("app_ticket"):
            app_tickets.setdefault(r["app_ticket"], r)
            tickets_of_mid[r["mid"]].add(r["app_ticket"])
    bad_app = []
    for r in accepted:
        if not r.get("app_ticket"):
            bad_app.append({**short(r, t0), "problem": "200 without an application ticket"})
    for mid, tickets in tickets_of_mid.items():
        if len(tickets) > 1:
            bad_app.append({"mid": mid, "problem": f"one MessageId answered with {len(tickets)} tickets",
                            "tickets": sorted(tickets)})
    repeated = 0
    for ticket, r in app_tickets.items():
        row = by_ticket.get(ticket)
        filed = intake.get(INTAKES.get(r.get("app_kind") or "", ""), {}).get(ticket)
        if row is None:
            bad_app.append({**short(r, t0), "problem": "accepted, but no application with its ticket is stored"})
            continue
        if row["state"] != "DELIVERED":
            bad_app.append({**short(r, t0), "problem": f"outbox entry {row['entry']} {row['state']} after "
                            f"{row['attempts']} attempts: {row['last_error']}"})
        if filed is None:
            bad_app.append({**short(r, t0), "problem": f"not filed by {row['institution']} (outbox {row['state']})"})
        elif filed["attempts"] > 1:
            repeated += 1
    retried = [r for r in accepted if r["attempt"] > 1]
    earlier = sum(1 for r in retried if r.get("app_ticket") != r.get("ticket"))
    check("every accepted application delivered exactly once", bad_app,
          f"{len(app_tickets)} applications accepted (200), {len(app_tickets) - len(bad_app)} stored, DELIVERED and "
          f"filed once; {repeated} of them reached the intake more than once (deduplicated by its reference); "
          f"{len(retried)} accepted on a retry, {earlier} of those answered with an earlier attempt's application")

    # 6. nothing stored or filed that no caller was told about, nothing filed twice
    acknowledged = {r["mid"] for r in accepted}
    outcome_of_mid: dict[str, list[str]] = defaultdict(list)
    for r in submits:
        outcome_of_mid[r["mid"]].append(f"{label(r)} {r.get('code') or r.get('err') or ''}".strip())
    filed_refs = {ref for refs in intake.values() for ref in refs}
    stored_refs = {a["ticket"] for a in apps}
    silent = [{"app_ticket": a["ticket"], "mid": a["message_id"], "outbox": a["state"],
               "client_saw": outcome_of_mid.get(a["message_id"], ["(not sent by this run's clients)"])}
              for a in apps if a["message_id"] not in acknowledged]
    unknown_filed = [{"reference": ref, "problem": "filed by an intake, but no such application is stored"}
                     for ref in sorted(filed_refs - stored_refs)]
    undelivered = [{"app_ticket": a["ticket"], "outbox": a["state"], "attempts": a["attempts"],
                    "last_error": a["last_error"]} for a in apps if a["ticket"] not in filed_refs]
    unaudited_apps = [{"app_ticket": a["ticket"], "mid": a["message_id"], "outbox": a["state"],
                       "audit": (audit.get(a["ticket"]) or {}).get("outcome")}
                      for a in apps if (audit.get(a["ticket"]) or {}).get("outcome") not in ("OK", "PARTIAL")]
    check("every stored application's transaction audited OK", unaudited_apps,
          f"{len(apps) - len(unaudited_apps)} of {len(apps)} stored applications have an OK audit record under "
          "their ticket", "an effect without its audit record")
    check("every stored application acknowledged (200) to its caller", silent,
          f"{len(apps)} applications stored, {len(silent)} of them for a MessageId whose every attempt failed",
          "a caller told 'fault' whose application is delivered anyway")
    check("nothing filed that is not stored, nothing stored that is not filed", unknown_filed + undelivered,
          f"{len(filed_refs)} filed by the intakes, {len(stored_refs)} stored; {len(unknown_filed)} filed unknown, "
          f"{len(undelivered)} stored never filed")

    # 7. no answer lost except by a killed worker
    lost = [r for r in records if r["status"] is None and r.get("err") != "timeout"]
    at_kill, at_dead, unexplained = [], [], []
    for r in lost:
        if any(k["instance"] == r["instance"] and r["sent"] - LOST_AT_KILL <= k["wall"]
               <= r["sent"] + r["lat"] + LOST_AT_KILL for k in kills):
            at_kill.append(r)
        elif any(name == r["instance"] and start - DEAD_SLACK <= r["sent"] <= end for name, start, end in down):
            at_dead.append(r)
        else:
            unexplained.append(short(r, t0))
    check("no connection lost except in flight at a killed worker", unexplained,
          f"{len(lost)} requests got no answer: {len(at_kill)} in flight when their instance's worker was killed, "
          f"{len(at_dead)} sent while their instance's master was down (next check), {len(unexplained)} otherwise")

    # 7b. no instance lost: a gunicorn master that exits takes its host out until someone starts it again
    exits = [{"instance": e["instance"], "t": e["t"], "rc": e["rc"],
              "down_s": round(end - start, 1) if end != float("inf") else "until the end",
              "requests_refused": sum(1 for r in at_dead if r["instance"] == e["instance"]
                                      and start - DEAD_SLACK <= r["sent"] <= end)}
             for e, (_, start, end) in zip(timeline.all("master-exited"), down, strict=True)]
    check("no integrator instance lost (gunicorn masters alive throughout)", exits,
          f"{len(exits)} master exits" + (": " + "; ".join(f"{x['instance']} at t={x['t']:.1f} s rc {x['rc']}, "
                                                         f"down {x['down_s']} s" for x in exits) if exits else ""),
          "rc 3 is gunicorn's 'Worker failed to boot': the arbiter halts when a new worker's app cannot load")

    # 7c. readiness answers 200 or 503 (with the reason), never an error page
    bad_ready = [{"t": e["t"], "instance": e["instance"], "state": e["state"]} for e in timeline.all("ready")
                 if not (e["state"] == "200" or e["state"].startswith("503 "))
                 and not any(name == e["instance"] and start - DEAD_SLACK <= e["wall"] <= end
                             for name, start, end in down)
                 and not ("RemoteDisconnected" in e["state"]  # the probe was in flight on the killed worker
                          and any(k["instance"] == e["instance"] and 0 <= e["wall"] - k["wall"] <= 3.0 + LOST_AT_KILL
                                  for k in kills))]
    check("GET /health/ready answers 200 or 503", bad_ready,
          f"{len(timeline.all('ready'))} readiness changes seen, {len(bad_ready)} of them neither 200 nor 503")

    # 8. the PostgreSQL outage: every caller answered with a fault
    during = [r for r in records if pg is not None and pg[0] <= r["sent"] <= pg[1]]
    bad_pg = [short(r, t0) for r in during
              if r["status"] is None or (r["status"] != 200 and r.get("code") is None)]
    pg_codes = Counter(f"{label(r)} {r.get('code') or r.get('err') or ''}".strip() for r in during)
    check("callers answered with a fault while PostgreSQL is down", bad_pg,
          f"{len(during)} requests sent during the outage: " + ", ".join(f"{k} x{v}" for k, v in pg_codes.most_common())
          + (f"; longest {max(r['lat'] for r in during):.2f} s" if during else ""))

    # 9. the intake outage: submissions of its kind accepted (PENDING), not refused
    stopped_kind = next((k for k, v in INTAKES.items() if v == args.backend), None)
    in_backend = [r for r in submits if stopped_kind and r.get("app_kind") == stopped_kind
                  and backend is not None and backend[0] <= r["sent"] <= backend[1]]
    refused = [short(r, t0) for r in in_backend  # a connection lost at a kill is the check above's business
               if r["status"] not in (200, None) and not overlaps(r, pg, 2.0)]
    backend_states = Counter(f"{label(r)} {r.get('state') or r.get('code') or r.get('err') or ''}".strip()
                             for r in in_backend)
    if stopped_kind:
        check(f"submissions accepted while {args.backend} is down", refused,
              f"{len(in_backend)} {stopped_kind} submissions sent while it was down: "
              + ", ".join(f"{k} x{v}" for k, v in backend_states.most_common()))

    return {"checks": checks, "recovery": recovery(records, db, timeline, args),
            "tables": tables(records, timeline, pg, backend), "kills": kill_effects(records, timeline)}


def recovery(records: list[dict[str, Any]], db: dict[str, Any], timeline: Timeline,
             args: argparse.Namespace) -> dict[str, Any]:
    """Seconds from PostgreSQL back (accepting connections) to the first 200 (overall and per instance, of a request
    sent after it was back); the last outage fault; readiness; from the backend back to its first good answer."""
    out: dict[str, Any] = {}
    up = timeline.first("pg-accepting") or timeline.first("pg-up")
    stop = timeline.first("pg-stop")
    refusing = timeline.first("pg-refusing") or stop
    if up and stop and refusing:
        pg: dict[str, Any] = {"stopped_at_s": stop["t"], "refusing_at_s": refusing["t"], "up_at_s": up["t"],
                              "down_s": round(up["wall"] - refusing["wall"], 2)}
        for name in (*INSTANCES, None):
            after = [r for r in records if r["status"] == 200 and r["sent"] >= up["wall"]
                     and (name is None or r["instance"] == name)]
            first = min((r["sent"] + r["lat"] for r in after), default=None)
            pg[f"first_200_s{'_' + name if name else ''}"] = round(first - up["wall"], 2) if first else None
            if name is not None:  # the probes: back-to-back lookups, no back-off
                probed = [r for r in records if r["kind"] == "probe" and r["instance"] == name]
                faulted = [r["sent"] + r["lat"] for r in probed if r["status"] not in (200, None)]
                since = max([up["wall"], *faulted])  # after the last fault answered (a lost one is a kill's)
                good = min((r["sent"] + r["lat"] for r in probed if r["status"] == 200
                            and r["sent"] + r["lat"] >= since), default=None)
                pg[f"probe_good_again_s_{name}"] = round(good - up["wall"], 2) if good else None
                bad = [r for r in probed if r["status"] != 200]
                pg[f"probe_faults_{name}"] = dict(Counter(f"{label(r)} {r.get('code') or ''}".strip() for r in bad))
        late = [r for r in records if r["status"] not in (200, None) and r["sent"] >= stop["wall"]
                and (r.get("code") or "").startswith("Server.") and r["sent"] <= up["wall"] + 60]
        last = max((r["sent"] + r["lat"] for r in late), default=None)
        pg["last_server_fault_s"] = round(last - up["wall"], 2) if last else None
        for name in INSTANCES:
            states = [e for e in timeline.all("ready") if e["instance"] == name and e["wall"] >= stop["wall"] - 1]
            not_ready = next((e for e in states if not e["state"].startswith("200")), None)
            ready = next((e for e in states if not_ready and e["wall"] > not_ready["wall"]
                          and e["state"].startswith("200")), None)
            pg[f"not_ready_s_{name}"] = round(not_ready["wall"] - stop["wall"], 2) if not_ready else None
            pg[f"ready_again_s_{name}"] = round(ready["wall"] - up["wall"], 2) if ready else None
        out["postgresql"] = pg
    b_up, b_stop = timeline.first("backend-up"), timeline.first("backend-stop")
    kind = next((k for k, v in INTAKES.items() if v == args.backend), None)
    if b_up and b_stop:
        be: dict[str, Any] = {"backend": args.backend, "stopped_at_s": b_stop["t"], "up_at_s": b_up["t"],
                              "down_s": round(b_up["wall"] - b_stop["wall"], 2)}
        if kind:
            inline = [r for r in records if r.get("app_kind") == kind and r.get("state") == "DELIVERED"
                      and r["sent"] >= b_up["wall"]]
            first = min((r["sent"] + r["lat"] for r in inline), default=None)
            be["first_inline_delivery_s"] = round(first - b_up["wall"], 2) if first else None
            delivered = [a["delivered_at"].timestamp() for a in db["applications"]
                         if a["institution"] == args.backend and a["delivered_at"] is not None
                         and a["delivered_at"].timestamp() >= b_up["wall"]]
            be["first_outbox_delivery_s"] = round(min(delivered) - b_up["wall"], 2) if delivered else None
            backlog = [a for a in db["applications"] if a["institution"] == args.backend
                       and b_stop["wall"] <= a["created_at"].timestamp() <= b_up["wall"]]
            done = [a["delivered_at"].timestamp() for a in backlog if a["delivered_at"] is not None]
            be["backlog_entries"] = len(backlog)
            be["backlog_delivered"] = len(done)
            after = sorted(d - b_up["wall"] for d in done)
            be["backlog_p50_s"] = round(percentile(after, 50), 2) if after else None
            be["backlog_p95_s"] = round(percentile(after, 95), 2) if after else None
            be["backlog_drained_s"] = round(max(done) - b_up["wall"], 2) if done and len(done) == len(backlog) \
                else None
        out["backend"] = be
    return out


def kill_effects(records: list[dict[str, Any]], timeline: Timeline) -> list[dict[str, Any]]:
    """Per kill: the requests lost with the worker, and how long until its instance had all its workers again."""
    found = []
    workers = timeline.all("workers")
    for k in timeline.all("kill"):
        lost = [r for r in records if r["instance"] == k["instance"] and r["status"] is None
                and r.get("err") != "timeout" and r["sent"] - LOST_AT_KILL <= k["wall"] <= r["sent"] + r["lat"]
                + LOST_AT_KILL]
        back = next((w for w in workers if w["instance"] == k["instance"] and w["wall"] > k["wall"]
                     and len(w["pids"]) >= len(k["workers"]) and k["pid"] not in w["pids"]), None)
        found.append({"t": k["t"], "instance": k["instance"], "pid": k["pid"], "why": k.get("why"),
                      "lost": len(lost), "lost_kinds": dict(Counter(r["kind"] for r in lost)),
                      "respawned_s": round(back["wall"] - k["wall"], 2) if back else None})
    return found


def tables(records: list[dict[str, Any]], timeline: Timeline, pg: tuple[float, float] | None,
           backend: tuple[float, float] | None) -> dict[str, Any]:
    answers: dict[str, Counter[str]] = defaultdict(Counter)
    latency: dict[str, list[float]] = defaultdict(list)
    for r in sorted(records, key=lambda r: ("lookup", "submit", "probe").index(r["kind"])):
        key = label(r)
        if r["status"] == 200 and r["kind"] in ("lookup", "probe"):
            key = "200 complete" if r.get("complete") else "200 partial"
        elif r["status"] == 200:
            key = f"200 {r.get('state') or '?'}"
        answers[r["kind"]][key] += 1
        latency[r["kind"]].append(r["lat"] * 1e3)
    by_code: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for r in records:
        if r["status"] is None or r["status"] == 200:
            continue
        code = r.get("code") or "(no SOAP fault)"
        phase = "pg" if overlaps(r, pg, 1.0) else "backend" if overlaps(r, backend) else "other"
        by_code[(code, str(r["status"]))][r["kind"]] += 1
        by_code[(code, str(r["status"]))][phase] += 1
    lat = {}
    for kind, values in latency.items():
        values.sort()
        lat[kind] = {"p50": percentile(values, 50), "p99": percentile(values, 99), "max": values[-1] if values
                     else None, "mean": statistics.fmean(values) if values else None}
    return {"answers": {k: dict(v) for k, v in answers.items()}, "latency_ms": lat,
            "faults": [{"code": c, "status": s, **dict(v)} for (c, s), v in sorted(by_code.items())]}


def log_findings(log_dir: Path) -> dict[str, Any]:
    """What the servers logged: counts of telling lines, and per logged ticket the exception that ended it."""
    patterns = {"tracebacks": "Traceback (most recent call last)", "unexpected error": "unexpected error, ticket",
                "audit not written": "audit record could not be written", "outbox round failed": "outbox round failed",
                "worker boot failed": "Worker failed to boot", "worker timeout": "WORKER TIMEOUT",
                "booting worker": "Booting worker", "shutting down": "Shutting down: Master",
                "after-commit step failed": "after-commit step of ticket",
                "readiness error": "Error handling request GET /health/ready"}
    found: dict[str, Any] = {}
    for path in sorted(log_dir.glob("integrator-*.log")):
        lines = path.read_text(errors="replace").splitlines()
        counts = {k: sum(p in line for line in lines) for k, p in patterns.items()}
        tickets: dict[str, str] = {}
        exceptions: Counter[str] = Counter()
        current: str | None = None
        last = ""
        for line in [*lines, "[0000-end]"]:
            match = re.search(r"ticket (KP-\d{8}-[0-9a-f]{32})", line)
            if match or re.match(r"\[\d{4}-", line):  # a logged ticket, or one of gunicorn's own lines
                if current and last:
                    tickets.setdefault(current, last)
                    exceptions[last] += 1
                current, last = (match.group(1), "") if match else (None, "")
            elif current and EXCEPTION_LINE.match(line):
                last = line[:240]  # the last one of the block: the exception that ended the request
        found[path.stem] = {"counts": counts, "exceptions": dict(exceptions.most_common(12)),
                            "tickets": tickets}
    return found


# --- report ---------------------------------------------------------------------------------------------------
def md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return out


def report(run: dict[str, Any]) -> str:
    a = run["analysis"]
    t = a["tables"]
    g = run["gunicorn"]
    lines = [
        f"# kruispunt faults under load  {run['started']}  {run['cores']} cores  python {run['python']}",
        "",
        f"code: HEAD {run['code']['head'][:10]} + {run['code']['changed_files']} changed files (changes sha256 "
        f"{run['code']['changes_sha256'][:12]}, taken {run['code']['taken']})"
        + (f", run from the snapshot {run['code']['snapshot']}" if run["code"].get("snapshot") else ""),
        f"two integrators (gunicorn.conf.py, {g['workers']} workers x {g['worker_class']} x {g['threads']} threads "
        f"each) on database {run['database']}; outbox interval {run['outbox_interval']:g} s, lease {run['lease']:g} s; "
        f"{run['clients']} client processes per instance, {run['duration']:g} s, client timeout {run['timeout']:g} s, "
        f"submissions retried up to {run['retries']}x with the same MessageId",
        f"schedule: {run['schedule']}",
        f"machine (shared): busy {run['machine']['machine_busy']:.0%} during the load; load average "
        f"{run['machine']['loadavg_before'][0]:.1f} before, {run['machine']['loadavg_after'][0]:.1f} after",
        "",
        "## Answers",
        "",
    ]
    keys = sorted({k for c in t["answers"].values() for k in c}, key=lambda k: (not k.startswith("200"), k))
    rows = []
    for kind, counts in t["answers"].items():
        lat = t["latency_ms"][kind]
        rows.append([kind, *[counts.get(k, 0) for k in keys], sum(counts.values()),
                     f"{lat['p50']:.0f}" if lat["p50"] == lat["p50"] else "", f"{lat['p99']:.0f}"
                     if lat["p99"] == lat["p99"] else "", f"{lat['max']:.0f}" if lat["max"] else ""])
    lines += md_table(["kind", *keys, "total", "p50 ms", "p99 ms", "max ms"], rows)
    lines += ["", "## Faults by code", ""]
    lines += md_table(["code", "HTTP", "lookup", "submit", "during PG outage", "during backend outage", "other"],
                      [[f["code"], f["status"], f.get("lookup", 0), f.get("submit", 0), f.get("pg", 0),
                        f.get("backend", 0), f.get("other", 0)] for f in t["faults"]])
    lines += ["", "## Checks", ""]
    lines += md_table(["check", "result", "counts"], [[c["check"], f"**{c['result']}**", c["counts"]]
                                                       for c in a["checks"]])
    rec = a["recovery"]
    lines += ["", "## Recovery", ""]
    rows = []
    if "postgresql" in rec:
        p = rec["postgresql"]
        rows += [["PostgreSQL down (new connections refused .. accepted again)", f"{p['down_s']} s "
                  f"(stop command t={p['stopped_at_s']:.1f}, refusing {p['refusing_at_s']:.1f}, accepting "
                  f"{p['up_at_s']:.1f})"],
                 ["PostgreSQL back → first 200 of a request sent after it was back (clients, with their back-off)",
                  f"{p['first_200_s']} s (A {p['first_200_s_A']}, B {p['first_200_s_B']})"],
                 ["PostgreSQL back → first probe lookup 200 after the last probe fault (back-to-back, no back-off)",
                  f"A {p.get('probe_good_again_s_A')} s, B {p.get('probe_good_again_s_B')} s"],
                 ["probe lookups not answered 200 around the outage",
                  f"A {p.get('probe_faults_A')}, B {p.get('probe_faults_B')}"],
                 ["PostgreSQL back → last Server.* fault of the outage answered (negative: before it was back)",
                  f"{p['last_server_fault_s']} s"],
                 ["/health/ready not ready after the stop; ready again after PostgreSQL back",
                  f"A {p['not_ready_s_A']} / {p['ready_again_s_A']} s, "
                  f"B {p['not_ready_s_B']} / {p['ready_again_s_B']} s"]]
    if "backend" in rec:
        b = rec["backend"]
        rows += [[f"{b['backend']} down", f"{b['down_s']} s (t={b['stopped_at_s']:.1f}..{b['up_at_s']:.1f})"],
                 [f"{b['backend']} back → first submission answered DELIVERED (inline delivery)",
                  f"{b.get('first_inline_delivery_s')} s" if b.get("first_inline_delivery_s") is not None
                  else "none (every answer said PENDING)"],
                 [f"{b['backend']} back → first background delivery", f"{b.get('first_outbox_delivery_s')} s"],
                 [f"its backlog ({b.get('backlog_entries')} entries stored while down) delivered: half, 95%, all "
                  "(a straggler is usually a killed deliverer's entry, taken over when its lease ran out)",
                  f"{b.get('backlog_p50_s')}, {b.get('backlog_p95_s')}, {b.get('backlog_drained_s')} s after it was "
                  f"back ({b.get('backlog_delivered')} delivered)"]]
    kills = a["kills"]
    if kills:
        respawn = [k["respawned_s"] for k in kills if k["respawned_s"] is not None]
        rows.append(["worker kills: requests lost with the killed worker; replacement forked after",
                     f"{len(kills)} kills, {sum(k['lost'] for k in kills)} requests lost; respawned in "
                     + (f"{min(respawn):.1f}..{max(respawn):.1f} s" if respawn else "—")
                     + (f"; {len(kills) - len(respawn)} not respawned" if len(respawn) < len(kills) else "")])
    for name, start, end in instance_spans(run["timeline"]):
        rows.append([f"instance {name}: connections refused (master halting) → restarted by the bench, live again",
                     f"{end - start:.1f} s" if end != float("inf") else "not live again before the end"])
    d = run["drain"]
    rows.append(["outbox drain after the load", f"{d['seconds']:.1f} s, {d['states']}"])
    lines += md_table(["what", "seconds"], rows)
    lines += ["", "## Timeline", ""]
    shown = [e for e in run["timeline"] if e["event"] not in ("workers",)]
    lines += md_table(["t s", "event", "detail"],
                      [[f"{e['t']:.2f}", e["event"], ", ".join(f"{k}={v}" for k, v in e.items()
                                                                if k not in ("t", "wall", "event"))]
                       for e in shown])
    lines += ["", "## Failures (examples)", ""]
    for c in a["checks"]:
        if c["result"] == "FAIL":
            lines.append(f"- **{c['check']}** ({c['failures']}): {c['note']}")
            lines += [f"  - {example}" for example in c["examples"][:5]]
    logs = run.get("logs") or {}
    lines += ["", "## Server logs", ""]
    for name, info in logs.items():
        counts = ", ".join(f"{k} {v}" for k, v in info["counts"].items() if v)
        lines.append(f"- {name}: {counts or 'nothing notable'}")
        for exc, n in info["exceptions"].items():
            lines.append(f"  - {n} x {exc}")
    failed = [c["check"] for c in a["checks"] if c["result"] == "FAIL"]
    lines += ["", "RESULT: " + ("FAIL: " + "; ".join(failed) if failed else
                                "PASS: nothing lost, nothing duplicated, no 500, nobody left hanging")]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    p.add_argument("--kill-every", type=float, default=20.0, help="SIGKILL a worker this often (0: never)")
    p.add_argument("--clients", type=int, default=3, help="client processes per instance")
    p.add_argument("--json", type=Path, default=None, help="JSON file (default: bench/results/faults-<time>.json)")
    p.add_argument("--timeout", type=float, default=30.0, help="client-side timeout: a request hitting it was left "
                                                               "hanging")
    p.add_argument("--retries", type=int, default=4, help="retries of a submission without an answer or with a 5xx "
                                                          "(same MessageId)")
    p.add_argument("--pg-at", type=float, default=None, help="stop PostgreSQL at this second (default: between two "
                                                             "kills about a third into the run)")
    p.add_argument("--pg-down", type=float, default=5.0, help="seconds PostgreSQL stays stopped (-1: no restart)")
    p.add_argument("--kill-during-outage", action="store_true",
                   help="also kill one worker of instance B while PostgreSQL is down")
    p.add_argument("--backend", default=INTAKES["DISABILITY_ALLOWANCE"], help="the backend stopped and started")
    p.add_argument("--backend-at", type=float, default=None, help="stop it at this second (default: 0.6 x duration)")
    p.add_argument("--backend-down", type=float, default=15.0, help="seconds it stays stopped (-1: never)")
    p.add_argument("--outbox-interval", type=float, default=1.0, help="KRUISPUNT_OUTBOX_INTERVAL_SECONDS")
    p.add_argument("--lease", type=float, default=30.0, help="KRUISPUNT_OUTBOX_LEASE_SECONDS (above the intakes' "
                                                             "10 s timeout)")
    p.add_argument("--drain-timeout", type=float, default=240.0, help="seconds to wait for the outbox to drain")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test",
                   help="the PostgreSQL server (the database in the URL is only used to connect)")
    p.add_argument("--db-name", default="kp_faults", help="the database dropped and created for the run")
    p.add_argument("--pg-cluster", default="15 main", help="pg_ctlcluster's version and cluster name")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers per instance")
    p.add_argument("--threads", type=int, default=None, help="gthread threads (gunicorn.conf.py's)")
    p.add_argument("--access-log", action="store_true", help="gunicorn access logs on (default: off)")
    p.add_argument("--supervise", action=argparse.BooleanOptionalAction, default=True,
                   help="start an instance whose gunicorn master exited again (as systemd would); its exit is "
                        "reported either way")
    p.add_argument("--snapshot", action=argparse.BooleanOptionalAction, default=True,
                   help="run the servers (and this bench) from a copy of the tree taken at the start")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, PKI, intake stores), the database and "
                                                       "the code snapshot")
    args = p.parse_args(argv)
    if args.pg_at is None:
        step = args.kill_every if args.kill_every > 0 else args.duration
        args.pg_at = max(1.0, round(args.duration * 0.35 / step)) * step + 0.35 * step if args.kill_every > 0 \
            else args.duration * 0.35
    if args.backend_at is None:
        args.backend_at = args.duration * 0.6
    return args


def tree_state(root: Path) -> dict[str, Any]:
    """Which code this is: HEAD, the working tree's changes (git status) and a digest of them (diff + untracked)."""
    def git(*argv: str) -> bytes:
        return subprocess.run(["git", "-C", str(root), *argv], capture_output=True, timeout=60).stdout

    status = git("status", "--short").decode(errors="replace").splitlines()
    digest = hashlib.sha256(git("diff", "HEAD", "--binary"))
    for name in sorted(git("ls-files", "--others", "--exclude-standard").decode().splitlines()):
        path = root / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return {"head": git("rev-parse", "HEAD").decode().strip(), "changed_files": len(status), "status": status,
            "changes_sha256": digest.hexdigest(), "taken": datetime.now(UTC).isoformat(timespec="seconds")}


def snapshot_tree(root: Path) -> Path:
    """A copy of the code, schemas and benches (no venv, no var): the servers and this bench run from it, so
    edits to the working tree during the run (workers respawn after every kill) do not change what is tested."""
    target = Path(tempfile.mkdtemp(prefix="kruispunt-faults-src-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results", "*.egg-info", ".venv*", ".*_cache", "build",
                                    "dist", "node_modules")
    for part in SNAPSHOT_PARTS:
        source = root / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, target / part)
    (target / "SNAPSHOT.json").write_text(json.dumps({"source": str(root), **tree_state(root)}, indent=2))
    return target


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0 and args.pg_down >= 0:
        print("warning: restarting PostgreSQL with pg_ctlcluster needs root (or the postgres user)", file=sys.stderr)
    if args.snapshot and not os.environ.get(SNAPSHOT_ENV):
        target = snapshot_tree(BENCH.parent)
        print(f"running from a snapshot of {BENCH.parent}: {target}", flush=True)
        extra = [] if args.json else ["--json", str(RESULTS / f"faults-{datetime.now(UTC):%Y%m%d-%H%M%S}.json")]
        RESULTS.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, **{SNAPSHOT_ENV: str(target)}, PYTHONPATH=os.pathsep.join(
            [str(target), str(target / "client" / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, str(target / "bench" / "faults.py"),
                                   *(sys.argv[1:] if argv is None else argv), *extra], env)
    try:
        return run_bench(args, "kruispunt-bench-faults-", lambda bench_run: bench(args, bench_run))
    finally:
        snapshot = os.environ.get(SNAPSHOT_ENV)
        if snapshot and not args.keep:
            shutil.rmtree(snapshot, ignore_errors=True)
        elif snapshot:
            print(f"kept the code snapshot {snapshot}", file=sys.stderr)


def bench(args: argparse.Namespace, bench_run: Run) -> int:
    bench_run.cleanups.append(lambda: ensure_pg_up(args))
    with fresh_database(args) as database_url:
        try:
            return _bench(args, bench_run, database_url)
        finally:
            bench_run.procs.stop_all()  # before the database is dropped: no worker holds a connection
            ensure_pg_up(args)


def code_state() -> dict[str, Any]:
    snapshot = os.environ.get(SNAPSHOT_ENV)
    if snapshot and (Path(snapshot) / "SNAPSHOT.json").exists():
        return {"snapshot": snapshot, **json.loads((Path(snapshot) / "SNAPSHOT.json").read_text())}
    return {"snapshot": None, "source": str(BENCH.parent), **tree_state(BENCH.parent)}


def _bench(args: argparse.Namespace, bench_run: Run, database_url: str) -> int:
    work = bench_run.work
    print(f"work dir {work}; database {describe_url(database_url)}", flush=True)
    stack = Stack.start(args, bench_run.procs, work, database_url)
    print("stack up: " + ", ".join(f"integrator {n} :{i.port}" for n, i in stack.instances.items())
          + ", backends " + ", ".join(f"{n} :{p}" for n, p in stack.ports.items()), flush=True)
    first = sanity(stack, args.timeout)
    print(f"sanity: {len(first)} requests good on both instances", flush=True)
    timeline = Timeline()
    print(f"load: {args.duration:g} s, {args.clients} clients per instance; {schedule_text(args)}", flush=True)
    load_before, machine = os.getloadavg(), MachineLoad()
    records = first + run_clients(stack, args, work, timeline, bench_run)
    machine.stop()
    load = {"loadavg_before": load_before, "loadavg_after": os.getloadavg(), "machine_busy": machine.busy}
    ensure_pg_up(args)
    print(f"{len(records)} requests recorded; waiting for the outbox to drain", flush=True)
    drained = drain(stack.database_url, args, timeline)
    db = database_state(stack.database_url, stack.state_dir)
    analysis = analyse(records, db, timeline, args)
    t0 = timeline.t0
    run: dict[str, Any] = {
        "started": bench_run.started.isoformat(timespec="seconds"), "cores": os.cpu_count(),
        "code": code_state(),
        "python": platform.python_version(), "gunicorn": stack.gconf, "database": describe_url(database_url),
        "duration": args.duration, "kill_every": args.kill_every, "clients": args.clients, "timeout": args.timeout,
        "retries": args.retries, "pg_at": args.pg_at, "pg_down": args.pg_down, "backend": args.backend,
        "backend_at": args.backend_at, "backend_down": args.backend_down, "outbox_interval": args.outbox_interval,
        "lease": args.lease, "kill_during_outage": args.kill_during_outage, "drain": drained,
        "schedule": schedule_text(args), "machine": load,
        "timeline": timeline.events, "analysis": analysis, "logs": log_findings(work / "logs"),
        "db_counts": {"audit_records": len(db["audit"]), "applications": len(db["applications"]),
                      "outbox": dict(Counter(o["state"] for o in db["outbox"])),
                      "intake": {k: len(v) for k, v in db["intake"].items()}},
        "records": [{**r, "t": round(r["sent"] - t0, 3)} for r in records],
    }
    print("\n" + report(run))
    write_json(run, args.json, "faults", bench_run.started)
    return 0 if all(c["result"] == "PASS" for c in analysis["checks"]) else 2


if __name__ == "__main__":
    sys.exit(main())
