"""DNS message parsing: one pure function from bytes to a :class:`DnsMessage`.

:func:`parse_message` never raises: damage becomes a stable snake_case code in
``DnsMessage.anomalies`` and everything parsed before the damage is kept.
:func:`split_tcp_messages` cuts a TCP byte stream into messages.

References
----------
- RFC 1035 §4.1 (message format: header §4.1.1, question §4.1.2, resource
  record §4.1.3), §4.1.4 (compression pointers), §2.3.4 (size limits: labels
  63 octets or less, names 255 octets or less on the wire), §3.3 and §3.4
  (CNAME, MX, NS, PTR, SOA, TXT, NULL, A rdata), §4.2.2 (TCP: 2-byte length
  prefix).
- RFC 3596 §2.2 (AAAA), RFC 2782 (SRV), RFC 4035 §3.2 (AD and CD bits),
  RFC 6891 §6 (OPT pseudo-record: UDP payload size, extended RCODE, version,
  DO flag, options) and §5 (extended label types retired), RFC 9460 §2
  (SVCB and HTTPS: priority, target, SvcParams), RFC 6762 §10.2 and §18.12
  (mDNS cache-flush and unicast-response bits in the class field: kept as is).

Compression (the dpkt model): a pointer must point strictly before the start
of the name (or pointed-to suffix) currently being read, so every jump goes
to a smaller offset and loops are impossible by construction; anything else
is ``pointer_loop_or_forward``.  Record counts are capped by the bytes
present: a question takes at least 5 octets and a record at least 11, so a
header claiming 65,535 answers costs no more than the message's length.

Name text (presentation format, RFC 1035 §5.1, as BIND's ``dig`` writes it):
labels joined by ``.``, no trailing dot, the root as ``.``; inside a label
``.`` becomes ``\\.`` and ``\\`` becomes ``\\\\``; octets outside printable
ASCII 0x21–0x7E (space, controls, high bytes) become ``\\DDD`` with three
*decimal* digits.  Case is kept as sent.

Anomaly codes (stable API, listed in :data:`ANOMALIES`): see the comments
there.  A length byte 0x40–0x7F is reported as ``label_too_long``: the only
extended label type ever defined is retired (RFC 6891 §5), and that byte is
what a naive encoder writes for a 64–127-octet label; 0x80–0xBF is
``bad_label_type``.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, TypeAlias

__all__ = [
    "ANOMALIES",
    "DnsMessage",
    "DnsSummary",
    "Mx",
    "Opt",
    "Question",
    "ResourceRecord",
    "Soa",
    "Srv",
    "Svcb",
    "parse_message",
    "split_tcp_messages",
    "summarize",
    "summarize_py",
]

#: Every anomaly code :func:`parse_message` can report.
ANOMALIES: Final = (
    "truncated_message",  # the message ends inside the header, a name or a record
    "pointer_loop_or_forward",  # compression pointer not strictly backwards
    "label_too_long",  # length byte 0x40-0x7F: a label over 63 octets (RFC 1035 §2.3.4)
    "name_too_long",  # name over 255 octets on the wire (RFC 1035 §2.3.4)
    "bad_label_type",  # length byte 0x80-0xBF (reserved label type)
    "rdata_overrun",  # typed rdata does not match its RDLENGTH (record kept, rdata raw)
    "trailing_bytes",  # octets after the last record the header announced
    "too_many_records",  # a count exceeds what the remaining bytes could hold
    "multiple_opt_records",  # more than one OPT record (RFC 6891 §6.1.1)
)

# Resource record types (IANA "Resource Record (RR) TYPEs" registry).
TYPE_A: Final = 1
TYPE_NS: Final = 2
TYPE_CNAME: Final = 5
TYPE_SOA: Final = 6
TYPE_NULL: Final = 10
TYPE_PTR: Final = 12
TYPE_MX: Final = 15
TYPE_TXT: Final = 16
TYPE_AAAA: Final = 28
TYPE_SRV: Final = 33
TYPE_DNAME: Final = 39  # RFC 6672
TYPE_LOC: Final = 29
TYPE_OPT: Final = 41
TYPE_SVCB: Final = 64
TYPE_HTTPS: Final = 65

HEADER_LEN: Final = 12  # RFC 1035 §4.1.1
MAX_LABEL_LEN: Final = 63  # RFC 1035 §2.3.4
MAX_NAME_LEN: Final = 255  # RFC 1035 §2.3.4, wire octets including length bytes
MIN_QUESTION_LEN: Final = 5  # root name (1) + QTYPE + QCLASS
MIN_RECORD_LEN: Final = 11  # root name (1) + TYPE + CLASS + TTL + RDLENGTH

_HEADER = struct.Struct(">HHHHHH")
_RR_FIXED = struct.Struct(">HHIH")
_QUESTION_FIXED = struct.Struct(">HH")


@dataclass(frozen=True, slots=True)
class Question:
    """A question entry (RFC 1035 §4.1.2)."""

    name: str
    qtype: int
    qclass: int


@dataclass(frozen=True, slots=True)
class Mx:
    """MX rdata (RFC 1035 §3.3.9)."""

    preference: int
    exchange: str


@dataclass(frozen=True, slots=True)
class Srv:
    """SRV rdata (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class Soa:
    """SOA rdata (RFC 1035 §3.3.13)."""

    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


@dataclass(frozen=True, slots=True)
class Opt:
    """OPT pseudo-record (RFC 6891 §6.1.3): the EDNS fields of CLASS and TTL."""

    udp_size: int
    extended_rcode: int  # upper 8 bits of the 12-bit RCODE
    version: int
    do: bool
    options: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class Svcb:
    """SVCB / HTTPS rdata (RFC 9460 §2.2): SvcParams as (key, raw value)."""

    priority: int
    target: str
    params: tuple[tuple[int, bytes], ...]


#: Decoded rdata: an address or name as text, TXT character-strings as bytes,
#: a typed record, or the raw rdata octets (NULL, unknown types, damage).
Rdata: TypeAlias = str | tuple[bytes, ...] | Mx | Srv | Soa | Opt | Svcb | bytes


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    """A resource record (RFC 1035 §4.1.3) with its rdata decoded."""

    name: str
    rtype: int
    rclass: int
    ttl: int
    rdata: Rdata


@dataclass(frozen=True, slots=True)
class DnsMessage:
    """A parsed DNS message; ``rcode`` includes the EDNS extended bits."""

    id: int = 0
    qr: bool = False
    opcode: int = 0
    aa: bool = False
    tc: bool = False
    rd: bool = False
    ra: bool = False
    ad: bool = False
    cd: bool = False
    rcode: int = 0
    questions: tuple[Question, ...] = ()
    answers: tuple[ResourceRecord, ...] = ()
    authority: tuple[ResourceRecord, ...] = ()
    additional: tuple[ResourceRecord, ...] = ()
    #: header counts as sent (QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT)
    counts: tuple[int, int, int, int] = (0, 0, 0, 0)
    anomalies: tuple[str, ...] = field(default=())

    @property
    def opt(self) -> Opt | None:
        """The first OPT record's EDNS fields, if any."""
        for rr in self.additional:
            if isinstance(rr.rdata, Opt):
                return rr.rdata
        return None


class _Damage(Exception):
    """Internal: stops parsing at the first damage; ``code`` is in ANOMALIES."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


_PLAIN = frozenset(range(0x21, 0x7F)) - {ord("."), ord("\\")}


def _label_text(label: bytes) -> str:
    out: list[str] = []
    for b in label:
        if b in _PLAIN:
            out.append(chr(b))
        elif b == 0x2E or b == 0x5C:
            out.append("\\" + chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def _read_name(data: bytes, offset: int, limit: int) -> tuple[str, int]:
    """Read a possibly compressed name at ``offset``; returns (text, end).

    ``end`` is the offset just after the name's in-place octets; the in-place
    octets must lie before ``limit``.  Pointers must point strictly before the
    start of the name or suffix being read (RFC 1035 §4.1.4; dpkt's rule).
    """
    labels: list[str] = []
    wire_len = 1  # the terminating zero octet
    pos = offset
    start = offset
    end = -1
    while True:
        if pos >= limit:
            raise _Damage("truncated_message")
        length = data[pos]
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= limit:
                raise _Damage("truncated_message")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if target >= start:
                raise _Damage("pointer_loop_or_forward")
            if end < 0:
                end = pos + 2
            pos = start = target
            limit = len(data)
            continue
        if kind == 0x40:
            raise _Damage("label_too_long")
        if kind == 0x80:
            raise _Damage("bad_label_type")
        if length == 0:
            if end < 0:
                end = pos + 1
            return ("." if not labels else ".".join(labels)), end
        wire_len += length + 1
        if wire_len > MAX_NAME_LEN:
            raise _Damage("name_too_long")
        if pos + 1 + length > limit:
            raise _Damage("truncated_message")
        labels.append(_label_text(data[pos + 1 : pos + 1 + length]))
        pos += 1 + length


def _name_in_rdata(data: bytes, offset: int, rd_end: int) -> tuple[str, int]:
    """A name inside rdata: its in-place octets must stay within RDLENGTH."""
    try:
        return _read_name(data, offset, rd_end)
    except _Damage as damage:
        if damage.code == "truncated_message":
            raise _Damage("rdata_overrun") from None
        raise


def _character_strings(raw: bytes) -> tuple[bytes, ...]:
    out: list[bytes] = []
    pos = 0
    while pos < len(raw):
        n = raw[pos]
        if pos + 1 + n > len(raw):
            raise _Damage("rdata_overrun")
        out.append(raw[pos + 1 : pos + 1 + n])
        pos += 1 + n
    return tuple(out)


def _key_values(raw: bytes) -> tuple[tuple[int, bytes], ...]:
    """(2-octet code, 2-octet length, value) triples: EDNS options, SvcParams."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise _Damage("rdata_overrun")
        code, n = struct.unpack_from(">HH", raw, pos)
        if pos + 4 + n > len(raw):
            raise _Damage("rdata_overrun")
        out.append((code, raw[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return tuple(out)


def _decode_rdata(data: bytes, rtype: int, rclass: int, ttl: int, start: int, end: int) -> Rdata:
    """Typed rdata for ``data[start:end]``; raises ``_Damage('rdata_overrun')`` etc."""
    raw = data[start:end]
    if not raw and rtype != TYPE_OPT:
        return raw  # RFC 2136 §2.5.2-2.5.4: UPDATE deletions carry empty rdata
    if rtype == TYPE_A:
        if len(raw) != 4:
            raise _Damage("rdata_overrun")
        return str(ipaddress.IPv4Address(raw))
    if rtype == TYPE_AAAA:
        if len(raw) != 16:
            raise _Damage("rdata_overrun")
        return str(ipaddress.IPv6Address(raw))
    if rtype in (TYPE_CNAME, TYPE_NS, TYPE_PTR):
        name, stop = _name_in_rdata(data, start, end)
        if stop != end:
            raise _Damage("rdata_overrun")
        return name
    if rtype == TYPE_MX:
        if len(raw) < 3:
            raise _Damage("rdata_overrun")
        exchange, stop = _name_in_rdata(data, start + 2, end)
        if stop != end:
            raise _Damage("rdata_overrun")
        return Mx(int.from_bytes(raw[:2], "big"), exchange)
    if rtype == TYPE_SRV:
        if len(raw) < 7:
            raise _Damage("rdata_overrun")
        prio, weight, port = struct.unpack_from(">HHH", raw)
        target, stop = _name_in_rdata(data, start + 6, end)
        if stop != end:
            raise _Damage("rdata_overrun")
        return Srv(prio, weight, port, target)
    if rtype == TYPE_SOA:
        mname, pos = _name_in_rdata(data, start, end)
        rname, pos = _name_in_rdata(data, pos, end)
        if end - pos != 20:
            raise _Damage("rdata_overrun")
        return Soa(mname, rname, *struct.unpack_from(">IIIII", data, pos))
    if rtype == TYPE_TXT:
        return _character_strings(raw)
    if rtype == TYPE_OPT:
        return Opt(rclass, ttl >> 24, (ttl >> 16) & 0xFF, bool(ttl & 0x8000), _key_values(raw))
    if rtype in (TYPE_SVCB, TYPE_HTTPS):
        if len(raw) < 3:
            raise _Damage("rdata_overrun")
        target, pos = _name_in_rdata(data, start + 2, end)
        return Svcb(int.from_bytes(raw[:2], "big"), target, _key_values(data[pos:end]))
    if rtype == TYPE_LOC and raw[0] == 0 and len(raw) != 16:
        raise _Damage("rdata_overrun")  # version 0 LOC is exactly 16 octets (RFC 1876 §2)
    return raw  # NULL (RFC 1035 §3.3.10) and every other type: raw octets


class _Parser:
    """Parsing state of one message; results accumulate so damage keeps them."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = HEADER_LEN
        self.anomalies: list[str] = []
        self.questions: list[Question] = []
        self.sections: tuple[list[ResourceRecord], ...] = ([], [], [])

    def note(self, code: str) -> None:
        if code not in self.anomalies:
            self.anomalies.append(code)

    def _capped(self, count: int, min_len: int) -> int:
        capacity = (len(self.data) - self.pos) // min_len
        if count > capacity:
            self.note("too_many_records")
            return capacity
        return count

    def question(self) -> None:
        name, pos = _read_name(self.data, self.pos, len(self.data))
        if pos + 4 > len(self.data):
            raise _Damage("truncated_message")
        qtype, qclass = _QUESTION_FIXED.unpack_from(self.data, pos)
        self.questions.append(Question(name, qtype, qclass))
        self.pos = pos + 4

    def record(self, into: list[ResourceRecord]) -> None:
        data = self.data
        name, pos = _read_name(data, self.pos, len(data))
        if pos + 10 > len(data):
            raise _Damage("truncated_message")
        rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(data, pos)
        start = pos + 10
        end = start + rdlength
        if end > len(data):
            raise _Damage("truncated_message")
        rdata: Rdata
        try:
            rdata = _decode_rdata(data, rtype, rclass, ttl, start, end)
        except _Damage as damage:  # the record's bounds are known: keep it raw, go on
            self.note(damage.code)
            rdata = data[start:end]
        into.append(ResourceRecord(name, rtype, rclass, ttl, rdata))
        self.pos = end

    def run(self, counts: tuple[int, int, int, int]) -> None:
        try:
            n = self._capped(counts[0], MIN_QUESTION_LEN)
            for _ in range(n):
                self.question()
            if n < counts[0]:
                return
            for count, section in zip(counts[1:], self.sections, strict=True):
                n = self._capped(count, MIN_RECORD_LEN)
                for _ in range(n):
                    self.record(section)
                if n < count:
                    return
        except _Damage as damage:
            self.note(damage.code)
            return
        if self.pos < len(self.data):
            self.note("trailing_bytes")


def _flag_fields(flags: int) -> dict[str, Any]:
    """The header's second 16 bits (RFC 1035 §4.1.1, RFC 4035 §3.2)."""
    return {
        "qr": bool(flags & 0x8000),
        "opcode": (flags >> 11) & 0xF,
        "aa": bool(flags & 0x0400),
        "tc": bool(flags & 0x0200),
        "rd": bool(flags & 0x0100),
        "ra": bool(flags & 0x0080),
        "ad": bool(flags & 0x0020),
        "cd": bool(flags & 0x0010),
        "rcode": flags & 0xF,
    }


def parse_message(data: bytes) -> DnsMessage:
    """Parse one DNS message (RFC 1035 §4.1); never raises.

    Everything parsed before the first damage is returned, with the damage as
    anomaly codes (:data:`ANOMALIES`).  Names use the escaping described in
    the module docstring (``\\.``, ``\\\\``, ``\\DDD`` decimal; root is
    ``.``).  ``rcode`` is the 12-bit extended RCODE when an OPT record is
    present (RFC 6891 §6.1.3), else the header's 4 bits.
    """
    data = bytes(data)
    if len(data) < HEADER_LEN:  # keep the ID and flags when they are present
        head = data + bytes(HEADER_LEN - len(data))
        flags = int.from_bytes(head[2:4], "big")
        return DnsMessage(
            id=int.from_bytes(head[:2], "big") if len(data) >= 2 else 0,
            **(_flag_fields(flags) if len(data) >= 4 else {}),
            anomalies=("truncated_message",),
        )
    ident, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    parser = _Parser(data)
    parser.run((qd, an, ns, ar))
    answers, authority, additional = parser.sections
    rcode = flags & 0xF
    opts = [rr.rdata for rr in additional if isinstance(rr.rdata, Opt)]
    if opts:
        rcode |= opts[0].extended_rcode << 4
        if len(opts) > 1:
            parser.note("multiple_opt_records")
    return DnsMessage(
        id=ident,
        **{**_flag_fields(flags), "rcode": rcode},
        questions=tuple(parser.questions),
        answers=tuple(answers),
        authority=tuple(authority),
        additional=tuple(additional),
        counts=(qd, an, ns, ar),
        anomalies=tuple(parser.anomalies),
    )


def split_tcp_messages(stream: bytes) -> tuple[list[bytes], bytes]:
    """Cut DNS-over-TCP bytes into messages (RFC 1035 §4.2.2, RFC 7766 §8).

    Each message is preceded by a 2-octet length.  Returns the complete
    messages in order and the incomplete tail (a partial length prefix or
    message), which the caller prepends to the next segment's bytes.
    """
    messages: list[bytes] = []
    pos = 0
    while pos + 2 <= len(stream):
        length = (stream[pos] << 8) | stream[pos + 1]
        if pos + 2 + length > len(stream):
            break
        messages.append(bytes(stream[pos + 2 : pos + 2 + length]))
        pos += 2 + length
    return messages, bytes(stream[pos:])


# ------------------------------------------------------------------ summary


class DnsSummary(NamedTuple):
    """The fields of a message the analysis pipeline reads (see :func:`summarize`)."""

    id: int
    #: the header's raw 16-bit flags word (0 when the message is shorter than 4 octets)
    flags: int
    #: as :attr:`DnsMessage.rcode`: includes the first OPT record's extended bits
    rcode: int
    #: header counts as sent (QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT)
    counts: tuple[int, int, int, int]
    #: the first question's name text, None when no question was parsed
    qname: str | None
    qtype: int | None
    qclass: int | None
    #: ANSWER section only: (rtype, ttl, text), text as :func:`_answer_text`
    answers: tuple[tuple[int, int, str | None], ...]
    #: exactly :attr:`DnsMessage.anomalies`
    anomalies: tuple[str, ...]


def _answer_text(rr: ResourceRecord) -> str | None:
    """The text of an answer, derived from the rdata :func:`parse_message` produced.

    A and AAAA: the address; CNAME, NS, PTR: the name; MX: the exchange; SRV:
    the target; TXT: the character-strings as latin-1 joined by one space;
    DNAME: the name read from the rdata octets alone (RFC 6672 §2.5: never
    compressed; parse_message keeps DNAME rdata raw, so a pointer or damage
    there gives None and no anomaly).  Everything else, and rdata kept raw
    because of damage or because it is empty, is None.
    """
    rdata = rr.rdata
    if isinstance(rdata, str):  # A, AAAA, CNAME, NS, PTR
        return rdata
    if isinstance(rdata, Mx):
        return rdata.exchange
    if isinstance(rdata, Srv):
        return rdata.target
    if isinstance(rdata, tuple):  # TXT character-strings
        return " ".join(s.decode("latin-1") for s in rdata)
    if rr.rtype == TYPE_DNAME and isinstance(rdata, bytes):
        try:
            name, end = _read_name(rdata, 0, len(rdata))
        except _Damage:
            return None
        return name if end == len(rdata) else None
    return None


def summarize_py(data: bytes) -> DnsSummary:
    """:class:`DnsSummary` of one message, built from :func:`parse_message`; never raises.

    The specification of the C fast path (``netsift._dns.summarize``).
    """
    data = bytes(data)
    m = parse_message(data)
    q = m.questions[0] if m.questions else None
    return DnsSummary(
        id=m.id,
        flags=int.from_bytes(data[2:4], "big") if len(data) >= 4 else 0,
        rcode=m.rcode,
        counts=m.counts,
        qname=q.name if q else None,
        qtype=q.qtype if q else None,
        qclass=q.qclass if q else None,
        answers=tuple((rr.rtype, rr.ttl, _answer_text(rr)) for rr in m.answers),
        anomalies=m.anomalies,
    )


_c_summarize: Callable[[bytes], tuple[Any, ...]] | None
try:
    from ._dns import summarize as _imported_c_summarize

    _c_summarize = _imported_c_summarize
except ImportError:  # pragma: no cover - exercised where no compiler was available
    _c_summarize = None


def summarize(data: bytes) -> DnsSummary:
    """:func:`summarize_py`'s result, computed in C when ``netsift._dns`` is built."""
    if _c_summarize is None:  # pragma: no cover
        return summarize_py(data)
    return DnsSummary._make(_c_summarize(data))
