"""Is a new minor version a safe replacement for the previous one? The list of breaking changes says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repository.documents import CompiledContract

MAX_DEPTH = 32


@dataclass(frozen=True)
class BreakingChange:
    """One way the new version would break a client of the old one."""

    path: str
    kind: str  # operation removed | element removed | required element added | type narrowed | occurs narrowed
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}" + (f" ({self.detail})" if self.detail else "")


def breaking_changes(old: CompiledContract, new: CompiledContract) -> list[BreakingChange]:
    """Operations and message elements removed, required elements added, types or occurrences narrowed."""
    changes: list[BreakingChange] = []
    for name, op in old.operations.items():
        if name not in new.operations:
            changes.append(BreakingChange(name, "operation removed", ""))
            continue
        for label, element in (("request", op.request), ("response", op.response)):
            other = getattr(new.operations[name], label)
            if other != element:
                changes.append(BreakingChange(f"{name}/{label}", "element removed",
                                              f"{_local(element)} replaced by {_local(other)}"))
                continue
            _compare_element(old.schema.maps.elements[element], new.schema.maps.elements[element],
                             f"{name}/{_local(element)}", changes, 0)
    return changes


def _local(name: str) -> str:
    return name.rpartition("}")[2]


def _children(xsd_type: Any) -> dict[str, Any]:
    if xsd_type is None or not xsd_type.is_complex() or not hasattr(xsd_type.content, "iter_elements"):
        return {}
    return {child.name: child for child in xsd_type.content.iter_elements()}


def _compare_element(old: Any, new: Any, path: str, changes: list[BreakingChange], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    if new.min_occurs > old.min_occurs or (old.max_occurs is None and new.max_occurs is not None) or (
        old.max_occurs is not None and new.max_occurs is not None and new.max_occurs < old.max_occurs
    ):
        changes.append(BreakingChange(path, "occurs narrowed",
                                      f"[{old.min_occurs}..{old.max_occurs or '*'}] → "
                                      f"[{new.min_occurs}..{new.max_occurs or '*'}]"))
    old_type, new_type = old.type, new.type
    if old_type.is_simple() or new_type.is_simple() or old_type.has_simple_content():
        narrowed = _simple_narrowing(old_type, new_type)
        if narrowed:
            changes.append(BreakingChange(path, "type narrowed", narrowed))
        return
    old_children, new_children = _children(old_type), _children(new_type)
    for name, child in old_children.items():
        if name not in new_children:
            changes.append(BreakingChange(f"{path}/{_local(name)}", "element removed", ""))
        else:
            _compare_element(child, new_children[name], f"{path}/{_local(name)}", changes, depth + 1)
    for name, child in new_children.items():
        if name not in old_children and child.min_occurs > 0:
            changes.append(BreakingChange(f"{path}/{_local(name)}", "required element added", ""))


def _simple_type(xsd_type: Any) -> Any:
    return xsd_type.content if xsd_type.is_complex() else xsd_type


def _primitive(xsd_type: Any) -> str:
    while getattr(xsd_type, "base_type", None) is not None:
        xsd_type = xsd_type.base_type
    return str(getattr(xsd_type, "name", "") or "")


def _facet(xsd_type: Any, name: str) -> Any:
    facets = getattr(xsd_type, "facets", {}) or {}
    return facets.get(f"{{http://www.w3.org/2001/XMLSchema}}{name}")


def _simple_narrowing(old_type: Any, new_type: Any) -> str:
    old_simple, new_simple = _simple_type(old_type), _simple_type(new_type)
    if old_simple is None or new_simple is None or not hasattr(new_simple, "is_simple"):
        return "simple content replaced by complex content"
    if _primitive(old_simple) != _primitive(new_simple):
        return f"{_primitive(old_simple) or 'type'} became {_primitive(new_simple) or 'another type'}"
    old_enum = set(getattr(old_simple, "enumeration", None) or [])
    new_enum = set(getattr(new_simple, "enumeration", None) or [])
    if new_enum and (not old_enum or old_enum - new_enum):
        removed = sorted(map(str, old_enum - new_enum)) if old_enum else ["(any value)"]
        return f"enumeration no longer allows {', '.join(removed)}"
    old_patterns = _patterns(old_simple)
    new_patterns = _patterns(new_simple)
    if new_patterns and new_patterns != old_patterns:
        return f"pattern {old_patterns or 'none'} became {new_patterns}"
    for facet, tighter in (("maxLength", lambda o, n: n < o), ("minLength", lambda o, n: n > o),
                           ("length", lambda o, n: n != o), ("maxInclusive", lambda o, n: n < o),
                           ("minInclusive", lambda o, n: n > o), ("maxExclusive", lambda o, n: n < o),
                           ("minExclusive", lambda o, n: n > o), ("totalDigits", lambda o, n: n < o),
                           ("fractionDigits", lambda o, n: n < o)):
        old_value, new_value = _facet_value(old_simple, facet), _facet_value(new_simple, facet)
        if new_value is not None and (old_value is None or tighter(old_value, new_value)):
            return f"{facet} {old_value if old_value is not None else 'unbounded'} → {new_value}"
    return ""


def _patterns(xsd_type: Any) -> list[str]:
    found: list[str] = []
    while xsd_type is not None and hasattr(xsd_type, "patterns"):
        if xsd_type.patterns is not None:
            found.extend(xsd_type.patterns.regexps)
        xsd_type = getattr(xsd_type, "base_type", None)
    return sorted(found)


def _facet_value(xsd_type: Any, name: str) -> Any:
    while xsd_type is not None:
        facet = _facet(xsd_type, name)
        if facet is not None:
            return getattr(facet, "value", None)
        xsd_type = getattr(xsd_type, "base_type", None)
    return None
