"""Packets from a declarative spec: ``netsift craft``'s library.

A spec names Scapy layers and sets their fields by name, from ``--layer``
strings (``IP dst=10.0.0.2 ttl=5``), a TOML file or a JSON file.  Values are
text or TOML/JSON scalars, converted per field (numbers, enum names, flags,
addresses, bytes with escapes or ``hex:``) and checked by building the layer:
an unknown layer, an unknown field or a bad value is a
:class:`~netsift.errors.UsageError` that names it.  Nothing is ever evaluated
as Python.

A field may take several values (a range ``1..30``, a list ``22,80,443``, a
TOML array, ``{range = [1, 30]}``, a CIDR range for an address): the probe set
is the cartesian product of every such field, in the order the fields were
written (the first varies slowest).

:func:`iter_packets` builds the set lazily, :class:`CaptureWriter` writes it
(pcap or pcapng, atomically), :func:`destinations` and :func:`check_scope`
fence sending, :func:`send_packets` sends through Scapy.  See docs/craft.md.
"""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import itertools
import json
import logging
import math
import os
import re
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .atomic import AtomicFile
from .errors import NetsiftError, PrivilegeError, ScopeError, UsageError
from .pcapng_writer import PcapngWriter
from .scope import Scope

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

#: Default cap on the number of packets one spec may expand to (``--max-packets``).
MAX_PACKETS = 100_000
#: Highest sending rate ``--rate`` accepts (packets per second).
MAX_RATE = 10_000.0
#: Link types of written captures, by the class of a packet's first layer.
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # IPv4 or IPv6 without a link layer (both may share one file)
LINKTYPE_LINUX_SLL = 113

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
SPEC_KEYS = ("layer", "packet", "count", "interval")
PACKET_KEYS = ("layer", "count")

_NUMBER_RE = re.compile(r"^(?:0[xX][0-9a-fA-F]+|[0-9]+)$")
_RANGE_RE = re.compile(r"^(0[xX][0-9a-fA-F]+|[0-9]+)\.\.(0[xX][0-9a-fA-F]+|[0-9]+)"
                       r"(?:/(0[xX][0-9a-fA-F]+|[0-9]+))?$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --- layers and fields ---------------------------------------------------------------

_LAYERS: dict[str, type] | None = None


def _layer_map() -> dict[str, type]:
    """Scapy's loaded layers by class name (l2, inet, inet6 and dns are loaded here)."""
    global _LAYERS
    if _LAYERS is None:
        import scapy.layers.dns
        import scapy.layers.inet
        import scapy.layers.inet6
        import scapy.layers.l2  # noqa: F401
        from scapy.config import conf

        layers: dict[str, type] = {}
        for cls in conf.layers:
            layers.setdefault(cls.__name__, cls)
        _LAYERS = layers
    return _LAYERS


def layer_names() -> list[str]:
    """Every layer name a spec may use, sorted."""
    return sorted(_layer_map())


def find_layer(name: str) -> type:
    """The Scapy class named ``name`` (case-sensitive), or a UsageError with close matches."""
    layers = _layer_map()
    cls = layers.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, list(layers), n=4, cutoff=0.6)
        if not close:
            folded = {n.lower(): n for n in layers}
            if name.lower() in folded:
                close = [folded[name.lower()]]
        hint = f"; did you mean {', '.join(close)}?" if close else \
            " (netsift craft --fields LAYER lists a layer's fields)"
        raise UsageError(f"unknown layer {name!r}{hint}")
    return cls


def _unwrap(fld: Any) -> Any:
    """The field inside Scapy's wrappers (Emph, ConditionalField, MultipleTypeField)."""
    from scapy.fields import MultipleTypeField, _FieldContainer

    for _ in range(8):
        if isinstance(fld, MultipleTypeField):
            fld = fld.dflt
        elif isinstance(fld, _FieldContainer):
            fld = fld.fld
        else:
            break
    return fld


def field_kind(fld: Any) -> str:
    """``packet``, ``options``, ``ip4``, ``ip6``, ``ip`` (either), ``mac``, ``text`` or ``number``."""
    from scapy.fields import (
        IP6Field,
        IPField,
        MACField,
        MultipleTypeField,
        StrField,
        _PacketField,
        _StrField,
    )
    from scapy.layers.inet import TCPOptionsField

    if isinstance(fld, MultipleTypeField):
        kinds = {field_kind(f) for f, _cond in fld.flds} | {field_kind(fld.dflt)}
        if kinds <= {"ip4", "ip6", "ip", "text"} and kinds & {"ip4", "ip6", "ip"}:
            return "ip"
        if "mac" in kinds:
            return "mac"
        return field_kind(fld.dflt)
    fld = _unwrap(fld)
    if isinstance(fld, _PacketField):
        return "packet"
    if isinstance(fld, TCPOptionsField):
        return "options"
    if isinstance(fld, IPField):
        return "ip4"
    if isinstance(fld, IP6Field):
        return "ip6"
    if isinstance(fld, MACField):
        return "mac"
    if isinstance(fld, (StrField, _StrField)):
        return "text"
    return "number"


def layer_fields(cls: type) -> dict[str, Any]:
    """Field name → Scapy field of a layer class, in wire order."""
    return {f.name: f for f in cls.fields_desc}  # type: ignore[attr-defined]


def describe_fields(name: str) -> list[str]:
    """One line per field of layer ``name``: name, kind and default (for ``--fields``)."""
    cls = find_layer(name)
    lines = []
    for fname, fld in layer_fields(cls).items():
        default = getattr(_unwrap(fld), "default", None)
        lines.append(f"{fname:<16} {field_kind(fld):<8} default {default!r}")
    return lines


def _field_of(cls: type, name: str) -> Any:
    fields = layer_fields(cls)
    if name not in fields:
        close = difflib.get_close_matches(name, list(fields), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UsageError(f"{cls.__name__} has no field {name!r}; {hint}"
                         f"its fields are {', '.join(fields) or '(none)'}")
    return fields[name]


# --- the spec model ----------------------------------------------------------------


@dataclass
class FieldSpec:
    """One field's values: ``values`` holds one value, or several (a fuzz dimension)."""

    name: str
    kind: str
    values: Sequence[Any]
    layer: str = ""

    @property
    def fuzzed(self) -> bool:
        return self.kind != "packet" and len(self.values) > 1


@dataclass
class LayerSpec:
    name: str
    cls: type
    fields: list[FieldSpec] = field(default_factory=list)

    def label(self) -> str:
        return self.name


@dataclass
class PacketSpec:
    """One stack of layers (a template), repeated ``count`` times per combination set."""

    layers: list[LayerSpec]
    count: int = 1

    def dimensions(self) -> list[FieldSpec]:
        out: list[FieldSpec] = []

        def walk(layer: LayerSpec) -> None:
            for fs in layer.fields:
                if fs.kind == "packet":
                    for nested in fs.values[0]:
                        walk(nested)
                elif fs.fuzzed:
                    out.append(fs)

        for layer in self.layers:
            walk(layer)
        return out

    def size(self) -> int:
        return self.count * math.prod(len(d.values) for d in self.dimensions())

    def stack(self) -> str:
        return "/".join(layer.name for layer in self.layers)


@dataclass
class CraftSpec:
    packets: list[PacketSpec]
    count: int = 1
    interval: float | None = None
    source: str = "--layer"

    def size(self) -> int:
        """How many packets the spec expands to (without building them)."""
        return self.count * sum(p.size() for p in self.packets)

    def link_types(self) -> list[int]:
        """The link type of each template's packets, in template order, without repeats."""
        out: list[int] = []
        for p in self.packets:
            lt = link_type_of_class(p.layers[0].cls)
            if lt not in out:
                out.append(lt)
        return out

    def fuzzed(self) -> list[str]:
        """``Layer.field ×N`` for every fuzzed field."""
        return [f"{d.layer}.{d.name} ×{len(d.values)}" for p in self.packets for d in p.dimensions()]


# --- value conversion -------------------------------------------------------------


_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "0": "\0",
            "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def decode_bytes(text: str) -> bytes:
    """Text with backslash escapes (``\\r\\n``, ``\\x00``, ``\\\\``) or ``hex:...`` to bytes.

    Characters outside Latin-1 are encoded as UTF-8.  An unknown escape is an error.
    """
    if text.startswith("hex:"):
        digits = re.sub(r"[\s:]", "", text[4:])
        try:
            return bytes.fromhex(digits)
        except ValueError:
            raise ValueError(f"{text!r} is not hex: digits") from None
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "\\":
            out += c.encode("latin-1") if ord(c) < 256 else c.encode("utf-8")
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError("a lone backslash ends the value (write \\\\ for one backslash)")
        e = text[i + 1]
        if e == "x":
            hexdigits = text[i + 2:i + 4]
            if len(hexdigits) != 2 or not all(ch in "0123456789abcdefABCDEF" for ch in hexdigits):
                raise ValueError(f"\\x needs two hex digits (at {text[i:i + 4]!r})")
            out.append(int(hexdigits, 16))
            i += 4
        elif e in _ESCAPES:
            out += _ESCAPES[e].encode("latin-1")
            i += 2
        else:
            raise ValueError(f"unknown escape \\{e}")
    return bytes(out)


def _parse_int(text: str) -> int:
    return int(text, 16) if text[:2].lower() == "0x" else int(text, 10)


def _range(lo: int, hi: int, step: int, what: str) -> range:
    if step <= 0:
        raise UsageError(f"{what}: the range step must be at least 1")
    if lo > hi:
        raise UsageError(f"{what}: the range {lo}..{hi} runs backwards")
    return range(lo, hi + 1, step)


def _bad(layer: str, name: str, value: Any, reason: str) -> UsageError:
    shown = value.decode("latin-1") if isinstance(value, bytes) else value
    return UsageError(f"bad value {shown!r} for {layer}.{name}: {reason}")


def _reason(exc: BaseException, fld: Any) -> str:
    """A short reason from Scapy's exception (its build errors span several lines)."""
    from scapy.fields import EnumField, FlagsField

    inner = _unwrap(fld)
    if isinstance(exc, KeyError):
        names: list[str] = []
        if isinstance(inner, EnumField):
            names = [str(k) for k in getattr(inner, "s2i", {})]
        close = difflib.get_close_matches(str(exc.args[0]) if exc.args else "", names, n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"not a known name for this field{hint}"
    if isinstance(inner, FlagsField) and ("substring not found" in str(exc) or "not in list" in str(exc)):
        letters = getattr(inner, "names", None)
        if isinstance(letters, str):
            return f"flags are letters of {letters!r} or a number"
        if isinstance(letters, list):
            return f"flags are {'+'.join(str(x) for x in letters)} or a number"
    text = str(exc)
    m = re.search(r"struct\.error\('(.*?)'\)", text) or re.search(r'struct\.error\("(.*?)"\)', text)
    if m:
        return m.group(1)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:200]


@contextlib.contextmanager
def _quiet_scapy() -> Iterator[None]:
    """Scapy's runtime warnings (no IPv6 underlayer for a checksum...) say nothing to a user here."""
    log = logging.getLogger("scapy.runtime")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _defaults(cls: type, given: Iterable[str]) -> dict[str, Any]:
    """Fields craft fills itself: a destination MAC is never resolved (no ARP), it is broadcast."""
    from scapy.layers.l2 import DestMACField

    out: dict[str, Any] = {}
    for name, fld in layer_fields(cls).items():
        if name not in given and isinstance(_unwrap(fld), DestMACField):
            out[name] = BROADCAST_MAC
    return out


def _builds_alone(cls: type) -> bool:
    try:
        with _quiet_scapy():
            bytes(cls(**_defaults(cls, ())))
        return True
    except Exception:
        return False


def _check_value(cls: type, name: str, fld: Any, value: Any) -> None:
    """Build the layer with ``name=value`` alone; a failure is a UsageError naming all three."""
    from scapy.fields import BitField

    inner = _unwrap(fld)
    if (isinstance(value, int) and isinstance(inner, BitField) and inner.size > 0
            and not 0 <= value < (1 << inner.size)):
            raise _bad(cls.__name__, name, value, f"a {inner.size}-bit field holds 0..{(1 << inner.size) - 1}")
    if not _builds_alone(cls):
        return
    try:
        with _quiet_scapy():
            bytes(cls(**{name: value}, **_defaults(cls, (name,))))
    except Exception as exc:
        raise _bad(cls.__name__, name, value, _reason(exc, fld)) from None


def _address(text: str, kind: str, where: str, limit: int) -> list[str]:
    """One address, or every host of a CIDR range (at most ``limit``)."""
    try:
        if "/" in text:
            net = ipaddress.ip_network(text, strict=False)
            if net.num_addresses > limit:
                raise UsageError(f"{where}: {text} holds {net.num_addresses} addresses, more than the "
                                 f"{limit} packets allowed (--max-packets)")
            addrs: list[Any] = list(net.hosts()) if net.num_addresses > 2 else list(net)
        else:
            addrs = [ipaddress.ip_address(text)]
    except ValueError:
        raise UsageError(f"bad value {text!r} for {where}: not an address or CIDR range "
                         "(craft resolves no host names)") from None
    version = {"ip4": 4, "ip6": 6}.get(kind)
    if version and addrs[0].version != version:
        raise UsageError(f"bad value {text!r} for {where}: not an IPv{version} address")
    return [str(a) for a in addrs]


def _options(text: str, where: str) -> list[tuple[str, Any]]:
    """TCP options ``MSS:1460,SAckOK,WScale:7,NOP,Timestamp:1:0``."""
    out: list[tuple[str, Any]] = []
    for item in text.split(","):
        parts = [p.strip() for p in item.strip().split(":")]
        if not parts[0]:
            continue
        name, args = parts[0], parts[1:]
        if not args:
            out.append((name, None if name in ("NOP", "EOL") else b""))
            continue
        values: list[Any] = []
        for a in args:
            values.append(_parse_int(a) if _NUMBER_RE.match(a) else decode_bytes(a))
        out.append((name, values[0] if len(values) == 1 else tuple(values)))
    if not out:
        raise UsageError(f"bad value {text!r} for {where}: no TCP options")
    return out


def _one(cls: type, name: str, fld: Any, kind: str, value: Any, limit: int) -> list[Any]:
    """Convert one written value (text or a JSON/TOML scalar) to the values it stands for."""
    where = f"{cls.__name__}.{name}"
    if isinstance(value, float):
        raise _bad(cls.__name__, name, value, "fractions are not field values")
    if isinstance(value, bool):
        value = int(value)
    if kind in ("ip4", "ip6", "ip"):
        if not isinstance(value, str):
            raise _bad(cls.__name__, name, value, "an address is written as text")
        return _address(value.strip(), kind, where, limit)
    if kind == "options":
        if not isinstance(value, str):
            raise _bad(cls.__name__, name, value, "TCP options are written as text like MSS:1460,SAckOK")
        try:
            return [_options(value, where)]
        except ValueError as exc:
            raise _bad(cls.__name__, name, value, str(exc)) from None
    if kind == "text":
        if isinstance(value, int):
            return [str(value).encode()]
        try:
            return [decode_bytes(value)]
        except ValueError as exc:
            raise _bad(cls.__name__, name, value, str(exc)) from None
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER_RE.match(text):
            return [_parse_int(text)]
        if kind == "mac":
            return [text]
        if not text:
            raise _bad(cls.__name__, name, value, "empty value")
        return [text]
    if isinstance(value, int):
        if kind == "mac":
            raise _bad(cls.__name__, name, value, "a MAC address is written as text")
        return [value]
    raise _bad(cls.__name__, name, value, "not a number or text")


def _checked(cls: type, name: str, fld: Any, values: Sequence[Any], ends_only: bool) -> None:
    """Validate each value (or only the ends of a numeric range)."""
    picks = [values[0], values[-1]] if ends_only and len(values) > 2 else list(values)
    seen: set[str] = set()
    for v in picks:
        key = repr(v)
        if key not in seen:
            seen.add(key)
            _check_value(cls, name, fld, v)


def _range_values(cls: type, name: str, fld: Any, first: int, last: int, step: int, limit: int,
                  what: str) -> range:
    """A fuzzed range of a numeric field (command line or spec file), within --max-packets, ends checked."""
    where = f"{cls.__name__}.{name}"
    r = _range(first, last, step, where)
    if len(r) > limit:
        raise UsageError(f"{where}: {what} holds {len(r)} values, more than the {limit} packets "
                         "allowed (--max-packets)")
    _checked(cls, name, fld, r, ends_only=True)
    return r


def _field_from_text(cls: type, name: str, text: str, literal: bool, limit: int,
                     separator: str = ",") -> FieldSpec:
    """A field value as typed on the command line (``ttl=1..30``, ``dport=22,80``, ``load='a,b'``)."""
    fld = _field_of(cls, name)
    kind = field_kind(fld)
    if kind == "packet":
        nested = parse_nested(text, limit)
        return _packet_field(cls, name, fld, nested)
    listable = not literal and kind in ("number", "mac", "ip4", "ip6", "ip")
    items = [p.strip() for p in text.split(separator)] if listable else [text]
    if listable and any(not p for p in items):
        raise _bad(cls.__name__, name, text, "an empty item in the list")
    values: list[Any] = []
    for item in items:
        m = _RANGE_RE.match(item) if listable and kind == "number" else None
        if m:
            step = _parse_int(m.group(3)) if m.group(3) else 1
            r = _range_values(cls, name, fld, _parse_int(m.group(1)), _parse_int(m.group(2)), step, limit,
                              f"the range {item}")
            if len(items) == 1:
                return FieldSpec(name, kind, r, cls.__name__)
            values.extend(r)
        else:
            one = _one(cls, name, fld, kind, item, limit)
            _checked(cls, name, fld, one, ends_only=kind in ("ip4", "ip6", "ip"))
            values.extend(one)
        if len(values) > limit:
            raise UsageError(f"{cls.__name__}.{name}: more than the {limit} packets allowed (--max-packets)")
    return FieldSpec(name, kind, values, cls.__name__)


def _field_from_data(cls: type, name: str, value: Any, limit: int) -> FieldSpec:
    """A field value from TOML/JSON: a scalar, an array (fuzz), ``{range=[lo, hi]}`` or a nested table."""
    fld = _field_of(cls, name)
    kind = field_kind(fld)
    where = f"{cls.__name__}.{name}"
    if kind == "packet":
        tables = value if isinstance(value, list) else [value]
        nested = []
        for t in tables:
            if not isinstance(t, dict):
                raise _bad(cls.__name__, name, value, 'a packet field takes a table {layer = "Name", ...} '
                           "or a list of them")
            nested.append(_layer_from_table(t, limit, key="layer", where=where))
        return _packet_field(cls, name, fld, nested)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"range", "step"})
        if unknown or "range" not in value:
            raise UsageError(f"{where}: a table value is {{range = [first, last]}} with an optional step "
                             f"(got keys {', '.join(sorted(value))})")
        bounds = value["range"]
        step = value.get("step", 1)
        if (not isinstance(bounds, list) or len(bounds) not in (2, 3)
                or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
                or not isinstance(step, int) or isinstance(step, bool)):
            raise UsageError(f"{where}: range must be [first, last] or [first, last, step] of integers")
        if len(bounds) == 3:
            step = bounds[2]
        if kind != "number":
            raise UsageError(f"{where}: a range needs a numeric field")
        r = _range_values(cls, name, fld, bounds[0], bounds[1], step, limit, "the range")
        return FieldSpec(name, kind, r, cls.__name__)
    items = value if isinstance(value, list) else [value]
    if not items:
        raise UsageError(f"{where}: an empty list of values")
    values: list[Any] = []
    for item in items:
        if isinstance(item, (list, dict)):
            raise UsageError(f"{where}: a list of values holds scalars only")
        one = _one(cls, name, fld, kind, item, limit)
        _checked(cls, name, fld, one, ends_only=kind in ("ip4", "ip6", "ip"))
        values.extend(one)
        if len(values) > limit:
            raise UsageError(f"{where}: more than the {limit} packets allowed (--max-packets)")
    return FieldSpec(name, kind, values, cls.__name__)


def _packet_field(cls: type, name: str, fld: Any, nested: list[LayerSpec]) -> FieldSpec:
    from scapy.fields import PacketListField

    if not isinstance(_unwrap(fld), PacketListField) and len(nested) != 1:
        raise UsageError(f"{cls.__name__}.{name} holds one packet, not {len(nested)}")
    return FieldSpec(name, "packet", [nested], cls.__name__)


# --- --layer strings ---------------------------------------------------------------


def _split_top(text: str, seps: str, what: str) -> list[tuple[str, bool]]:
    """Split ``text`` at ``seps`` outside quotes and parentheses.

    Returns (piece, quoted) pairs: a piece whose value part was wholly quoted is
    returned without its quotes and marked quoted.  Backslashes are kept for
    :func:`decode_bytes`.
    """
    pieces: list[str] = []
    cur: list[str] = []
    quote = ""
    depth = 0
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == "\\" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
            cur.append(c)
        elif c == "(":
            depth += 1
            cur.append(c)
        elif c == ")":
            depth -= 1
            if depth < 0:
                raise UsageError(f"unbalanced ')' in {what} {text!r}")
            cur.append(c)
        elif depth == 0 and (c in seps or (seps == " " and c.isspace())):
            if cur:
                pieces.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if quote:
        raise UsageError(f"unclosed quote {quote} in {what} {text!r}")
    if depth:
        raise UsageError(f"unclosed '(' in {what} {text!r}")
    if cur:
        pieces.append("".join(cur))
    return [(p, False) for p in pieces]


def _unquote(value: str) -> tuple[str, bool]:
    if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0]:
        inner = value[1:-1]
        # the quote character itself may be escaped inside; decode_bytes turns \" into "
        return inner, True
    return value, False


def _assignments(pieces: Iterable[str], what: str) -> list[tuple[str, str, bool]]:
    out = []
    for piece in pieces:
        name, eq, value = piece.partition("=")
        name = name.strip()
        if not eq or not _NAME_RE.match(name):
            raise UsageError(f"{what}: expected FIELD=VALUE, got {piece!r}")
        text, quoted = _unquote(value.strip())
        out.append((name, text, quoted))
    return out


def _unescape_quotes(text: str, quoted: bool, kind: str) -> str:
    """Inside quotes ``\\"`` stands for the quote; text fields decode it themselves."""
    if quoted and kind != "text":
        return text.replace('\\"', '"').replace("\\'", "'")
    return text


def parse_layer(text: str, limit: int = MAX_PACKETS) -> LayerSpec:
    """One ``--layer`` string: ``NAME [FIELD=VALUE ...]``."""
    pieces = [p for p, _ in _split_top(text.strip(), " ", "--layer")]
    if not pieces:
        raise UsageError("an empty --layer")
    cls = find_layer(pieces[0])
    layer = LayerSpec(pieces[0], cls)
    seen: set[str] = set()
    for name, value, quoted in _assignments(pieces[1:], f"--layer {pieces[0]}"):
        if name in seen:
            raise UsageError(f"{pieces[0]}.{name} is set twice")
        seen.add(name)
        kind = field_kind(_field_of(cls, name))
        layer.fields.append(_field_from_text(cls, name, _unescape_quotes(value, quoted, kind),
                                             quoted, limit))
    return layer


def parse_nested(text: str, limit: int = MAX_PACKETS) -> list[LayerSpec]:
    """``DNSQR(qname=example.com,qtype=TXT)[,DNSQR(...)]`` → nested layers (no eval).

    Inside the parentheses the comma separates arguments; several values of one
    argument (a fuzz list) are written with ``|``: ``qtype=A|TXT``.
    """
    out = []
    for piece, _ in _split_top(text.strip(), ",", "nested value"):
        piece = piece.strip()
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$", piece, re.S)
        if not m:
            raise UsageError(f"expected Layer(field=value,...) for a packet field, got {piece!r}")
        cls = find_layer(m.group(1))
        layer = LayerSpec(m.group(1), cls)
        args = [p.strip() for p, _ in _split_top(m.group(2), ",", m.group(1))]
        for name, value, quoted in _assignments([a for a in args if a], m.group(1)):
            kind = field_kind(_field_of(cls, name))
            layer.fields.append(_field_from_text(cls, name, _unescape_quotes(value, quoted, kind),
                                                 quoted, limit, separator="|"))
        out.append(layer)
    if not out:
        raise UsageError("an empty packet field value")
    return out


def spec_from_layers(texts: Sequence[str], count: int = 1, limit: int = MAX_PACKETS) -> CraftSpec:
    """The spec of repeated ``--layer`` options (one packet stack, layers in order)."""
    if not texts:
        raise UsageError("no layers: give --layer 'NAME field=value ...' (repeatable) or --spec FILE")
    layers = [parse_layer(t, limit) for t in texts]
    return CraftSpec([PacketSpec(layers)], count=count, source="--layer")


# --- spec files --------------------------------------------------------------------


def _check_keys(table: dict[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (allowed: {', '.join(allowed)})"
            raise UsageError(f"{where}: unknown key {key!r}{hint}")


def _positive_int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{where} must be a whole number of at least 1, not {value!r}")
    return value


def _layer_from_table(table: dict[str, Any], limit: int, key: str, where: str) -> LayerSpec:
    name = table.get(key)
    if not isinstance(name, str):
        raise UsageError(f"{where}: each layer table needs {key} = \"LayerName\"")
    cls = find_layer(name)
    layer = LayerSpec(name, cls)
    for fname, value in table.items():
        if fname == key:
            continue
        layer.fields.append(_field_from_data(cls, fname, value, limit))
    return layer


def _layers_from(value: Any, limit: int, where: str) -> list[LayerSpec]:
    if not isinstance(value, list) or not value or not all(isinstance(t, dict) for t in value):
        raise UsageError(f"{where}: 'layer' must be a non-empty array of tables ([[layer]] in TOML)")
    return [_layer_from_table(t, limit, key="name", where=f"{where} layer {i + 1}")
            for i, t in enumerate(value)]


def spec_from_data(data: Any, source: str = "spec", limit: int = MAX_PACKETS) -> CraftSpec:
    """A spec from parsed TOML/JSON: ``layer`` (one stack) or ``packet`` (several), ``count``, ``interval``."""
    if not isinstance(data, dict):
        raise UsageError(f"{source}: the spec must be a table/object at the top level")
    _check_keys(data, SPEC_KEYS, source)
    if ("layer" in data) == ("packet" in data):
        raise UsageError(f"{source}: give either [[layer]] tables (one packet) or [[packet]] tables "
                         "(several), not both and not neither")
    if "layer" in data:
        packets = [PacketSpec(_layers_from(data["layer"], limit, source))]
    else:
        tables = data["packet"]
        if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
            raise UsageError(f"{source}: 'packet' must be a non-empty array of tables ([[packet]] in TOML)")
        packets = []
        for i, t in enumerate(tables):
            where = f"{source} packet {i + 1}"
            _check_keys(t, PACKET_KEYS, where)
            packets.append(PacketSpec(_layers_from(t.get("layer"), limit, where),
                                      _positive_int(t.get("count", 1), f"{where} count")))
    count = _positive_int(data.get("count", 1), f"{source} count")
    interval = data.get("interval")
    if interval is not None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or \
                not 1 / MAX_RATE <= interval <= 3600:
            raise UsageError(f"{source}: interval must be seconds between {1 / MAX_RATE} and 3600, "
                             f"not {interval!r}")
        interval = float(interval)
    return CraftSpec(packets, count=count, interval=interval, source=source)


def load_spec(path: str, limit: int = MAX_PACKETS) -> CraftSpec:
    """A TOML (``.toml``) or JSON (``.json``) spec file."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".toml", ".json"):
        raise UsageError(f"{path}: a spec file ends in .toml or .json")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such spec file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the spec file ({exc})") from None
    try:
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    return spec_from_data(data, source=path, limit=limit)


# --- building ----------------------------------------------------------------------


def check_size(spec: CraftSpec, max_packets: int = MAX_PACKETS) -> int:
    """The spec's packet count, or a UsageError when it exceeds ``max_packets``."""
    n = spec.size()
    if n > max_packets:
        parts = ", ".join(spec.fuzzed()) or "count"
        raise UsageError(f"the spec makes {n} packets ({parts}, count {spec.count}), more than "
                         f"--max-packets {max_packets}; narrow a range or raise the cap")
    return n


def _build_layer(layer: LayerSpec, pick: Callable[[FieldSpec], Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for fs in layer.fields:
        if fs.kind == "packet":
            nested = [_build_layer(n, pick) for n in fs.values[0]]
            kwargs[fs.name] = nested if len(nested) != 1 or _is_list_field(layer.cls, fs.name) else nested[0]
        else:
            kwargs[fs.name] = pick(fs)
    kwargs.update(_defaults(layer.cls, kwargs))
    return layer.cls(**kwargs)


def _is_list_field(cls: type, name: str) -> bool:
    from scapy.fields import PacketListField

    return isinstance(_unwrap(layer_fields(cls)[name]), PacketListField)


def iter_template(p: PacketSpec) -> Iterator[Any]:
    """Every packet of one template: the product of its fuzzed fields (first varies slowest)."""
    dims = p.dimensions()
    for combo in itertools.product(*(d.values for d in dims)):
        chosen = {id(d): v for d, v in zip(dims, combo, strict=True)}

        def pick(fs: FieldSpec, chosen: dict[int, Any] = chosen) -> Any:
            return chosen.get(id(fs), fs.values[0])

        with _quiet_scapy():
            pkt = _build_layer(p.layers[0], pick)
            for layer in p.layers[1:]:
                pkt = pkt / _build_layer(layer, pick)
        for _ in range(p.count):
            yield pkt


def iter_packets(spec: CraftSpec, max_packets: int = MAX_PACKETS) -> Iterator[Any]:
    """Build the spec's packets lazily (Scapy packets), checking each builds to bytes."""
    check_size(spec, max_packets)
    n = 0
    for _ in range(spec.count):
        for p in spec.packets:
            for pkt in iter_template(p):
                n += 1
                try:
                    with _quiet_scapy():
                        pkt.raw_bytes = bytes(pkt)
                except Exception as exc:
                    raise UsageError(f"packet {n} ({p.stack()}) cannot be built: "
                                     f"{_reason(exc, None)}") from None
                yield pkt


def build_packets(spec: CraftSpec, max_packets: int = MAX_PACKETS) -> list[Any]:
    """All of the spec's packets in a list."""
    return list(iter_packets(spec, max_packets))


# --- writing -----------------------------------------------------------------------


def link_type_of_class(cls: type) -> int:
    """The capture link type for packets whose first layer is ``cls``."""
    from scapy.config import conf
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import CookedLinux, Dot3, Ether

    if issubclass(cls, (Ether, Dot3)):
        return LINKTYPE_ETHERNET
    if issubclass(cls, (IP, IPv6)):
        return LINKTYPE_RAW
    if issubclass(cls, CookedLinux):
        return LINKTYPE_LINUX_SLL
    lt: Any = conf.l2types.layer2num.get(cls)  # type: ignore[arg-type, unused-ignore]
    if lt is None:
        raise UsageError(f"a packet starting with {cls.__name__} has no capture link type; "
                         "start it with Ether, IP or IPv6")
    return int(lt)


class CaptureWriter:
    """Write packets to ``path`` atomically: pcapng for ``.pcapng``, classic pcap otherwise."""

    def __init__(self, path: str, application: str = "netsift craft") -> None:
        self.path = path
        self.pcapng = path.lower().endswith(".pcapng")
        self.file = AtomicFile(path, what="the capture")
        self.count = 0
        self.link_types: list[int] = []
        self._ifaces: dict[int, int] = {}
        self._ng: PcapngWriter | None = None
        self._application = application

    def write(self, pkt: Any, ts_ns: int) -> None:
        data = getattr(pkt, "raw_bytes", None)
        if data is None:
            data = bytes(pkt)
        lt = link_type_of_class(type(pkt))
        try:
            if self.pcapng:
                if self._ng is None:
                    self._ng = PcapngWriter(self.file.raw, application=self._application)
                if lt not in self._ifaces:
                    self._ifaces[lt] = self._ng.add_interface(lt, snaplen=0, name=f"craft{len(self._ifaces)}")
                    self.link_types.append(lt)
                self._ng.write_packet(self._ifaces[lt], ts_ns, data)
            else:
                if not self.link_types:
                    # classic pcap: microsecond timestamps, native byte order, snaplen 65535
                    self.file.raw.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, lt))
                    self.link_types.append(lt)
                elif lt != self.link_types[0]:
                    self.abort()
                    raise UsageError(f"{self.path}: a .pcap file holds one link type, and these packets "
                                     f"have several ({self.link_types[0]} and {lt}); write a .pcapng file")
                sec, ns = divmod(ts_ns, 1_000_000_000)
                self.file.raw.write(struct.pack("=IIII", sec & 0xFFFFFFFF, ns // 1000, len(data), len(data))
                                    + data)
        except OSError as exc:
            raise self.file.error(exc) from None
        self.count += 1

    def commit(self) -> None:
        try:
            if self._ng is not None:
                self._ng.flush()
        except OSError as exc:
            raise self.file.error(exc) from None
        self.file.commit()

    def abort(self) -> None:
        self.file.abort()


def check_link_types(spec: CraftSpec, path: str) -> None:
    """Refuse up front what a .pcap cannot hold: templates of different link types."""
    lts = spec.link_types()
    if len(lts) > 1 and not path.lower().endswith(".pcapng"):
        raise UsageError(f"{path}: a .pcap file holds one link type, and this spec makes packets of "
                         f"several ({', '.join(str(x) for x in lts)}); write a .pcapng file")


def write_capture(packets: Iterable[Any], path: str, start_ns: int | None = None,
                  step_ns: int = 1000) -> int:
    """Write ``packets`` to ``path`` (timestamps ``step_ns`` apart from ``start_ns``); returns the count."""
    ts = time.time_ns() if start_ns is None else start_ns
    writer = CaptureWriter(path)
    try:
        for pkt in packets:
            writer.write(pkt, ts)
            ts += step_ns
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    return writer.count


# --- the scope fence and sending ------------------------------------------------------


def destinations(pkt: Any) -> list[str]:
    """The destination addresses of a packet: every IP/IPv6 ``dst`` and ARP ``pdst`` in it."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP

    out: list[str] = []
    layer = pkt
    while layer is not None and layer.__class__.__name__ != "NoPayload":
        if isinstance(layer, (IP, IPv6)):
            out.append(str(layer.dst))
        elif isinstance(layer, ARP):
            out.append(str(layer.pdst))
        layer = layer.payload if layer.payload else None
    return out


def check_scope(packets: Iterable[Any], scope: Scope) -> int:
    """Check every packet's destinations against ``scope`` before anything is sent; returns the count.

    A packet without any destination address is refused (the fence cannot judge it).
    """
    seen: dict[str, None] = {}
    n = 0
    for n, pkt in enumerate(packets, 1):
        dsts = destinations(pkt)
        if not dsts:
            raise ScopeError(f"packet {n} has no destination address (IP, IPv6 or ARP) for --scope to "
                             "check, so it cannot be sent; nothing was sent")
        for d in dsts:
            seen.setdefault(d, None)
    scope.check(seen, what="destination")
    return n


PRIVILEGE_MESSAGE = ("sending needs CAP_NET_RAW: run as root or grant the capability to the "
                     "Python interpreter")


@dataclass
class SendResult:
    sent: list[tuple[Any, int]]  # (packet, send time in ns)
    interrupted: bool = False


def send_packets(packets: Iterable[Any], iface: str | None = None, interval: float = 0.01,
                 chunk: int = 1000) -> SendResult:
    """Send already scope-checked packets through Scapy: Ether-first with ``sendp`` (needs
    ``iface``), others with ``send`` (routed).  ``interval`` seconds between packets.
    """
    import scapy.sendrecv as sr
    from scapy.layers.l2 import Dot3, Ether

    if iface is not None:
        try:
            socket.if_nametoindex(iface)
        except OSError:
            raise UsageError(f"no network interface named {iface!r}") from None
    result = SendResult([])

    def flush(group: list[Any], layer2: bool) -> None:
        if not group:
            return
        kwargs: dict[str, Any] = {"inter": interval, "verbose": False, "return_packets": True}
        try:
            if layer2:
                out = sr.sendp(group, iface=iface, **kwargs)
            else:
                out = sr.send(group, iface=iface, **kwargs) if iface else sr.send(group, **kwargs)
        except PermissionError:
            raise PrivilegeError(PRIVILEGE_MESSAGE) from None
        except OSError as exc:
            raise NetsiftError(f"sending failed after {len(result.sent)} packets "
                               f"({exc.strerror or exc})") from None
        sent = list(out) if out is not None else group
        for p in sent:
            t = getattr(p, "sent_time", None)
            result.sent.append((p, int(float(t) * 1e9) if t else time.time_ns()))
        if len(sent) < len(group):
            result.interrupted = True

    group: list[Any] = []
    layer2 = False
    for pkt in packets:
        is2 = isinstance(pkt, (Ether, Dot3))
        if is2 and iface is None:
            raise UsageError("packets that start with a link layer (Ether) need -i/--iface to be sent")
        if group and (is2 != layer2 or len(group) >= chunk):
            flush(group, layer2)
            group = []
            if result.interrupted:
                return result
        layer2 = is2
        group.append(pkt)
    flush(group, layer2)
    return result
