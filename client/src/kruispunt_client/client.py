"""zeep with the network's profile: requests signed as the integrator requires, answers accepted only when the
integrator signed them and they answer the request just sent."""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import zeep
from cryptography import x509
from lxml import etree
from zeep.exceptions import Fault

from kruispunt_client.errors import AnswerRefused
from kruispunt_client.keys import Identity, SigningKey, load_certificates
from kruispunt_client.namespaces import KP, SOAP_ENV, q
from kruispunt_client.receipt import Receipt, ReceiptInvalid, verify_receipt
from kruispunt_client.trust import Trust
from kruispunt_client.wssec import HEADER, Verified, sign_envelope, verify_answer
from kruispunt_client.xml import build

FAULT = q(SOAP_ENV, "Fault")


class KruispuntSignature:
    """zeep wsse plugin: signs Body, Timestamp and kp:Caller; verifies the answer is the integrator's and ours.

    trust: the network's trust anchors (and CRL); integrator_certificate, when given, is the only certificate an
    answer may be signed with. One plugin may serve several threads: each checks the answer to its own request."""

    def __init__(self, identity: Identity | SigningKey, trust: Trust,
                 integrator_certificate: x509.Certificate | None = None) -> None:
        self.key = identity if isinstance(identity, SigningKey) else SigningKey.from_identity(identity)
        self.trust = trust
        self.integrator_certificate = integrator_certificate
        self._local = threading.local()

    @property
    def request_digest(self) -> str | None:
        """Base64 SHA-256 of the SignatureValue of this thread's last request: what its answer must quote."""
        return getattr(self._local, "request_digest", None)

    def apply(self, envelope: etree._Element, headers: dict[str, str]) -> tuple[etree._Element, dict[str, str]]:
        caller = envelope.find(f"{HEADER}/{q(KP, 'Caller')}")
        value = sign_envelope(envelope, self.key, headers=[caller] if caller is not None else [])
        self._local.request_digest = base64.b64encode(hashlib.sha256(value).digest()).decode()
        return envelope, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        try:
            verified = verify_answer(envelope, self.trust)
        except AnswerRefused as refused:
            raise type(refused)(f"the integrator's answer is not validly signed: {refused}") from None
        self._check_signer_and_binding(verified)
        return envelope

    def _check_signer_and_binding(self, verified: Verified) -> None:
        if self.integrator_certificate is not None and verified.certificate != self.integrator_certificate:
            raise AnswerRefused("the answer is signed by a certificate that is not the integrator's")
        answer = verified.headers.get(q(KP, "Answer"))
        if answer is None:
            raise AnswerRefused("the answer carries no signed kp:Answer header")
        digest = answer.findtext(q(KP, "RequestSignatureDigest"))
        is_fault = verified.payload is not None and verified.payload.tag == FAULT
        # only a refusal of a request whose signature could not be verified can lack the binding
        if (digest is None and not is_fault) or (digest is not None and digest != self.request_digest):
            raise AnswerRefused("the answer does not refer to the request just sent (RequestSignatureDigest)")


@dataclass(frozen=True)
class Answer:
    """An operation's answer body (as zeep objects) with the ticket from the signed kp:Answer header."""

    body: Any
    ticket: str


class KruispuntClient:
    """Calls a kruispunt service as one organisation's official.

    wsdl_url: the service's WSDL (`…/soap/<Service>/v1?wsdl`); identity: the organisation's certificate and key;
    trust_anchors: PEM files of the network's CA; integrator_cert: the integrator's certificate, pinned for answers
    and needed to verify receipts; crl: the CA's CRL file, re-read when it changes."""

    def __init__(self, wsdl_url: str, identity: Identity | SigningKey, trust_anchors: list[Path],
                 integrator_cert: Path | None = None, crl: Path | None = None, timeout: float = 30.0) -> None:
        trust = Trust.from_files(trust_anchors, crl)
        self.integrator_certificate = load_certificates([integrator_cert])[0] if integrator_cert else None
        self.signature = KruispuntSignature(identity, trust, self.integrator_certificate)
        transport = zeep.Transport(timeout=timeout, operation_timeout=timeout)  # type: ignore[no-untyped-call]
        settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True)
        self.client = zeep.Client(wsdl_url, wsse=self.signature, transport=transport,  # type: ignore[no-untyped-call]
                                  settings=settings)

    def caller_header(self, official: str, purpose: str, message_id: str | None = None,
                      organisation: str | None = None) -> etree._Element:
        """The kp:Caller header: who asks (the official's INSZ), why (the purpose) and the message id."""
        return caller_header(official, purpose, message_id, organisation)

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


def caller_header(official: str, purpose: str, message_id: str | None = None,
                  organisation: str | None = None) -> etree._Element:
    """The kp:Caller header block for any zeep call (`_soapheaders=[caller_header(...)]`); a fresh message id
    when none is given."""
    return build(q(KP, "Caller"), {"Official": official, "Purpose": purpose,
                                   "MessageId": message_id or str(uuid.uuid4()), "Organisation": organisation})


def fault_detail(fault: Fault) -> dict[str, str]:
    """Code, Reason, Ticket (and Source) from a kruispunt fault's detail."""
    detail = fault.detail
    node = detail.find(q(KP, "FaultDetail")) if detail is not None else None
    if node is None:
        raise AnswerRefused("the fault carries no kp:FaultDetail")
    return {etree.QName(child).localname: child.text or "" for child in node}


__all__ = ["Answer", "KruispuntClient", "KruispuntSignature", "caller_header", "fault_detail"]
