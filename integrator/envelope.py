"""Stage 1: the raw bytes become a SOAP 1.1 envelope, parsed once and safely, before anything else looks at them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from lxml import etree

from integrator.faults import EnvelopeMalformed, MustUnderstand
from integrator.namespaces import SOAP_ENV, q
from integrator.xmlparse import EnvelopeLimits, index_ids, parse_bounded

ACTOR_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"
MUST_UNDERSTAND = q(SOAP_ENV, "mustUnderstand")
ACTOR = q(SOAP_ENV, "actor")
_FLAGS = {"1": True, "true": True, "0": False, "false": False}


@dataclass(frozen=True)
class Envelope:
    """A parsed SOAP 1.1 envelope: root, header (may be None), body, and every Id with its element."""

    root: etree._Element
    header: etree._Element | None
    body: etree._Element
    ids: dict[str, etree._Element]
    blocks: tuple[etree._Element, ...]  # the header blocks addressed to this node: no actor, or the 'next' actor

    @classmethod
    def of(cls, root: etree._Element, limits: EnvelopeLimits | None = None) -> Envelope:
        """An envelope around a tree parsed elsewhere (by zeep, say): the structure and the Ids are checked."""
        return _structure(root, index_ids(root, limits or EnvelopeLimits()))


def parse_envelope(data: bytes, limits: EnvelopeLimits) -> Envelope:
    """Parse and check the SOAP 1.1 structure: Envelope, optional Header, exactly one Body, nothing else."""
    parsed = parse_bounded(data, limits)
    return _structure(parsed.root, parsed.ids)


def _structure(root: etree._Element, ids: dict[str, etree._Element]) -> Envelope:
    if root.tag != q(SOAP_ENV, "Envelope"):
        raise EnvelopeMalformed(
            f"The document element must be a SOAP 1.1 Envelope ({{{SOAP_ENV}}}Envelope), not {root.tag}.")
    children = [c for c in root if isinstance(c.tag, str)]
    header = None
    if children and children[0].tag == q(SOAP_ENV, "Header"):
        header = children.pop(0)
    if len(children) != 1 or children[0].tag != q(SOAP_ENV, "Body"):
        raise EnvelopeMalformed("The Envelope must hold an optional Header followed by exactly one Body.")
    blocks = () if header is None else tuple(block for block in header if isinstance(block.tag, str)
                                             and addressed_to_us(block))
    return Envelope(root=root, header=header, body=children[0], ids=ids, blocks=blocks)


def addressed_to_us(block: etree._Element) -> bool:
    """SOAP 1.1 section 4.2.2: a header block without soapenv:actor, or with the 'next' actor, is for us."""
    actor = block.get(ACTOR)
    return actor is None or actor.strip() == ACTOR_NEXT


def must_understand(block: etree._Element) -> bool:
    """The header block's soapenv:mustUnderstand flag; SOAP 1.1 writes 1 or 0, many stacks write true or false."""
    value = block.get(MUST_UNDERSTAND)
    if value is None:
        return False
    flag = _FLAGS.get(value.strip())
    if flag is None:
        raise EnvelopeMalformed(
            f"soapenv:mustUnderstand on {block.tag} is {value!r}; write 1 or 0 (or true or false).")
    return flag


def check_understood(envelope: Envelope, understood: Collection[str]) -> None:
    """SOAP 1.1 section 4.2.3: a header block addressed to us with mustUnderstand set that we do not know ends
    the processing with a MustUnderstand fault."""
    for block in envelope.blocks:
        if must_understand(block) and block.tag not in understood:
            raise MustUnderstand(
                f"The header {block.tag} is marked soapenv:mustUnderstand=\"1\", and this integrator does not "
                "process it; leave the header out or send it with mustUnderstand=\"0\".")


__all__ = ["Envelope", "EnvelopeLimits", "addressed_to_us", "check_understood", "must_understand", "parse_envelope"]
