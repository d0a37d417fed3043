"""Stage: a payload is checked against its XSD (lxml for speed, xmlschema for the precise reason) and INSZ
check digits are verified with python-stdnum; answers are built from plain data and checked the same way."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import xmlschema
from lxml import etree
from stdnum.be import bis, nn

from integrator.faults import ContractViolation, InszInvalid, KruispuntFault
from integrator.namespaces import KP

INSZ_TYPE = f"{{{KP}}}InszType"
PRECISE_REASON_ELEMENTS = 1_000


class Contract:
    """One compiled XSD (with its imports), loaded once per worker."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lxml = etree.XMLSchema(etree.parse(str(path), parser=etree.XMLParser(resolve_entities=False)))
        self._xs = xmlschema.XMLSchema(str(path))
        self._shape = Shape.of(self._xs)
        self._insz_paths = {
            name: list(_insz_paths(decl, "."))
            for name, decl in self._xs.maps.elements.items()
            if not name.startswith("{http://www.w3.org/")
        }

    def validate(self, element: etree._Element, fault: type[KruispuntFault] = ContractViolation) -> None:
        """Refuse an element that does not match the schema, or carries an INSZ with wrong check digits."""
        if not self._lxml.validate(element):
            raise fault(self._reason(element))
        for path in self._insz_paths.get(element.tag, []):
            for node in element.iterfind(path):
                check_insz(node.text or "", etree.QName(node).localname)

    def check(self, element: etree._Element, fault: type[KruispuntFault] = ContractViolation) -> dict[str, Any]:
        """Validate one element; return it decoded as a dict with local names as keys."""
        self.validate(element, fault)
        decoded = self._shape.decode(element)
        return decoded if isinstance(decoded, dict) else {}

    def _reason(self, element: etree._Element) -> str:
        """xmlschema's reason (its path names the element as the caller wrote it) for an element of ordinary size;
        libxml2's for a large one, where xmlschema would cost seconds (it reads every element's namespaces)."""
        if self._size(element) <= PRECISE_REASON_ELEMENTS:
            error = next(iter(self._xs.iter_errors(element)), None)
            if error is not None:
                return f"The message does not match its schema at {error.path}: {error.reason}"
        last = self._lxml.error_log.last_error
        return f"The message does not match its schema at {last.path}: {last.message}"

    _size = etree.XPath("count(descendant-or-self::*)")


XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_CONVERT: dict[str, Callable[[str], Any]] = {
    "boolean": lambda text: text.strip() in ("true", "1"),
    "integer": int, "int": int, "long": int, "short": int, "byte": int, "nonNegativeInteger": int,
    "positiveInteger": int, "negativeInteger": int, "nonPositiveInteger": int, "unsignedInt": int,
    "unsignedLong": int, "unsignedShort": int, "unsignedByte": int,
    "decimal": Decimal, "float": float, "double": float,
    "date": lambda text: _xs_date(text), "dateTime": lambda text: datetime.fromisoformat(text.strip()),
}
_TIMEZONE = re.compile(r"(Z|[+-][0-9]{2}:[0-9]{2})$")


def _xs_date(text: str) -> date:
    """An xs:date (its optional timezone says where the day lies, not which day it is)."""
    return date.fromisoformat(_TIMEZONE.sub("", text.strip()))


@dataclass(frozen=True)
class Shape:
    """What decoding a valid document needs from its schema: which elements repeat, which are complex, and
    which simple ones are numbers, booleans, dates or timestamps — each known by (parent element, element), since
    the same name may repeat under one parent and not under another. Decoding with lxml and this is far cheaper
    than xmlschema's; it is the one decoder: services receive typed values and never parse them again."""

    repeated: frozenset[tuple[str | None, str]]
    complex: frozenset[tuple[str | None, str]]
    converters: dict[tuple[str | None, str], Callable[[str], Any]]

    @classmethod
    def of(cls, schema: xmlschema.XMLSchema) -> Shape:
        repeated: set[tuple[str | None, str]] = set()
        complex_: set[tuple[str | None, str]] = set()
        converters: dict[tuple[str | None, str], Callable[[str], Any]] = {}
        seen: set[tuple[str | None, int]] = set()
        pending: list[tuple[str | None, Any]] = [
            (None, d) for n, d in schema.maps.elements.items() if not n.startswith("{http://www.w3.org/")]
        while pending:
            parent, decl = pending.pop()
            if (parent, id(decl)) in seen or getattr(decl, "type", None) is None:
                continue
            seen.add((parent, id(decl)))
            key = (parent, decl.name)
            if decl.max_occurs != 1:
                repeated.add(key)
            if decl.type.is_complex() and not decl.type.has_simple_content():
                complex_.add(key)
                if hasattr(decl.type.content, "iter_elements"):
                    pending.extend((decl.name, child) for child in decl.type.content.iter_elements())
            else:
                primitive = decl.type
                while getattr(primitive, "base_type", None) is not None and primitive.local_name not in _CONVERT:
                    primitive = primitive.base_type
                if getattr(primitive, "local_name", None) in _CONVERT:
                    converters[key] = _CONVERT[primitive.local_name]
        return cls(frozenset(repeated), frozenset(complex_), converters)

    def decode(self, element: etree._Element, parent: str | None = None) -> Any:
        children = [c for c in element if isinstance(c.tag, str)]
        key = (parent, element.tag)
        if not children:
            if element.get(XSI_NIL) in ("true", "1"):
                return None
            if key in self.complex:
                return {}
            convert = self.converters.get(key)
            text = element.text if element.text is not None else ""
            return convert(text) if convert else text
        result: dict[str, Any] = {}
        for child in children:
            name = etree.QName(child).localname
            value = self.decode(child, element.tag)
            if (element.tag, child.tag) in self.repeated:
                result.setdefault(name, []).append(value)
            else:
                result[name] = value
        return result


def _insz_paths(decl: Any, prefix: str, depth: int = 0) -> Iterator[str]:
    if depth > 20:
        return
    xsd_type = getattr(decl, "type", None)
    if xsd_type is not None and xsd_type.is_complex() and hasattr(xsd_type.content, "iter_elements"):
        for child in xsd_type.content.iter_elements():
            path = f"{prefix}/{child.name}"
            if _is_insz(child.type):
                yield path
            else:
                yield from _insz_paths(child, path, depth + 1)


def _is_insz(xsd_type: Any) -> bool:
    while xsd_type is not None:
        if getattr(xsd_type, "name", None) == INSZ_TYPE:
            return True
        xsd_type = getattr(xsd_type, "base_type", None)
    return False


def check_insz(value: str, label: str = "INSZ") -> str:
    """Accept a National Register or BIS number whose check digits are right."""
    if nn.is_valid(value) or bis.is_valid(value):
        return value
    raise InszInvalid(
        f"{label} {value!r} is not a valid INSZ: the check digits (last two) do not match the first nine "
        "digits for a National Register or BIS number."
    )
