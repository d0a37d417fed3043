"""Envelope safety: nothing dangerous is parsed, nothing malformed gets further."""

from __future__ import annotations

import pytest

from integrator.envelope import EnvelopeLimits, parse_envelope
from integrator.faults import (
    EnvelopeForbiddenConstruct,
    EnvelopeMalformed,
    EnvelopeTooDeep,
    EnvelopeTooLarge,
    KruispuntFault,
)

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
LIMITS = EnvelopeLimits(max_bytes=10_000, max_depth=20)


def envelope(body: str, header: str = "") -> bytes:
    return f'<s:Envelope xmlns:s="{SOAP}">{header}<s:Body>{body}</s:Body></s:Envelope>'.encode()


def refused(data: bytes, fault: type[KruispuntFault]) -> KruispuntFault:
    with pytest.raises(fault) as caught:
        parse_envelope(data, LIMITS)
    return caught.value


def test_well_formed_envelope_yields_header_and_body() -> None:
    parsed = parse_envelope(envelope("<x>1</x>", "<s:Header><h/></s:Header>"), LIMITS)
    assert parsed.header is not None and parsed.header[0].tag == "h"
    assert parsed.body[0].tag == "x"


def test_internal_entity_expansion_is_refused() -> None:
    data = (b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            + envelope("<x>&b;</x>"))
    fault = refused(data, EnvelopeForbiddenConstruct)
    assert fault.code == "Client.Envelope.ForbiddenConstruct"


def test_external_entity_is_refused_and_never_read() -> None:
    data = b'<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + envelope("<x>&x;</x>")
    fault = refused(data, EnvelopeForbiddenConstruct)
    assert "root:" not in fault.reason


def test_doctype_in_utf16_is_still_refused() -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE s [<!ENTITY a "b">]>' + envelope("<x>&a;</x>").decode()
    refused(text.encode("utf-16"), EnvelopeForbiddenConstruct)


def test_xinclude_is_refused() -> None:
    data = envelope('<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd"/>')
    refused(data, EnvelopeForbiddenConstruct)


def test_processing_instruction_is_refused() -> None:
    refused(envelope("<?evil run?><x/>"), EnvelopeForbiddenConstruct)


def test_oversized_request_is_refused_before_parsing() -> None:
    fault = refused(envelope("<x>" + "a" * 20_000 + "</x>"), EnvelopeTooLarge)
    assert fault.HTTP_STATUS == 413 and "10000" in fault.reason


def test_deep_nesting_is_refused() -> None:
    refused(envelope("<a>" * 30 + "</a>" * 30), EnvelopeTooDeep)


def test_nesting_just_within_the_limit_is_accepted() -> None:
    parse_envelope(envelope("<a>" * 17 + "</a>" * 17), LIMITS)


@pytest.mark.parametrize(
    "data",
    [
        b"<s:Envelope",
        b"not xml at all",
        b'<Envelope xmlns="urn:not-soap"><Body/></Envelope>',
        f'<s:Envelope xmlns:s="{SOAP}"><s:Body/><s:Body/></s:Envelope>'.encode(),
        f'<s:Envelope xmlns:s="{SOAP}"><s:Header/></s:Envelope>'.encode(),
        f'<s:Envelope xmlns:s="{SOAP}"><s:Body/><s:Header/></s:Envelope>'.encode(),
    ],
)
def test_malformed_or_non_soap_is_refused(data: bytes) -> None:
    fault = refused(data, EnvelopeMalformed)
    assert fault.HTTP_STATUS == 400


def test_processing_instruction_outside_the_envelope_is_refused() -> None:
    refused(b'<?xml-stylesheet href="file:///etc/passwd"?>' + envelope("<x/>"), EnvelopeForbiddenConstruct)
    refused(envelope("<x/>") + b"<?evil after?>", EnvelopeForbiddenConstruct)


def test_nesting_beyond_the_parsers_own_limit_is_still_too_deep() -> None:
    with pytest.raises(EnvelopeTooDeep):
        parse_envelope(envelope("<a>" * 1000 + "</a>" * 1000), EnvelopeLimits(max_bytes=100_000, max_depth=64))
