"""What every other stack's signer and verifier shares: the keys it signs with, the unsigned request it signs,
and the configurations it knows. Each stack lives in a folder of its own (java/, node/, xmlsec/) with a module
that exposes sign() and, where it can, verify()."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
KP = "urn:kruispunt:common:v1"
TAX_NS = "urn:kruispunt:TaxExemptionStatus:v1"
HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "samples"
SAMPLE_PKI = HERE / "pki"


@dataclass(frozen=True)
class Keys:
    """PEM files of one signer, the CA that issued it, and a folder where a stack may keep keystores."""

    cert_pem: Path  # the signer's certificate (PEM)
    key_pem: Path  # its private key (PEM, unencrypted)
    ca_pem: Path  # the trust anchor that issued it (PEM)
    workdir: Path  # scratch space for this signer: keystores, templates


@dataclass(frozen=True)
class Signed:
    """One message a stack signed: which stack, which configuration, the bytes as the stack wrote them."""

    stack: str
    config: str
    data: bytes


def unsigned_lookup(official: str, insz: str, on: date, message_id: str | None = None) -> bytes:
    """A GetTaxExemptionStatuses request with a kp:Caller header, no wsse:Security and no Ids: what a client
    application hands to its WS-Security stack."""
    message_id = message_id or str(uuid.uuid4())
    return (
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}">'
        f'<soapenv:Header><kp:Caller xmlns:kp="{KP}"><kp:Official>{official}</kp:Official>'
        f"<kp:Purpose>MUNICIPAL_TAX_EXEMPTION</kp:Purpose><kp:MessageId>{message_id}</kp:MessageId>"
        f"</kp:Caller></soapenv:Header>"
        f'<soapenv:Body><tax:GetTaxExemptionStatusesRequest xmlns:tax="{TAX_NS}"><tax:Insz>{insz}</tax:Insz>'
        f"<tax:ReferenceDate>{on.isoformat()}</tax:ReferenceDate></tax:GetTaxExemptionStatusesRequest>"
        f"</soapenv:Body></soapenv:Envelope>"
    ).encode()


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))


def sample_keys(workdir: Path) -> Keys:
    """The fixed PKI the stored samples are signed with (made once, kept under tests/interop/pki/): a CA and
    one signer valid for twenty years, so the samples keep verifying cryptographically."""
    if not (SAMPLE_PKI / "signer.crt").exists():
        make_sample_pki(SAMPLE_PKI)
    return Keys(SAMPLE_PKI / "signer.crt", SAMPLE_PKI / "signer.key", SAMPLE_PKI / "ca.crt", workdir)


def make_sample_pki(directory: Path) -> None:
    import datetime as dt

    from integrator.pki import create_ca, issue

    directory.mkdir(parents=True, exist_ok=True)
    ca = create_ca(directory, "kruispunt interop samples CA", valid_days=20 * 366)
    now = dt.datetime.now(dt.UTC)
    issue(ca, directory, "signer", common_name="Gemeente Kruisdorp (interop samples)", serial_number="0207123407",
          not_after=now + dt.timedelta(days=20 * 365))


def require(stack: str, problem: str | None) -> None:
    """Fail when a stack the tests need is not installed (.ci/tools installs them), or skip where
    KRUISPUNT_INTEROP_OPTIONAL is set."""
    if problem is None:
        return
    if os.environ.get("KRUISPUNT_INTEROP_OPTIONAL"):
        pytest.skip(f"{stack}: {problem}")
    pytest.fail(f"{stack} is not available: {problem} (.ci/tools installs it; KRUISPUNT_INTEROP_OPTIONAL=1 skips "
                "these tests)")
