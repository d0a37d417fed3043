"""Plain data to XML: how the client writes kp:Caller (and how a caller may write any request element)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from lxml import etree


def build(tag: str, data: Mapping[str, Any]) -> etree._Element:
    """Plain data to XML in the namespace of tag: dicts nest, lists repeat, None is left out."""
    namespace = etree.QName(tag).namespace
    root = etree.Element(tag)
    _fill(root, data, namespace)
    return root


def _fill(parent: etree._Element, data: Mapping[str, Any], namespace: str | None) -> None:
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            child = etree.SubElement(parent, f"{{{namespace}}}{key}" if namespace else key)
            if isinstance(item, Mapping):
                _fill(child, item, namespace)
            else:
                child.text = text(item)


def text(value: Any) -> str:
    """A value as XML Schema writes it: booleans as true/false, dates and datetimes in ISO 8601."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


__all__ = ["build", "text"]
