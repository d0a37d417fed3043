"""gunicorn settings for the integrator, from the environment and checked before the master starts: a setting it
cannot use is one line on stderr and exit status 1. Logs in KRUISPUNT_LOG_FORMAT (gunicorn's lines and the
application's); every master gets a fresh Prometheus multiprocess directory and a control socket of its own."""

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from integrator.config import ServerSettings, Settings, SettingsError, control_socket_path

try:
    _server = ServerSettings.from_env()
    _settings = Settings.from_env()
except SettingsError as _error:
    print(f"kruispunt: {_error}", file=sys.stderr)
    raise SystemExit(1) from None

bind = _server.bind
workers = _server.workers
# gthread that accepts a new connection only while one of its threads is free, so that keep-alive clients spread
# over all workers (integrator/faces/worker.py)
worker_class = "integrator.faces.worker.BalancedThreadWorker"
threads = _server.threads
timeout = _server.timeout
graceful_timeout = 30
keepalive = 5
# Behind a load balancer: trust X-Forwarded-* only from the addresses named here.
forwarded_allow_ips = _server.forwarded_allow_ips
accesslog = _server.access_log
max_requests = _server.max_requests
max_requests_jitter = 50
logger_class = "integrator.faces.logs.GunicornLogger"
if _server.control_socket:
    control_socket = _server.control_socket

METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def _metrics_root() -> Path:
    return _settings.var_dir / "metrics"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def on_starting(server: Any) -> None:
    """In the master, before its first worker: an empty metrics directory of its own (the workers inherit the
    variable; those of masters that are gone are removed), and a control socket named after the bind address
    unless one was given (--control-socket, KRUISPUNT_CONTROL_SOCKET)."""
    root = _metrics_root()
    if root.is_dir():
        for stale in root.iterdir():
            if stale.name.isdigit() and int(stale.name) != server.pid and not _alive(int(stale.name)):
                shutil.rmtree(stale, ignore_errors=True)
    path = root / str(server.pid)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    if os.geteuid() == 0 and server.cfg.uid != 0:  # workers that drop privileges must still write there
        os.chown(path, server.cfg.uid, server.cfg.gid)
    os.environ[METRICS_VARIABLE] = str(path)
    if server.cfg.control_socket == server.cfg.settings["control_socket"].default:
        server.cfg.set("control_socket", control_socket_path(_settings.var_dir, server.cfg.bind))
    server.log.info("metrics directory %s; control socket %s", path,
                    "disabled" if server.cfg.control_socket_disable else server.cfg.control_socket)


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: its live gauges go with it (its counters stay in the sums)."""
    if os.environ.get(METRICS_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    path = os.environ.get(METRICS_VARIABLE)
    if path and Path(path).parent == _metrics_root():
        shutil.rmtree(path, ignore_errors=True)
