"""Client library for municipal software: zeep, signing per the network profile, verifying signed answers."""

from __future__ import annotations

import base64
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import zeep
from lxml import etree
from zeep.exceptions import Fault

from integrator.contract import build
from integrator.envelope import Envelope
from integrator.faults import KruispuntFault
from integrator.namespaces import KP, SOAP_ENV, q
from integrator.pki import Identity, fingerprint, load_trust_anchors
from integrator.receipt import Receipt, ReceiptInvalid, verify_receipt
from integrator.wssec.sign import SigningKey, sign_envelope, signature_digest
from integrator.wssec.trust import TrustStore
from integrator.wssec.verify import SecurityPolicy, Verified, verify_envelope


class AnswerRefused(Exception):
    """The integrator's answer did not pass the client's checks (signature, signer, binding to the request)."""


class KruispuntSignature:
    """zeep wsse plugin: signs Body, Timestamp and kp:Caller; verifies the answer is the integrator's and ours."""

    def __init__(self, identity: Identity, trust: TrustStore, integrator_fingerprint: str | None = None) -> None:
        self.key = SigningKey.from_identity(identity)
        self.trust = trust
        self.integrator_fingerprint = integrator_fingerprint
        self._local = threading.local()

    def apply(self, envelope: etree._Element, headers: dict[str, str]) -> tuple[etree._Element, dict[str, str]]:
        caller = envelope.find(f"{q(SOAP_ENV, 'Header')}/{q(KP, 'Caller')}")
        sign_envelope(envelope, self.key, headers=[caller] if caller is not None else [])
        self._local.request_digest = base64.b64encode(signature_digest(envelope)).decode()
        return envelope, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        try:
            verified = verify_envelope(Envelope.of(envelope), self.trust, SecurityPolicy(), datetime.now(UTC))
        except KruispuntFault as fault:
            raise AnswerRefused(
                f"the integrator's answer is not validly signed: {fault.code}: {fault.reason}"
            ) from None
        self._check_signer_and_binding(verified)
        return envelope

    def _check_signer_and_binding(self, verified: Verified) -> None:
        if self.integrator_fingerprint and verified.fingerprint != self.integrator_fingerprint:
            raise AnswerRefused("the answer is signed by a certificate that is not the integrator's")
        answer = verified.headers.get(q(KP, "Answer"))
        if answer is None:
            raise AnswerRefused("the answer carries no signed kp:Answer header")
        digest = answer.findtext(q(KP, "RequestSignatureDigest"))
        expected = getattr(self._local, "request_digest", None)
        is_fault = verified.payload is not None and verified.payload.tag == q(SOAP_ENV, "Fault")
        # only a refusal of a request whose signature could not be verified can lack the binding
        if (digest is None and not is_fault) or (digest is not None and digest != expected):
            raise AnswerRefused("the answer does not refer to the request just sent (RequestSignatureDigest)")


@dataclass(frozen=True)
class Answer:
    """A lookup's body (as zeep objects) with the ticket from the signed header."""

    body: Any
    ticket: str


class KruispuntClient:
    """Calls a kruispunt service as one organisation's official."""

    def __init__(self, wsdl_url: str, identity: Identity, trust_anchors: list[Path],
                 integrator_cert: Path | None = None, crl: Path | None = None, timeout: float = 30.0) -> None:
        trust = TrustStore.from_files(trust_anchors, crl)
        self.integrator_certificate = load_trust_anchors([integrator_cert])[0] if integrator_cert else None
        pin = fingerprint(self.integrator_certificate) if self.integrator_certificate else None
        self.signature = KruispuntSignature(identity, trust, pin)
        transport = zeep.Transport(timeout=timeout, operation_timeout=timeout)
        settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True)
        self.client = zeep.Client(wsdl_url, wsse=self.signature, transport=transport, settings=settings)

    def caller_header(self, official: str, purpose: str, message_id: str | None = None,
                      organisation: str | None = None) -> etree._Element:
        return build(q(KP, "Caller"), {"Official": official, "Purpose": purpose,
                                       "MessageId": message_id or str(uuid.uuid4()), "Organisation": organisation})

    def tax_exemption_statuses(self, insz: str, on: date, *, official: str, purpose: str,
                               message_id: str | None = None) -> Answer:
        """GetTaxExemptionStatuses for one person on one date; raises zeep Fault for refusals."""
        return self.call("GetTaxExemptionStatuses", official=official, purpose=purpose, message_id=message_id,
                         Insz=insz, ReferenceDate=on)

    def call(self, operation: str, *, official: str, purpose: str, message_id: str | None = None,
             **fields: Any) -> Answer:
        """Any operation of the service the client was made for, its fields as keyword arguments (zeep types).
        A retry of a state-changing operation passes the first attempt's message_id: the integrator answers it
        with the first outcome. Raises zeep Fault for refusals, AnswerRefused for answers that do not verify."""
        header = self.caller_header(official, purpose, message_id)
        result = self.client.service[operation](**fields, _soapheaders=[header])
        return Answer(body=result.body, ticket=result.header.answer.Ticket)

    def verify_receipt(self, signed_receipt: bytes) -> Receipt:
        """What an Applications receipt (SignedReceipt, as answered or as kept) attests, after checking the
        integrator signed the whole document (the client must be made with integrator_cert). Raises
        ReceiptInvalid for a changed or foreign receipt."""
        if self.integrator_certificate is None:
            raise ReceiptInvalid("no integrator certificate to verify against: pass integrator_cert")
        return verify_receipt(signed_receipt, self.integrator_certificate)


def fault_detail(fault: Fault) -> dict[str, str]:
    """Code, Reason, Ticket (and Source) from a kruispunt fault's detail."""
    detail = fault.detail
    node = detail.find(q(KP, "FaultDetail")) if detail is not None else None
    if node is None:
        raise AnswerRefused("the fault carries no kp:FaultDetail")
    return {etree.QName(child).localname: child.text or "" for child in node}


__all__ = ["AnswerRefused", "KruispuntClient", "KruispuntSignature", "Receipt", "ReceiptInvalid", "fault_detail"]
