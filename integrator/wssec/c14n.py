"""Exclusive XML canonicalisation (with InclusiveNamespaces PrefixList) of one element of a parsed tree, by libxml2.

lxml passes libxml2 only the listed prefixes its parser has seen as names, so the PrefixList token "#default"
(the default namespace, as WSS4J writes it when an ancestor declares one) never reaches libxml2. For that case
the default namespace declarations are taken from libxml2's inclusive canonical form of the same element: in
both forms the n-th '<' opens the same tag (c14n escapes '<' everywhere else), and Exclusive C14N treats a listed
prefix exactly as inclusive C14N does.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

DEFAULT = "#default"


def canonical(element: etree._Element, prefixes: Sequence[str] = ()) -> bytes:
    """The exclusive canonical form (without comments) of element and its descendants."""
    if not prefixes:
        return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)
    named = [p for p in prefixes if p != DEFAULT]
    exclusive = etree.tostring(element, method="c14n", exclusive=True, with_comments=False,
                               inclusive_ns_prefixes=named or None)
    if len(named) == len(prefixes):
        return exclusive
    inclusive = etree.tostring(element, method="c14n", exclusive=False, with_comments=False)
    return _default_declarations_from(inclusive, exclusive)


def _default_declarations_from(inclusive: bytes, exclusive: bytes) -> bytes:
    pieces = exclusive.split(b"<")
    models = inclusive.split(b"<")
    if len(pieces) != len(models):  # cannot happen for two canonical forms of one element
        raise ValueError("canonical forms of one element differ in structure")
    out = [pieces[0]]
    for piece, model in zip(pieces[1:], models[1:], strict=True):
        if piece.startswith(b"/"):
            out.append(piece)
            continue
        name, rest = _split_name(piece)
        _, model_rest = _split_name(model)
        out.append(name + _default_declaration(model_rest)[0] + _default_declaration(rest)[1])
    return b"<".join(out)


def _split_name(tag: bytes) -> tuple[bytes, bytes]:
    end = min((i for i in (tag.find(b" "), tag.find(b">")) if i >= 0), default=len(tag))
    return tag[:end], tag[end:]


def _default_declaration(rest: bytes) -> tuple[bytes, bytes]:
    """(' xmlns="…"' or b'', what follows it): canonical forms put the default namespace declaration first."""
    if not rest.startswith(b' xmlns="'):
        return b"", rest
    end = rest.index(b'"', len(b' xmlns="')) + 1
    return rest[:end], rest[end:]
