"""The ``--filter`` language of ``netsift packets``: a small subset of Wireshark's display filters.

Grammar (keywords are case-insensitive; ``&&``/``||``/``!`` spell ``and``/``or``/``not``)::

    expr    := or
    or      := and (("or" | "||") and)*
    and     := unary (("and" | "&&") unary)*
    unary   := ("not" | "!") unary | primary
    primary := "(" expr ")"
             | NAME                          presence (a protocol or field); a bool field: its value
             | NAME OP value                 OP: == != < <= > >= (or eq ne lt le gt ge)
             | NAME "in" "{" value ("," value)* "}"
             | NAME "in" CIDR                addresses only: 10.0.0.0/8, 2001:db8::/32
    value   := integer (decimal or 0x hex) | decimal number (times) | true | false
             | IPv4/IPv6 address | CIDR | "quoted string"

NAME is a field of :mod:`netsift.pfields`, an alias standing for several
fields (``ip.addr``, ``ipv6.addr``, ``tcp.port``, ``udp.port``, ``port``) or a
protocol name (``frame eth vlan arp ip ipv6 tcp udp icmp icmpv6``).  As in
Wireshark, a comparison needs the field present: ``tcp.port != 80`` holds
only for TCP packets, and for an alias ``==`` means *any* of its fields and
``!=`` means *all* of those present.  An address field compared with an IPv6
value uses the IPv6 field (``ip.addr in 2001:db8::/32`` works).  Unlike
Wireshark, a bare boolean field tests its value: ``tcp.flags.syn`` is
``tcp.flags.syn == 1`` (Wireshark would test that the field exists).

The expression is parsed by a tokenizer and a recursive-descent parser into a
tree of closures; evaluating it over a batch combines numpy masks.  Nothing is
ever handed to ``eval``.  Every mistake is a :class:`~netsift.errors.UsageError`
with one line naming the column and the offending text.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .capture import RecordBatch
from .columns import PacketColumns
from .errors import UsageError
from .pfields import ALIASES, FIELDS, PROTOCOLS, Field, Mask, all_names

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op>==|!=|<=|>=|&&|\|\||[<>!(){},~])
      | (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<word>[A-Za-z0-9_.:/\-]+)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_KEYWORD_OPS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_CMP = {"==", "!=", "<", "<=", ">", ">="}


@dataclass(frozen=True)
class Token:
    kind: str  # "op", "word", "str", "end"
    text: str
    col: int  # 1-based column of the first character


def _fail(message: str) -> UsageError:
    return UsageError(f"--filter: {message}")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while True:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:  # only trailing whitespace is left
            break
        kind = m.lastgroup or "bad"
        start = m.start(kind)
        value = m.group(kind)
        if kind == "bad":
            if value == '"':
                raise _fail(f"unterminated string at column {start + 1}")
            raise _fail(f"unexpected {value!r} at column {start + 1}")
        if kind == "word" and value.lower() in ("and", "or", "not", "in", "contains", "matches"):
            kind, value = "op", value.lower()
        elif kind == "word" and value.lower() in _KEYWORD_OPS:
            kind, value = "op", _KEYWORD_OPS[value.lower()]
        elif value == "&&":
            value = "and"
        elif value == "||":
            value = "or"
        elif value == "!":
            value = "not"
        tokens.append(Token(kind, value, start + 1))
        pos = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# --- evaluation -------------------------------------------------------------------


class Context:
    """One batch under evaluation; extracted fields are computed once per batch."""

    def __init__(self, cols: PacketColumns, batch: RecordBatch) -> None:
        self.cols = cols
        self.batch = batch
        self.n = len(cols)
        self._cache: dict[str, tuple[object, Mask]] = {}

    def field(self, name: str) -> tuple[object, Mask]:
        got = self._cache.get(name)
        if got is None:
            got = self._cache[name] = FIELDS[name].extract(self.cols, self.batch)
        return got


Node = Callable[[Context], Mask]


@dataclass(frozen=True)
class _Addr:
    hi: int
    lo: int
    mhi: int
    mlo: int
    v6: bool

    @classmethod
    def parse(cls, text: str) -> _Addr | None:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return None
        if net.version == 4:
            value = 0xFFFF_0000_0000 | int(net.network_address)
            mask = ((1 << 128) - 1) ^ ((1 << (32 - net.prefixlen)) - 1)
            v6 = False
        else:
            value = int(net.network_address)
            mask = ((1 << 128) - 1) ^ ((1 << (128 - net.prefixlen)) - 1)
            v6 = True
        m64 = (1 << 64) - 1
        return cls(value >> 64, value & m64, mask >> 64, mask & m64, v6)

    def match(self, pairs: npt.NDArray[np.uint64]) -> Mask:
        hi, lo = pairs[:, 0], pairs[:, 1]
        hit = ((hi & np.uint64(self.mhi)) == np.uint64(self.hi)) & (
            (lo & np.uint64(self.mlo)) == np.uint64(self.lo)
        )
        return np.asarray(hit, dtype=np.bool_)


def _compare(values: object, op: str, const: object) -> Mask:
    a = np.asarray(values)
    if op == "==":
        return np.asarray(a == const, dtype=np.bool_)
    if op == "!=":
        return np.asarray(a != const, dtype=np.bool_)
    if op == "<":
        return np.asarray(a < const, dtype=np.bool_)
    if op == "<=":
        return np.asarray(a <= const, dtype=np.bool_)
    if op == ">":
        return np.asarray(a > const, dtype=np.bool_)
    return np.asarray(a >= const, dtype=np.bool_)


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers
    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def unexpected(self, tok: Token, expected: str) -> UsageError:
        if tok.kind == "end":
            return _fail(f"expression ends at column {tok.col}; expected {expected}")
        return _fail(f"unexpected {tok.text!r} at column {tok.col}; expected {expected}")

    # -- grammar
    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise _fail("empty expression")
        node = self.or_()
        tok = self.peek()
        if tok.kind != "end":
            raise self.unexpected(tok, "'and', 'or' or the end")
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.peek().kind == "op" and self.peek().text == "or":
            self.take()
            left, right = node, self.and_()
            node = _or(left, right)
        return node

    def and_(self) -> Node:
        node = self.unary()
        while self.peek().kind == "op" and self.peek().text == "and":
            self.take()
            left, right = node, self.unary()
            node = _and(left, right)
        return node

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text == "not":
            self.take()
            inner = self.unary()
            return lambda ctx: ~inner(ctx)
        return self.primary()

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "op" and tok.text == "(":
            node = self.or_()
            close = self.take()
            if not (close.kind == "op" and close.text == ")"):
                raise self.unexpected(close, "')'")
            return node
        if tok.kind != "word":
            raise self.unexpected(tok, "a field name, 'not' or '('")
        name = tok.text
        fields = self.resolve(tok)
        nxt = self.peek()
        if nxt.kind == "op" and nxt.text in _CMP:
            self.take()
            return self.comparison(tok, fields, nxt.text, self.take())
        if nxt.kind == "op" and nxt.text in ("contains", "matches", "~"):
            self.take()
            return self.text_match(tok, fields, "contains" if nxt.text == "contains" else "matches",
                                   self.take())  # fmt: skip
        if nxt.kind == "op" and nxt.text == "in":
            self.take()
            return self.membership(tok, fields)
        if name in PROTOCOLS:
            proto = PROTOCOLS[name]
            return lambda ctx: proto(ctx.cols, ctx.batch)
        return _presence(fields)

    def resolve(self, tok: Token) -> list[Field]:
        name = tok.text
        if name in FIELDS:
            return [FIELDS[name]]
        if name in ALIASES:
            return [FIELDS[n] for n in ALIASES[name]]
        if name in PROTOCOLS:
            return []
        if _looks_like_value(name):
            raise _fail(f"unexpected {name!r} at column {tok.col}; expected a field name")
        close = difflib.get_close_matches(name, all_names(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise _fail(f"unknown field {name!r} at column {tok.col}{hint}")

    def value(self, tok: Token, field: Field) -> object:
        """The constant ``tok`` as a value of ``field``'s kind."""
        kind = field.kind
        if tok.kind not in ("word", "str"):
            raise self.unexpected(tok, f"a value for {field.name}")
        text = tok.text
        bad = _fail(f"{text!r} at column {tok.col} is not a valid {field.name} value ({kind})")
        if kind == "str":
            if tok.kind == "str":
                return re.sub(r"\\(.)", r"\1", text[1:-1])
            return text
        if tok.kind == "str":
            raise bad
        if kind == "ip":
            addr = _Addr.parse(text)
            if addr is None:
                raise bad
            return addr
        if kind == "bool":
            low = text.lower()
            if low in ("1", "true"):
                return True
            if low in ("0", "false"):
                return False
            raise bad
        if kind == "time":
            try:
                return round(float(text) * 1e9)
            except ValueError:
                raise bad from None
        try:
            return int(text, 0)
        except ValueError:
            raise bad from None

    def comparison(self, name: Token, fields: list[Field], op: str, tok: Token) -> Node:
        if not fields:
            raise _fail(f"{name.text!r} at column {name.col} is a protocol; it cannot be compared")
        consts = [self.value(tok, f) for f in fields]
        if fields[0].kind == "ip" and op not in ("==", "!="):
            raise _fail(
                f"{op!r} at column {name.col + len(name.text) + 1} does not apply to addresses"
            )
        if fields[0].kind == "bool" and op not in ("==", "!="):
            raise _fail(f"{op!r} does not apply to the boolean field {name.text}")
        tests = [_test(f, op, c) for f, c in zip(fields, consts, strict=True)]
        return _combine(tests, all_of=(op == "!="))

    def text_match(self, name: Token, fields: list[Field], op: str, tok: Token) -> Node:
        """``field contains "text"`` (substring, case-sensitive) and ``field matches "re"``
        (``~``; a regular expression searched case-insensitively, as Wireshark's)."""
        if not fields:
            raise _fail(f"{name.text!r} at column {name.col} is a protocol; it has no text")
        if any(f.kind != "str" for f in fields):
            raise _fail(f"{op!r} applies to text fields; {name.text} is not one")
        if tok.kind != "str":
            raise self.unexpected(tok, f"a quoted string after {op!r}")
        # contains: the string's escapes resolved (as for ==); matches: the text as
        # written (a regular expression's own backslashes kept), only \" unescaped
        raw = tok.text[1:-1]
        text = re.sub(r"\\(.)", r"\1", raw) if op == "contains" else raw.replace('\\"', '"')
        if op == "contains":
            def hit(v: str) -> bool:
                return text in v
        else:
            try:
                rx = re.compile(text, re.IGNORECASE)
            except re.error as exc:
                raise _fail(f"bad regular expression at column {tok.col}: {exc}") from None

            def hit(v: str) -> bool:
                return rx.search(v) is not None

        tests = [_text_test(f.name, hit) for f in fields]
        return _combine(tests, all_of=False)

    def membership(self, name: Token, fields: list[Field]) -> Node:
        if not fields:
            raise _fail(f"{name.text!r} at column {name.col} is a protocol; it has no values")
        tok = self.take()
        if tok.kind == "op" and tok.text == "{":
            items: list[Token] = []
            while True:
                item = self.take()
                if item.kind == "op" and item.text == "}" and items:
                    break  # a trailing comma
                if item.kind not in ("word", "str"):
                    raise self.unexpected(item, f"a value for {fields[0].name}")
                items.append(item)
                sep = self.take()
                if sep.kind == "op" and sep.text == "}":
                    break
                if not (sep.kind == "op" and sep.text == ","):
                    raise self.unexpected(sep, "',' or '}'")
        elif tok.kind == "word" and fields[0].kind == "ip":
            items = [tok]
        else:
            raise self.unexpected(tok, "'{' (a set of values)")
        tests = [_test(f, "==", self.value(item, f)) for f in fields for item in items]
        return _combine(tests, all_of=False)


def _looks_like_value(text: str) -> bool:
    return text[:1].isdigit() or text.startswith(":") or _Addr.parse(text) is not None


def _and(left: Node, right: Node) -> Node:
    return lambda ctx: left(ctx) & right(ctx)


def _or(left: Node, right: Node) -> Node:
    return lambda ctx: left(ctx) | right(ctx)


def _presence(fields: list[Field]) -> Node:
    if len(fields) == 1 and fields[0].kind == "bool":
        name = fields[0].name

        def value(ctx: Context) -> Mask:
            values, present = ctx.field(name)
            return present & np.asarray(values, dtype=np.bool_)

        return value

    names = [f.name for f in fields]

    def exists(ctx: Context) -> Mask:
        out = np.zeros(ctx.n, dtype=np.bool_)
        for n in names:
            out |= ctx.field(n)[1]
        return out

    return exists


def _test(field: Field, op: str, const: object) -> Node:
    """``(present, holds)`` of ``field OP const`` packed as a node returning a 2-row mask."""
    name = field.name
    if isinstance(const, _Addr):
        if const.v6 and field.other_family:
            name = field.other_family
        addr = const

        def test_addr(ctx: Context) -> Mask:
            values, present = ctx.field(name)
            hit = addr.match(np.asarray(values))
            return np.stack([present, hit if op == "==" else ~hit])

        return test_addr

    def test(ctx: Context) -> Mask:
        values, present = ctx.field(name)
        if isinstance(values, list):
            hit = np.array(
                [v == const if op == "==" else v != const for v in values], dtype=np.bool_
            )
            if op not in ("==", "!="):
                hit = np.array([_ordered(v, op, const) for v in values], dtype=np.bool_)
        else:
            hit = _compare(values, op, const)
        return np.stack([present, hit.reshape(-1) if hit.ndim else np.full(ctx.n, bool(hit))])

    return test


def _text_test(name: str, hit: Any) -> Node:
    def test(ctx: Context) -> Mask:
        values, present = ctx.field(name)
        texts: list[Any] = list(values)  # type: ignore[call-overload]
        found = np.array([p and hit(v) for v, p in zip(texts, present.tolist(), strict=True)],
                         dtype=np.bool_)  # fmt: skip
        return np.stack([present, found.reshape(-1)])

    return test


def _ordered(v: object, op: str, const: object) -> bool:
    try:
        return bool(_compare(np.array([v]), op, const)[0])
    except TypeError:
        return False


def _combine(tests: list[Node], all_of: bool) -> Node:
    """Any test holding on a present field; or (``all_of``) some present and all present hold."""

    def node(ctx: Context) -> Mask:
        if not all_of:
            out = np.zeros(ctx.n, dtype=np.bool_)
            for t in tests:
                present, hit = t(ctx)
                out |= present & hit
            return out
        some = np.zeros(ctx.n, dtype=np.bool_)
        every = np.ones(ctx.n, dtype=np.bool_)
        for t in tests:
            present, hit = t(ctx)
            some |= present
            every &= ~present | hit
        return some & every

    if len(tests) == 1 and not all_of:
        single = tests[0]

        def one(ctx: Context) -> Mask:
            present, hit = single(ctx)
            return np.asarray(present & hit, dtype=np.bool_)

        return one
    return node


class PacketFilter:
    """A parsed ``--filter`` expression; ``mask(cols, batch)`` selects the matching packets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._node = Parser(text).parse()

    def mask(self, cols: PacketColumns, batch: RecordBatch) -> Mask:
        return np.asarray(self._node(Context(cols, batch)), dtype=np.bool_).reshape(len(cols))


def parse_filter(text: str) -> PacketFilter:
    return PacketFilter(text)
