"""Fixtures the other stacks' tool tests share: the sample signer's keys and the unsigned lookup they sign."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.interop.common import Keys, sample_keys, unsigned_lookup


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return sample_keys(tmp_path)


@pytest.fixture
def unsigned() -> bytes:
    return unsigned_lookup("75041214531", "48021420212", date(2026, 1, 1))
