"""Settings checked at start-up: every bad value is refused with one SettingsError naming its variable, the value
given and what is accepted; the command line says so in one line, without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from integrator.config import LIMIT_SETTINGS, ServerSettings, Settings, SettingsError, control_socket_path
from integrator.database import make_engine
from tests.support import PROJECT

WHOLE = [*LIMIT_SETTINGS.values(), "KRUISPUNT_MAX_HOPS", "KRUISPUNT_PEER_ANSWER_MAX_BYTES",
         "KRUISPUNT_CIRCUIT_THRESHOLD", "KRUISPUNT_MAX_REFERENCES", "KRUISPUNT_MAX_TOKEN_CHARS",
         "KRUISPUNT_MAX_INCLUSIVE_PREFIXES"]
SECONDS = ["KRUISPUNT_REPOSITORY_CACHE_SECONDS", "KRUISPUNT_OUTBOX_INTERVAL_SECONDS", "KRUISPUNT_OUTBOX_LEASE_SECONDS",
           "KRUISPUNT_PROPOSAL_DECISION_DAYS", "KRUISPUNT_CIRCUIT_COOLDOWN_SECONDS",
           "KRUISPUNT_TIMESTAMP_MAX_TTL_SECONDS", "KRUISPUNT_CLOCK_SKEW_SECONDS"]
SERVER_WHOLE = ["KRUISPUNT_WORKERS", "KRUISPUNT_THREADS", "KRUISPUNT_WORKER_TIMEOUT", "KRUISPUNT_MAX_REQUESTS"]


def refusal(variable: str, value: str, read=Settings.from_env) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SettingsError) as raised:
        read({variable: value})
    message = str(raised.value)
    assert message.startswith(f"{variable}={value!r}: expected "), message
    assert "\n" not in message
    assert raised.value.variable == variable
    return message


@pytest.mark.parametrize("variable", WHOLE)
@pytest.mark.parametrize("value", ["abc", "1.5", "-3", "0x10"])
def test_a_whole_number_setting_refuses_what_is_not_one(variable: str, value: str) -> None:
    assert "a whole number" in refusal(variable, value)


@pytest.mark.parametrize("variable", [v for v in WHOLE if v != "KRUISPUNT_MAX_INCLUSIVE_PREFIXES"])
def test_a_count_or_limit_of_zero_is_refused(variable: str) -> None:
    assert "of at least 1" in refusal(variable, "0")


def test_zero_inclusive_prefixes_is_a_policy_not_a_mistake() -> None:
    assert Settings.from_env({"KRUISPUNT_MAX_INCLUSIVE_PREFIXES": "0"}).security.max_prefixes == 0


@pytest.mark.parametrize("variable", SECONDS)
@pytest.mark.parametrize("value", ["soon", "nan", "inf", "-1"])
def test_a_duration_refuses_what_is_not_a_finite_number_of_at_least_zero(variable: str, value: str) -> None:
    assert "a number" in refusal(variable, value)


@pytest.mark.parametrize("variable", ["KRUISPUNT_OUTBOX_LEASE_SECONDS", "KRUISPUNT_TIMESTAMP_MAX_TTL_SECONDS"])
def test_a_duration_that_must_be_positive_refuses_zero(variable: str) -> None:
    assert "above 0" in refusal(variable, "0")


def test_durations_of_zero_keep_their_meaning() -> None:
    settings = Settings.from_env({"KRUISPUNT_OUTBOX_INTERVAL_SECONDS": "0", "KRUISPUNT_REPOSITORY_CACHE_SECONDS": "0"})
    assert settings.outbox_interval_seconds == 0 and settings.repository_cache_seconds == 0


@pytest.mark.parametrize("variable", SERVER_WHOLE)
def test_the_server_settings_are_checked_too(variable: str) -> None:
    assert "a whole number" in refusal(variable, "many", ServerSettings.from_env)


def test_the_log_format_is_text_or_json() -> None:
    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"KRUISPUNT_LOG_FORMAT": "JSON"}).log_format == "json"
    assert "one of text, json" in refusal("KRUISPUNT_LOG_FORMAT", "xml")


def test_the_backend_ca_file_is_a_file_of_pem_certificates(tmp_path: Path) -> None:
    assert Settings.from_env({}).backend_ca_file is None  # the system's trust store
    ca = tmp_path / "ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=ca",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(ca), "-days", "1"], check=True, capture_output=True)
    assert Settings.from_env({"KRUISPUNT_BACKEND_CA_FILE": str(ca)}).backend_ca_file == ca.resolve()
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    for wrong in (tmp_path / "missing.pem", tmp_path / "key.pem", tmp_path):
        assert "a readable file of PEM certificates" in refusal("KRUISPUNT_BACKEND_CA_FILE", str(wrong))


@pytest.mark.parametrize("url", ["mysql://kp@db/kp", "sqlite://", "postgresql+asyncpg://kp@db/kp", "db-host/kp",
                                 "postgresql+pg8000://kp@db/kp", "sqlite:///"])
def test_a_database_url_of_another_kind_is_refused_naming_the_accepted_schemes(url: str) -> None:
    message = refusal("KRUISPUNT_DATABASE_URL", url)
    assert "sqlite:///" in message and "postgresql://" in message and "postgresql+psycopg://" in message


def test_a_refused_database_url_never_shows_its_password() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"KRUISPUNT_DATABASE_URL": "mysql://kp:s3cret@db/kp"})
    assert "s3cret" not in str(raised.value)
    assert "KRUISPUNT_DATABASE_URL='mysql://kp:***@db/kp'" in str(raised.value)


def test_a_postgres_url_as_hosting_providers_give_it_is_read_as_psycopg() -> None:
    settings = Settings.from_env({"KRUISPUNT_DATABASE_URL": "postgres://kp:pw@db.example.org:5433/kp?sslmode=require"})
    assert settings.database_url == "postgresql+psycopg://kp:pw@db.example.org:5433/kp?sslmode=require"
    engine = make_engine(settings.database_url)
    assert engine.url.drivername == "postgresql+psycopg" and engine.url.port == 5433
    engine.dispose()


@pytest.mark.parametrize("url", ["sqlite:////var/lib/kruispunt/kp.db", "postgresql://kp@db/kp",
                                 "postgresql+psycopg://kp@db/kp"])
def test_the_accepted_urls_stay_as_given(url: str) -> None:
    assert Settings.from_env({"KRUISPUNT_DATABASE_URL": url}).database_url == url


def test_each_bind_address_gets_its_own_control_socket() -> None:
    var = Path("/srv/kruispunt/var")
    one, other = control_socket_path(var, ["127.0.0.1:8080"]), control_socket_path(var, ["127.0.0.1:8081"])
    assert one == "/srv/kruispunt/var/run/gunicorn-127.0.0.1-8080.ctl" and other != one
    deep = control_socket_path(var / ("d" * 120), ["127.0.0.1:8080"])
    assert len(os.fsencode(deep)) < 100 and deep != control_socket_path(var / ("d" * 120), ["127.0.0.1:8081"])


def test_the_command_line_says_what_is_wrong_in_one_line_and_no_traceback(tmp_path: Path) -> None:
    env = dict(os.environ, KRUISPUNT_VAR=str(tmp_path), KRUISPUNT_CIRCUIT_COOLDOWN_SECONDS="half a minute")
    done = subprocess.run([sys.executable, "-m", "integrator.faces.cli", "service", "list"], env=env, cwd=PROJECT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "kruispunt: KRUISPUNT_CIRCUIT_COOLDOWN_SECONDS='half a minute': expected a number of at least 0"]
