"""The zeep-xmlsec stack: zeep's own WS-Security signer, zeep.wsse.signature.BinarySignature (python-xmlsec
underneath), applied to the lxml envelope directly, without a WSDL or HTTP.

zeep signs the soap:Body and the wsu:Timestamp it finds in wsse:Security. To have kp:Caller signed as well,
CallerBinarySignature wraps zeep's module-level helper _sign_node for the length of one apply(): every time zeep
signs the Body, the wrapper has the same helper sign kp:Caller too, so the Caller's wsu:Id, ID registration,
Reference and exc-c14n transform are made exactly as zeep makes its own. apply() then checks that a Reference to
the Caller is really there, so a zeep release that no longer calls _sign_node fails loudly, not silently.

python-xmlsec imports only when the libxml2 it was built with is the very one lxml was built with: the
manylinux wheel of xmlsec 1.3.17 bundles libxml2 2.14.6, as lxml 6.1.3 does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree

from tests.interop.common import KP, SOAP_ENV, Keys, parse

STACK = "zeep-xmlsec"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
TIMESTAMP_SECONDS = 300

CONFIGS: dict[str, str] = {
    "bst-direct": "zeep BinarySignature (rsa-sha256, sha256): Body, Timestamp and, through the wrapper, Caller; "
    'BinarySecurityToken + STR/Reference; wsse:Security with soapenv:mustUnderstand="1"',
    "must-understand-true": 'as bst-direct, with soapenv:mustUnderstand="true"',
}

_PATCH_LOCK = threading.Lock()  # the wrapper swaps a module global of zeep for the length of one apply()


def available() -> str | None:
    """None when python-xmlsec imports here (next to this lxml), else why not."""
    try:
        import xmlsec  # noqa: F401
    except ImportError as exc:
        return f"python-xmlsec is not installed: {exc}"
    except Exception as exc:  # xmlsec.InternalError: libxml2 of lxml and of xmlsec differ
        return f"python-xmlsec does not import: {exc!r}"
    return None


def _signature_class() -> type[Any]:
    """CallerBinarySignature, made on first use so that this module imports without python-xmlsec."""
    import xmlsec
    from zeep.wsse import signature as zeep_signature

    class CallerBinarySignature(zeep_signature.BinarySignature):  # type: ignore[misc]
        """zeep's BinarySignature that also signs the soapenv:Header/kp:Caller element."""

        def apply(self, envelope: etree._Element, headers: dict[str, Any]) -> tuple[etree._Element, Any]:
            caller = envelope.find(f"{{{SOAP_ENV}}}Header/{{{KP}}}Caller")
            if caller is None:
                raise ValueError("no soapenv:Header/kp:Caller to sign")
            original: Callable[..., None] = zeep_signature._sign_node
            body_tag = etree.QName(SOAP_ENV, "Body").text

            def sign_node(ctx: xmlsec.SignatureContext, signature: etree._Element, target: etree._Element,
                          digest_method: Any = None) -> None:
                original(ctx, signature, target, digest_method)
                if target.tag == body_tag:
                    original(ctx, signature, caller, digest_method)

            with _PATCH_LOCK:
                zeep_signature._sign_node = sign_node
                try:
                    result = super().apply(envelope, headers)
                finally:
                    zeep_signature._sign_node = original
            uris = {reference.get("URI") for reference in envelope.iter(f"{{{DS}}}Reference")}
            if "#" + str(caller.get(f"{{{WSU}}}Id")) not in uris:
                raise RuntimeError("zeep did not sign kp:Caller: its BinarySignature no longer calls _sign_node")
            return result

    return CallerBinarySignature


def _prepare(envelope: etree._Element, must_understand: str) -> None:
    """Add what zeep's signer expects to find and does not make: wsse:Security (with mustUnderstand) holding
    a wsu:Timestamp, built with zeep's own element makers and time format."""
    from zeep.wsse.utils import WSU as WSU_MAKER
    from zeep.wsse.utils import get_security_header, get_timestamp

    security = get_security_header(envelope)
    security.set(f"{{{SOAP_ENV}}}mustUnderstand", must_understand)
    now = datetime.now(UTC)
    security.append(WSU_MAKER.Timestamp(
        WSU_MAKER.Created(get_timestamp(now, zulu_timestamp=True)),
        WSU_MAKER.Expires(get_timestamp(now + timedelta(seconds=TIMESTAMP_SECONDS), zulu_timestamp=True)),
    ))


def sign(jobs: list[tuple[str, bytes]], keys: Keys) -> list[bytes]:
    """Sign each (config, unsigned envelope) with zeep's BinarySignature (RSA-SHA256, SHA-256)."""
    from xmlsec import constants  # constants.TransformRsaSha256 is xmlsec.Transform.RSA_SHA256

    signature_class = _signature_class()
    signer = signature_class(str(keys.key_pem), str(keys.cert_pem),
                             signature_method=constants.TransformRsaSha256, digest_method=constants.TransformSha256)
    signed: list[bytes] = []
    for config, unsigned in jobs:
        if config not in CONFIGS:
            raise ValueError(f"unknown config {config!r}; known: {sorted(CONFIGS)}")
        envelope = parse(unsigned)
        _prepare(envelope, "true" if config == "must-understand-true" else "1")
        signer.apply(envelope, {})
        signed.append(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))
    return signed
