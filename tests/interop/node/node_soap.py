"""npm ``soap`` (WSSecurityCert) and plain ``xml-crypto`` as node.js vendors sign with them: a thin wrapper
around sign.js, which signs a whole batch of envelopes in one node process."""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.interop.common import Keys

STACK = "node-soap"
HERE = Path(__file__).resolve().parent
SIGNER = HERE / "sign.js"
LOCKFILE = HERE / "package-lock.json"
NODE_MODULES = HERE / "node_modules"
MIN_NODE = (20, 19)  # soap 1.13.0 declares engines.node >=20.19.0

_EXC = "'http://www.w3.org/2001/10/xml-exc-c14n#'"
_SHA256 = "'http://www.w3.org/2001/04/xmlenc#sha256'"
_RSA_SHA256 = "'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256'"
_XC = "new SignedXml({privateKey, signatureAlgorithm: " + _RSA_SHA256 + ", canonicalizationAlgorithm: " + _EXC

CONFIGS: dict[str, str] = {
    "wssecuritycert-default": "new WSSecurityCert(privateKey, publicCert, '', {})",
    "wssecuritycert-caller": "new WSSecurityCert(privateKey, publicCert, '', {additionalReferences: ['kp:Caller']})",
    "wssecuritycert-exc-c14n-only": (
        "new WSSecurityCert(privateKey, publicCert, '', {additionalReferences: ['kp:Caller'], "
        f"signatureTransformations: [{_EXC}]}})"
    ),
    "wssecuritycert-exc-c14n-only-ttl300": (
        "new WSSecurityCert(privateKey, publicCert, '', {additionalReferences: ['kp:Caller', 'Timestamp'], "
        f"signatureTransformations: [{_EXC}], hasTimeStamp: false, "
        "appendElement: `<Timestamp xmlns=\"...wssecurity-utility-1.0.xsd\"><Created>${now}</Created>"
        "<Expires>${now + 300 s}</Expires></Timestamp>`})"
    ),
    "wssecuritycert-caller-explicit-rsa-sha256": (
        "new WSSecurityCert(privateKey, publicCert, '', {additionalReferences: ['kp:Caller'], "
        f"signatureAlgorithm: {_RSA_SHA256}, digestAlgorithm: {_SHA256}}})"
    ),
    "wssecuritycert-caller-wsu-id": (
        "new WSSecurityCert(privateKey, publicCert, '', {additionalReferences: ['kp:Caller'], "
        "signerOptions: {idMode: 'wssecurity'}})"
    ),
    "wssecuritycert-caller-ds-prefix": (
        "new WSSecurityCert(privateKey, publicCert, '', {additionalReferences: ['kp:Caller'], "
        "signerOptions: {prefix: 'ds', attrs: {Id: 'Signature'}}})"
    ),
    "xml-crypto-id": (
        f"{_XC}, getKeyInfoContent: () => '<wsse:SecurityTokenReference><wsse:Reference URI=\"#X509-…\"/>…'}}); "
        "addReference({xpath: Body | wsu:Timestamp | kp:Caller, transforms: [exc-c14n], digestAlgorithm: sha256}); "
        "computeSignature(xml, {existingPrefixes: {wsse, wsu}, location: {reference: wsse:Security, action: 'append'}})"
    ),
    "xml-crypto-wsu-id": (
        f"{_XC}, idMode: 'wssecurity', getKeyInfoContent: …}}); otherwise as xml-crypto-id (Ids become wsu:Id)"
    ),
}

INSTALL_TIMEOUT = 300.0
SIGN_TIMEOUT_BASE = 60.0
SIGN_TIMEOUT_PER_JOB = 2.0


class NodeSignError(RuntimeError):
    """sign.js (or npm) failed; the message carries node's stderr."""


def _node_version() -> tuple[int, ...] | None:
    node = shutil.which("node")
    if node is None:
        return None
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    match = re.match(r"v(\d+)\.(\d+)\.(\d+)", out.strip())
    return tuple(int(p) for p in match.groups()) if match else None


def available() -> str | None:
    """None when node (recent enough for soap) and npm are on PATH, else a sentence saying what is missing."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found on PATH; install node.js >= 20.19 with npm."
    version = _node_version()
    if version is None:
        return "node is on PATH but `node --version` did not answer with a version."
    if version[:2] < MIN_NODE:
        return f"node {'.'.join(map(str, version))} is too old; soap 1.13.0 needs node >= 20.19."
    return None


def _installed() -> bool:
    marker = NODE_MODULES / ".package-lock.json"  # npm writes it last, on every install
    return marker.exists() and marker.stat().st_mtime >= LOCKFILE.stat().st_mtime


def ensure_installed() -> None:
    """Run ``npm ci`` in this folder when node_modules is missing or older than package-lock.json."""
    if _installed():
        return
    problem = available()
    if problem:
        raise NodeSignError(problem)
    with open(HERE / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent test workers install once
        if _installed():
            return
        try:
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True,
                timeout=INSTALL_TIMEOUT, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise NodeSignError(f"npm ci did not finish within {INSTALL_TIMEOUT:.0f} s in {HERE}") from exc
        if done.returncode != 0:
            raise NodeSignError(f"npm ci failed ({done.returncode}) in {HERE}:\n{done.stderr.strip()}")


def sign(jobs: list[tuple[str, bytes]], keys: Keys) -> list[bytes]:
    """Sign each (config, unsigned envelope) with one node process for the whole batch; outputs in job order."""
    unknown = sorted({config for config, _ in jobs} - CONFIGS.keys())
    if unknown:
        raise ValueError(f"unknown {STACK} config(s) {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    if not jobs:
        return []
    ensure_installed()
    keys.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{STACK}-", dir=keys.workdir) as scratch:
        folder = Path(scratch)
        batch: list[dict[str, str]] = []
        for i, (config, data) in enumerate(jobs):
            source, target = folder / f"{i:03d}-{config}.in.xml", folder / f"{i:03d}-{config}.out.xml"
            source.write_bytes(data)
            batch.append({"config": config, "input": str(source), "output": str(target)})
        request = {"key": str(keys.key_pem), "cert": str(keys.cert_pem), "jobs": batch}
        timeout = SIGN_TIMEOUT_BASE + SIGN_TIMEOUT_PER_JOB * len(jobs)
        # soap 1.13 calls xml-crypto 6.3's deprecated getOriginalXmlWithIds(): keep that warning off stderr.
        try:
            done = subprocess.run(
                ["node", "--no-deprecation", str(SIGNER)], input=json.dumps(request), cwd=HERE, capture_output=True,
                text=True, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            raise NodeSignError(f"sign.js did not finish {len(jobs)} job(s) within {timeout:.0f} s:\n{stderr}") from exc
        if done.returncode != 0:
            raise NodeSignError(f"sign.js failed ({done.returncode}):\n{done.stderr.strip()}")
        return [Path(job["output"]).read_bytes() for job in batch]


__all__ = ["CONFIGS", "STACK", "NodeSignError", "available", "ensure_installed", "sign"]
