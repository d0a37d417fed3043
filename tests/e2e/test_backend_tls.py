"""An https backend behind the integrator as deployed (gunicorn -c gunicorn.conf.py): the reference backend serving
TLS under gunicorn, with a certificate of a CA of its own. Trusted through KRUISPUNT_BACKEND_CA_FILE, the call is
answered; by an integrator trusting only the system's store, it is Server.Backend.Unavailable before the request
leaves, with libcurl's reason kept as the backend circuit's last error."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.backends.persons import PERSONS
from tests.e2e.generic_calls import SOURCE, Endpoint, StatusCall, circuits, forget_circuits, register_generic
from tests.support import PROJECT, fault_of, free_port, post, wait_for


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA (no system store holds it), and its key."""
    cert, key = folder / "backend-tls.pem", folder / "backend-tls-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert), "-days", "1"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_backend(stack, tmp_path: Path) -> Iterator[tuple[str, Path]]:  # type: ignore[no-untyped-def]
    """The health-insurance reference backend over https: (its URL, the certificate to trust)."""
    cert, key = _certificate(tmp_path)
    port = free_port()
    with (stack.log_dir / f"tls-backend-{port}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gthread", "--threads", "2",
             "--certfile", str(cert), "--keyfile", str(key), "--control-socket", str(tmp_path / "backend.ctl"),
             "services.backends.wsgi:create_app()"],
            env=dict(stack.env, KRUISPUNT_BACKEND=SOURCE), cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}/"
    try:
        wait_for(f"{url}?wsdl", verify=str(cert))
        yield url, cert
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def trusting_integrator(stack, tls_backend, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An integrator of the same stack (database, keys) whose KRUISPUNT_BACKEND_CA_FILE names the backend's CA."""
    _, cert = tls_backend
    port = free_port()
    with (stack.log_dir / f"tls-integrator-{port}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(PROJECT / "gunicorn.conf.py"),
             "integrator.faces.wsgi:create_app()"],
            env=dict(stack.env, KRUISPUNT_BIND=f"127.0.0.1:{port}", KRUISPUNT_WORKERS="1", KRUISPUNT_THREADS="2",
                     KRUISPUNT_BACKEND_CA_FILE=str(cert), KRUISPUNT_CONTROL_SOCKET=str(tmp_path / "integrator.ctl")),
            cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/health/ready")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_an_https_backend_is_reached_through_the_ca_file_and_refused_without_it(  # type: ignore[no-untyped-def]
        stack, tls_backend, trusting_integrator) -> None:
    url, _ = tls_backend
    name = register_generic(stack, [Endpoint("tls", url)])
    try:
        person = PERSONS[0]
        answered = post(trusting_integrator, StatusCall(stack.pki.kruisdorp, insz=person.insz).signed(),
                        path=f"/soap/{name}/v1")
        assert answered.status_code == 200, answered.text[:800]
        assert b"get_statusesResponse" in answered.content

        refused = post(stack.base_url, StatusCall(stack.pki.kruisdorp, insz=person.insz).signed(),
                       path=f"/soap/{name}/v1")
        fault = fault_of(refused)
        assert (refused.status_code, fault.code) == (502, "Server.Backend.Unavailable"), fault
        assert "tls: Server.Backend.Unavailable" in fault.reason, fault.reason
        last_error = circuits(stack, name)["tls"].last_error or ""
        assert "certificate" in last_error.lower(), last_error  # libcurl's words, kept for the operators
    finally:
        forget_circuits(stack, name)
