"""gunicorn entry point of one reference backend: KRUISPUNT_BACKEND names which one."""

from __future__ import annotations

import os
from pathlib import Path

from integrator.config import Settings
from integrator.pki import Identity, fingerprint
from integrator.wssec.sign import SigningKey
from integrator.wssec.trust import TrustStore
from services.backends.catalogue import application, backend
from services.backends.secured import SecuredBackend


def create_app(name: str | None = None, settings: Settings | None = None) -> SecuredBackend:
    settings = settings or Settings.from_env()
    spec = backend(name or os.environ["KRUISPUNT_BACKEND"])
    pki = settings.pki_dir
    key = SigningKey.from_identity(Identity(f"backend-{spec.name}", pki / f"backend-{spec.name}.crt",
                                            pki / f"backend-{spec.name}.key"))
    trust = TrustStore.from_files(settings.trust_anchor_paths, settings.crl_path)
    integrator_cert = Identity("integrator", pki / "integrator.crt", pki / "integrator.key").load_cert()
    state_dir = Path(os.environ.get("KRUISPUNT_BACKEND_STATE") or settings.var_dir / "backends")
    state_dir.mkdir(parents=True, exist_ok=True)
    return SecuredBackend(application(spec, state_dir), key, trust, {fingerprint(integrator_cert)})

