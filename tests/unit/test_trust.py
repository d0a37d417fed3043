"""Trust decisions: anchors, validity, usage, and a CRL that is re-read when it changes and fails closed."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from integrator.faults import (
    CertificateExpired,
    CertificateRevoked,
    CertificateUntrusted,
    CertificateUsage,
)
from integrator.pki import create_ca, issue, write_crl
from integrator.wssec import trust as trust_module
from integrator.wssec.trust import TrustStore

NOW = datetime.now(UTC)


@pytest.fixture
def ca(tmp_path: Path):  # type: ignore[no-untyped-def]
    return create_ca(tmp_path / "ca")


def store(ca, tmp_path: Path, revoked=()) -> TrustStore:  # type: ignore[no-untyped-def]
    crl = write_crl(ca, tmp_path / "ca.crl", list(revoked))
    return TrustStore.from_files([ca.cert_path], crl)


def test_certificate_of_the_anchor_is_trusted(ca, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store(ca, tmp_path).check(issue(ca, tmp_path, "org", common_name="org").load_cert(), NOW)


def test_same_name_other_key_is_untrusted(ca, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rogue = create_ca(tmp_path / "rogue", common_name="kruispunt demo CA")
    cert = issue(rogue, tmp_path, "evil", common_name="org").load_cert()
    with pytest.raises(CertificateUntrusted):
        store(ca, tmp_path).check(cert, NOW)


def test_expired_and_not_yet_valid_certificates_are_refused(ca, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trust = store(ca, tmp_path)
    old = issue(ca, tmp_path, "old", common_name="o", not_before=NOW - timedelta(days=9),
                not_after=NOW - timedelta(days=1))
    new = issue(ca, tmp_path, "new", common_name="n", not_before=NOW + timedelta(days=1))
    for identity in (old, new):
        with pytest.raises(CertificateExpired):
            trust.check(identity.load_cert(), NOW)


def test_certificate_without_signature_usage_is_refused(ca, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert = issue(ca, tmp_path, "enc", common_name="e", digital_signature=False).load_cert()
    with pytest.raises(CertificateUsage):
        store(ca, tmp_path).check(cert, NOW)


def test_revocation_takes_effect_when_the_crl_file_changes(ca, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(trust_module, "CRL_RECHECK_SECONDS", 0.0)
    cert = issue(ca, tmp_path, "org", common_name="org").load_cert()
    trust = store(ca, tmp_path)
    trust.check(cert, NOW)  # trusted, and the verdict is cached
    time.sleep(0.01)
    write_crl(ca, tmp_path / "ca.crl", [cert])
    os.utime(tmp_path / "ca.crl", (time.time() + 5, time.time() + 5))
    with pytest.raises(CertificateRevoked):
        trust.check(cert, NOW)


def test_missing_crl_fails_closed(ca, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trust = TrustStore.from_files([ca.cert_path], tmp_path / "no-such.crl")
    with pytest.raises(ValueError, match="missing"):
        trust.check(issue(ca, tmp_path, "org", common_name="org").load_cert(), NOW)


def test_crl_not_signed_by_an_anchor_is_rejected(ca, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rogue = create_ca(tmp_path / "rogue", common_name="kruispunt demo CA")
    write_crl(rogue, tmp_path / "ca.crl", [])
    trust = TrustStore.from_files([ca.cert_path], tmp_path / "ca.crl")
    with pytest.raises(ValueError, match="not signed"):
        trust.crl_next_update()
