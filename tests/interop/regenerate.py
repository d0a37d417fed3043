"""Regenerate the stored interoperability samples: every configuration of every other stack signs the same
unsigned lookup with the fixed sample PKI (tests/interop/pki/), written to tests/interop/samples/<stack>/<config>.xml
exactly as the stack wrote it.

    .venv/bin/python -m tests.interop.regenerate [stack ...]

A stack that is not installed is reported and left as it was (its README line says what it needs)."""

from __future__ import annotations

import sys
import tempfile
from datetime import date
from pathlib import Path

from tests.interop.common import SAMPLES, sample_keys, unsigned_lookup
from tests.interop.stacks import STACKS

OFFICIAL, PERSON, ON = "75041214531", "48021420212", date(2026, 1, 1)
MESSAGE_ID = "00000000-0000-4000-8000-000000000008"  # fixed, so a regenerated sample differs only where it must


def regenerate(names: list[str]) -> int:
    missing = 0
    with tempfile.TemporaryDirectory() as work:
        keys = sample_keys(Path(work))
        unsigned = unsigned_lookup(OFFICIAL, PERSON, ON, MESSAGE_ID)
        for stack in STACKS:
            if names and stack.STACK not in names:
                continue
            problem = stack.available()
            if problem is not None:
                print(f"{stack.STACK}: not regenerated: {problem}")
                missing += 1
                continue
            if hasattr(stack, "ensure_installed"):
                stack.ensure_installed()
            configs = list(stack.CONFIGS)
            folder = SAMPLES / stack.STACK
            folder.mkdir(parents=True, exist_ok=True)
            for config, signed in zip(configs, stack.sign([(c, unsigned) for c in configs], keys), strict=True):
                (folder / f"{config}.xml").write_bytes(signed)
            print(f"{stack.STACK}: {len(configs)} samples in {folder.relative_to(SAMPLES.parent.parent.parent)}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(regenerate(sys.argv[1:]))
