"""The classes of bench/hostile.py: each hostile input at the size limit (or just past a smaller limit), the worst
inputs that stay within every limit (unsigned and validly signed), and the valid requests they are compared to.

Each Case makes one request at a time: a signed one anew each time (fresh Timestamp, MessageId and signature: the
integrator refuses replays), an unsigned one once. `fill` cases are filled to just under the size limit (the
number of filler units is found once, by fit()).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hostile_inputs import (
    BENCH_NS,
    BODY,
    BST,
    REFERENCE,
    SIGNED_INFO,
    TAX_NS,
    Maker,
    Tree,
    attributes,
    declarations,
    doctype,
    documents,
    fit,
    ids_on,
    laughs,
    lookup,
    nested,
    raw,
    reference_ids,
    resign,
    serialise,
    sign,
)
from lxml import etree

from integrator.namespaces import WSU, q

Build = Callable[[Maker, int], bytes]
Decorate = Callable[[Tree, int], Sequence[etree._Element]]  # adds content; returns more header blocks to sign
After = Callable[[Tree, Maker, int], None]  # changes the signed tree
CONTRACT = "Client.Contract"  # a validly signed request the schema refuses: any Client.Contract.* fault (or 200)
MISSING = "Client.Security.Missing"
DEFAULT_NS = "urn:kruispunt:bench:default"
WSU_ID = q(WSU, "Id")


@dataclass
class Case:
    name: str
    group: str  # "valid", "hostile" or "within" (every limit respected)
    expect: str  # "200", a fault code, or CONTRACT
    build: Build
    signed: bool = False
    fill: bool = True
    units: int | None = None

    def make(self, maker: Maker) -> bytes:
        if self.units is None:
            self.units = fit(lambda n: self.build(maker, n), maker.size) if self.fill else 0
        return self.build(maker, self.units)


def request(decorate: Decorate | None = None, after: After | None = None, *, signed: bool = True,
            nsmap: dict[str | None, str] | None = None) -> Build:
    """A lookup tree, decorated with n units, signed (then changed by after) or left unsigned."""
    def make(maker: Maker, n: int) -> bytes:
        tree = lookup(maker, nsmap)
        blocks = decorate(tree, n) if decorate else ()
        if signed:
            sign(tree, maker, blocks)
            if after is not None:
                after(tree, maker, n)
        return serialise(tree)
    return make


def unsigned(write: Callable[[int], bytes]) -> Build:
    return lambda _maker, n: write(n)


# --- what the trees are filled with ---------------------------------------------------------------------------
NAMESPACES = {f"p{i}": f"urn:kruispunt:bench:ns{i}" for i in range(1020)}
ELEMENTS = 4_900  # under the Body of the element-rich classes (KRUISPUNT_MAX_ELEMENTS: 5,000)
IN_SCOPE = 120  # declared on the Envelope of the within-limit classes (KRUISPUNT_MAX_NAMESPACES_IN_SCOPE: 128)
ENVELOPE_NS = dict(list(NAMESPACES.items())[:IN_SCOPE - 2])  # with soapenv and wsu: IN_SCOPE on the Envelope
PREFIXED = list(NAMESPACES.values())


def pad(tree: Tree) -> etree._Element:
    return etree.SubElement(tree.payload, f"{{{TAX_NS}}}Padding")


def big_body(tree: Tree, n: int) -> Sequence[etree._Element]:
    documents(tree.payload, n)
    return ()


def crowded_rows(tree: Tree, n: int) -> Sequence[etree._Element]:
    """64 elements with 63 attributes each (4,032), values of n characters."""
    holder = pad(tree)
    for _ in range(64):
        etree.SubElement(holder, f"{{{TAX_NS}}}Row", {f"a{j}": "x" * n for j in range(63)})
    return ()


def many_elements(namespaces: Sequence[str]) -> Decorate:
    """ELEMENTS elements under the Body, in the given namespaces in turn, n characters of text each."""
    def decorate(tree: Tree, n: int) -> Sequence[etree._Element]:
        holder = pad(tree)
        for i in range(ELEMENTS):
            etree.SubElement(holder, f"{{{namespaces[i % len(namespaces)]}}}e").text = "x" * n
        return ()
    return decorate


def long_text(tree: Tree, n: int) -> Sequence[etree._Element]:
    etree.SubElement(tree.payload, f"{{{TAX_NS}}}Document").text = "x" * 700_000
    documents(tree.payload, n)
    return ()


def big_blocks(tree: Tree, n: int) -> Sequence[etree._Element]:
    """13 header blocks of n characters: with Body, Timestamp and kp:Caller, 16 references."""
    blocks = []
    for i in range(13):
        block = etree.SubElement(tree.header, f"{{{BENCH_NS}}}Block{i}")
        block.text = "x" * n
        blocks.append(block)
    return blocks


def sixty_ids(tree: Tree, n: int) -> Sequence[etree._Element]:
    """60 elements with a wsu:Id (with Body, Timestamp, token and kp:Caller: 64), n characters of text each."""
    holder = pad(tree)
    for i in range(60):
        etree.SubElement(holder, f"{{{TAX_NS}}}Item", {WSU_ID: f"item-{i}"}).text = "x" * n
    return ()


def depth_64(tree: Tree, n: int) -> Sequence[etree._Element]:
    """A chain of 61 elements under the request element (Envelope, Body, request: 64 levels), n characters each."""
    parent = tree.payload
    for _ in range(61):
        parent = etree.SubElement(parent, f"{{{TAX_NS}}}Level")
        parent.text = "x" * n
    return ()


def comment(tree: Tree, n: int) -> Sequence[etree._Element]:
    tree.payload.insert(1, etree.Comment("c" * n))
    return ()


def comments(tree: Tree, n: int) -> Sequence[etree._Element]:
    for _ in range(n):
        tree.payload.append(etree.Comment(""))
    return ()


def spaces(tree: Tree, n: int) -> Sequence[etree._Element]:
    tree.payload.text, tree.payload[0].tail, tree.payload[1].tail = " " * n, " " * n, " " * n
    return ()


def everything(tree: Tree, n: int) -> Sequence[etree._Element]:
    """Every limit at once: ELEMENTS elements in IN_SCOPE - 3 namespaces (and the default one), 62 elements with 63
    attributes and 47 of them a wsu:Id (64 Ids in all once signed), a chain 64 levels deep, n characters of text
    each."""
    holder = pad(tree)
    spaces_ = [DEFAULT_NS, *PREFIXED[:IN_SCOPE - 3]]  # as in_scope(IN_SCOPE - 2) declares them
    chain = holder
    for _ in range(60):
        chain = etree.SubElement(chain, f"{{{TAX_NS}}}Level")
        chain.text = "x" * n
    for i in range(ELEMENTS - 60):
        attrs = {f"a{j}": "v" for j in range(63)} if i < 62 else {}
        if i < 47:
            attrs[WSU_ID] = f"item-{i}"
        etree.SubElement(holder, f"{{{spaces_[i % len(spaces_)]}}}e", attrs).text = "x" * n
    return ()


# --- what is changed after signing ----------------------------------------------------------------------------
def rereferenced(aliases: int = 0, prefixes: Sequence[str] = (), keyless: bool = False,
                 alias_namespaces: Sequence[str] = ()) -> After:
    """The SignedInfo written again: the Body by its wsu:Id and by `aliases` more Id attributes given to it (Id,
    ID, id, {ns}Id), the Timestamp and kp:Caller; every reference with the PrefixList prefixes. keyless: as someone
    without a key would send it, the integrator's own certificate (copied from any of its answers) in the token
    and 256 random bytes as SignatureValue; the digests are right, so all of them are computed."""
    def after(tree: Tree, maker: Maker, _n: int) -> None:
        ids = reference_ids(tree)
        namespaces = list(alias_namespaces) or [f"{BENCH_NS}:{i}" for i in range(max(0, aliases - 3))]
        extra = ids_on(tree.body, aliases, namespaces) if aliases else []
        stamp = next(tree.root.iter(q(WSU, "Timestamp")))
        references = [(ids["Body"], tree.body), *((a, tree.body) for a in extra),
                      (ids["Timestamp"], stamp), (ids["Caller"], tree.caller)]
        if keyless:
            next(tree.root.iter(BST)).text = maker.copied_cert_b64
        resign(tree, None if keyless else maker.key, references, prefixes)
    return after


def token_text(chars: int | None) -> After:
    def after(tree: Tree, _maker: Maker, n: int) -> None:
        next(tree.root.iter(BST)).text = "A" * (chars if chars is not None else n)
    return after


def more_references(count: int, long_digests: bool = False) -> After:
    """count copies of the Body's reference appended to SignedInfo (with long_digests, each DigestValue n
    characters long: the filler)."""
    def after(tree: Tree, _maker: Maker, n: int) -> None:
        info = next(tree.root.iter(SIGNED_INFO))
        first = info.find(REFERENCE)
        assert first is not None
        for _ in range(count):
            extra = copy.deepcopy(first)
            if long_digests:
                extra[2].text = "A" * n
            info.append(extra)
    return after


def wrapped(into_block: bool) -> After:
    """Signature wrapping: the signed Body moves into the Header (inside a wrapper block, or as a header block of
    its own) and another Body, about another person, takes its place."""
    def after(tree: Tree, maker: Maker, _n: int) -> None:
        signed_body = tree.body
        target = tree.header if into_block else etree.SubElement(tree.header, f"{{{BENCH_NS}}}Wrapper")
        target.append(signed_body)
        other = lookup(maker)
        other.payload[0].text = "00000000097"  # someone the official may not ask about
        new_body = etree.SubElement(tree.root, BODY)
        new_body.append(other.payload)
    return after


def whitespace_run(tree: Tree, _maker: Maker, n: int) -> None:
    tree.header.tail = " " * n  # between Header and Body: outside everything signed


# --- the classes ----------------------------------------------------------------------------------------------
def hostile_unsigned() -> list[Case]:
    env = "Client.Envelope."
    wsu = b' xmlns:wsu="' + WSU.encode() + b'"'
    row60 = b"<x" + attributes(60) + b"/>"
    return [
        Case("attributes: ~100k on one element", "hostile", env + "TooManyAttributes",
             unsigned(lambda n: raw(b"<x" + attributes(n) + b"/>"))),
        Case("attributes: 65 on one element (small)", "hostile", env + "TooManyAttributes",
             unsigned(lambda _n: raw(b"<x" + attributes(65) + b"/>")), fill=False),
        Case("attributes: 60 on each of many elements", "hostile", env + "TooManyAttributes",
             unsigned(lambda n: raw(row60 * n))),
        Case("namespaces: ~50k declared on the Envelope", "hostile", env + "TooManyNamespaces",
             unsigned(lambda n: raw(root=declarations(n)))),
        Case("namespaces: nested, 63 levels x ~n each", "hostile", env + "TooManyNamespaces",
             unsigned(lambda n: raw(b"".join(b"<x" + declarations(n, b"q%d_" % d) + b">" for d in range(63))
                                    + b"</x>" * 63))),
        Case("namespaces: one on each of many elements", "hostile", env + "TooManyNamespaces",
             unsigned(lambda n: raw(b'<x xmlns:p="urn:p"/>' * n))),
        Case("namespaces: 1,025 on the Envelope (small)", "hostile", env + "TooManyNamespaces",
             unsigned(lambda _n: raw(root=declarations(1025))), fill=False),
        Case("depth: 65 (small, whole parse)", "hostile", env + "TooDeep",
             unsigned(lambda _n: raw(nested(63))), fill=False),
        Case("depth: 255 (small, whole parse)", "hostile", env + "TooDeep",
             unsigned(lambda _n: raw(nested(253))), fill=False),
        Case("depth: 257 (libxml2's own limit)", "hostile", env + "TooDeep",
             unsigned(lambda _n: raw(nested(255))), fill=False),
        Case("depth: ~150k levels", "hostile", env + "TooDeep", unsigned(lambda n: raw(nested(n)))),
        Case("elements: ~260k empty elements", "hostile", env + "TooManyElements",
             unsigned(lambda n: raw(b"<a/>" * n))),
        Case("text: one ~1 MiB text node", "hostile", env + "TextTooLong",
             unsigned(lambda n: raw(b"<x>" + b"x" * n + b"</x>"))),
        Case("text: one ~1 MiB attribute value", "hostile", env + "TextTooLong",
             unsigned(lambda n: raw(b'<x a="' + b"x" * n + b'"/>'))),
        Case("Ids: 65 wsu:Id (small, whole parse)", "hostile", env + "TooManyIds",
             unsigned(lambda _n: raw(b"".join(b'<x wsu:Id="i%d"/>' % i for i in range(65)), root=wsu)),
             fill=False),
        Case("Ids: 4,000 wsu:Id", "hostile", env + "TooManyIds",
             unsigned(lambda n: raw(b"".join(b'<x wsu:Id="i%d">' % i + b"x" * n + b"</x>" for i in range(4000)),
                                    root=wsu))),
        Case("DOCTYPE: billion laughs (UTF-8)", "hostile", env + "ForbiddenConstruct",
             unsigned(lambda _n: doctype(laughs(), "<x>&lol9;</x>")), fill=False),
        Case("DOCTYPE: billion laughs (UTF-16)", "hostile", env,  # libxml2's amplification guard may come first
             unsigned(lambda _n: doctype(laughs(), "<x>&lol9;</x>", "utf-16")), fill=False),
        Case("DOCTYPE: external entity (UTF-16)", "hostile", env + "ForbiddenConstruct",
             unsigned(lambda _n: doctype('<!ENTITY xxe SYSTEM "file:///etc/passwd">', "<x>&xxe;</x>", "utf-16")),
             fill=False),
        Case("DOCTYPE: ~1 MiB of entity declarations (UTF-16)", "hostile", env + "ForbiddenConstruct",
             unsigned(lambda n: doctype("".join(f'<!ENTITY e{i} "x">' for i in range(n)), "<x>&e0;</x>",
                                        "utf-16"))),
    ]


def in_scope(count: int) -> dict[str | None, str]:
    """The default namespace and count - 1 prefixed ones, declared on the Envelope (with soapenv and wsu)."""
    return {None: DEFAULT_NS, **dict(list(NAMESPACES.items())[:count - 1])}


MAX_PREFIXES = 64  # KRUISPUNT_MAX_INCLUSIVE_PREFIXES


def prefix_list(count: int, default: bool = True, named: bool = True) -> list[str]:
    """An InclusiveNamespaces PrefixList: "#default" and/or the prefixes in_scope(count) declares, as many as one
    PrefixList may hold."""
    prefixes = (["#default"] if default else []) + (["soapenv", "wsu", *list(NAMESPACES)[:count - 1]] if named else [])
    return prefixes[:MAX_PREFIXES]


def scoped_body(count: int) -> Decorate:
    return many_elements([DEFAULT_NS, *PREFIXED[:count - 1]])


def hostile_signed(scope: int) -> list[Case]:
    """scope: namespaces in scope of the PrefixList cases (their canonicalisation grows with its square)."""
    sec = "Client.Security."
    return [
        Case("token: 780k-char BinarySecurityToken", "hostile", sec + "TokenTooLarge",
             request(big_body, token_text(780_000)), signed=True),
        Case("token: ~1 MiB BinarySecurityToken", "hostile", "Client.Envelope.TextTooLong",
             request(after=token_text(None)), signed=True),
        Case("references: 17 (small)", "hostile", sec + "TooManyReferences",
             request(after=more_references(14)), signed=True, fill=False),
        Case("references: 1,300 with long digests", "hostile", sec + "TooManyReferences",
             request(after=more_references(1300, long_digests=True)), signed=True),
        Case("references: 16 to the same Id (1 MiB Body)", "hostile", sec + "SignatureInvalid",
             request(big_body, more_references(13)), signed=True),
        Case("references: Body x14 by alias Ids, no key", "hostile", sec + "SignatureInvalid",
             request(big_body, rereferenced(13, keyless=True)), signed=True),
        Case("references: Body x14 by alias Ids, signed", "hostile", sec + "SignatureInvalid",
             request(big_body, rereferenced(13)), signed=True),
        Case(f"references: #default + {scope} prefixes, Body x14, signed", "hostile", sec + "SignatureInvalid",
             request(scoped_body(scope), rereferenced(13, prefixes=prefix_list(scope), alias_namespaces=PREFIXED[:10]),
                     nsmap=in_scope(scope)), signed=True),
        Case(f"PrefixList #default + {scope} in scope, 4,900 el., no key", "hostile", sec + "SignatureInvalid",
             request(scoped_body(scope), rereferenced(prefixes=prefix_list(scope), keyless=True),
                     nsmap=in_scope(scope)), signed=True),
        Case("wrapping: signed Body in a wrapper header, new Body", "hostile", sec + "UnsignedContent",
             request(big_body, wrapped(into_block=False)), signed=True),
        Case("wrapping: signed Body as a header block, new Body", "hostile", sec + "UnsignedContent",
             request(big_body, wrapped(into_block=True)), signed=True),
        Case("whitespace: ~1 MiB in one run (unsigned part)", "hostile", "Client.Envelope.TextTooLong",
             request(after=whitespace_run), signed=True),
    ]


def within(*, signed: bool) -> list[Case]:
    """The worst requests that respect every limit; unsigned ones are refused as unsigned after parsing."""
    tag = "signed" if signed else "unsigned"
    expect = CONTRACT if signed else MISSING
    every = None  # references name distinct elements (aliases of one are refused: see the hostile classes)
    return [
        Case(f"within, {tag}: 63 attributes on each of 64 elements", "within", expect,
             request(crowded_rows, signed=signed), signed=signed),
        Case(f"within, {tag}: {IN_SCOPE} ns on Envelope, 4,900 elements", "within", expect,
             request(many_elements(list(ENVELOPE_NS.values())), signed=signed, nsmap=dict(ENVELOPE_NS)),
             signed=signed),
        Case(f"within, {tag}: a 700 KB text", "within", expect, request(long_text, signed=signed), signed=signed),
        Case(f"within, {tag}: 64 Ids", "within", expect, request(sixty_ids, signed=signed), signed=signed),
        Case(f"within, {tag}: depth 64", "within", expect, request(depth_64, signed=signed), signed=signed),
        Case(f"within, {tag}: every count limit at once", "within", expect,
             request(everything, every, signed=signed, nsmap=in_scope(IN_SCOPE - 2)), signed=signed),
    ]


def within_signed_only(scope: int) -> list[Case]:
    return [
        Case("within, signed: 16 references (13 big header blocks)", "within", CONTRACT,
             request(big_blocks), signed=True),
        Case(f"within, signed: PrefixList of {scope} in scope, 4,900 el.", "within", CONTRACT,
             request(scoped_body(scope), rereferenced(prefixes=prefix_list(scope, default=False)),
                     nsmap=in_scope(scope)), signed=True),
        Case(f"within, signed: PrefixList #default, {scope} ns, 4,900 el.", "within", CONTRACT,
             request(scoped_body(scope), rereferenced(prefixes=prefix_list(scope, named=False)),
                     nsmap=in_scope(scope)), signed=True),
        Case("within, signed: one ~1 MiB comment in the Body", "within", "200", request(comment), signed=True),
        Case("within, signed: ~150k comments in the Body", "within", "200", request(comments), signed=True),
        Case("within, signed: 3 x ~350 KB whitespace in the Body", "within", "200", request(spaces), signed=True),
    ]


VALID_SMALL = "valid: signed lookup (small)"
VALID_BIG = "valid: signed lookup, ~1 MiB Body"
VALID_ELEMENTS = "valid: signed lookup, ~1 MiB Body of 4,900 elements"


def all_cases(scope: int = IN_SCOPE) -> list[Case]:
    """Every class; scope: namespaces in scope of the PrefixList cases (KRUISPUNT_MAX_NAMESPACES_IN_SCOPE allows
    128 with soapenv and wsu)."""
    return [
        Case(VALID_SMALL, "valid", "200", request(), signed=True, fill=False),
        Case(VALID_BIG, "valid", CONTRACT, request(big_body), signed=True),
        Case(VALID_ELEMENTS, "valid", CONTRACT, request(many_elements([TAX_NS])), signed=True),
        *hostile_unsigned(), *hostile_signed(scope), *within(signed=False), *within(signed=True),
        *within_signed_only(scope),
    ]
