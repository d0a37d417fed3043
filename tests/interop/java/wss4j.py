"""Apache WSS4J 1.6 (Debian's wss4j.jar on Santuario xmlsec.jar) as a signing and verifying stack.

The Java side is one source file, Wss4jTool.java beside this module, compiled on first use into a cache folder
outside the repository (keyed by the hash of the source and the jar paths) and run once per batch: one JVM start
signs every job of a sign() call."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.interop.common import Keys

STACK = "wss4j"
HERE = Path(__file__).resolve().parent
SOURCE = HERE / "Wss4jTool.java"
MAIN_CLASS = "Wss4jTool"
JAR_DIR = Path("/usr/share/java")
JARS = tuple(JAR_DIR / name for name in
             ("wss4j.jar", "xmlsec.jar", "commons-logging.jar", "slf4j-api.jar", "slf4j-nop.jar"))
JVM_OPTIONS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto")
KEY_ALIAS = "signer"
# A throwaway keystore around test keys whose PEM private key is already unencrypted on disk.
KEYSTORE_PASSWORD = "kruispunt-interop"
COMPILE_TIMEOUT = 180.0
RUN_TIMEOUT = 60.0
PER_JOB_TIMEOUT = 10.0

COMMON_SETTINGS = ("action=Timestamp Signature, timeToLive=300, signatureAlgorithm=xmldsig-more#rsa-sha256, "
           "signatureDigestAlgorithm=xmlenc#sha256, signatureC14nAlgorithm=xml-exc-c14n#, "
           "signatureParts={}{soapenv}Body;{}{wsu}Timestamp;{}{urn:kruispunt:common:v1}Caller")
CONFIGS: dict[str, str] = {
    "issuer-serial": "signatureKeyIdentifier=IssuerSerial (WSS4J's default: ds:X509IssuerSerial in the STR, no BST)",
    "bst-direct": "signatureKeyIdentifier=DirectReference (wsse:BinarySecurityToken X509v3 + wsse:Reference)",
    "ski": "signatureKeyIdentifier=SKIKeyIdentifier (wsse:KeyIdentifier #X509SubjectKeyIdentifier, no BST)",
    "thumbprint": "signatureKeyIdentifier=Thumbprint (wsse:KeyIdentifier #ThumbprintSHA1, no BST)",
    "bst-direct-no-inclusive-prefixes": "signatureKeyIdentifier=DirectReference, isBSPCompliant=false "
                                        "(WSSConfig.setWsiBSPCompliant(false): no ec:InclusiveNamespaces)",
    "x509-key-identifier": "signatureKeyIdentifier=X509KeyIdentifier (the certificate inline in wsse:KeyIdentifier "
                           "#X509v3, no BST)",
    "bst-pkipath": "signatureKeyIdentifier=DirectReference, useSingleCertificate=false (BST #X509PKIPathv1 with "
                   "the chain signer+CA, wsse11:TokenType on the STR)",
    "bst-direct-tokentype": "signatureKeyIdentifier=DirectReference + wsse11:TokenType=#X509v3 on the STR (WSS 1.1 "
                            "style; no WSS4J 1.6 option: SecurityTokenReference.addTokenType() after prepare())",
}


class Wss4jError(RuntimeError):
    """The Java tool could not be built or run, or answered something unexpected (message has its stderr)."""


@dataclass(frozen=True)
class Verdict:
    """What the Java verifier concluded: signed holds the {ns}local names of the elements the signature covers."""

    ok: bool
    signed: tuple[str, ...]
    subject: str | None
    error: str | None


def available() -> str | None:
    """None when java, javac and the jars are there; otherwise a sentence saying what is missing."""
    missing = [tool for tool in ("java", "javac") if shutil.which(tool) is None]
    missing += [str(jar) for jar in JARS if not jar.exists()]
    if missing:
        return ("the WSS4J stack needs a JDK (java, javac) and Debian's libwss4j-java, libxml-security-java, "
                f"libcommons-logging-java and libslf4j-java jars; missing: {', '.join(missing)}")
    return None


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kruispunt-interop" / "java"


def _classpath(classes: Path) -> str:
    return os.pathsep.join([str(classes), *map(str, JARS)])


def _run(command: list[str], *, timeout: float, stdin: bytes | None = None,
         what: str) -> subprocess.CompletedProcess[bytes]:
    """Run a command with a timeout; Wss4jError (with what it wrote) when it could not finish."""
    try:
        return subprocess.run(command, input=stdin if stdin is not None else b"", capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        err = (exc.stderr or b"").decode(errors="replace")
        raise Wss4jError(f"{what} did not finish in {timeout:.0f} s; stderr:\n{err}") from None
    except OSError as exc:
        raise Wss4jError(f"{what} could not start: {exc}") from None


def build() -> Path:
    """Compile Wss4jTool.java once per source hash; return the folder of its classes."""
    problem = available()
    if problem:
        raise Wss4jError(problem)
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + "\0".join(map(str, JARS)).encode()).hexdigest()[:16]
    classes = _cache_root() / digest
    if (classes / f"{MAIN_CLASS}.class").exists():
        return classes
    classes.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{digest}.", dir=classes.parent))
    try:
        done = _run(["javac", "--release", "17", "-encoding", "UTF-8", "-Xlint:all,-path", "-d", str(staging),
                     "-cp", os.pathsep.join(map(str, JARS)), str(SOURCE)],
                    timeout=COMPILE_TIMEOUT, what="javac")
        if done.returncode != 0:
            raise Wss4jError(f"javac failed ({done.returncode}):\n{done.stderr.decode(errors='replace')}")
        try:
            staging.rename(classes)  # atomic; another process may have won the race, which is as good
        except OSError:
            if not (classes / f"{MAIN_CLASS}.class").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return classes


def _java(mode: str, argument: Path, stdin: bytes, timeout: float) -> subprocess.CompletedProcess[bytes]:
    classes = build()
    command = ["java", *JVM_OPTIONS, "-cp", _classpath(classes), MAIN_CLASS, mode, str(argument)]
    return _run(command, stdin=stdin, timeout=timeout, what=f"Wss4jTool {mode}")


def _replace(path: Path, data: bytes) -> None:
    """Write a file atomically (a parallel sign() on the same workdir never sees half a keystore)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(name, path)


def keystore(keys: Keys) -> Path:
    """Write the signer's PKCS12 keystore (key, certificate, CA in the chain) and the Merlin crypto properties
    a WSS4J client would use for it under keys.workdir/wss4j; return the properties file."""
    folder = keys.workdir / "wss4j"
    folder.mkdir(parents=True, exist_ok=True)
    key = serialization.load_pem_private_key(keys.key_pem.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TypeError(f"{keys.key_pem} holds a {type(key).__name__}, not an RSA or EC private key")
    cert = x509.load_pem_x509_certificate(keys.cert_pem.read_bytes())
    cas = x509.load_pem_x509_certificates(keys.ca_pem.read_bytes())
    p12 = pkcs12.serialize_key_and_certificates(
        KEY_ALIAS.encode(), key, cert, cas,
        serialization.BestAvailableEncryption(KEYSTORE_PASSWORD.encode()))
    store = folder / "signer.p12"
    _replace(store, p12)
    prefix = "org.apache.ws.security.crypto.merlin"
    properties = "\n".join([
        "org.apache.ws.security.crypto.provider=org.apache.ws.security.components.crypto.Merlin",
        f"{prefix}.keystore.type=pkcs12",
        f"{prefix}.keystore.file={store}",
        f"{prefix}.keystore.password={KEYSTORE_PASSWORD}",
        f"{prefix}.keystore.alias={KEY_ALIAS}",
        f"{prefix}.keystore.private.password={KEYSTORE_PASSWORD}",
        "",
    ])
    crypto = folder / "crypto.properties"
    _replace(crypto, properties.encode())
    return crypto


def sign(jobs: list[tuple[str, bytes]], keys: Keys) -> list[bytes]:
    """Sign each (config, unsigned SOAP 1.1 envelope) with WSS4J in one JVM run; the signed bytes in job order."""
    unknown = sorted({config for config, _ in jobs} - CONFIGS.keys())
    if unknown:
        raise ValueError(f"unknown WSS4J config(s) {unknown}; known: {sorted(CONFIGS)}")
    if not jobs:
        return []
    crypto = keystore(keys)
    with tempfile.TemporaryDirectory(prefix="jobs.", dir=crypto.parent) as scratch:
        lines, outputs = [], []
        for n, (config, data) in enumerate(jobs):
            source, target = Path(scratch) / f"{n}.in.xml", Path(scratch) / f"{n}.{config}.xml"
            source.write_bytes(data)
            lines.append(f"{config}\t{source}\t{target}\n")
            outputs.append(target)
        done = _java("sign", crypto, "".join(lines).encode(), RUN_TIMEOUT + PER_JOB_TIMEOUT * len(jobs))
        stderr = done.stderr.decode(errors="replace")
        if done.returncode != 0:
            raise Wss4jError(f"Wss4jTool sign failed ({done.returncode}):\n{stderr}")
        reported = [line for line in done.stdout.decode().splitlines() if line.startswith("signed\t")]
        if len(reported) != len(jobs) or not all(path.exists() for path in outputs):
            raise Wss4jError(f"Wss4jTool sign reported {len(reported)} of {len(jobs)} jobs:\n{stderr}")
        return [path.read_bytes() for path in outputs]


def _verdict(mode: str, argument: Path, data: bytes) -> Verdict:
    done = _java(mode, argument, data, RUN_TIMEOUT)
    stderr = done.stderr.decode(errors="replace")
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode not in (0, 1) or not lines:
        raise Wss4jError(f"Wss4jTool {mode} failed ({done.returncode}):\n{stderr}")
    try:
        answer = json.loads(lines[-1])
    except json.JSONDecodeError:
        raise Wss4jError(f"Wss4jTool {mode} answered no JSON: {lines[-1]!r}\n{stderr}") from None
    verdict = Verdict(ok=bool(answer["ok"]), signed=tuple(answer["signed"]), subject=answer["subject"],
                      error=answer["error"])
    if verdict.ok != (done.returncode == 0):
        raise Wss4jError(f"Wss4jTool {mode} exit status {done.returncode} contradicts its answer {answer}")
    return verdict


def verify(data: bytes, ca_pem: Path) -> Verdict:
    """Process a signed SOAP envelope with WSSecurityEngine, trusting the CA certificate(s) of ca_pem."""
    return _verdict("verify", ca_pem, data)


def verify_enveloped(data: bytes, cert_pem: Path) -> Verdict:
    """Check an enveloped XML-DSig signature (not WS-Security) with Santuario against the certificate of cert_pem."""
    return _verdict("verify-enveloped", cert_pem, data)
