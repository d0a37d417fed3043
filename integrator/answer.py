"""Stage: the answer envelope (response or fault) with its kp:Answer header, signed by the integrator."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from kruispunt_client.xml import build
from lxml import etree

from integrator.faults import KruispuntFault
from integrator.namespaces import KP, SOAP_ENV, q
from integrator.wssec.sign import SigningKey, new_envelope, sign_envelope


def _answer_header(ticket: str, received: datetime, message_id: str | None, request_digest: bytes | None,
                   deprecation: dict[str, Any] | None, upstream_tickets: tuple[str, ...]) -> dict[str, Any]:
    return {
        "Ticket": ticket,
        "MessageId": message_id,
        "RequestSignatureDigest": base64.b64encode(request_digest).decode() if request_digest else None,
        "Received": received,
        "Answered": datetime.now(UTC),
        "Deprecation": deprecation,
        "UpstreamTicket": list(upstream_tickets),
    }


def signed_answer(
    signing_key: SigningKey,
    payload: etree._Element,
    *,
    ticket: str,
    received: datetime,
    message_id: str | None,
    request_digest: bytes | None,
    deprecation: dict[str, Any] | None = None,
    upstream_tickets: tuple[str, ...] = (),
) -> bytes:
    root, header, body = new_envelope()
    answer = build(q(KP, "Answer"), _answer_header(ticket, received, message_id, request_digest, deprecation,
                                                   upstream_tickets))
    header.append(answer)
    body.append(payload)
    sign_envelope(root, signing_key, headers=[answer])
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def fault_payload(fault: KruispuntFault, ticket: str) -> etree._Element:
    node = etree.Element(q(SOAP_ENV, "Fault"))
    etree.SubElement(node, "faultcode").text = f"soapenv:{fault.code}"
    etree.SubElement(node, "faultstring").text = f"{fault.reason} (ticket {ticket})"
    detail = etree.SubElement(node, "detail")
    detail.append(build(q(KP, "FaultDetail"),
                        {"Code": fault.code, "Reason": fault.reason, "Ticket": ticket, "Source": fault.source}))
    return node
