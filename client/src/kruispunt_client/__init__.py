"""kruispunt-client: call a kruispunt integrator with zeep, signed per the network's WS-Security profile.

    from kruispunt_client import Identity, KruispuntClient

Requests are signed (Body, Timestamp and kp:Caller; RSA-SHA256, exclusive c14n, the certificate as a
BinarySecurityToken); answers are accepted only when the integrator signed them and they quote the request just
sent; the integrator's signed receipts are verified offline with verify_receipt."""

from kruispunt_client.client import Answer, KruispuntClient, KruispuntSignature, caller_header, fault_detail
from kruispunt_client.errors import AnswerRefused, CertificateRefused
from kruispunt_client.keys import Identity, SigningKey, load_certificates
from kruispunt_client.receipt import Receipt, ReceiptInvalid, application_digest, verify_receipt
from kruispunt_client.trust import Trust
from kruispunt_client.wssec import Verified, sign_envelope, signature_digest, verify_answer
from kruispunt_client.xml import build

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "AnswerRefused",
    "CertificateRefused",
    "Identity",
    "KruispuntClient",
    "KruispuntSignature",
    "Receipt",
    "ReceiptInvalid",
    "SigningKey",
    "Trust",
    "Verified",
    "application_digest",
    "build",
    "caller_header",
    "fault_detail",
    "load_certificates",
    "sign_envelope",
    "signature_digest",
    "verify_answer",
    "verify_receipt",
]
