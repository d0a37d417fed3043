#!/usr/bin/env python3
"""CPU of the request path's WS-Security next to its floor, side by side in one run (see bench/README.md).

Verification, per message: the request path's parse_envelope + check_understood + verify_envelope (bounded parse,
Id index, profile checks, key reference, trust, digests, RSA) next to its floor, timed with lxml and `cryptography`
alone on the same bytes: etree.fromstring, exclusive C14N of each referenced element and of SignedInfo (with the
message's own PrefixLists), their SHA digests, one RSA verification. Beside them, where installed: signxml's
XMLVerifier (the request path before issue 8) and python-xmlsec (libxmlsec1), the other candidate.

Signing: integrator.wssec.sign.sign_envelope + serialisation of a fresh answer-sized envelope, next to its floor:
exclusive C14N of Body, Timestamp and one header block, C14N of SignedInfo, one RSA signature. Beside it signxml's
XMLSigner, which signed answers before issue 8.

Ratios are medians of per-round ratios; within a round the candidates run interleaved, so the machine's noise
hits them alike. Run from the project root:  .venv/bin/python bench/security.py [--rounds 15] [--batch 100]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
for _path in (BENCH.parent, BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from lxml import etree  # noqa: E402

from integrator.contract import build  # noqa: E402
from integrator.envelope import check_understood, parse_envelope  # noqa: E402
from integrator.namespaces import DS, EXC_C14N, KP, WSSE, WSU, q  # noqa: E402
from integrator.pki import create_ca, issue  # noqa: E402
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope  # noqa: E402
from integrator.wssec.tokens import Signer  # noqa: E402
from integrator.wssec.trust import TrustStore  # noqa: E402
from integrator.wssec.verify import SecurityPolicy, verify_envelope  # noqa: E402
from integrator.xmlparse import EnvelopeLimits  # noqa: E402
from repository.certificates import subject_key_identifier  # noqa: E402
from tests.interop.common import SAMPLES, sample_keys  # noqa: E402

UNDERSTOOD = frozenset({q(WSSE, "Security"), q(KP, "Caller")})
TAX_NS = "urn:kruispunt:TaxExemptionStatus:v1"
INCLUSIVE = q(EXC_C14N, "InclusiveNamespaces")


@dataclass(frozen=True)
class Message:
    label: str
    data: bytes
    cert: x509.Certificate
    trust: TrustStore
    now: datetime  # when it is verified: just after it was signed, so stored samples stay fresh


class Directory:
    """The one registered certificate of a message, found by any key reference (as the repository would)."""

    def __init__(self, cert: x509.Certificate) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding
        self.der = cert.public_bytes(Encoding.DER)
        self.signer = Signer.of(self.der)
        self.ski = subject_key_identifier(cert)

    def by_issuer_serial(self, issuer: str, serial: int) -> Signer | None:
        return self.signer if serial == self.signer.certificate.serial_number else None

    def by_subject_key_identifier(self, identifier: bytes) -> Signer | None:
        return self.signer if identifier == self.ski else None

    def by_thumbprint(self, sha1: bytes) -> Signer | None:
        return self.signer if sha1 == hashlib.sha1(self.der).digest() else None


# --- the candidates -------------------------------------------------------------------------------------------
def request_path(message: Message) -> Callable[[], object]:
    limits, policy, directory = EnvelopeLimits(), SecurityPolicy(), Directory(message.cert)

    def run() -> object:
        envelope = parse_envelope(message.data, limits)
        check_understood(envelope, UNDERSTOOD)
        return verify_envelope(envelope, message.trust, policy, message.now, directory)
    run()
    return run


def verify_floor(message: Message) -> Callable[[], object]:
    """fromstring, C14N + digest of each referenced element, C14N of SignedInfo, RSA: nothing else."""
    root = etree.fromstring(message.data)
    info = next(root.iter(q(DS, "SignedInfo")))
    signature = info.getparent()
    info_path = _index_path(info)
    info_prefixes = _prefixes(info.find(q(DS, "CanonicalizationMethod")))
    references = []
    for reference in info.iter(q(DS, "Reference")):
        ident = reference.get("URI", "")[1:]
        target = root.xpath("//*[@*[local-name()='Id']=$i]", i=ident)[0]
        transform = reference.findall(f"{q(DS, 'Transforms')}/{q(DS, 'Transform')}")[-1]
        references.append((_index_path(target), _prefixes(transform),
                           base64.b64decode(reference.findtext(q(DS, "DigestValue")) or "")))
    value = base64.b64decode("".join((signature.findtext(q(DS, "SignatureValue")) or "").split()))
    key = message.cert.public_key()

    def run() -> object:
        parsed = etree.fromstring(message.data)
        for path, prefixes, digest in references:
            element = _at(parsed, path)
            c14n = etree.tostring(element, method="c14n", exclusive=True, inclusive_ns_prefixes=prefixes or None)
            if hashlib.sha256(c14n).digest() != digest:
                raise AssertionError("floor: digest mismatch")
        key.verify(value, etree.tostring(_at(parsed, info_path), method="c14n", exclusive=True,  # type: ignore[union-attr]
                                         inclusive_ns_prefixes=info_prefixes or None),
                   padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg]
        return parsed
    run()
    return run


def _index_path(element: etree._Element) -> list[int]:
    """Where an element stands, as child positions from the root: found again without a search."""
    path = []
    while (parent := element.getparent()) is not None:
        path.append(parent.index(element))
        element = parent
    return path[::-1]


def _at(root: etree._Element, path: list[int]) -> etree._Element:
    for position in path:
        root = root[position]
    return root


def _prefixes(holder: etree._Element | None) -> list[str]:
    found = holder.find(INCLUSIVE) if holder is not None else None
    return [p for p in (found.get("PrefixList") or "").split() if p != "#default"] if found is not None else []


def signxml_verify(message: Message) -> Callable[[], object] | None:
    from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod
    from signxml.verifier import XMLVerifier
    config = SignatureConfiguration(require_x509=True, expect_references=True,
                                    signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
                                    digest_algorithms=frozenset({DigestAlgorithm.SHA256}))

    def run() -> object:
        return XMLVerifier().verify(etree.fromstring(message.data), x509_cert=message.cert, expect_config=config)
    try:
        run()
    except Exception:
        return None  # signxml cannot read this stack's message (InclusiveNamespaces: the bug of issue 8)
    return run


def xmlsec_verify(message: Message) -> Callable[[], object] | None:
    """python-xmlsec (libxmlsec1) on the same bytes: parse, register the Id attributes, verify with the key."""
    try:
        import xmlsec
    except ImportError:
        return None
    from cryptography.hazmat.primitives.serialization import Encoding
    key = xmlsec.Key.from_memory(message.cert.public_bytes(Encoding.PEM), xmlsec.constants.KeyDataFormatCertPem)

    def run() -> object:
        root = etree.fromstring(message.data)
        xmlsec.tree.add_ids(root, ["Id"])  # by local name: wsu:Id and Id alike
        context = xmlsec.SignatureContext()
        context.key = key
        context.verify(next(root.iter(q(DS, "Signature"))))
        return root
    try:
        run()
    except xmlsec.Error:
        return None
    return run


Prepared = Callable[[], Callable[[], object]]  # makes (untimed) what one timed call consumes


def sign_ours(key: SigningKey) -> Prepared:
    """sign_envelope on a built answer envelope: token, Timestamp, Ids, digests, SignedInfo, RSA signature (its
    serialisation, which every answer needs signed or not, is not counted; nor in the other candidates)."""
    def prepare() -> Callable[[], object]:
        root, header, _ = _answer_envelope()
        return lambda: sign_envelope(root, key, headers=[header[-1]])
    return prepare


def sign_floor(key: SigningKey) -> Prepared:
    """C14N of Body, Timestamp and the header block, C14N of a SignedInfo over them, one RSA signature."""
    def prepare() -> Callable[[], object]:
        root, header, body = _answer_envelope()
        sign_envelope(root, key, headers=[header[-1]])  # the Timestamp and a SignedInfo to canonicalise
        targets = [body, next(root.iter(q(WSU, "Timestamp"))), header[-1]]
        info = next(root.iter(q(DS, "SignedInfo")))

        def run() -> bytes:
            for element in targets:
                hashlib.sha256(etree.tostring(element, method="c14n", exclusive=True)).digest()
            return key.key.sign(etree.tostring(info, method="c14n", exclusive=True), padding.PKCS1v15(),
                                hashes.SHA256())
        return run
    return prepare


def sign_signxml(key: SigningKey) -> Prepared:
    """signxml's XMLSigner over the same three elements, as answers were signed before issue 8."""
    from signxml import DigestAlgorithm, SignatureMethod
    from signxml.algorithms import CanonicalizationMethod, SignatureConstructionMethod
    from signxml.signer import XMLSigner

    def prepare() -> Callable[[], object]:
        root, header, body = _answer_envelope()
        security = etree.SubElement(header, q(WSSE, "Security"), nsmap={"wsse": WSSE})
        stamp = etree.SubElement(security, q(WSU, "Timestamp"))
        etree.SubElement(stamp, q(WSU, "Created")).text = "2026-12-01T00:00:00Z"
        for index, element in enumerate((body, stamp, header[0])):
            element.set(q(WSU, "Id"), f"id-{index}")

        def run() -> bytes:
            signature = XMLSigner(method=SignatureConstructionMethod.detached,
                                  signature_algorithm=SignatureMethod.RSA_SHA256,
                                  digest_algorithm=DigestAlgorithm.SHA256,
                                  c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
                                  ).sign(root, key=key.key, reference_uri=["#id-0", "#id-1", "#id-2"])
            security.append(signature)
            return signature
        return run
    return prepare


def _answer_envelope() -> tuple[etree._Element, etree._Element, etree._Element]:
    root, header, body = new_envelope()
    header.append(build(q(KP, "Answer"), {"Ticket": "KP-20261201-000000000001", "Received": "2026-12-01T00:00:00Z",
                                          "Answered": "2026-12-01T00:00:00Z"}))
    body.append(build(f"{{{TAX_NS}}}GetTaxExemptionStatusesResponse",
                      {"Insz": "48021420212", "ReferenceDate": date(2026, 1, 1), "Complete": True,
                       "Status": [{"Code": f"STATUS_{i}", "Source": "source", "ValidFrom": date(2020, 1, 1)}
                                  for i in range(4)]}))
    return root, header, body


# --- the messages ---------------------------------------------------------------------------------------------
def our_messages(work: Path) -> tuple[list[Message], SigningKey]:
    ca = create_ca(work / "ca")
    signer = issue(ca, work, "signer", common_name="bench signer")
    key = SigningKey.from_identity(signer)
    trust = TrustStore.from_files([ca.cert_path], None)
    messages = []
    for label, padding_chars in (("kruispunt client, lookup", 0), ("kruispunt client, 256 KiB document", 262_144)):
        root, header, body = new_envelope()
        caller = build(q(KP, "Caller"), {"Official": "75041214531", "Purpose": "MUNICIPAL_TAX_EXEMPTION",
                                         "MessageId": "00000000-0000-4000-8000-000000000001"})
        header.append(caller)
        request = {"Insz": "48021420212", "ReferenceDate": date(2026, 1, 1)}
        payload = build(f"{{{TAX_NS}}}GetTaxExemptionStatusesRequest", request)
        if padding_chars:
            etree.SubElement(payload, f"{{{TAX_NS}}}Document").text = base64.b64encode(
                b"\x00" * (padding_chars * 3 // 4)).decode()
        body.append(payload)
        now = datetime.now(UTC)
        sign_envelope(root, key, headers=[caller], now=now)
        messages.append(Message(label, etree.tostring(root), key.cert, trust, now + timedelta(seconds=1)))
    return messages, key


def sample_messages(work: Path) -> list[Message]:
    keys = sample_keys(work)
    cert = x509.load_pem_x509_certificate(keys.cert_pem.read_bytes())
    trust = TrustStore.from_files([keys.ca_pem], None)
    found = []
    for stack, config in (("wss4j", "issuer-serial"), ("wss4j", "bst-direct"), ("node-soap", "xml-crypto-id")):
        path = SAMPLES / stack / f"{config}.xml"
        if path.exists():
            data = path.read_bytes()
            created = etree.fromstring(data).findtext(f".//{q(WSU, 'Created')}") or ""
            now = datetime.fromisoformat(created.replace("Z", "+00:00")) + timedelta(seconds=1)
            found.append(Message(f"{stack} {config} (stored sample)", data, cert, trust, now))
    return found


# --- timing ---------------------------------------------------------------------------------------------------
def cpu_per_call(run: Callable[[], object] | Prepared, batch: int, prepared: bool) -> float:
    calls = [run() for _ in range(batch)] if prepared else [run] * batch  # type: ignore[misc]
    started = time.process_time()
    for call in calls:
        call()
    return (time.process_time() - started) / batch


def measure(candidates: dict[str, Callable[[], object]] | dict[str, Prepared], rounds: int, batch: int,
            prepared: bool = False) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for index in range(rounds):
        for name in names[index % len(names):] + names[:index % len(names)]:
            seconds[name].append(cpu_per_call(candidates[name], batch, prepared))
    return seconds


def report(title: str, seconds: dict[str, list[float]], floor: str, target: float) -> tuple[str, float]:
    print(f"\n{title}")
    print(f"  {'':38}{'µs/op (median)':>16}{'× floor (median of rounds)':>30}")
    ratios = {}
    for name, values in seconds.items():
        ratio = statistics.median(v / f for v, f in zip(values, seconds[floor], strict=True))
        ratios[name] = ratio
        print(f"  {name:38}{statistics.median(values) * 1e6:16.1f}{ratio:30.2f}")
    ours = ratios["request path" if "request path" in ratios else "kruispunt sign_envelope"]
    verdict = "within" if ours <= target else "OVER"
    print(f"  target: at most {target:g}× the floor: {verdict} ({ours:.2f}×)")
    return verdict, ours


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as work:
        messages, key = our_messages(Path(work))
        messages += sample_messages(Path(work))
        for message in messages:
            candidates: dict[str, Callable[[], object]] = {"floor (lxml + cryptography)": verify_floor(message),
                                                           "request path": request_path(message)}
            for name, make in (("signxml XMLVerifier", signxml_verify), ("python-xmlsec", xmlsec_verify)):
                made = make(message)
                if made is not None:
                    candidates[name] = made
            batch = max(5, args.batch // (20 if len(message.data) > 100_000 else 1))
            seconds = measure(candidates, args.rounds, batch)
            title = f"Verification: {message.label} ({len(message.data):,} bytes)"
            results.append((f"verify: {message.label}", *report(title, seconds, "floor (lxml + cryptography)", 3.0)))
        seconds = measure({"floor (C14N + RSA sign)": sign_floor(key), "kruispunt sign_envelope": sign_ours(key),
                           "signxml XMLSigner": sign_signxml(key)}, args.rounds, max(10, args.batch // 5),
                          prepared=True)
        results.append(("sign: answer", *report("Signing an answer", seconds, "floor (C14N + RSA sign)", 1.5)))
    print("\nRESULT: " + "; ".join(f"{label} {ratio:.2f}× ({verdict})" for label, verdict, ratio in results))
    return 0 if all(verdict == "within" for _, verdict, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
