"""Settings: one small frozen object with safe defaults, read from the environment once and passed in."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from integrator.circuit import CircuitPolicy
from integrator.envelope import EnvelopeLimits
from integrator.wssec.verify import SecurityPolicy

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LIMIT_SETTINGS = {  # EnvelopeLimits field -> the environment variable that sets it
    "max_bytes": "KRUISPUNT_MAX_REQUEST_BYTES", "max_depth": "KRUISPUNT_MAX_DEPTH",
    "max_elements": "KRUISPUNT_MAX_ELEMENTS", "max_attributes": "KRUISPUNT_MAX_ATTRIBUTES",
    "max_attributes_per_element": "KRUISPUNT_MAX_ATTRIBUTES_PER_ELEMENT",
    "max_namespaces": "KRUISPUNT_MAX_NAMESPACES", "max_namespaces_in_scope": "KRUISPUNT_MAX_NAMESPACES_IN_SCOPE",
    "max_text_chars": "KRUISPUNT_MAX_TEXT_CHARS", "max_tag_bytes": "KRUISPUNT_MAX_TAG_BYTES",
    "max_ids": "KRUISPUNT_MAX_IDS",
}


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

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        var_dir = Path(env.get("KRUISPUNT_VAR", PROJECT_ROOT / "var")).resolve()
        url = env.get("KRUISPUNT_DATABASE_URL") or f"sqlite:///{var_dir / 'kruispunt.db'}"
        return cls(
            var_dir=var_dir,
            database_url=url,
            public_url=env.get("KRUISPUNT_PUBLIC_URL") or None,
            repository_cache_seconds=float(env.get("KRUISPUNT_REPOSITORY_CACHE_SECONDS", "30")),
            name=env.get("KRUISPUNT_NAME", "kruispunt"),
            enterprise_number=env.get("KRUISPUNT_ENTERPRISE_NUMBER", "0200000043"),
            operator_insz=env.get("KRUISPUNT_OPERATOR_INSZ", "85073003328"),
            max_hops=int(env.get("KRUISPUNT_MAX_HOPS", "3")),
            peer_answer_max_bytes=int(env.get("KRUISPUNT_PEER_ANSWER_MAX_BYTES", str(64 * 1024 * 1024))),
            outbox_interval_seconds=float(env.get("KRUISPUNT_OUTBOX_INTERVAL_SECONDS", "5")),
            outbox_lease_seconds=float(env.get("KRUISPUNT_OUTBOX_LEASE_SECONDS", "120")),
            proposal_decision_days=float(env.get("KRUISPUNT_PROPOSAL_DECISION_DAYS", "30")),
            circuit=CircuitPolicy(
                threshold=int(env.get("KRUISPUNT_CIRCUIT_THRESHOLD", "3")),
                cooldown=timedelta(seconds=float(env.get("KRUISPUNT_CIRCUIT_COOLDOWN_SECONDS", "30"))),
            ),
            limits=EnvelopeLimits(**{name: int(env.get(variable, getattr(EnvelopeLimits, name)))
                                     for name, variable in LIMIT_SETTINGS.items()}),
            security=SecurityPolicy(
                max_ttl=timedelta(seconds=float(env.get("KRUISPUNT_TIMESTAMP_MAX_TTL_SECONDS", "600"))),
                clock_skew=timedelta(seconds=float(env.get("KRUISPUNT_CLOCK_SKEW_SECONDS", "60"))),
                max_references=int(env.get("KRUISPUNT_MAX_REFERENCES", SecurityPolicy.max_references)),
                max_token_chars=int(env.get("KRUISPUNT_MAX_TOKEN_CHARS", SecurityPolicy.max_token_chars)),
                max_prefixes=int(env.get("KRUISPUNT_MAX_INCLUSIVE_PREFIXES", SecurityPolicy.max_prefixes)),
            ),
        )
