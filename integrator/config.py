"""Settings: one small frozen object with safe defaults, read from the environment once and passed in."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from integrator.circuit import CircuitPolicy
from integrator.envelope import EnvelopeLimits
from integrator.wssec.verify import SecurityPolicy

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOG_FORMATS = ("text", "json")  # KRUISPUNT_LOG_FORMAT: how the faces write their log lines (faces/logs.py)
FORMAT_VARIABLE = "KRUISPUNT_LOG_FORMAT"
LIMIT_SETTINGS = {  # EnvelopeLimits field -> the environment variable that sets it
    "max_bytes": "KRUISPUNT_MAX_REQUEST_BYTES", "max_depth": "KRUISPUNT_MAX_DEPTH",
    "max_elements": "KRUISPUNT_MAX_ELEMENTS", "max_attributes": "KRUISPUNT_MAX_ATTRIBUTES",
    "max_attributes_per_element": "KRUISPUNT_MAX_ATTRIBUTES_PER_ELEMENT",
    "max_namespaces": "KRUISPUNT_MAX_NAMESPACES", "max_namespaces_in_scope": "KRUISPUNT_MAX_NAMESPACES_IN_SCOPE",
    "max_text_chars": "KRUISPUNT_MAX_TEXT_CHARS", "max_tag_bytes": "KRUISPUNT_MAX_TAG_BYTES",
    "max_ids": "KRUISPUNT_MAX_IDS",
}
DATABASE_VARIABLE = "KRUISPUNT_DATABASE_URL"
DATABASE_SCHEMES = ("sqlite:///PATH, postgresql://... or postgresql+psycopg://... "
                    "(postgres://... is read as postgresql+psycopg://...)")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")
_YES, _NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_HEADER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


class SettingsError(ValueError):
    """A setting the integrator cannot start with; the message names the variable, the value and what is accepted."""

    def __init__(self, variable: str, value: str, expected: str) -> None:
        super().__init__(f"{variable}={value!r}: expected {expected}")
        self.variable = variable


def whole(env: dict[str, str] | os._Environ[str], variable: str, default: int, minimum: int = 1,
          maximum: int | None = None) -> int:
    """A whole-number setting within [minimum, maximum], or SettingsError naming it."""
    raw = env.get(variable)
    if raw is None or raw.strip() == "":
        return default
    expected = (f"a whole number from {minimum} to {maximum}" if maximum is not None
                else f"a whole number of at least {minimum}")
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        raise SettingsError(variable, raw, expected) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise SettingsError(variable, raw, expected)
    return value


def number(env: dict[str, str] | os._Environ[str], variable: str, default: float, *, positive: bool = False) -> float:
    """A finite number setting, at least 0 (or above 0 when positive), or SettingsError naming it."""
    raw = env.get(variable)
    if raw is None or raw.strip() == "":
        return default
    expected = "a number above 0" if positive else "a number of at least 0"
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(variable, raw, expected) from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise SettingsError(variable, raw, expected)
    return value


def choice(env: dict[str, str] | os._Environ[str], variable: str, accepted: tuple[str, ...]) -> str:
    """One of `accepted` (the first by default), or SettingsError naming them."""
    raw = env.get(variable)
    if raw is None or raw.strip() == "":
        return accepted[0]
    if raw.strip().lower() not in accepted:
        raise SettingsError(variable, raw, "one of " + ", ".join(accepted))
    return raw.strip().lower()


def flag(env: dict[str, str] | os._Environ[str], variable: str, default: bool) -> bool:
    """A yes/no setting (1/0, true/false, yes/no, on/off), or SettingsError naming it."""
    raw = env.get(variable)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in _YES + _NO:
        raise SettingsError(variable, raw, "one of " + ", ".join(_YES + _NO))
    return value in _YES


def networks(env: dict[str, str] | os._Environ[str], variable: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses or networks (none by default), or SettingsError naming it."""
    raw = env.get(variable) or ""
    try:
        return tuple(str(ipaddress.ip_network(part.strip(), strict=False)) for part in raw.split(",") if part.strip())
    except ValueError:
        raise SettingsError(variable, raw, "IP addresses or networks, separated by commas") from None


def header_name(env: dict[str, str] | os._Environ[str], variable: str, default: str) -> str:
    """An HTTP header name (letters, digits and hyphens), or SettingsError naming it."""
    raw = env.get(variable)
    if raw is None or raw.strip() == "":
        return default
    if not _HEADER.fullmatch(raw.strip()):
        raise SettingsError(variable, raw, "an HTTP header name (letters, digits, hyphens)")
    return raw.strip()


def certificates_file(env: dict[str, str] | os._Environ[str], variable: str) -> Path | None:
    """A file of PEM certificates (none by default), read at start-up, or SettingsError naming the variable."""
    raw = env.get(variable)
    if raw is None or raw.strip() == "":
        return None
    path = Path(raw.strip()).expanduser().resolve()
    try:
        found = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        found = []
    if not found:
        raise SettingsError(variable, raw, "a readable file of PEM certificates (-----BEGIN CERTIFICATE-----)")
    return path


def database_url(raw: str) -> str:
    """The database URL as the engine takes it: sqlite:/// or postgresql[+psycopg|+psycopg2]://; postgres:// (as
    Heroku-style providers hand it out) is rewritten to postgresql+psycopg://. Anything else: SettingsError."""
    url = raw.strip()
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    shown = _PASSWORD.sub(r"\1***@", raw)  # never a password in a log line
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(DATABASE_VARIABLE, shown, DATABASE_SCHEMES) from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite" and driver in ("", "pysqlite") and parsed.database:
        return url
    if backend == "postgresql" and driver in ("", "psycopg", "psycopg2"):  # no database: libpq's default
        return url
    raise SettingsError(DATABASE_VARIABLE, shown, DATABASE_SCHEMES)


@dataclass(frozen=True)
class PortalPolicy:
    """The officials' portal: its session cookie and timeouts, the throttling of failed log-ons, and who may pass
    on a client certificate verified elsewhere (a TLS-terminating load balancer)."""

    cookie_secure: bool = True  # Secure cookies; browsers keep them from http://127.0.0.1 and localhost too
    idle_timeout: timedelta = timedelta(minutes=15)  # a session unused this long has ended
    absolute_timeout: timedelta = timedelta(hours=8)  # a session ends this long after its log-on, used or not
    user_failures: int = 5  # failed log-ons of one user number within failure_window that lock it
    address_failures: int = 20  # failed log-ons from one client address within failure_window that lock it
    failure_window: timedelta = timedelta(minutes=15)  # failures older than this are forgotten
    lockout: timedelta = timedelta(minutes=15)  # how long a locked user number or address stays locked
    certificate_header: str = "X-Client-Certificate"  # the verified client certificate, PEM, URL-encoded
    trusted_proxies: tuple[str, ...] = ()  # networks allowed to set that header and X-Forwarded-For (none: nobody)


@dataclass(frozen=True)
class Settings:
    """Everything the integrator needs to know about its deployment."""

    var_dir: Path
    database_url: str
    public_url: str | None = None  # how clients reach us; None: taken from the request's Host header
    limits: EnvelopeLimits = field(default_factory=EnvelopeLimits)
    security: SecurityPolicy = field(default_factory=SecurityPolicy)
    wsdl_dir: Path = PROJECT_ROOT / "wsdl"
    xsd_dir: Path = PROJECT_ROOT / "xsd"
    backend_parallelism: int = 8
    backend_ca_file: Path | None = None  # KRUISPUNT_BACKEND_CA_FILE: https backends' only trust anchors; None: system
    repository_cache_seconds: float = 30.0  # bounded staleness of a worker's copy of the backend list
    circuit: CircuitPolicy = field(default_factory=CircuitPolicy)
    name: str = "kruispunt"  # this integrator's name towards its federation peers
    enterprise_number: str = "0200000043"  # this integrator's own organisation
    operator_insz: str = "85073003328"  # the official named in this integrator's own calls (federation sync)
    max_hops: int = 3  # a forwarded request passes through at most this many integrators
    peer_answer_max_bytes: int = 64 * 1024 * 1024  # a peer's answer (a change-feed page) may be this large
    outbox_interval_seconds: float = 5.0  # how often each worker's forwarder looks for deliveries due (0: never)
    outbox_lease_seconds: float = 120.0  # a deliverer that died is taken over after this long
    proposal_decision_days: float = 30.0  # update proposals undecided for longer are overdue
    log_format: str = "text"  # text or json (KRUISPUNT_LOG_FORMAT), for gunicorn's lines and the application's
    portal: PortalPolicy = field(default_factory=PortalPolicy)  # the officials' portal (integrator/faces/portal)

    @property
    def peer_limits(self) -> EnvelopeLimits:
        """What this integrator accepts from its peers: pages of the change feed are larger than requests."""
        return self.limits.scaled(self.peer_answer_max_bytes)

    @property
    def pki_dir(self) -> Path:
        return self.var_dir / "pki"

    @property
    def trust_anchor_paths(self) -> list[Path]:
        return [self.pki_dir / "ca.crt"]

    @property
    def crl_path(self) -> Path:
        return self.pki_dir / "ca.crl"

    @property
    def citizen_ca_path(self) -> Path:
        """The CA whose personal certificates (the eID's, in the demo services/demo_portal.py's) log officials on."""
        return self.pki_dir / "citizen" / "ca.crt"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """The settings of this environment; a value that cannot be used raises SettingsError naming it."""
        env = os.environ if environ is None else environ
        var_dir = Path(env.get("KRUISPUNT_VAR", PROJECT_ROOT / "var")).resolve()
        url = database_url(env.get(DATABASE_VARIABLE) or f"sqlite:///{var_dir / 'kruispunt.db'}")
        return cls(
            var_dir=var_dir,
            database_url=url,
            public_url=env.get("KRUISPUNT_PUBLIC_URL") or None,
            repository_cache_seconds=number(env, "KRUISPUNT_REPOSITORY_CACHE_SECONDS", 30.0),
            backend_ca_file=certificates_file(env, "KRUISPUNT_BACKEND_CA_FILE"),
            name=env.get("KRUISPUNT_NAME", "kruispunt"),
            enterprise_number=env.get("KRUISPUNT_ENTERPRISE_NUMBER", "0200000043"),
            operator_insz=env.get("KRUISPUNT_OPERATOR_INSZ", "85073003328"),
            max_hops=whole(env, "KRUISPUNT_MAX_HOPS", 3),
            peer_answer_max_bytes=whole(env, "KRUISPUNT_PEER_ANSWER_MAX_BYTES", 64 * 1024 * 1024),
            outbox_interval_seconds=number(env, "KRUISPUNT_OUTBOX_INTERVAL_SECONDS", 5.0),
            outbox_lease_seconds=number(env, "KRUISPUNT_OUTBOX_LEASE_SECONDS", 120.0, positive=True),
            proposal_decision_days=number(env, "KRUISPUNT_PROPOSAL_DECISION_DAYS", 30.0),
            circuit=CircuitPolicy(
                threshold=whole(env, "KRUISPUNT_CIRCUIT_THRESHOLD", 3),
                cooldown=timedelta(seconds=number(env, "KRUISPUNT_CIRCUIT_COOLDOWN_SECONDS", 30.0)),
            ),
            limits=EnvelopeLimits(**{name: whole(env, variable, getattr(EnvelopeLimits, name))
                                     for name, variable in LIMIT_SETTINGS.items()}),
            security=SecurityPolicy(
                max_ttl=timedelta(seconds=number(env, "KRUISPUNT_TIMESTAMP_MAX_TTL_SECONDS", 600.0, positive=True)),
                clock_skew=timedelta(seconds=number(env, "KRUISPUNT_CLOCK_SKEW_SECONDS", 60.0)),
                max_references=whole(env, "KRUISPUNT_MAX_REFERENCES", SecurityPolicy.max_references),
                max_token_chars=whole(env, "KRUISPUNT_MAX_TOKEN_CHARS", SecurityPolicy.max_token_chars),
                max_prefixes=whole(env, "KRUISPUNT_MAX_INCLUSIVE_PREFIXES", SecurityPolicy.max_prefixes, minimum=0),
            ),
            log_format=choice(env, FORMAT_VARIABLE, LOG_FORMATS),
            portal=PortalPolicy(
                cookie_secure=flag(env, "KRUISPUNT_PORTAL_COOKIE_SECURE", True),
                idle_timeout=timedelta(seconds=number(env, "KRUISPUNT_PORTAL_IDLE_SECONDS", 900.0, positive=True)),
                absolute_timeout=timedelta(seconds=number(env, "KRUISPUNT_PORTAL_ABSOLUTE_SECONDS", 28800.0,
                                                          positive=True)),
                user_failures=whole(env, "KRUISPUNT_PORTAL_USER_FAILURES", 5),
                address_failures=whole(env, "KRUISPUNT_PORTAL_ADDRESS_FAILURES", 20),
                failure_window=timedelta(seconds=number(env, "KRUISPUNT_PORTAL_FAILURE_WINDOW_SECONDS", 900.0,
                                                        positive=True)),
                lockout=timedelta(seconds=number(env, "KRUISPUNT_PORTAL_LOCKOUT_SECONDS", 900.0, positive=True)),
                certificate_header=header_name(env, "KRUISPUNT_PORTAL_CERTIFICATE_HEADER",
                                               PortalPolicy.certificate_header),
                trusted_proxies=networks(env, "KRUISPUNT_PORTAL_TRUSTED_PROXIES"),
            ),
        )


@dataclass(frozen=True)
class ServerSettings:
    """What gunicorn.conf.py reads from the environment, checked the same way."""

    bind: str = "127.0.0.1:8080"
    workers: int = 2
    threads: int = 8
    timeout: int = 60
    max_requests: int = 0
    access_log: str | None = "-"
    forwarded_allow_ips: str = "127.0.0.1"
    control_socket: str | None = None  # None: one per master, under $KRUISPUNT_VAR/run, named after its bind

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServerSettings:
        env = os.environ if environ is None else environ
        return cls(
            bind=env.get("KRUISPUNT_BIND") or cls.bind,
            workers=whole(env, "KRUISPUNT_WORKERS", cls.workers),
            threads=whole(env, "KRUISPUNT_THREADS", cls.threads),
            timeout=whole(env, "KRUISPUNT_WORKER_TIMEOUT", cls.timeout),
            max_requests=whole(env, "KRUISPUNT_MAX_REQUESTS", cls.max_requests, minimum=0),
            access_log=env.get("KRUISPUNT_ACCESS_LOG", "-") or None,
            forwarded_allow_ips=env.get("KRUISPUNT_FORWARDED_ALLOW_IPS", cls.forwarded_allow_ips),
            control_socket=env.get("KRUISPUNT_CONTROL_SOCKET") or None,
        )


def control_socket_path(var_dir: Path, bind: list[str] | str) -> str:
    """Where the control socket of the gunicorn master bound to `bind` lives: $KRUISPUNT_VAR/run/gunicorn-<bind>.ctl,
    or, if that path is too long for a Unix socket, a name of its own in the temporary directory."""
    binds = [bind] if isinstance(bind, str) else list(bind)
    name = re.sub(r"[^A-Za-z0-9.]+", "-", "_".join(binds)).strip("-") or "default"
    path = var_dir / "run" / f"gunicorn-{name}.ctl"
    if len(os.fsencode(path)) < 100:  # sun_path holds 108 bytes on Linux, 104 on the BSDs
        return str(path)
    return str(Path(tempfile.gettempdir()) / f"kruispunt-{hashlib.sha256(os.fsencode(path)).hexdigest()[:16]}.ctl")
