"""Bounded XML parsing: the bytes become one lxml tree, and nothing that makes XML processing expensive gets past.

Two roads lead to the same tree. Cheap byte counts (at the speed of memchr) give upper bounds on the elements,
attributes and namespace declarations a document can hold, and one regular-expression scan finds a start tag longer
than allowed; when every bound is inside the limits, libxml2 parses the whole document at once and one walk of the
tree checks what the bounds do not cover (attributes on one element, Ids; depth and long texts by XPath). When a
bound is over a limit, a tree-less parser is fed the document in chunks and counts as it goes, so a hostile
document is refused after at most one chunk past the limit it breaks, with no partial tree left behind; a
document within every limit is then parsed whole. Either way before anything expensive (canonicalisation, schema
validation) looks at it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

from lxml import etree

from integrator.faults import (
    DuplicateId,
    EnvelopeForbiddenConstruct,
    EnvelopeMalformed,
    EnvelopeTagTooLong,
    EnvelopeTextTooLong,
    EnvelopeTooDeep,
    EnvelopeTooLarge,
    EnvelopeTooManyAttributes,
    EnvelopeTooManyElements,
    EnvelopeTooManyIds,
    EnvelopeTooManyNamespaces,
)

XINCLUDE = "http://www.w3.org/2001/XInclude"
_CHUNK = 65_536
_ASCII_DECLARATION = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"'](utf-8|us-ascii|iso-8859-\d+)[\"']", re.I)
_ANY_DECLARATION = re.compile(rb"^<\?xml[^>]*?encoding\s*=", re.I)


@dataclass(frozen=True)
class EnvelopeLimits:
    """Bounds on what the integrator is willing to parse; every one has its setting and its fault code."""

    max_bytes: int = 1_048_576  # KRUISPUNT_MAX_REQUEST_BYTES
    max_depth: int = 64  # KRUISPUNT_MAX_DEPTH
    max_elements: int = 5_000  # KRUISPUNT_MAX_ELEMENTS: a request's data travels as text (documents in base64)
    max_attributes: int = 4_096  # KRUISPUNT_MAX_ATTRIBUTES: in the whole document
    max_attributes_per_element: int = 64  # KRUISPUNT_MAX_ATTRIBUTES_PER_ELEMENT
    max_namespaces: int = 1_024  # KRUISPUNT_MAX_NAMESPACES: namespace declarations in the whole document
    max_namespaces_in_scope: int = 128  # KRUISPUNT_MAX_NAMESPACES_IN_SCOPE: declarations above and on one element
    max_text_chars: int = 786_432  # KRUISPUNT_MAX_TEXT_CHARS: one text node or attribute value
    max_tag_bytes: int = 65_536  # KRUISPUNT_MAX_TAG_BYTES: one start tag, its attributes and declarations
    max_ids: int = 64  # KRUISPUNT_MAX_IDS: attributes named Id, ID or id (in any namespace)

    def scaled(self, max_bytes: int) -> EnvelopeLimits:
        """The same limits for larger documents (a peer's change-feed page): counts grow with the size."""
        factor = max(1.0, max_bytes / self.max_bytes)
        grown = {f.name: int(getattr(self, f.name) * factor) for f in fields(self)
                 if f.name not in ("max_bytes", "max_depth", "max_namespaces_in_scope", "max_tag_bytes")}
        return replace(self, max_bytes=max_bytes, **grown)


@dataclass(frozen=True)
class Parsed:
    """A parsed document and its Id index: each Id value names exactly one element."""

    root: etree._Element
    ids: dict[str, etree._Element]


def safe_parser(remove_comments: bool = False) -> etree.XMLParser:
    """No entities, no DTD, no network: for XML we produced ourselves or read back from our own tables."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=remove_comments, remove_pis=False, collect_ids=False)


def check_size(length: int, limits: EnvelopeLimits) -> None:
    if length > limits.max_bytes:
        raise EnvelopeTooLarge(f"The message is {length} bytes; at most {limits.max_bytes} bytes are accepted.")


def parse_bounded(data: bytes, limits: EnvelopeLimits) -> Parsed:
    """Parse client bytes: no DTD, entities, XInclude or processing instructions, every limit enforced.

    Comments are dropped while parsing: exclusive canonicalisation leaves them out of every digest, so a comment
    inside signed content (splitting a text node) must not change what is processed."""
    check_size(len(data), limits)
    ascii_compatible = _ascii_compatible(data)
    if ascii_compatible and b"<!DOCTYPE" in data:  # entities can only be declared in a DTD
        raise EnvelopeForbiddenConstruct(
            "The request contains a DTD or entity declaration; SOAP messages must not carry one.")
    if ascii_compatible and len(data) > limits.max_tag_bytes and _long_tag(limits.max_tag_bytes).search(data):
        raise EnvelopeTagTooLong(  # refused before libxml2 spends its time on ~100,000 attributes of one element
            f"A start tag is longer than {limits.max_tag_bytes} bytes (KRUISPUNT_MAX_TAG_BYTES): an element's "
            "attributes and namespace declarations fit in that; large values belong in element text.")
    if ascii_compatible and _within_bounds(data, limits):
        root = _parse_whole(data)
        _refuse_constructs(root)
        if len(data) > limits.max_text_chars:
            _check_texts(root, limits)
        ids, elements = _index(root, limits)
        if elements > limits.max_depth and _deeper(limits.max_depth)(root):
            raise _too_deep(limits)
    else:
        root = _parse_counted(data, limits)
        _refuse_constructs(root)
        ids, _ = _index(root, limits)
    return Parsed(root, ids)


def _refuse_constructs(root: etree._Element) -> None:
    """What a SOAP message must not carry, looked for in the tree: a DTD, processing instructions, XInclude."""
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise EnvelopeForbiddenConstruct("The request carries a document type declaration; remove it.")
    if next(iter(_outside(root)), None) is not None or next(root.iter(etree.PI), None) is not None:
        raise EnvelopeForbiddenConstruct(
            "The request contains a processing instruction (<?…?>) after the XML declaration; remove it.")
    if next(root.iter(f"{{{XINCLUDE}}}*"), None) is not None:
        raise EnvelopeForbiddenConstruct("The request contains XInclude elements; they are not allowed.")


def index_ids(root: etree._Element, limits: EnvelopeLimits) -> dict[str, etree._Element]:
    """Every Id value with its element; a value used twice, more Ids than allowed, or an element with too many
    attributes is refused."""
    return _index(root, limits)[0]


def _index(root: etree._Element, limits: EnvelopeLimits) -> tuple[dict[str, etree._Element], int]:
    """index_ids, and how many elements the walk met."""
    ids: dict[str, etree._Element] = {}
    duplicates: set[str] = set()
    count = elements = 0
    crowded = limits.max_attributes_per_element
    for element in root.iter():
        elements += 1
        names = element.keys()
        if not names:
            continue
        if len(names) > crowded:
            raise _crowded(element.tag, len(names), limits)
        for name in names:
            if name[-2:] in _ID_NAMES and name.rpartition("}")[2] in _ID_NAMES:
                count += 1
                value = element.get(name)
                if value in ids:
                    duplicates.add(value)
                ids[value] = element
    if count > limits.max_ids:
        raise _too_many_ids(count, limits)
    if duplicates:
        raise DuplicateId(f"The Id value(s) {', '.join(sorted(duplicates))} occur more than once; every Id must "
                          "be unique.")
    return ids, elements


_LONG_TEXT = etree.XPath("boolean(//text()[string-length(.) > $n])")
_LONG_VALUE = etree.XPath("boolean(//@*[string-length(.) > $n])")
_PARSERS = threading.local()  # an lxml parser serves one thread at a time
_ID_NAMES = frozenset({"Id", "ID", "id"})  # wsu:Id, xml-crypto's Id, and the spellings a wrapping attack might use


@functools.cache
def _long_tag(size: int) -> re.Pattern[bytes]:
    """A start tag (not a comment, CDATA section or processing instruction) of size bytes or more: one scan of the
    document, at the speed of the regular expression engine, since a tag ends at the first '>'."""
    return re.compile(rb"<[^!?<>][^<>]{%d}" % (size - 1))


@functools.cache
def _deeper(depth: int) -> etree.XPath:
    """Whether any element lies deeper than depth: one XPath step per level, evaluated in C."""
    return etree.XPath("boolean(/" + "/*" * (depth + 1) + ")")


def _outside(root: etree._Element) -> Iterable[etree._Element]:
    yield from root.itersiblings(preceding=True)
    yield from root.itersiblings()


def _ascii_compatible(data: bytes) -> bool:
    """Whether byte counts of '<', '=' and 'xmlns' bound the document's markup (not UTF-16, not EBCDIC)."""
    head = data[3:259] if data.startswith(b"\xef\xbb\xbf") else data[:256]
    head = head.lstrip(b" \t\r\n")
    if not head.startswith(b"<"):
        return False
    return bool(_ASCII_DECLARATION.match(head)) or not _ANY_DECLARATION.match(head)


def _elements_at_most(data: bytes) -> int:
    """Each element opens with one '<' and, unless empty (<a/>), closes with one '</'."""
    return data.count(b"<") - data.count(b"</")


def _within_bounds(data: bytes, limits: EnvelopeLimits) -> bool:
    """Whether the document cannot break a count limit, judged by its size and, past that, by counting bytes (text
    lengths are looked at in the tree): an element
    takes at least 4 bytes (<a/>) and one '<'; an attribute 5 ( a="") and one '='; a namespace declaration 9
    ( xmlns="") and one 'xmlns' (and the declarations in scope of an element are at most all of them)."""
    size = len(data)
    namespaces = min(limits.max_namespaces, limits.max_namespaces_in_scope)
    return ((size // 4 <= limits.max_elements or _elements_at_most(data) <= limits.max_elements)
            and (size // 5 <= limits.max_attributes or data.count(b"=") <= limits.max_attributes)
            and (size // 9 <= namespaces or data.count(b"xmlns") <= namespaces))


def _parse_whole(data: bytes) -> etree._Element:
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = safe_parser(remove_comments=True)
    try:
        return etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise _syntax(exc) from None


def _parse_counted(data: bytes, limits: EnvelopeLimits) -> etree._Element:
    """Count the document with a tree-less parser fed in chunks, refusing it at the first event past a limit (no
    partial tree is left behind for the garbage collector, so a refusal costs no memory); then parse it whole and
    look at the length of its texts."""
    counter = _Counter(limits)
    parser = etree.XMLParser(target=counter, resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True, remove_pis=False)
    try:
        for offset in range(0, len(data), _CHUNK):
            parser.feed(data[offset:offset + _CHUNK])
        parser.close()
    except etree.XMLSyntaxError as exc:
        raise _syntax(exc) from None
    root = _parse_whole(data)
    if len(data) > limits.max_text_chars:
        _check_texts(root, limits)
    return root


def _check_texts(root: etree._Element, limits: EnvelopeLimits) -> None:
    """Text is looked at in the tree, by libxml2's XPath (a callback per text costs more); attribute values are
    shorter than a start tag may be (KRUISPUNT_MAX_TAG_BYTES), or the counting parser saw them."""
    if _LONG_TEXT(root, n=limits.max_text_chars) or (
            limits.max_tag_bytes > limits.max_text_chars and _LONG_VALUE(root, n=limits.max_text_chars)):
        raise _long(limits)


class _Counter:
    """A parser target that keeps running totals and raises the limit's fault at the first event past it."""

    def __init__(self, limits: EnvelopeLimits) -> None:
        self.limits = limits
        self.elements = self.attributes = self.namespaces = self.depth = self.scope = self.ids = 0
        self.declared: list[int] = []  # per open element: how many namespaces it declared

    def start(self, tag: str, attrib: dict[str, str], nsmap: dict[str, str] | None = None) -> None:
        limits = self.limits
        self.elements += 1
        self.depth += 1
        if self.elements > limits.max_elements:
            raise EnvelopeTooManyElements(f"The message holds more than {limits.max_elements} elements "
                                          "(KRUISPUNT_MAX_ELEMENTS); split it into several requests.")
        if self.depth > limits.max_depth:
            raise _too_deep(limits)
        if attrib:
            self._attributes(tag, attrib)
        declared = len(nsmap) if nsmap else 0
        self.declared.append(declared)
        if declared:
            self.scope += declared
            if self.scope > limits.max_namespaces_in_scope:
                raise EnvelopeTooManyNamespaces(
                    f"An element has more than {limits.max_namespaces_in_scope} namespace declarations in scope "
                    "(KRUISPUNT_MAX_NAMESPACES_IN_SCOPE); declare each namespace once, on the Envelope.")

    def _attributes(self, tag: str, attrib: dict[str, str]) -> None:
        limits = self.limits
        if len(attrib) > limits.max_attributes_per_element:
            raise _crowded(tag, len(attrib), limits)
        self.attributes += len(attrib)
        if self.attributes > limits.max_attributes:
            raise EnvelopeTooManyAttributes(
                f"The message carries more than {limits.max_attributes} attributes (KRUISPUNT_MAX_ATTRIBUTES).")
        for name, value in attrib.items():
            if len(value) > limits.max_text_chars:
                raise _long(limits)
            if name[-2:] in _ID_NAMES and name.rpartition("}")[2] in _ID_NAMES:
                self.ids += 1
                if self.ids > limits.max_ids:
                    raise _too_many_ids(self.ids, limits)

    def start_ns(self, prefix: str, uri: str) -> None:
        self.namespaces += 1
        if self.namespaces > self.limits.max_namespaces:
            raise EnvelopeTooManyNamespaces(
                f"The message declares more than {self.limits.max_namespaces} namespaces (KRUISPUNT_MAX_NAMESPACES); "
                "declare each namespace once, on the Envelope.")

    def end(self, tag: str) -> None:
        self.depth -= 1
        self.scope -= self.declared.pop()

    def doctype(self, *_: object) -> None:
        raise EnvelopeForbiddenConstruct("The request carries a document type declaration; remove it.")

    def pi(self, *_: object) -> None:
        raise EnvelopeForbiddenConstruct(
            "The request contains a processing instruction (<?…?>) after the XML declaration; remove it.")

    def close(self) -> None:
        return None


def _too_deep(limits: EnvelopeLimits) -> EnvelopeTooDeep:
    return EnvelopeTooDeep(f"The request nests elements deeper than {limits.max_depth} levels (KRUISPUNT_MAX_DEPTH).")


def _crowded(tag: object, count: int, limits: EnvelopeLimits) -> EnvelopeTooManyAttributes:
    name = tag if isinstance(tag, str) else "an element"
    return EnvelopeTooManyAttributes(
        f"The element {name} carries {count} attributes; at most {limits.max_attributes_per_element} are accepted "
        "on one element (KRUISPUNT_MAX_ATTRIBUTES_PER_ELEMENT).")


def _too_many_ids(count: int, limits: EnvelopeLimits) -> EnvelopeTooManyIds:
    return EnvelopeTooManyIds(f"The message carries {count} Id attributes or more; at most {limits.max_ids} are "
                              "accepted (KRUISPUNT_MAX_IDS). Give Ids only to what the signature references.")


def _long(limits: EnvelopeLimits) -> EnvelopeTextTooLong:
    return EnvelopeTextTooLong(
        f"A text or attribute value is longer than {limits.max_text_chars} characters (KRUISPUNT_MAX_TEXT_CHARS).")


def _syntax(exc: etree.XMLSyntaxError) -> EnvelopeMalformed | EnvelopeTooDeep:
    message = exc.msg or "syntax error"
    if "depth" in message.lower():
        return EnvelopeTooDeep("The request nests elements deeper than libxml2's own limit of 256 levels.")
    return EnvelopeMalformed(f"The request is not well-formed XML: {message}.")
