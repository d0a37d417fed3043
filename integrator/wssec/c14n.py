"""Exclusive XML canonicalisation (with an InclusiveNamespaces PrefixList) of one element of a parsed tree.

libxml2 makes the exclusive canonical form; a PrefixList is applied here, not by libxml2, unless it is short and
few namespaces are in scope, for two reasons: lxml passes libxml2 only prefixes its parser has seen as names, so
"#default" (the default namespace, as WSS4J writes it) never arrives; and libxml2 looks every listed prefix up
again at every element, a cost of elements x listed prefixes x namespaces in scope that a hostile PrefixList turns
into minutes.

Exclusive C14N renders a listed prefix as inclusive C14N does: on the apex every namespace in scope for it, below
only where an element declares it with another value than its parent has in scope; and it no longer renders it for
being visibly used. So the listed prefixes' declarations are taken out of libxml2's exclusive form and those put
in, element by element (in a canonical form the n-th '<' opens the n-th element: c14n escapes '<' everywhere else).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from lxml import etree

DEFAULT = "#default"
_DECLARATION = re.compile(rb' xmlns(?::([^=]+))?="([^"]*)"')


# libxml2 applies a PrefixList itself where its cost (elements x listed prefixes x namespaces in scope) stays
# small whatever the element's size: a few prefixes, a few namespaces in scope (WSS4J's lists, for one)
LIBXML2_PREFIXES, LIBXML2_SCOPE = 8, 32


def canonical(element: etree._Element, prefixes: Sequence[str] = ()) -> bytes:
    """The exclusive canonical form (without comments) of element and its descendants."""
    if not prefixes:
        return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)
    if DEFAULT not in prefixes and len(prefixes) <= LIBXML2_PREFIXES and len(element.nsmap) <= LIBXML2_SCOPE:
        return etree.tostring(element, method="c14n", exclusive=True, with_comments=False,
                              inclusive_ns_prefixes=list(prefixes))
    return with_prefix_list(element, prefixes)


def with_prefix_list(element: etree._Element, prefixes: Sequence[str]) -> bytes:
    """canonical() with the PrefixList applied by kruispunt (any prefixes, "#default" too)."""
    exclusive = etree.tostring(element, method="c14n", exclusive=True, with_comments=False)
    listed = frozenset("" if p == DEFAULT else p for p in prefixes) - {"xml", "xmlns"}
    if not listed:
        return exclusive
    return _with_listed(exclusive, listed, _renderings(element, listed))


def _renderings(element: etree._Element, listed: frozenset[str]) -> list[dict[str, str]]:
    """For each element in document order, the declarations of listed prefixes inclusive C14N renders on it: on the
    apex every one in scope (xmlns="" is not rendered there), below those it declares with another value than its
    parent has in scope."""
    scope = element.nsmap
    out: list[dict[str, str]] = []
    own: dict[str, str] = {}
    nothing: dict[str, str] = {}
    for event, item in etree.iterwalk(element, events=("start-ns", "start")):
        if event == "start-ns":
            prefix, uri = item  # type: ignore[misc]
            if prefix in listed:
                own[prefix] = uri
        elif not out:
            out.append({p: uri for p in listed if (uri := scope.get(p or None, ""))})
            own = {}
        elif not own:
            out.append(nothing)
        else:
            parent = item.getparent().nsmap  # type: ignore[union-attr]
            out.append({p: v for p, v in own.items() if v != parent.get(p or None, "")})
            own = {}
    return out


def _with_listed(exclusive: bytes, listed: frozenset[str], renderings: list[dict[str, str]]) -> bytes:
    pieces = exclusive.split(b"<")
    encoded = {p.encode() for p in listed}
    declares_listed = _declaring(frozenset(encoded))
    index = 0
    for position in range(1, len(pieces)):
        piece = pieces[position]
        if piece[:1] in (b"/", b"?"):
            continue
        rendered = renderings[index]
        index += 1
        if rendered:  # the apex, or an element declaring a listed prefix anew: rebuild its declarations
            pieces[position] = _retagged(piece, encoded, rendered)
        else:  # elsewhere a listed prefix is only ever declared for being used: the apex has it in effect
            end = piece.find(b">")  # ' xmlns:p="' cannot occur in an attribute value: c14n escapes its quotes
            head = piece[:end]
            if b" xmlns" in head:
                pieces[position] = declares_listed.sub(b"", head) + piece[end:]
    if index != len(renderings):  # cannot happen for a canonical form of this element
        raise ValueError("the canonical form and the element differ in structure")
    return b"<".join(pieces)


@functools.lru_cache(maxsize=256)
def _declaring(prefixes: frozenset[bytes]) -> re.Pattern[bytes]:
    """A declaration of one of the prefixes (b"" the default namespace), as libxml2 writes it in a start tag."""
    names = sorted(re.escape(p) for p in prefixes if p)
    alternatives = ([rb' xmlns:(?:' + b"|".join(names) + rb')="[^"]*"'] if names else []) + (
        [rb' xmlns="[^"]*"'] if b"" in prefixes else [])
    return re.compile(b"|".join(alternatives))


def _retagged(piece: bytes, listed: set[bytes], rendered: dict[str, str]) -> bytes:
    """One start tag with its listed prefixes' declarations replaced by those inclusive C14N renders."""
    end = len(piece)
    for stop in (b" ", b">"):
        found = piece.find(stop)
        if 0 <= found < end:
            end = found
    name, position = piece[:end], end
    declarations: dict[bytes, bytes] = {}
    while (match := _DECLARATION.match(piece, position)) is not None:
        prefix = match.group(1) or b""
        if prefix not in listed:
            declarations[prefix] = match.group(2)
        position = match.end()
    for prefix, uri in rendered.items():
        declarations[prefix.encode()] = _escape(uri)
    head = b"".join(b' xmlns="' + uri + b'"' if not prefix else b" xmlns:" + prefix + b'="' + uri + b'"'
                    for prefix, uri in sorted(declarations.items()))
    return name + head + piece[position:]


def _escape(uri: str) -> bytes:
    """An attribute value as C14N writes it."""
    return (uri.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;").replace("\t", "&#x9;")
            .replace("\n", "&#xA;").replace("\r", "&#xD;")).encode()
