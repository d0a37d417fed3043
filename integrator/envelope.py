"""Stage 1: the raw bytes become a SOAP envelope, safely, before anything else looks at them."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from integrator.faults import (
    EnvelopeForbiddenConstruct,
    EnvelopeMalformed,
    EnvelopeTooDeep,
    EnvelopeTooLarge,
)
from integrator.namespaces import SOAP_ENV, q


@dataclass(frozen=True)
class EnvelopeLimits:
    """Bounds on what the integrator is willing to parse."""

    max_bytes: int = 1_048_576
    max_depth: int = 64


@dataclass(frozen=True)
class Envelope:
    """A parsed SOAP 1.1 envelope: root, header (may be None) and body."""

    root: etree._Element
    header: etree._Element | None
    body: etree._Element


def safe_parser() -> etree.XMLParser:
    """No entities, no DTD, no network: for XML we produced ourselves or read back from our own tables."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
        collect_ids=False,
    )


def check_size(length: int, limits: EnvelopeLimits) -> None:
    if length > limits.max_bytes:
        raise EnvelopeTooLarge(
            f"The message is {length} bytes; at most {limits.max_bytes} bytes are accepted."
        )


def parse_xml(data: bytes, limits: EnvelopeLimits) -> etree._Element:
    """Parse bytes with no DTD, no entities, no network, no XInclude; refuse what is deeper than allowed."""
    check_size(len(data), limits)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise EnvelopeForbiddenConstruct(
            "The request contains a DTD or entity declaration; SOAP messages must not carry one."
        )
    try:
        root = etree.fromstring(data, parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        if "depth" in (exc.msg or "").lower():
            raise EnvelopeTooDeep(f"The request nests elements deeper than {limits.max_depth} levels.") from None
        raise EnvelopeMalformed(f"The request is not well-formed XML: {exc.msg}.") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise EnvelopeForbiddenConstruct("The request carries a document type declaration; remove it.")
    outside = [*root.itersiblings(preceding=True), *root.itersiblings()]
    for node in [*outside, *root.iter(etree.Entity, etree.ProcessingInstruction)]:
        if not isinstance(node, etree._ProcessingInstruction | etree._Entity):
            continue
        raise EnvelopeForbiddenConstruct(
            f"The request contains a forbidden construct ({type(node).__name__}); remove it."
        )
    if root.xpath("boolean(//*[namespace-uri()='http://www.w3.org/2001/XInclude'])"):
        raise EnvelopeForbiddenConstruct("The request contains XInclude elements; they are not allowed.")
    _check_depth(root, limits.max_depth)
    return root


def _check_depth(root: etree._Element, max_depth: int) -> None:
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise EnvelopeTooDeep(f"The request nests elements deeper than {max_depth} levels.")
        stack.extend((child, depth + 1) for child in node if isinstance(child.tag, str))


def parse_envelope(data: bytes, limits: EnvelopeLimits) -> Envelope:
    """Parse and check the SOAP 1.1 structure: Envelope, optional Header, exactly one Body, nothing else."""
    root = parse_xml(data, limits)
    if root.tag != q(SOAP_ENV, "Envelope"):
        raise EnvelopeMalformed(
            f"The document element must be a SOAP 1.1 Envelope ({{{SOAP_ENV}}}Envelope), not {root.tag}."
        )
    children = [c for c in root if isinstance(c.tag, str)]
    header = None
    if children and children[0].tag == q(SOAP_ENV, "Header"):
        header = children.pop(0)
    if len(children) != 1 or children[0].tag != q(SOAP_ENV, "Body"):
        raise EnvelopeMalformed("The Envelope must hold an optional Header followed by exactly one Body.")
    return Envelope(root=root, header=header, body=children[0])
