"""Bounded parsing: every limit is enforced on both roads (byte bounds then one libxml2 parse, or a pull parser that
counts as it goes), both roads build the same tree, and what exclusive c14n leaves out cannot change what is read."""

from __future__ import annotations

from dataclasses import replace

import pytest
from lxml import etree

from integrator.faults import (
    DuplicateId,
    EnvelopeForbiddenConstruct,
    EnvelopeTagTooLong,
    EnvelopeTextTooLong,
    EnvelopeTooDeep,
    EnvelopeTooManyAttributes,
    EnvelopeTooManyElements,
    EnvelopeTooManyIds,
    EnvelopeTooManyNamespaces,
    KruispuntFault,
)
from integrator.xmlparse import EnvelopeLimits, _ascii_compatible, _within_bounds, parse_bounded

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
LIMITS = EnvelopeLimits(max_elements=100, max_attributes=200, max_attributes_per_element=8, max_namespaces=20,
                        max_namespaces_in_scope=12, max_text_chars=5_000, max_ids=5, max_depth=16)


def envelope(body: str, header: str = "") -> bytes:
    return (f'<s:Envelope xmlns:s="{SOAP}" xmlns:wsu="{WSU}"><s:Header>{header}</s:Header>'
            f"<s:Body>{body}</s:Body></s:Envelope>").encode()


def padded(data: bytes, size: int) -> bytes:
    """The same document, made large with a comment (dropped while parsing), so the byte bounds send it down the
    counting road."""
    filler = b"<!-- " + b"=< xmlns " * (size // 9) + b" -->"
    return data.replace(b"<s:Body>", filler + b"<s:Body>", 1)


def both_roads(data: bytes) -> list[tuple[str, bytes]]:
    fast = data
    counted = padded(data, 4_000)
    assert _within_bounds(fast, LIMITS), "the small document should take the road of byte bounds"
    assert not _within_bounds(counted, LIMITS), "the padded document should take the counting road"
    return [("bounds", fast), ("counted", counted)]


def refused(data: bytes, fault: type[KruispuntFault], limits: EnvelopeLimits = LIMITS) -> KruispuntFault:
    with pytest.raises(fault) as caught:
        parse_bounded(data, limits)
    return caught.value


CASES = {
    "attributes on one element": ('<x ' + " ".join(f'a{i}="1"' for i in range(9)) + "/>", EnvelopeTooManyAttributes),
    "attributes in all": ("".join('<x a="1" b="2" c="3" d="4" e="5"/>' for _ in range(41)), EnvelopeTooManyAttributes),
    "namespace declarations": ("".join(f'<x xmlns:n{i}="urn:{i}"/>' for i in range(21)), EnvelopeTooManyNamespaces),
    "namespaces in scope": ("".join(f'<x xmlns:n{i}="urn:{i}">' for i in range(11)) + "</x>" * 11,
                            EnvelopeTooManyNamespaces),
    "elements": ("<x/>" * 101, EnvelopeTooManyElements),
    "depth": ("<x>" * 15 + "</x>" * 15, EnvelopeTooDeep),
    "ids": ("".join(f'<x wsu:Id="i{i}"/>' for i in range(6)), EnvelopeTooManyIds),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_limit_is_refused_with_its_own_fault(case: str) -> None:
    body, fault = CASES[case]
    refused(envelope(body), fault)
    refused(padded(envelope(body), 4_000), fault)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_one_less_than_each_limit_is_parsed(case: str) -> None:
    fewer = {"attributes on one element": '<x ' + " ".join(f'a{i}="1"' for i in range(8)) + "/>",
             "attributes in all": "".join('<x a="1" b="2" c="3" d="4" e="5"/>' for _ in range(30)),
             "namespace declarations": "".join(f'<x xmlns:n{i}="urn:{i}"/>' for i in range(18)),
             "namespaces in scope": "".join(f'<x xmlns:n{i}="urn:{i}">' for i in range(9)) + "</x>" * 9,
             "elements": "<x/>" * 90, "depth": "<x>" * 13 + "</x>" * 13,
             "ids": "".join(f'<x wsu:Id="i{i}"/>' for i in range(5))}[case]
    for data in (envelope(fewer), padded(envelope(fewer), 4_000)):  # whichever road the bounds choose
        parse_bounded(data, LIMITS)


def test_text_longer_than_the_limit_is_refused() -> None:
    fault = refused(envelope("<x>" + "y" * 5_001 + "</x>"), EnvelopeTextTooLong, replace(LIMITS, max_elements=10_000))
    assert "KRUISPUNT_MAX_TEXT_CHARS" in fault.reason
    refused(envelope('<x a="' + "y" * 5_001 + '"/>'), EnvelopeTextTooLong)
    refused(envelope("<x><y/>" + "t" * 5_001 + "</x>"), EnvelopeTextTooLong)  # a tail is text too


def test_both_roads_build_the_same_tree_and_id_index() -> None:
    data = envelope('<p:q xmlns:p="urn:p" wsu:Id="body-part" a="1">text<p:r>more</p:r>tail</p:q>',
                    '<h wsu:Id="h1">header</h>')
    results = [parse_bounded(road, LIMITS) for _, road in both_roads(data)]
    forms = [etree.tostring(r.root, method="c14n", exclusive=True) for r in results]
    assert forms[0] == forms[1]
    assert [sorted(r.ids) for r in results] == [["body-part", "h1"]] * 2
    assert all(r.ids["body-part"].tag == "{urn:p}q" for r in results)


def test_a_comment_inside_signed_text_cannot_split_what_is_read() -> None:
    """Exclusive c14n without comments digests 48021420212 either way; the tree must read the same value (the
    comment-injection trick that truncated SAML names)."""
    parsed = parse_bounded(envelope("<insz>4802<!-- -->1420212</insz>"), LIMITS)
    assert parsed.root.find(f"{{{SOAP}}}Body/insz").text == "48021420212"


def test_cdata_is_read_as_the_text_it_carries() -> None:
    parsed = parse_bounded(envelope("<v><![CDATA[a<b]]></v>"), LIMITS)
    assert parsed.root.find(f"{{{SOAP}}}Body/v").text == "a<b"


def test_duplicate_ids_in_any_spelling_are_refused() -> None:
    for attribute in ('wsu:Id="x"', 'Id="x"', 'ID="x"', 'id="x"'):
        refused(envelope(f'<a wsu:Id="x"/><b {attribute}/>'), DuplicateId)


def test_utf16_takes_the_counting_road_and_keeps_every_limit() -> None:
    text = envelope("<x/>" * 101).decode()
    data = ('<?xml version="1.0" encoding="UTF-16"?>' + text).encode("utf-16")
    assert not _ascii_compatible(data)
    refused(data, EnvelopeTooManyElements)
    parsed = parse_bounded(('<?xml version="1.0" encoding="UTF-16"?>' + envelope("<x/>").decode()).encode("utf-16"),
                           LIMITS)
    assert parsed.root.find(f"{{{SOAP}}}Body/x") is not None


@pytest.mark.parametrize("data", [
    b'<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY e "x">]>' + envelope("<x>&e;</x>"),
    envelope("<x/>") + b"<?pi after?>",
    envelope('<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd"/>'),
], ids=["doctype", "processing instruction after the root", "xinclude"])
def test_forbidden_constructs_are_refused_on_both_roads(data: bytes) -> None:
    refused(data, EnvelopeForbiddenConstruct)
    refused(padded(data, 4_000) if b"<s:Body>" in data else data, EnvelopeForbiddenConstruct)


def test_a_start_tag_longer_than_allowed_is_refused_but_not_a_long_comment_or_text() -> None:
    limits = replace(LIMITS, max_tag_bytes=1_000, max_text_chars=100_000, max_attributes_per_element=1_000,
                     max_attributes=1_000)
    refused(envelope("<x " + " ".join(f'a{i}="1"' for i in range(200)) + "/>"), EnvelopeTagTooLong, limits)
    parse_bounded(envelope("<x>" + "t" * 5_000 + "</x><!--" + "c" * 5_000 + "-->"), limits)


def test_scaled_limits_grow_with_the_size_but_keep_the_depth() -> None:
    grown = EnvelopeLimits().scaled(64 * 1_048_576)
    assert grown.max_bytes == 64 * 1_048_576 and grown.max_elements == 64 * EnvelopeLimits().max_elements
    assert grown.max_depth == EnvelopeLimits().max_depth
