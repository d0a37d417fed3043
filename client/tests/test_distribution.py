"""The client stands on its own: importing it loads nothing of the integrator, and it asks for no server package."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

SERVER_PACKAGES = ("integrator", "services", "repository")
NOT_NEEDED = ("spyne", "gunicorn", "sqlalchemy", "psycopg", "alembic")


def test_importing_the_client_loads_no_server_module() -> None:
    code = ("import sys, kruispunt_client, kruispunt_client.client, kruispunt_client.receipt; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVER_PACKAGES + NOT_NEEDED!r})))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


def test_the_distribution_requires_only_soap_and_signing() -> None:
    required = metadata.requires("kruispunt-client") or []
    runtime = {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in required if "extra ==" not in r}
    assert runtime == {"zeep", "lxml", "signxml", "cryptography"}
    assert all(("<" in r) for r in required if "extra ==" not in r)  # each with an upper bound
