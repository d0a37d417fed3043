"""Signed request pools of the benches: envelopes signed as the product's clients sign them, made in parallel
processes before the timed part (a wsu:Timestamp lives 5 minutes; each signed request is sent at most once where
the receiver refuses replays)."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from servers import child_signals

KEYS: dict[str, Any] = {}  # in a pool process: label -> SigningKey


def _init(paths: dict[str, tuple[str, str]]) -> None:
    child_signals()
    from integrator.pki import Identity
    from integrator.wssec.sign import SigningKey

    for label, (cert, key) in paths.items():
        KEYS[label] = SigningKey.from_identity(Identity(label, Path(cert), Path(key)))


class SignerPool:
    """Processes that hold the given keys (label -> (certificate, key) files) in KEYS and map a module-level
    signing function over specs; a context manager, or close() it."""

    def __init__(self, keys: dict[str, tuple[Path, Path]], processes: int) -> None:
        self.processes = processes
        self.pool = multiprocessing.get_context("fork").Pool(
            processes, initializer=_init, initargs=({k: (str(c), str(p)) for k, (c, p) in keys.items()},))

    def map(self, sign: Callable[[Any], bytes], specs: Sequence[Any]) -> list[bytes]:
        count = len(specs)
        return self.pool.map(sign, specs, chunksize=max(1, min(64, count // (4 * self.processes) or 1)))

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()

    def __enter__(self) -> SignerPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.pool.terminate()


def signed_envelope(payload: Any, key: Any, official: str | None = None) -> Any:
    """A SOAP envelope around payload, signed with key (Body + Timestamp); with official also a kp:Caller header
    (demo purpose PURPOSE_TAX, a new MessageId), signed too, as tests/support.py's Request(...).signed() does."""
    from kruispunt_client.xml import build

    from integrator.namespaces import KP, q
    from integrator.wssec.sign import new_envelope, sign_envelope
    from services.demo_organisations import PURPOSE_TAX

    root, header, body = new_envelope()
    body.append(payload)
    if official is None:
        sign_envelope(root, key, now=datetime.now(UTC))
    else:
        caller = build(q(KP, "Caller"), {"Official": official, "Purpose": PURPOSE_TAX, "MessageId": str(uuid.uuid4())})
        header.append(caller)
        sign_envelope(root, key, headers=[caller], now=datetime.now(UTC))
    return root
