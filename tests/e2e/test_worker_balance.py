"""Keep-alive clients spread over all the integrator's workers: a worker takes a new connection only while one of
its threads is free (integrator/faces/worker.py), so connections made together do not all land on the worker that woke
first. Over real sockets, the integrator as deployed (gunicorn -c gunicorn.conf.py), counted with ss."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from services.backends.persons import PERSONS
from services.demo_organisations import OFFICIALS, PURPOSE_TAX
from tests.support import PROJECT, TAX_PATH, Request, free_port, wait_for

WORKERS, THREADS, CONNECTIONS = 2, 2, 8


@pytest.fixture
def integrator(stack) -> Iterator[tuple[subprocess.Popen, int]]:  # type: ignore[no-untyped-def]
    port = free_port()
    log = (stack.log_dir / f"balanced-{port}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(PROJECT / "gunicorn.conf.py"),
         "integrator.faces.wsgi:create_app()"],
        env=dict(stack.env, KRUISPUNT_BIND=f"127.0.0.1:{port}", KRUISPUNT_WORKERS=str(WORKERS),
                 KRUISPUNT_THREADS=str(THREADS), KRUISPUNT_CONTROL_SOCKET=str(stack.log_dir / f"ctl-{port}")),
        cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/health/ready")
        yield process, port
    finally:
        process.terminate()
        process.wait(timeout=30)


def connections_per_process(port: int) -> Counter[str]:
    listed = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"], capture_output=True,
                            text=True, timeout=10, check=True).stdout
    return Counter(",".join(sorted(set(re.findall(r"pid=(\d+)", line)))) for line in listed.splitlines())


def test_connections_made_together_spread_over_the_workers(stack, integrator) -> None:  # type: ignore[no-untyped-def]
    _, port = integrator
    official = OFFICIALS[0]
    bodies = [Request(stack.pki.kruisdorp, official.insz, PERSONS[i % len(PERSONS)].insz, purpose=PURPOSE_TAX).signed()
              for i in range(CONNECTIONS)]
    start, statuses = threading.Barrier(CONNECTIONS), []
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=120) for _ in range(CONNECTIONS)]
    for connection in connections:  # connected first, as a load balancer's pool or wrk does, then used together
        connection.connect()

    def lookup(connection: http.client.HTTPConnection, body: bytes) -> None:
        start.wait()
        connection.request("POST", TAX_PATH, body=body, headers={"Content-Type": "text/xml; charset=utf-8"})
        reply = connection.getresponse()
        reply.read()
        statuses.append(reply.status)

    threads = [threading.Thread(target=lookup, args=pair) for pair in zip(connections, bodies, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    try:
        assert statuses == [200] * CONNECTIONS
        spread = connections_per_process(port)  # the connections are kept alive: each still on its worker
        assert sum(spread.values()) == CONNECTIONS and len(spread) == WORKERS, spread
        assert min(spread.values()) >= THREADS, f"a worker took connections while its threads were busy: {spread}"
    finally:
        for connection in connections:
            connection.close()
