"""Signing from many threads at once, as every gunicorn gthread worker does: every signature made is whole and
verifies (the signing templates are copied per thread, since libxml2's name dictionaries belong to one thread)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kruispunt_client.xml import build
from lxml import etree

from integrator.envelope import Envelope
from integrator.namespaces import KP, q
from integrator.pki import create_ca, issue
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import SecurityPolicy, verify_envelope


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningKey, TrustStore]:
    directory: Path = tmp_path_factory.mktemp("threads")
    ca = create_ca(directory)
    key = SigningKey.from_identity(issue(ca, directory, "signer", common_name="Testgemeente"))
    return key, TrustStore.from_files([ca.cert_path], None)


def sign_and_read_back(key: SigningKey, trust: TrustStore, index: int) -> str:
    root, header, body = new_envelope()
    answer = build(q(KP, "Answer"), {"Ticket": f"KP-{index}", "Received": "2026-12-01T00:00:00Z",
                                     "Answered": "2026-12-01T00:00:00Z"})
    header.append(answer)
    body.append(build("{urn:x}Answer", {"Value": str(index)}))
    sign_envelope(root, key, headers=[answer], now=datetime.now(UTC))
    parsed = etree.fromstring(etree.tostring(root))
    verified = verify_envelope(Envelope.of(parsed), trust, SecurityPolicy(), datetime.now(UTC))
    assert verified.payload is not None and verified.payload.findtext("{urn:x}Value") == str(index)
    return etree.tostring(parsed).decode()


def test_signatures_made_in_eight_threads_at_once_are_each_whole(signer: tuple[SigningKey, TrustStore]) -> None:
    key, trust = signer
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda i: sign_and_read_back(key, trust, i), range(800)))
    assert len(made) == 800
    assert all("ds:SignedInfo" in m and "wsse:BinarySecurityToken" in m for m in made)
