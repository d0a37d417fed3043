"""Servers of the benches: process groups, free ports, readiness, gunicorn command lines, and one run's lifecycle.

Every server and load generator a bench starts runs in its own process group; `run_bench` installs the signal
handlers, makes the work dir, and stops every group on the way out (normal end, error, Ctrl-C, SIGTERM, SIGHUP).
"""

from __future__ import annotations

import argparse
import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
RESULTS = BENCH / "results"
GUNICORN_CONF = PROJECT / "gunicorn.conf.py"
INTEGRATOR_APP = "integrator.faces.wsgi:create_app()"
BACKEND_APP = "services.backends.wsgi:create_app()"


# --- signals --------------------------------------------------------------------------------------------------
class Interrupted(Exception):
    """SIGTERM/SIGHUP: stop like on Ctrl-C, cleaning up on the way out."""


def _on_signal(signum: int, _frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def child_signals() -> None:
    """In pool processes: the parent handles Ctrl-C and SIGTERM (it terminates the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


# --- processes ------------------------------------------------------------------------------------------------
class Processes:
    """Every server and load generator this run starts, each in its own process group, all stopped at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("ab")
        try:
            process = subprocess.Popen(argv, env=env, cwd=PROJECT, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        self.running[name] = process
        return process

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, name: str, grace: float = 20.0) -> None:
        process = self.running.pop(name, None)
        if process is not None:
            stop_group([process], grace)

    def stop_all(self, grace: float = 20.0) -> None:
        """Last started first: the load generator, then the integrator (its in-flight lookups still reach the
        backends), then the backends."""
        processes, self.running = list(self.running.values()), {}
        for process in reversed(processes):
            stop_group([process], grace)


def stop_group(processes: list[subprocess.Popen], grace: float) -> None:
    for process in processes:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)
        _signal_group(process, signal.SIGKILL)  # stray workers of a master that died first


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)  # start_new_session: the group id is the process id
    except (ProcessLookupError, PermissionError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen, procs: Processes, name: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{procs.log_tail(name)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout:.0f} s:\n{procs.log_tail(name)}")


# --- gunicorn -------------------------------------------------------------------------------------------------
def gunicorn_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The integrator's gunicorn settings (gunicorn.conf.py as the environment makes it), with our overrides."""
    conf = runpy.run_path(str(GUNICORN_CONF))
    return {"workers": args.workers or int(conf["workers"]), "worker_class": str(conf["worker_class"]),
            "threads": args.threads or int(conf["threads"]), "keepalive": conf.get("keepalive"),
            "config": str(GUNICORN_CONF)}


def server_env(args: argparse.Namespace, gconf: dict[str, Any], **extra: str) -> dict[str, str]:
    env = dict(os.environ, KRUISPUNT_WORKERS=str(gconf["workers"]), KRUISPUNT_THREADS=str(gconf["threads"]),
               PYTHONUNBUFFERED="1")
    env.pop("KRUISPUNT_BIND", None)
    if not args.access_log:
        env["KRUISPUNT_ACCESS_LOG"] = ""  # off for every server of both phases (gunicorn.conf.py logs to stdout)
    env.update(extra)
    return env


def start_configured(procs: Processes, name: str, port: int, env: dict[str, str], *gunicorn_args: str,
                     app: str = INTEGRATOR_APP) -> subprocess.Popen:
    """`gunicorn -c gunicorn.conf.py [args] app`, bound to 127.0.0.1:port through KRUISPUNT_BIND (the integrator's
    way; the bare baseline uses it too)."""
    return procs.start(name, [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), *gunicorn_args, app],
                       dict(env, KRUISPUNT_BIND=f"127.0.0.1:{port}"))


def start_backend(procs: Processes, backend: str, port: int, env: dict[str, str], *, app: str = BACKEND_APP,
                  workers: int = 1, threads: int = 4) -> subprocess.Popen:
    """A reference backend as `kruispunt run` starts it (gunicorn -w 1 -k gthread --threads 4), named
    backend-<name>."""
    return procs.start(f"backend-{backend}", [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w",
                                              str(workers), "-k", "gthread", "--threads", str(threads), app],
                       dict(env, KRUISPUNT_BACKEND=backend))


# --- the integrator's workers ---------------------------------------------------------------------------------
def worker_pids(pid: int) -> list[int]:
    """The direct children of a process (a gunicorn master's workers), from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(rest[1]) == pid:
                found.append(int(entry))
    return found


def connections_per_worker(port: int) -> dict[str, int]:
    """How the client's keep-alive connections are spread over the integrator's workers (ss, sampled once)."""
    try:
        out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: Counter[str] = Counter()
    for line in out.splitlines():
        pids = set(re.findall(r"pid=(\d+)", line))
        found[",".join(sorted(pids)) or "?"] += 1
    return dict(found)


class ConnectionSpread:
    """Samples connections_per_worker once, `delay` seconds after start(), into `found` (every worker listed,
    idle ones with 0)."""

    def __init__(self, integrator_pid: int, port: int, delay: float) -> None:
        self.found: dict[str, int] = {}
        workers = {str(pid): 0 for pid in worker_pids(integrator_pid)}
        self.timer = threading.Timer(delay, lambda: self.found.update({**workers, **connections_per_worker(port)}))
        self.timer.daemon = True

    def start(self) -> ConnectionSpread:
        self.timer.start()
        return self

    def cancel(self) -> None:
        self.timer.cancel()


# --- one run --------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """What a bench's body gets: its work dir, its processes, when it started, and clean-ups to run (last added
    first) before the processes are stopped."""

    work: Path
    procs: Processes
    started: datetime
    cleanups: list[Callable[[], object]] = field(default_factory=list)


def run_bench(args: argparse.Namespace, prefix: str, body: Callable[[Run], int], *, traceback: bool = True) -> int:
    """Run body(run) with signal handlers installed and a fresh work dir; its exit code, or 130 when interrupted,
    1 on error (the work dir is then kept). Every process is stopped on the way out; args.keep keeps the work dir."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background (SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix))
    (work / "logs").mkdir()
    run = Run(work, Processes(work / "logs"), datetime.now(UTC))
    code = 1
    try:
        code = body(run)
    except (KeyboardInterrupt, Interrupted) as exc:
        print(f"\ninterrupted ({str(exc) or 'Ctrl-C'}); stopping everything", file=sys.stderr)
        code = 130
    except Exception as exc:
        if traceback:
            import traceback as tb

            tb.print_exc()
        print(f"\nbenchmark failed: {exc}\nlogs: {work / 'logs'}", file=sys.stderr)
        args.keep = True
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave servers behind
        for cleanup in reversed(run.cleanups):
            cleanup()
        run.procs.stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return code
