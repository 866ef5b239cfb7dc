"""The application layer: DNS, TLS, QUIC and HTTP/1.x read from the flows' payloads.

The stage runs after the flow table, which tells it for every packet which
flow and direction it belongs to (:class:`netsift.flows.FlowOut`).  It keeps
state per live flow only (bounded stream buffers, request queues) and hands
each flow's application summary over when the flow ends, so memory follows
the live flows, not the capture.

What is read, and where
    DNS     every UDP datagram to or from port 53, 5353 (mDNS) or 5355 (LLMNR),
            reassembled IP fragments included, and TCP streams on port 53
            (length-prefixed messages, several per segment or split across
            segments).
    TLS     the first bytes of each TCP direction, on any port: a handshake
            record starts a hello that is reassembled across segments and
            records until complete (at most :data:`MAX_HELLO_STREAM` bytes);
            after a HelloRetryRequest both directions are read again.  On the
            :data:`PREAMBLE_PORTS` (STARTTLS and the like) and after an HTTP
            CONNECT answered 2xx, a handshake record starting any of the first
            :data:`PREAMBLE_SEGMENTS` segments starts the hello.
    QUIC    UDP datagrams whose first packet is a long-header Initial of QUIC
            v1 or v2, on any port (keys from the client's DCID, RFC 9001 §5).
    HTTP    a TCP direction whose first bytes are an HTTP/1.x request line or
            status line, on any port; the whole direction is then followed
            (bodies skipped by their framing), so pipelined and keep-alive
            requests are all seen.

TCP streams are put in sequence order per direction: retransmitted bytes are
dropped, a segment that arrives early waits (at most :data:`MAX_PENDING`
segments), and a hole is skipped once the other side acknowledges bytes past
it, when too many segments wait, or when the flow ends (HTTP resynchronises
on the next head; a TLS hello with a hole is given up).  A direction is
claimed by its first payload packet (a first payload under
:data:`MIN_CLAIM_BYTES` waits for the next); after that only the directions a
parser still reads (an incomplete hello, HTTP, DNS over TCP, a preamble that
may turn to TLS) reach Python at all: the others are filtered out with numpy,
so bulk transfers cost nothing here.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import heapq
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Final

import numpy as np

from . import dns as dnsmod
from . import tls as tlsmod
from .capture import RecordBatch
from .columns import PacketColumns, ip_text
from .detect.base import DnsEvents
from .flows import SERVICES, FlowOut
from .http import Assembler, Head, new_assembler
from .quic import CryptoAssembler, QuicHello

#: Largest TLS stream prefix buffered while a hello is incomplete.
MAX_HELLO_STREAM: Final = 1 << 17
#: Segments held per direction while waiting for a missing one.
MAX_PENDING: Final = 32
#: DNS messages per TCP stream read (zone transfers can be long).
MAX_DNS_TCP_MESSAGES: Final = 10_000
#: Outstanding DNS queries remembered per flow for RTT matching.
MAX_OUTSTANDING: Final = 64
#: Distinct keys each report counter keeps (Space-Saving bound beyond).
COUNTER_CAP: Final = 20_000
#: Answers and requests kept in a flow's summary.
MAX_FLOW_ITEMS: Final = 10
#: Members held in all the distinct-value sets of one section together (DNS: names per
#: registered domain and per client; TLS: clients per SNI and per fingerprint).  Each set
#: has its own cap too, but sets times per-set caps is far beyond memory (80,000 domains
#: of 10,000 names); past this budget sets stop growing, say so (``*_capped``) and the
#: refused additions are counted (``dns.distinct_names_not_held``,
#: ``tls.distinct_clients_not_held``).  About 100 bytes a member.
MAX_SET_MEMBERS: Final = 500_000

DNS_PORTS: Final = frozenset({53, 5353, 5355})
_TCP, _UDP = 6, 17

#: RR type mnemonics (IANA registry) for the report.
QTYPE_NAMES: Final = {
    1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR",
    10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT", 17: "RP",
    18: "AFSDB", 19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP", 23: "NSAP-PTR", 24: "SIG",
    25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA", 29: "LOC", 30: "NXT", 31: "EID",
    32: "NIMLOC", 33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX", 37: "CERT", 38: "A6",
    39: "DNAME", 40: "SINK", 41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY",
    46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM",
    52: "TLSA", 53: "SMIMEA", 55: "HIP", 56: "NINFO", 57: "RKEY", 58: "TALINK", 59: "CDS",
    60: "CDNSKEY", 61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS",
    99: "SPF", 100: "UINFO", 101: "UID", 102: "GID", 103: "UNSPEC", 104: "NID", 105: "L32",
    106: "L64", 107: "LP", 108: "EUI48", 109: "EUI64", 249: "TKEY", 250: "TSIG", 251: "IXFR",
    252: "AXFR", 253: "MAILB", 254: "MAILA", 255: "ANY", 256: "URI", 257: "CAA", 258: "AVC",
    259: "DOA", 260: "AMTRELAY", 261: "RESINFO", 32768: "TA", 32769: "DLV",
}  # fmt: skip
#: RCODE mnemonics (RFC 1035 §4.1.1, RFC 2136, RFC 6891, RFC 8914 registry).
RCODE_NAMES: Final = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 11: "DSOTYPENI",
    16: "BADVERS", 17: "BADKEY", 18: "BADTIME", 19: "BADMODE", 20: "BADNAME", 21: "BADALG",
    22: "BADTRUNC", 23: "BADCOOKIE",
}  # fmt: skip
#: TLS versions by their wire code.
TLS_VERSION_NAMES: Final = {
    0x0200: "SSLv2", 0x0300: "SSLv3", 0x0301: "TLSv1.0", 0x0302: "TLSv1.1",
    0x0303: "TLSv1.2", 0x0304: "TLSv1.3", 0xFEFF: "DTLSv1.0", 0xFEFD: "DTLSv1.2",
    0xFEFC: "DTLSv1.3",
}  # fmt: skip
#: QUIC v1 (RFC 9000) and v2 (RFC 9369) and the type bits of their Initial packets.
_QUIC_INITIAL: Final = {b"\x00\x00\x00\x01": 0x00, b"\x6b\x33\x43\xcf": 0x10}
_QUIC_VERSIONS: Final = tuple(_QUIC_INITIAL)

_HTTP_METHODS: Final = (
    b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ",
    b"TRACE ", b"PROPFIND ", b"PROPPATCH ", b"MKCOL ", b"COPY ", b"MOVE ", b"LOCK ",
    b"UNLOCK ", b"SEARCH ", b"REPORT ", b"SUBSCRIBE ", b"NOTIFY ", b"PRI ",
)  # fmt: skip


def qtype_name(t: int | None) -> str | None:
    return None if t is None else QTYPE_NAMES.get(t, f"TYPE{t}")


def rcode_name(r: int) -> str:
    return RCODE_NAMES.get(r, f"RCODE{r}")


def tls_version_name(v: int | None) -> str | None:
    if v is None:
        return None
    return TLS_VERSION_NAMES.get(v, f"0x{v:04x}")


def _version_of_client(ch: tlsmod.ClientHello) -> int:
    versions = [v for v in ch.supported_versions if not tlsmod.is_grease(v)]
    return max(versions) if versions else ch.legacy_version


#: (legacy version, supported_versions) -> the name of the highest version offered
_CLIENT_VERSION_NAMES: dict[tuple[int, Any], str | None] = {}


def _client_version_name(ch: tlsmod.ClientHello) -> str | None:
    """``tls_version_name(_version_of_client(ch))``, cached: clients offer few distinct lists."""
    key = (ch.legacy_version, ch.supported_versions)
    try:
        return _CLIENT_VERSION_NAMES[key]
    except KeyError:
        pass
    except TypeError:  # a hand-built hello holding a list
        return tls_version_name(_version_of_client(ch))
    name = _CLIENT_VERSION_NAMES[key] = tls_version_name(_version_of_client(ch))
    if len(_CLIENT_VERSION_NAMES) > 4096:
        _CLIENT_VERSION_NAMES.clear()
    return name


def _version_of_server(sh: tlsmod.ServerHello) -> int:
    return sh.supported_version if sh.supported_version is not None else sh.legacy_version


# --------------------------------------------------------------------------- counters


class BoundedCounter:
    """Counts by key keeping at most ``cap`` keys (the heaviest).

    When the table grows to twice ``cap`` it is cut back to the ``cap``
    largest; ``max_dropped`` is the largest count ever dropped, so any key's
    true count is at most its reported count plus ``max_dropped`` and a key
    missing from the table had at most ``max_dropped`` (Misra–Gries style
    bound, as :mod:`netsift.keyed`).
    """

    __slots__ = ("cap", "counts", "dropped_keys", "max_dropped")

    def __init__(self, cap: int = COUNTER_CAP) -> None:
        self.cap = cap
        self.counts: Counter[Any] = Counter()
        self.max_dropped = 0
        self.dropped_keys = 0

    def update(self, keys: Iterable[Any]) -> None:
        self.counts.update(keys)
        if len(self.counts) > 2 * self.cap:
            self._trim()

    def add(self, key: Any, k: int = 1) -> None:
        self.counts[key] += k
        if len(self.counts) > 2 * self.cap:
            self._trim()

    def _trim(self) -> None:
        # ties broken by key, as in top(): what is kept does not depend on arrival order
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        keep, drop = ranked[: self.cap], ranked[self.cap :]
        self.max_dropped = max(self.max_dropped, max(k for _, k in drop))
        self.dropped_keys += len(drop)
        self.counts = Counter(dict(keep))

    def top(self, n: int) -> list[tuple[Any, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]

    def merge(self, other: BoundedCounter) -> None:
        """Add another counter's counts (a split run's worker).

        Exact while neither side dropped a key and the sum keeps within twice ``cap``.
        Otherwise the sum is cut back like a single table, and a key's true count is at
        most its count plus ``max_dropped``, which adds both sides' bounds (a key may
        have been dropped on each side).
        """
        self.counts.update(other.counts)
        self.max_dropped += other.max_dropped
        self.dropped_keys += other.dropped_keys
        if len(self.counts) > 2 * self.cap:
            self._trim()

    @property
    def approximate(self) -> bool:
        return self.dropped_keys > 0

    def __len__(self) -> int:
        return len(self.counts)


class _Budget:
    """Members that the :class:`_CappedSet` sharing it may still add (see :data:`MAX_SET_MEMBERS`)."""

    __slots__ = ("left", "limit", "refused")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = MAX_SET_MEMBERS if limit is None else limit
        self.left = self.limit
        self.refused = 0


class _Desc:
    """A heap entry that orders by ``rank`` descending (heapq keeps the largest on top)."""

    __slots__ = ("item", "rank")

    def __init__(self, rank: Any, item: Any) -> None:
        self.rank = rank
        self.item = item

    def __lt__(self, other: _Desc) -> bool:
        return bool(self.rank > other.rank)


class _CappedSet:
    """A set of at most ``cap`` members, that also stops growing when its shared ``budget``
    is spent (``full`` says a member was turned away).

    At the cap it holds the ``cap`` smallest members by ``rank`` (the member itself, or
    ``rank(member)``) rather than the first ones seen, so what it holds does not depend on
    the order members came in and the sets of a split run's workers merge to what one run
    holds.  Only the budget, once spent, makes it depend on order.
    """

    __slots__ = ("_heap", "budget", "cap", "full", "items", "rank")

    def __init__(self, cap: int, budget: _Budget | None = None,
                 rank: Callable[[Any], Any] | None = None) -> None:  # fmt: skip
        self.cap = cap
        self.budget = budget
        self.rank = rank
        self.items: set[Any] = set()
        self.full = False
        #: the members ranked largest first, built when the set reaches its cap
        self._heap: list[_Desc] | None = None

    def add(self, item: Any) -> None:
        items = self.items
        if item in items:
            return
        if len(items) >= self.cap:
            self.full = True
            self._displace(item)
            return
        b = self.budget
        if b is not None:
            if b.left <= 0:
                self.full = True
                b.refused += 1
                return
            b.left -= 1
        items.add(item)

    def _displace(self, item: Any) -> None:
        """At the cap: ``item`` takes the place of the largest member if it ranks below it."""
        rank = self.rank
        heap = self._heap
        if heap is None:
            heap = self._heap = [_Desc(rank(x) if rank is not None else x, x) for x in self.items]
            heapq.heapify(heap)
        if not heap:
            return
        r = rank(item) if rank is not None else item
        if r < heap[0].rank:
            self.items.discard(heapq.heapreplace(heap, _Desc(r, item)).item)
            self.items.add(item)

    def release(self) -> None:
        """Give this set's members back to the budget (the set is being dropped)."""
        if self.budget is not None:
            self.budget.left += len(self.items)
        self.items = set()
        self._heap = None

    def merge(self, other: _CappedSet) -> None:
        """Add another set's members (smallest rank first), from this set's budget."""
        if other.full:
            self.full = True
        for item in sorted(other.items, key=self.rank):
            self.add(item)


def _merge_sets(mine: dict[Any, _CappedSet], theirs: dict[Any, _CappedSet], make: Callable[[], _CappedSet]) -> None:
    """Add each of ``theirs`` sets into ``mine``'s set of its key (made by ``make`` if new), keys in
    sorted order (a set budget that runs out then does so the same way whatever the insertion order)."""
    for key in sorted(theirs):
        held = mine.get(key)
        if held is None:
            held = mine[key] = make()
        held.merge(theirs[key])


def _prune_sets(sets: dict[Any, _CappedSet], counter: BoundedCounter) -> dict[Any, _CappedSet]:
    """The sets whose key ``counter`` still holds; the others give their members back to the budget."""
    live = set(counter.counts)
    for key, held in sets.items():
        if key not in live:
            held.release()
    return {k: v for k, v in sets.items() if k in live}


def _name_rank(name: str) -> tuple[int, str]:
    """The order DNS name sets keep names in at their cap: a hash of the name (CRC-32), so a
    capped set holds an unbiased sample of names, the one :func:`_mean_entropy` reads."""
    return zlib.crc32(name.encode()), name


#: Hashes a :class:`_Keyed` table keeps to count its distinct keys once rows were dropped
#: (a K-minimum-values sketch: standard error about 1/sqrt(k-2), 3% here).
DISTINCT_SKETCH_K: Final = 1024
_M64: Final = (1 << 64) - 1


def _mix64(key: Any) -> int:
    """A well-mixed 64-bit hash of a key (splitmix64's finalizer over Python's hash, which
    is not randomised for the int tuples used as keys; strings, whose hash is, go through
    BLAKE2b so that the sketches of a split run's worker processes agree)."""
    if isinstance(key, str):
        x = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    else:
        x = hash(key) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


class _Keyed:
    """Per-key records (e.g. per client) bounded like :class:`BoundedCounter`, by weight.

    :meth:`distinct` counts the keys ever seen: exactly while no row was dropped, and
    from a K-minimum-values sketch of the keys afterwards (a key that was dropped and
    came back is not counted twice).
    """

    def __init__(self, cap: int, make: Callable[[], Any], release: Callable[[Any], None] | None = None) -> None:
        self.cap = cap
        self.make = make
        self.release = release  # called with each dropped row
        self.rows: dict[Any, Any] = {}
        self.dropped_keys = 0
        self._kmv: list[int] = []  # max-heap (negated) of the smallest key hashes
        self._kmv_set: set[int] = set()

    def distinct(self) -> int:
        if not self.dropped_keys:
            return len(self.rows)
        k = len(self._kmv)
        if k < DISTINCT_SKETCH_K:
            return k
        return round((k - 1) / ((-self._kmv[0] + 1) / 2**64))

    def _sketch(self, key: Any) -> None:
        h = _mix64(key)
        if h in self._kmv_set:
            return
        if len(self._kmv) < DISTINCT_SKETCH_K:
            heapq.heappush(self._kmv, -h)
            self._kmv_set.add(h)
        elif h < -self._kmv[0]:
            self._kmv_set.discard(-heapq.heapreplace(self._kmv, -h))
            self._kmv_set.add(h)

    def get(self, key: Any) -> Any:
        row = self.rows.get(key)
        if row is None:
            self._sketch(key)
            if len(self.rows) >= 2 * self.cap:
                self._trim()
            row = self.rows[key] = self.make()
        return row

    def _trim(self) -> None:
        """Keep the ``cap`` heaviest rows (ties by key: not by arrival order)."""
        ranked = sorted(self.rows.items(), key=lambda kv: (-kv[1].weight, kv[0]))
        self.dropped_keys += len(ranked) - self.cap
        if self.release is not None:
            for _, dropped in ranked[self.cap :]:
                self.release(dropped)
        self.rows = dict(ranked[: self.cap])

    def merge(self, other: _Keyed) -> None:
        """Add another table's rows (``row.merge(theirs)``), keys in sorted order.

        The distinct-key sketch merges exactly (the k smallest hashes of the union), so
        :meth:`distinct` is what one table fed every key would say.  The rows are exact
        while neither side dropped one and the union keeps within twice ``cap``; past
        that the heaviest are kept, as in :meth:`get`.
        """
        union = self._kmv_set | other._kmv_set
        kept = heapq.nsmallest(DISTINCT_SKETCH_K, union)
        self._kmv = [-h for h in kept]
        heapq.heapify(self._kmv)
        self._kmv_set = set(kept)
        self.dropped_keys += other.dropped_keys
        rows = self.rows
        for key in sorted(other.rows):
            row = rows.get(key)
            if row is None:
                row = rows[key] = self.make()
            row.merge(other.rows[key])
        if len(rows) > 2 * self.cap:
            self._trim()


def _quantiles(hist: np.ndarray[Any, Any]) -> dict[str, Any] | None:
    """mean/p50/p95/max of values given as a histogram (index = value)."""
    n = int(hist.sum())
    if not n:
        return None
    values = np.arange(len(hist))
    cum = np.cumsum(hist)
    return {
        "count": n,
        "mean": round(float((values * hist).sum()) / n, 2),
        "p50": int(np.searchsorted(cum, (n + 1) // 2)),
        "p95": int(np.searchsorted(cum, -(-95 * n // 100))),
        "max": int(np.flatnonzero(hist)[-1]),
    }


def registered_domain(name: str) -> str:
    """The registrable domain (public suffix + one label) of a DNS name, lower-cased.

    Uses the Public Suffix List bundled with the ``publicsuffixlist`` package
    (no download at run time).  A name that is itself a public suffix or a
    single label is returned as is; the root is ``.``.
    """
    hit = _RD_CACHE.get(name)
    if hit is not None:
        return hit
    out = _registered_domain(name)
    if len(_RD_CACHE) > 100_000:
        _RD_CACHE.clear()
    _RD_CACHE[name] = out
    return out


#: names as given -> their registered domain (most queries repeat a name seen before)
_RD_CACHE: dict[str, str] = {}


def _registered_domain(name: str) -> str:
    name = name.rstrip(".").lower()
    if not name:
        return "."
    # The answer depends on the last few labels only: look those up (cached),
    # and the whole name only when all of them are part of the answer.
    labels = name.rsplit(".", _TAIL_LABELS)
    tail = name if len(labels) <= _TAIL_LABELS else name[len(labels[0]) + 1 :]
    out = _private_suffix(tail)
    if out == tail and tail != name:
        out = _private_suffix(name)
    return out


_TAIL_LABELS: Final = 4
#: the Public Suffix List's rules (as publicsuffixlist parses them) and the most labels in one
_PSL: tuple[frozenset[str], int] | None = None
_PSL_CACHE: dict[str, str] = {}


def _private_suffix(name: str) -> str:
    """``PublicSuffixList().privatesuffix(name) or name`` (publicsuffixlist 1.x, which
    bundles the list), cached; ``name`` is lower-case without a trailing dot."""
    hit = _PSL_CACHE.get(name)
    if hit is not None:
        return hit
    labels = name.split(".")
    out = name
    if "" not in labels:
        publen = _count_public(labels)
        if len(labels) > publen:
            out = ".".join(labels[-(publen + 1) :])
    if len(_PSL_CACHE) > 100_000:
        _PSL_CACHE.clear()
    _PSL_CACHE[name] = out
    return out


def _count_public(labels: list[str]) -> int:
    """How many trailing labels form the public suffix: publicsuffixlist's ``_countpublic``
    with unknown top-level domains taken as public (its default), rule for rule."""
    global _PSL
    if _PSL is None:
        _PSL = _load_psl()
    rules, maxlabel = _PSL
    n = len(labels)
    if n == 1:
        return 1
    for i in range(max(0, n - (maxlabel + 1)), n):
        depth = n - i
        s = ".".join(labels[i:])
        if "!" + s in rules:  # an exception: its parent is the suffix
            return depth - 1
        if "*." + s in rules:  # a wildcard covers one more label, if there is one
            return depth + 1 if i > 0 else depth
        if s in rules:
            return depth
    return 1


def _load_psl() -> tuple[frozenset[str], int]:
    """The rules of the list file publicsuffixlist bundles, parsed as its ``_parse`` parses
    them (tests/test_applayer.py compares the two sets), without the IDNA codec it runs over
    every rule: loading the list took 0.1 s of every run that saw a DNS name, now 0.02 s."""
    import publicsuffixlist

    with open(publicsuffixlist.PSLFILE, encoding="utf-8") as f:
        text = f.read()
    rules: set[str] = set()
    maxlabel = 0
    for line in text.lower().splitlines():
        if not line or line.startswith("//"):
            continue
        rule = line.split(" ")[0].rstrip()
        if not rule:
            continue
        maxlabel = max(maxlabel, rule.count(".") + 1)
        rules.add(rule)
        if not rule.isascii():  # also its ASCII (punycode) form, the one DNS carries
            bare = rule.lstrip("!")
            encoded = ".".join(x if x.isascii() else "xn--" + x.encode("punycode").decode("ascii")
                               for x in bare.split("."))  # fmt: skip
            rules.add("!" + encoded if rule[0] == "!" else encoded)
    return frozenset(rules), maxlabel


# --------------------------------------------------------------------------- per flow


class _Stream:
    """One TCP direction: in-order bytes for whichever parser claimed it."""

    __slots__ = ("buf", "dns_messages", "http", "mode", "next_seq", "pending", "segments")

    def __init__(self) -> None:
        self.mode = ""  # "" undecided, "tls", "http", "dns", "preamble", "done"
        self.next_seq = -1
        #: segments ahead of next_seq: (offset from next_seq, data, frame), sorted
        self.pending: list[tuple[int, bytes, int]] = []
        self.buf = b""
        self.http: Assembler | None = None
        self.segments = 0
        self.dns_messages = 0


class _DnsState(list):  # type: ignore[type-arg]
    """A flow's DNS state: [queries, responses, first qname, its qtype, first response
    (summary tuple), first RTT (µs), outstanding {id: ts}, anomalies].

    Kept as is in the finished flow's summary and rendered by :meth:`to_json` only
    when the flow's record is (most DNS flows are only counted).
    """

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        d = self
        out: dict[str, Any] = {"queries": d[0], "responses": d[1]}
        if d[2] is not None:
            out["query"], out["qtype"] = d[2], qtype_name(d[3])
        r = d[4]
        if r is not None:
            out["rcode"] = rcode_name(r[2])
            if "query" not in out and r[4] is not None:
                out["query"], out["qtype"] = r[4], qtype_name(r[5])
            if r[7]:
                kept = r[7][:MAX_FLOW_ITEMS]
                out["answers"] = [t if t is not None else qtype_name(rt) for rt, _, t in kept]
                out["ttls"] = [ttl for _, ttl, _ in kept]
        if d[5] is not None:
            out["rtt_ms"] = round(d[5] / 1000, 3)
        if d[7]:
            out["anomalies"] = list(d[7])
        return out


class _AppFlow:
    """Application state and summary of one live flow."""

    __slots__ = ("client", "info", "requests", "streams", "tunnel")

    def __init__(self) -> None:
        self.streams: list[_Stream] | None = None
        self.info: dict[str, Any] = {}
        self.requests: list[str] = []  # HTTP methods awaiting a response
        self.client: tuple[int, int] | None = None
        self.tunnel = False  # an HTTP CONNECT was answered 2xx: TLS may follow


def flow_key(code: int) -> int:
    """The flow id part of a :class:`FlowOut` code."""
    return code >> 1


# --------------------------------------------------------------------------- report figures


class _DnsClient:
    __slots__ = ("len_max", "len_sum", "names", "nxdomain", "responses", "weight")

    def __init__(self, budget: _Budget | None = None) -> None:
        self.weight = 0  # queries
        self.names: _CappedSet = _CappedSet(10_000, budget, _name_rank)
        self.len_sum = 0
        self.len_max = 0
        self.nxdomain = 0
        self.responses = 0

    def merge(self, other: _DnsClient) -> None:
        self.weight += other.weight
        self.names.merge(other.names)
        self.len_sum += other.len_sum
        self.len_max = max(self.len_max, other.len_max)
        self.nxdomain += other.nxdomain
        self.responses += other.responses


def _release_names(c: _DnsClient) -> None:
    c.names.release()


def _release_clients(p: _Print) -> None:
    p.clients.release()


#: Distinct names per client that the mean entropy ratio is computed over: a sample chosen
#: by a hash of the name (CRC-32), so it is unbiased and does not depend on set order.
ENTROPY_NAMES: Final = 256
#: Shortest subdomain part (dots removed) whose entropy is measured: below it the ratio
#: says little (the dns_tunnel detector's ``encoded_min_label`` default).
ENTROPY_MIN_CHARS: Final = 16


def _mean_entropy(names: Iterable[str]) -> float | None:
    """Mean entropy ratio (:func:`netsift.entropy.entropy_ratio`) of the names' subdomain parts.

    The part left of the registered domain, dots removed, for names where it has at
    least :data:`ENTROPY_MIN_CHARS` characters; None when no name has one.  Random
    encodings (tunnels, DGAs) give about 1, words and host names about 0.8–0.9.
    """
    from .entropy import entropy_ratio

    ratios = []
    for q in heapq.nsmallest(ENTROPY_NAMES, names, key=_name_rank):
        reg = registered_domain(q)
        full = q.rstrip(".")
        sub = full[: len(full) - len(reg) - 1] if reg and len(full) > len(reg) else ""
        flat = sub.replace(".", "")
        if len(flat) >= ENTROPY_MIN_CHARS:
            ratios.append(entropy_ratio(flat))
    return round(sum(ratios) / len(ratios), 3) if ratios else None


class DnsFigures:
    def __init__(self) -> None:
        self.messages = 0
        self.queries = 0
        self.responses = 0
        self.over_tcp = 0
        self.answered = 0
        self.by_qtype: Counter[str] = Counter()
        self.by_rcode: Counter[str] = Counter()
        self.by_opcode: Counter[int] = Counter()
        self.qnames = BoundedCounter()
        self.domains = BoundedCounter()
        self.domain_names: dict[str, _CappedSet] = {}
        #: shared by the distinct-name sets (per domain, per client): MAX_SET_MEMBERS
        self.names_budget = _Budget()
        self.name_len = np.zeros(256, dtype=np.int64)
        #: matched RTTs (µs) by value: exact while :data:`RTT_VALUES` values or fewer are
        #: distinct, then rounded to ``rtt_bits`` significant bits (see :meth:`rtt`)
        self.rtt_counts: Counter[int] = Counter()
        self.rtt_bits: int | None = None
        self.rtt_seen = 0
        self.clients = _Keyed(COUNTER_CAP, functools.partial(_DnsClient, self.names_budget), _release_names)
        #: [responses, NXDOMAIN responses] to clients that have no row (yet): a client's row
        #: takes them when it is made, so its counts do not depend on whether its first query
        #: came before or after them, nor on which worker of a split run saw which
        self.replies_only: dict[Any, list[int]] = {}
        self.anomalies: Counter[str] = Counter()
        self.unanswered = 0

    def rtt(self, us: int) -> None:
        # Counted by value, which adds up across a split run's workers; when too many values
        # are distinct all are rounded to fewer significant bits (relative error below
        # 2**(1 - bits)), the same way whatever the order.
        self.rtt_seen += 1
        if self.rtt_bits is not None:
            us = _round_bits(us, self.rtt_bits)
        counts = self.rtt_counts
        counts[us] += 1
        if len(counts) > RTT_VALUES:
            self._coarsen(24 if self.rtt_bits is None else self.rtt_bits - 2)

    def _coarsen(self, bits: int) -> None:
        while True:
            self.rtt_bits = bits
            self.rtt_counts = coarse = _rebinned(self.rtt_counts, bits)
            if len(coarse) <= RTT_VALUES // 2 or bits <= 4:
                return
            bits -= 2

    def _rtt_section(self) -> dict[str, Any] | None:
        if not self.rtt_counts:
            return None
        values = np.array(sorted(self.rtt_counts), dtype=np.int64)
        counts = np.array([self.rtt_counts[v] for v in values.tolist()], dtype=np.int64)
        n = int(counts.sum())
        if n <= RTT_EXPAND:
            a = np.repeat(values, counts)
            median, p95 = float(np.median(a)), float(np.percentile(a, 95))
        else:  # numpy's (linear) definitions, without the array of every value
            median, p95 = _quantile(values, counts, 0.5), _quantile(values, counts, 0.95)
        return {
            "matched": self.rtt_seen,
            "median_ms": round(median / 1000, 3),
            "p95_ms": round(p95 / 1000, 3),
            "max_ms": round(float(values[-1]) / 1000, 3),
        }

    def client_row(self, key: Any) -> _DnsClient:
        """The row of a client that sent a query (made if need be; it takes the responses
        the client got while it had none)."""
        c: _DnsClient = self.clients.get(key)
        if not c.weight and self.replies_only:
            held = self.replies_only.pop(key, None)
            if held is not None:
                c.responses += held[0]
                c.nxdomain += held[1]
        return c

    def reply(self, key: Any, nxdomain: bool) -> None:
        """A response to client ``key``."""
        c = self.clients.rows.get(key)
        if c is not None:
            c.responses += 1
            if nxdomain:
                c.nxdomain += 1
            return
        held = self.replies_only.get(key)
        if held is None:
            held = self.replies_only[key] = [0, 0]
            if len(self.replies_only) > 2 * COUNTER_CAP:
                self._trim_replies()
                held = self.replies_only.setdefault(key, [0, 0])
        held[0] += 1
        if nxdomain:
            held[1] += 1

    def _trim_replies(self) -> None:
        ranked = sorted(self.replies_only.items(), key=lambda kv: (-kv[1][0], kv[0]))
        self.replies_only = dict(ranked[:COUNTER_CAP])

    def _prune_domain_names(self) -> None:
        """Drop the name sets of domains the domain counter no longer holds."""
        self.domain_names = _prune_sets(self.domain_names, self.domains)

    def merge(self, other: DnsFigures) -> None:
        """Add another worker's figures (see :meth:`AppLayer.merge`)."""
        for name in ("messages", "queries", "responses", "over_tcp", "answered", "unanswered", "rtt_seen"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for counter in ("by_qtype", "by_rcode", "by_opcode", "anomalies"):
            getattr(self, counter).update(getattr(other, counter))
        self.qnames.merge(other.qnames)
        self.domains.merge(other.domains)
        self.name_len += other.name_len
        bits = min((b for b in (self.rtt_bits, other.rtt_bits) if b is not None), default=None)
        if bits is not None and bits != self.rtt_bits:
            self.rtt_counts = _rebinned(self.rtt_counts, bits)
        rtts = self.rtt_counts
        for v, k in other.rtt_counts.items():
            rtts[v if bits is None else _round_bits(v, bits)] += k
        self.rtt_bits = bits
        if len(rtts) > RTT_VALUES:
            self._coarsen(24 if bits is None else bits - 2)
        # the name sets, each from this side's budget (domains, then clients, in key order)
        self.names_budget.refused += other.names_budget.refused
        _merge_sets(self.domain_names, other.domain_names,
                    functools.partial(_CappedSet, 10_000, self.names_budget, _name_rank))  # fmt: skip
        if len(self.domain_names) > 4 * COUNTER_CAP:
            self._prune_domain_names()
        self.clients.merge(other.clients)
        rows, held = self.clients.rows, self.replies_only
        for key in sorted(other.replies_only):
            r, nx = other.replies_only[key]
            c = rows.get(key)
            if c is not None:
                c.responses += r
                c.nxdomain += nx
            else:
                mine_r = held.setdefault(key, [0, 0])
                mine_r[0] += r
                mine_r[1] += nx
        for key in [k for k in held if k in rows]:  # clients whose first query the other side saw
            r, nx = held.pop(key)
            rows[key].responses += r
            rows[key].nxdomain += nx
        if len(held) > 2 * COUNTER_CAP:
            self._trim_replies()

    def section(self, top_n: int) -> dict[str, Any]:
        rtt = self._rtt_section()
        clients = sorted(self.clients.rows.items(), key=lambda kv: (-kv[1].weight, kv[0]))
        return {
            "messages": self.messages,
            "queries": self.queries,
            "responses": self.responses,
            "over_tcp": self.over_tcp,
            "answered_queries": self.answered,
            "unanswered_queries": self.unanswered,
            "rtt": rtt,
            "by_qtype": dict(_ranked(self.by_qtype)),
            "by_rcode": dict(_ranked(self.by_rcode)),
            "by_opcode": {str(k): v for k, v in _ranked(self.by_opcode)},
            "query_name_length": _quantiles(self.name_len),
            "top_qnames": [{"name": n, "queries": k} for n, k in self.qnames.top(top_n)],
            "top_registered_domains": [
                {
                    "domain": d,
                    "queries": k,
                    "distinct_names": len(self.domain_names[d].items),
                    "distinct_names_capped": self.domain_names[d].full,
                }
                for d, k in self.domains.top(top_n)
            ],
            "clients": {
                "total": self.clients.distinct(),
                "top": [
                    {
                        "client": ip_text(*ip),
                        "queries": c.weight,
                        "responses": c.responses,
                        "distinct_names": len(c.names.items),
                        "distinct_names_capped": c.names.full,
                        "mean_name_length": round(c.len_sum / c.weight, 2) if c.weight else None,
                        "max_name_length": c.len_max,
                        "mean_entropy_ratio": _mean_entropy(c.names.items),
                        "nxdomain": c.nxdomain,
                    }
                    for ip, c in clients[:top_n]
                ],
            },
            "anomalies": dict(_ranked(self.anomalies)),
            "approximate": self.qnames.approximate or self.domains.approximate,
            "distinct_names_not_held": self.names_budget.refused,
        }


class _TlsClient:
    __slots__ = ("ja4", "snis", "weight")

    def __init__(self) -> None:
        self.weight = 0
        self.snis = _CappedSet(50)
        self.ja4 = _CappedSet(20)

    def merge(self, other: _TlsClient) -> None:
        self.weight += other.weight
        self.snis.merge(other.snis)
        self.ja4.merge(other.ja4)


class _Print:
    __slots__ = ("clients", "raw", "snis", "weight")

    def __init__(self, budget: _Budget | None = None) -> None:
        self.weight = 0
        self.clients = _CappedSet(10_000, budget)
        self.snis = _CappedSet(5)  # the example SNIs: the first five in sorted order
        self.raw = ""

    def merge(self, other: _Print) -> None:
        self.weight += other.weight
        self.clients.merge(other.clients)
        self.snis.merge(other.snis)
        # one raw string per fingerprint (its hash); the smaller if a hash ever had two
        if other.raw and (not self.raw or other.raw < self.raw):
            self.raw = other.raw


class TlsFigures:
    def __init__(self) -> None:
        self.client_hellos = 0
        self.server_hellos = 0
        self.hello_retry_requests = 0
        self.quic_hellos = 0
        self.without_sni = 0
        self.client_versions: Counter[str] = Counter()
        self.server_versions: Counter[str] = Counter()
        self.ciphers: Counter[str] = Counter()
        self.alpn: Counter[str] = Counter()
        self.snis = BoundedCounter()
        self.sni_clients: dict[str, _CappedSet] = {}
        #: shared by the distinct-client sets (per SNI, per fingerprint): MAX_SET_MEMBERS
        self.clients_budget = _Budget()
        self.clients = _Keyed(COUNTER_CAP, _TlsClient)
        self.ja4 = _Keyed(COUNTER_CAP, functools.partial(_Print, self.clients_budget), _release_clients)
        self.ja3 = _Keyed(COUNTER_CAP, functools.partial(_Print, self.clients_budget), _release_clients)
        self.ja3s: Counter[str] = Counter()
        self.anomalies: Counter[str] = Counter()

    def _prune_sni_clients(self) -> None:
        """Drop the client sets of SNIs the SNI counter no longer holds."""
        self.sni_clients = _prune_sets(self.sni_clients, self.snis)

    def merge(self, other: TlsFigures) -> None:
        """Add another worker's figures (see :meth:`AppLayer.merge`)."""
        for name in ("client_hellos", "server_hellos", "hello_retry_requests", "quic_hellos", "without_sni"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for c in ("client_versions", "server_versions", "ciphers", "alpn", "ja3s", "anomalies"):
            getattr(self, c).update(getattr(other, c))
        self.snis.merge(other.snis)
        # the client sets, each from this side's budget (SNIs, then fingerprints, in key order)
        self.clients_budget.refused += other.clients_budget.refused
        _merge_sets(self.sni_clients, other.sni_clients, functools.partial(_CappedSet, 10_000, self.clients_budget))
        if len(self.sni_clients) > 4 * COUNTER_CAP:
            self._prune_sni_clients()
        self.clients.merge(other.clients)
        self.ja4.merge(other.ja4)
        self.ja3.merge(other.ja3)

    def section(self, top_n: int) -> dict[str, Any]:
        def prints(table: _Keyed) -> list[dict[str, Any]]:
            rows = sorted(table.rows.items(), key=lambda kv: (-len(kv[1].clients.items), -kv[1].weight, kv[0]))
            return [
                {
                    "fingerprint": fp,
                    "raw": p.raw,
                    "hellos": p.weight,
                    "clients": len(p.clients.items),
                    "example_snis": sorted(p.snis.items),
                }
                for fp, p in rows[:top_n]
            ]

        clients = sorted(self.clients.rows.items(), key=lambda kv: (-kv[1].weight, kv[0]))
        return {
            "client_hellos": self.client_hellos,
            "server_hellos": self.server_hellos,
            "hello_retry_requests": self.hello_retry_requests,
            "quic_client_hellos": self.quic_hellos,
            "client_hellos_without_sni": self.without_sni,
            "client_max_versions": dict(_ranked(self.client_versions)),
            "negotiated_versions": dict(_ranked(self.server_versions)),
            "negotiated_ciphers": dict(_ranked(self.ciphers)[:top_n]),
            "alpn": dict(_ranked(self.alpn)[:top_n]),
            "top_snis": [
                {"sni": s, "hellos": k, "clients": len(self.sni_clients[s].items)}
                for s, k in self.snis.top(top_n)
            ],
            "ja4": prints(self.ja4),
            "ja3": prints(self.ja3),
            "ja3s": [{"fingerprint": fp, "hellos": k} for fp, k in _ranked(self.ja3s)[:top_n]],
            "clients": {
                "total": self.clients.distinct(),
                "top": [
                    {
                        "client": ip_text(*ip),
                        "hellos": c.weight,
                        "snis": sorted(c.snis.items),
                        "snis_capped": c.snis.full,
                        "ja4": sorted(c.ja4.items),
                    }
                    for ip, c in clients[:top_n]
                ],
            },
            "anomalies": dict(_ranked(self.anomalies)),
            "approximate": self.snis.approximate,
            "distinct_clients_not_held": self.clients_budget.refused,
        }


class HttpFigures:
    def __init__(self) -> None:
        self.requests = 0
        self.responses = 0
        self.methods: Counter[str] = Counter()
        self.status: Counter[str] = Counter()
        self.versions: Counter[str] = Counter()
        self.hosts = BoundedCounter()
        self.user_agents = BoundedCounter()
        self.content_types = BoundedCounter()
        self.uris = BoundedCounter()
        self.anomalies: Counter[str] = Counter()

    def merge(self, other: HttpFigures) -> None:
        """Add another worker's figures (see :meth:`AppLayer.merge`)."""
        self.requests += other.requests
        self.responses += other.responses
        for c in ("methods", "status", "versions", "anomalies"):
            getattr(self, c).update(getattr(other, c))
        for b in ("hosts", "user_agents", "content_types", "uris"):
            getattr(self, b).merge(getattr(other, b))

    def section(self, top_n: int) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "responses": self.responses,
            "methods": dict(_ranked(self.methods)),
            "status_codes": dict(_ranked(self.status)),
            "versions": dict(_ranked(self.versions)),
            "top_hosts": [{"host": h, "requests": k} for h, k in self.hosts.top(top_n)],
            "top_user_agents": [
                {"user_agent": u, "requests": k} for u, k in self.user_agents.top(top_n)
            ],
            "top_content_types": [
                {"content_type": c, "messages": k} for c, k in self.content_types.top(top_n)
            ],
            "top_uris": [{"uri": u, "requests": k} for u, k in self.uris.top(top_n)],
            "anomalies": dict(_ranked(self.anomalies)),
            "approximate": self.hosts.approximate or self.user_agents.approximate,
        }


def _ranked(c: Counter[Any]) -> list[tuple[Any, int]]:
    return sorted(c.items(), key=lambda kv: (-kv[1], str(kv[0])))


#: Distinct RTT values (µs) counted exactly; past it all are rounded to fewer significant bits.
RTT_VALUES: Final = 200_000
#: Matched RTTs up to which the quantiles are numpy's over the array of every value.
RTT_EXPAND: Final = 1 << 22


def _rebinned(counts: Counter[int], bits: int) -> Counter[int]:
    """``counts`` with every value rounded to ``bits`` significant bits."""
    out: Counter[int] = Counter()
    for v, k in counts.items():
        out[_round_bits(v, bits)] += k
    return out


def _round_bits(v: int, bits: int) -> int:
    """``v`` with all but its ``bits`` most significant bits cleared."""
    drop = v.bit_length() - bits
    return v if drop <= 0 else (v >> drop) << drop


def _quantile(values: np.ndarray[Any, Any], counts: np.ndarray[Any, Any], q: float) -> float:
    """The ``q`` quantile of ``values`` each repeated ``counts`` times (sorted values), as
    ``np.percentile``'s default (linear) method gives it, without building that array."""
    n = int(counts.sum())
    cum = np.cumsum(counts)
    at = (n - 1) * q
    lo = int(np.floor(at))
    a = float(values[int(np.searchsorted(cum, lo, side="right"))])
    b = float(values[int(np.searchsorted(cum, min(lo + 1, n - 1), side="right"))])
    return a + (b - a) * (at - lo)


# --------------------------------------------------------------------------- the stage


class AppLayer:
    """Reads application protocols from the packets of live flows (see the module doc).

    Call :meth:`update` after the flow table has processed the same rows with a
    :class:`FlowOut`; call :meth:`pop` with a finished flow's id to take its
    application summary (None when nothing was recognised).
    """

    def __init__(self, events: bool = False) -> None:
        self.dns = DnsFigures()
        self.tls = TlsFigures()
        self.http = HttpFigures()
        self.quic = CryptoAssembler()
        self._flows: dict[int, _AppFlow] = {}
        #: DNS state per flow (:class:`_DnsState`)
        self._dns_flows: dict[int, _DnsState] = {}
        #: TCP directions (FlowOut codes) a parser is still reading
        self._active: set[int] = set()
        self._active_arr = np.zeros(0, dtype=np.int64)
        self._active_dirty = False
        self.peak_flows = 0
        #: with ``events``: application fields by frame number, for ``netsift packets``
        #: (the caller empties it between batches)
        self.events: dict[int, dict[str, Any]] | None = {} if events else None
        self._frames: list[tuple[int, int]] | None = None
        self._reopened: list[tuple[int, int]] = []
        self._frame_override: int | None = None
        self._no_parser: set[int] = set()
        self._http_now: set[int] = set()
        self._file_index = 0
        #: called with every batch of DNS messages (the detectors' feed), when set
        self.dns_sink: Callable[[DnsEvents], None] | None = None

    # -- public -------------------------------------------------------------------------
    def update(self, cols: PacketColumns, batch: RecordBatch, out: FlowOut,
               frames: list[tuple[int, int]] | None = None) -> None:  # fmt: skip
        """Read rows of ``cols`` the flow table placed in ``out``; ``frames``: the
        (file, frame) of each row when the rows are reassembled datagrams."""
        self._cols = cols
        self._frames = frames
        self._file_index = batch.file_index
        fid = out.fid
        plen = cols.payload_len
        has = (fid >= 0) & (plen > 0) & (cols.payload_off >= 0)
        if not has.any():
            return
        proto = cols.ip_proto
        udp = has & (proto == _UDP)
        tcp = has & (proto == _TCP)
        buf = batch.buf
        mv = memoryview(buf)  # type: ignore[arg-type]
        start = batch.off + cols.payload_off
        # bytes of payload actually captured (snaplen)
        avail = np.minimum(plen, cols.caplen - cols.payload_off)
        if udp.any():
            sport, dport = cols.sport, cols.dport
            dns_rows = udp & (np.isin(sport, _DNS_PORT_ARR) | np.isin(dport, _DNS_PORT_ARR))
            rest = udp & ~dns_rows & (avail >= 7)
            if rest.any():
                # the originator's QUIC Initials: long header (first two bits set),
                # packet type 0 (v1) or 1 (v2); the version is checked per packet
                r = np.flatnonzero(rest & ((fid & 1) == 0))
                first = buf[start[r]]
                r = r[((first & 0xC0) == 0xC0) & ((first & 0x30) <= 0x10)]
                for i in r.tolist():
                    o = int(start[i])
                    payload = bytes(mv[o : o + int(avail[i])])
                    version = payload[1:5]
                    if version in _QUIC_VERSIONS and (payload[0] & 0x30) == _QUIC_INITIAL[version]:
                        self._quic(i, int(fid[i]), payload)
            if dns_rows.any():
                self._dns_udp(cols, np.flatnonzero(dns_rows), fid, start, avail, mv)
        if tcp.any():
            seen = out.seen
            # A direction's first payload claims it for a parser (or for none): decide
            # those first, so that the rest of a new unclaimed direction -- bulk data --
            # is filtered out here with the directions decided in earlier batches.
            first = np.flatnonzero(tcp & (seen == 0))
            claimed: list[int] = []
            http_now = self._http_now = set()  # directions claimed for HTTP in this batch
            no_parser = self._no_parser = set()  # first payloads no parser wants
            sports, dports = cols.sport, cols.dport
            for i, code, o, n in zip(first.tolist(), fid[first].tolist(), start[first].tolist(),
                                     avail[first].tolist(), strict=True):  # fmt: skip
                head = bytes(mv[o : o + min(n, CLAIM_BYTES)])
                kind = _claim_kind(head, int(sports[i]), int(dports[i]))
                if kind == "http":
                    http_now.add(code)
                elif not kind and n >= MIN_CLAIM_BYTES:
                    no_parser.add(code)
                elif kind == "tls" and len(head) >= 6 and head[5] not in (1, 2):
                    no_parser.add(code)  # a handshake record that holds no hello
                if (n < MIN_CLAIM_BYTES or (kind and not (kind == "tls" and _hello_in_one_record(head, n)))
                        or (not kind and ((code ^ 1) in http_now or (code ^ 1) in self._active))):  # fmt: skip
                    claimed.append(code)  # later segments of this direction may matter
            reading = self._active_codes(claimed)
            later = np.flatnonzero(tcp & (seen > 0))
            keep = later[np.isin(fid[later], reading)] if len(reading) else later[:0]
            rows = np.union1d(first, keep) if len(keep) else first
            if len(rows):
                self._reopened = []
                self._tcp_rows(cols, rows, fid, start, avail, mv)
                if self._reopened:
                    # directions opened again mid-batch (a HelloRetryRequest): their
                    # later rows of this batch were filtered out above; read them now
                    codes = np.array([c for c, _ in self._reopened], dtype=np.int64)
                    after = min(r for _, r in self._reopened)
                    more = later[np.isin(fid[later], codes) & (later > after)]
                    more = np.setdiff1d(more, rows)
                    self._reopened = []
                    if len(more):
                        self._tcp_rows(cols, more, fid, start, avail, mv)
        live = len(self._flows)
        if live > self.peak_flows:
            self.peak_flows = live

    def pop_many(self, flow_ids: list[int]) -> list[dict[str, Any] | None]:
        """:meth:`pop` for each of ``flow_ids`` (most finished flows have no state: those are
        answered without the call)."""
        flows, dns, pop = self._flows, self._dns_flows, self.pop
        return [pop(f) if f in flows or f in dns else None for f in flow_ids]

    def pop(self, flow_id: int) -> dict[str, Any] | None:
        """Take a finished flow's application summary (and drop its state)."""
        d = self._dns_flows.pop(flow_id, None) if self._dns_flows else None
        af = self._flows.pop(flow_id, None)
        if af is None:
            if d is None:
                return None
            return {"service": "dns", "dns": self._dns_summary(d)}
        if d is not None:
            af.info.setdefault("service", "dns")
            af.info["dns"] = self._dns_summary(d)
        for code in (flow_id << 1, (flow_id << 1) | 1):
            if code in self._active:
                self._active.discard(code)
                self._active_dirty = True
        if af.streams is not None:
            events, self.events = self.events, None  # no frame to put fields on now
            for side, st in enumerate(af.streams):
                while st.pending and st.mode not in ("", "done"):
                    self._skip_hole(af, st, (flow_id << 1) | side, -1, 0, 0, 0)
            self.events = events
            for st in af.streams:
                if st.http is not None:
                    for head in st.http.close():
                        self._http_head(af, head, -1)
                    self._http_anomalies(st.http)
        return af.info or None

    def _dns_summary(self, d: _DnsState) -> _DnsState:
        """A finished flow's DNS state (rendered when its record is); counts its unanswered queries."""
        if d[6]:
            self.dns.unanswered += len(d[6])
            d[6] = None
        return d

    def finish(self) -> None:
        """End of input: everything still live is counted (call :meth:`pop` per flow first)."""
        for fid in list(self._flows) + list(self._dns_flows):
            self.pop(fid)
        for code, k in self.quic.anomalies.items():
            self.tls.anomalies[code] += k
        # what only reading needs: the last batch's columns are not part of the state
        self.__dict__.pop("_cols", None)
        self._frames = None
        self._no_parser, self._http_now, self._reopened = set(), set(), []

    def merge(self, other: AppLayer) -> None:
        """Add the figures of another worker of a split run (:mod:`netsift.partition`); both
        have finished (:meth:`finish`).  Every flow was seen whole by one worker.

        Exact -- :meth:`sections` says what one run over every packet says -- while no
        bound was reached: counts and counters add, histograms add, RTTs are counted by
        value, sets and per-key rows unite, maxima take the larger.  Past a bound the
        result does not depend on arrival order, only on the worker order, and is flagged
        as one run's would be:

        * :class:`BoundedCounter`: counts add, the table is cut back to the heaviest
          (``approximate`` once either side or the sum cut any key);
        * :class:`_Keyed` rows (clients, fingerprints): rows unite and are cut back to the
          heaviest; ``clients.total`` comes from the distinct-key sketch, which merges
          exactly (the k smallest hashes of the union);
        * :class:`_CappedSet`: both hold the smallest members by rank, so a union cut to
          the cap is what one set would hold -- exact unless the shared budget
          (:data:`MAX_SET_MEMBERS`) ran out, on either side or in the union: then members
          are taken in key and rank order while it lasts and the refusals add
          (``distinct_*_not_held``);
        * RTTs past :data:`RTT_VALUES` distinct values: both sides rounded to the coarser
          of their precisions;
        * the QUIC assembler's connection caps (eviction order) are per worker.
        """
        if self._flows or self._dns_flows or other._flows or other._dns_flows:
            raise ValueError("AppLayer.merge: both sides must have finished")
        self.dns.merge(other.dns)
        self.tls.merge(other.tls)  # its anomalies already hold the QUIC ones (finish)
        self.http.merge(other.http)
        q, oq = self.quic, other.quic
        q.evicted += oq.evicted
        q.dropped_frames += oq.dropped_frames
        for code, k in oq.anomalies.items():
            q.anomalies[code] = q.anomalies.get(code, 0) + k
        self.peak_flows = max(self.peak_flows, other.peak_flows)

    def sections(self, top_n: int) -> dict[str, Any]:
        return {
            "dns": self.dns.section(top_n),
            "tls": self.tls.section(top_n),
            "http": self.http.section(top_n),
        }

    # -- DNS ------------------------------------------------------------------------------
    def _flow(self, code: int) -> _AppFlow:
        key = code >> 1
        af = self._flows.get(key)
        if af is None:
            af = self._flows[key] = _AppFlow()
        return af

    def _dns_udp(self, cols: PacketColumns, rows: np.ndarray[Any, Any], fid: np.ndarray[Any, Any],
                 start: np.ndarray[Any, Any], avail: np.ndarray[Any, Any], mv: memoryview) -> None:
        starts, lens = start[rows].tolist(), avail[rows].tolist()
        if _SUMMARIZE_MANY is not None:  # C: every message read in place, no slice objects
            msgs = _SUMMARIZE_MANY(mv, starts, lens)
        else:
            summarize = _SUMMARIZE
            msgs = [summarize(mv[o : o + n]) for o, n in zip(starts, lens, strict=True)]
        self._dns_messages(cols, rows, fid[rows].tolist(), msgs, False, lens)

    def _dns_messages(self, cols: PacketColumns, rows: np.ndarray[Any, Any], codes: list[int],
                      msgs: list[tuple[Any, ...]], tcp: bool, sizes: list[int]) -> None:  # fmt: skip
        """Count DNS messages (rows ``rows`` of ``cols``, flows ``codes``) and fill their flows.

        ``msgs`` are :class:`netsift.dns.DnsSummary` tuples (or the C function's plain
        tuples, same layout).  A flow's DNS state is a list (:data:`_D_FIELDS`), turned
        into its summary when the flow ends: this loop runs once per message.
        """
        f = self.dns
        n = len(msgs)
        f.messages += n
        if tcp:
            f.over_tcp += n
        ts = cols.ts_ns[rows].tolist()
        q_at, r_at, rtts = _FLOW_STEP(self._dns_flows, codes, msgs, ts, _DnsState, MAX_OUTSTANDING)
        f.answered += len(rtts)
        for rtt in rtts:
            f.rtt(rtt)
        for s in msgs:
            if s[8]:
                f.anomalies.update(s[8])
        if self.events is not None:
            events = self.events
            for k, s in enumerate(msgs):
                events[self._frame(int(rows[k]))] = _dns_event(s)
        if self.dns_sink is not None:
            self.dns_sink(self._dns_events(cols, rows, msgs, tcp, sizes))
        # the report's figures, in bulk
        f.by_opcode.update(Counter((m[1] >> 11) & 0xF for m in msgs))
        f.responses += len(r_at)
        f.queries += n - len(r_at)
        q_names = [msgs[k][4] for k in q_at]
        q_types = [msgs[k][5] for k in q_at]
        qr = rows[q_at] if q_at else rows[:0]
        q_clients = list(zip(cols.ip_src_hi[qr].tolist(), cols.ip_src_lo[qr].tolist(), strict=True))
        r_codes = [msgs[k][2] for k in r_at]
        rr = rows[r_at] if r_at else rows[:0]
        r_clients = list(zip(cols.ip_dst_hi[rr].tolist(), cols.ip_dst_lo[rr].tolist(), strict=True))
        if q_names:
            f.by_qtype.update(QTYPE_NAMES.get(t, f"TYPE{t}") if t is not None else "?" for t in q_types)
            f.qnames.update(q_names)
            domains = list(map(registered_domain, q_names))
            f.domains.update(domains)
            lengths = [0 if q == "." else len(q) for q in q_names]
            f.name_len += np.bincount(np.minimum(lengths, 255), minlength=256)[:256]
            if len(f.domain_names) > 4 * COUNTER_CAP:
                f._prune_domain_names()
            dn = f.domain_names
            client_row = f.client_row
            for q, dom, c_key, length in zip(q_names, domains, q_clients, lengths, strict=True):
                names = dn.get(dom)
                if names is None:
                    names = dn[dom] = _CappedSet(10_000, f.names_budget, _name_rank)
                names.add(q)
                c = client_row(c_key)
                c.weight += 1
                c.names.add(q)
                c.len_sum += length
                if length > c.len_max:
                    c.len_max = length
        if r_codes:
            f.by_rcode.update(map(rcode_name, r_codes))
            reply = f.reply
            for rc, c_key in zip(r_codes, r_clients, strict=True):
                reply(c_key, rc == 3)

    # -- QUIC -----------------------------------------------------------------------------
    def _quic(self, i: int, code: int, payload: bytes) -> None:
        hellos = self.quic.feed(payload, flow=code)
        af = self._flow(code)
        af.info.setdefault("service", "quic")
        for h in hellos:
            self._quic_hello(af, h, i, code)

    def _quic_hello(self, af: _AppFlow, h: QuicHello, i: int, code: int) -> None:
        q = af.info.setdefault("quic", {"version": f"0x{h.version:08x}"})
        ch = h.client_hello
        if ch is None or "sni" in q or "ja4" in q:
            return
        self.tls.quic_hellos += 1
        fp = tlsmod.client_fingerprints(ch, "q")
        q.update({"sni": ch.sni, "alpn": [_alpn_text(a) for a in ch.alpn], "ja4": fp.ja4.hash,
                  "ja4_r": fp.ja4.raw})  # fmt: skip
        self._client_figures(af, ch, fp, i, quic=True)
        if self.events is not None:
            self.events.setdefault(self._frame(i), {}).update(_client_event(ch, fp))

    # -- TCP ------------------------------------------------------------------------------
    def _tcp_rows(self, cols: PacketColumns, rows: np.ndarray[Any, Any], fid: np.ndarray[Any, Any],
                  start: np.ndarray[Any, Any], avail: np.ndarray[Any, Any], mv: memoryview) -> None:
        seqs = cols.tcp_seq[rows].tolist()
        acks = cols.tcp_ack[rows].tolist()
        plens = cols.payload_len[rows].tolist()
        sports = cols.sport[rows].tolist()
        dports = cols.dport[rows].tolist()
        ts = cols.ts_ns[rows].tolist()
        flows = self._flows
        no_parser = self._no_parser
        for k, (i, code, o, n) in enumerate(zip(rows.tolist(), fid[rows].tolist(), start[rows].tolist(),
                                                avail[rows].tolist(), strict=True)):  # fmt: skip
            key = code >> 1
            af = flows.get(key)
            if af is None:
                # a flow with no state yet: this is a direction's first payload; one
                # that no parser claims (decided in update) leaves no state behind
                if code in no_parser:
                    continue
                af = flows[key] = _AppFlow()
            elif (code in no_parser and (code ^ 1) not in self._active and (code ^ 1) not in self._http_now
                    and (af.streams is None or not af.streams[code & 1].mode)):  # fmt: skip
                # the same, in a flow with state: the other direction waits for nothing
                # (no held segments for this ACK to release) and is not HTTP, so the
                # claim would only mark this direction done -- unless it was opened
                # again in the meantime (a HelloRetryRequest), which reads it from here
                continue
            streams = af.streams
            if streams is None:
                streams = af.streams = [_Stream(), _Stream()]
            st = streams[code & 1]
            peer = streams[1 - (code & 1)]
            if peer.pending and peer.next_seq >= 0 and 0 < (acks[k] - peer.next_seq) & 0xFFFFFFFF < 0x80000000:
                # this packet acknowledges bytes of the other direction that were never
                # captured: the hole before its held segments will not fill
                self._skip_hole(af, peer, code ^ 1, i, sports[k], dports[k], ts[k])
            mode = st.mode
            if mode == "done":
                continue
            if mode == "http" and seqs[k] == st.next_seq and n == plens[k] and not st.pending and not af.tunnel:
                # the next in-order segment of a body (or of a stream no longer HTTP):
                # only counted, as feeding it would
                assert st.http is not None
                left = st.http.body_left()
                if n and (left == -1 or n < left):
                    st.http.skip(n)
                    st.next_seq = (st.next_seq + n) & 0xFFFFFFFF
                    st.segments += 1
                    continue
            self._segment(af, st, code, i, seqs[k], bytes(mv[o : o + n]), plens[k], sports[k],
                          dports[k], ts[k])  # fmt: skip

    def _segment(self, af: _AppFlow, st: _Stream, code: int, i: int, seq: int, data: bytes,
                 wire_len: int, sport: int, dport: int, ts: int) -> None:  # fmt: skip
        if st.next_seq < 0:
            st.next_seq = seq
        rel = (seq - st.next_seq) & 0xFFFFFFFF
        if rel >= 0x80000000:  # before next_seq: a retransmission, maybe with new bytes
            back = 0x100000000 - rel
            if back >= len(data):
                return
            data = data[back:]
            wire_len -= back
            rel = 0
        if rel > 0:
            # a segment ahead of the next expected byte: hold it while a few more arrive
            if len(st.pending) < MAX_PENDING:
                bisect.insort(st.pending, (rel, data, self._frame(i) if i >= 0 else -1))
                return
            # a hole that is not going to fill: skip to the earliest held segment
            first_rel = st.pending[0][0]
            self._gap(af, st, code, first_rel)
            self._rebase(st, first_rel)
            rel -= first_rel
            if rel > 0:
                bisect.insort(st.pending, (rel, data, self._frame(i) if i >= 0 else -1))
                self._drain_pending(af, st, code, i, sport, dport, ts)
                return
        self._deliver(af, st, code, i, data, sport, dport, ts)
        if len(data) < wire_len:  # cut by the snaplen: the rest is a hole
            self._gap(af, st, code, wire_len - len(data))
            st.next_seq = (st.next_seq + wire_len - len(data)) & 0xFFFFFFFF
        if st.pending:
            self._drain_pending(af, st, code, i, sport, dport, ts)

    def _skip_hole(self, af: _AppFlow, st: _Stream, code: int, i: int, sport: int, dport: int,
                   ts: int) -> None:  # fmt: skip
        """Give up waiting for the bytes before a direction's held segments and read those."""
        first_rel = st.pending[0][0]
        if first_rel > 0:
            self._gap(af, st, code, first_rel)
            self._rebase(st, first_rel)
        self._drain_pending(af, st, code, i, dport, sport, ts)

    def _rebase(self, st: _Stream, by: int) -> None:
        st.next_seq = (st.next_seq + by) & 0xFFFFFFFF
        st.pending = [(r - by, d, f) for r, d, f in st.pending]

    def _drain_pending(self, af: _AppFlow, st: _Stream, code: int, i: int, sport: int, dport: int,
                       ts: int) -> None:  # fmt: skip
        while st.pending and st.mode != "done":
            rel, data, frame = st.pending[0]
            if rel > 0:
                return
            st.pending.pop(0)
            if -rel >= len(data):
                continue
            data = data[-rel:]
            # fields found in a held segment belong to the frame that carried it
            self._frame_override = frame
            try:
                self._deliver(af, st, code, i, data, sport, dport, ts)
            finally:
                self._frame_override = None

    def _deliver(self, af: _AppFlow, st: _Stream, code: int, i: int, data: bytes, sport: int,
                 dport: int, ts: int) -> None:  # fmt: skip
        st.next_seq = (st.next_seq + len(data)) & 0xFFFFFFFF
        if st.pending:
            st.pending = [(r - len(data), d, f) for r, d, f in st.pending]
        st.segments += 1
        mode = st.mode
        if not mode:
            if len(data) < MIN_CLAIM_BYTES and not (sport == 53 or dport == 53):
                self._activate(code)  # decide on the next payload
                return
            mode = st.mode = self._claim(af, st, code, data, sport, dport)
            if mode == "done":
                self._done(af, st, code)
                return
        if mode == "tls":
            self._tls_bytes(af, st, code, i, data)
        elif mode == "http":
            assert st.http is not None
            for head in st.http.feed(data):
                self._http_head(af, head, i)
            if af.tunnel and af.streams is not None:
                # CONNECT answered 2xx: both directions now carry the tunnelled protocol
                af.tunnel = False
                for d, other in enumerate(af.streams):
                    other.mode, other.http, other.segments = "preamble", None, 0
                    self._activate((code & ~1) | d)
        elif mode == "preamble":
            # a plaintext protocol that may turn to TLS (STARTTLS, SSLRequest, a proxy's
            # CONNECT): a handshake record starting a segment starts the hello
            if len(data) >= 6 and data[0] == 0x16 and data[1] == 3 and data[5] in (1, 2):
                st.mode = "tls"
                st.segments = 0
                service = af.info.get("service") or _port_service(sport, dport)
                if service and not service.endswith("ssl"):
                    af.info["service"] = f"{service},ssl"  # Zeek's way of naming STARTTLS
                self._tls_bytes(af, st, code, i, data)
            elif st.segments >= PREAMBLE_SEGMENTS:
                self._done(af, st, code)
        elif mode == "dns":
            st.buf += data
            msgs, st.buf = dnsmod.split_tcp_messages(st.buf)
            for m in msgs:
                st.dns_messages += 1
                if st.dns_messages > MAX_DNS_TCP_MESSAGES:
                    # the rest of the stream is not read: say so, once per stream
                    self.dns.anomalies["dns_tcp_messages_over_cap"] += 1
                    self._done(af, st, code)
                    return
                if len(m) < 12:
                    # shorter than a DNS header: the stream is not (or no longer) DNS, and
                    # runs of zero bytes would read as thousands of empty "messages"
                    self.dns.anomalies["dns_tcp_message_too_short"] += 1
                    self._done(af, st, code)
                    return
                self._dns_message_tcp(i, code, m, ts)

    def _claim(self, af: _AppFlow, st: _Stream, code: int, data: bytes, sport: int, dport: int) -> str:
        """Which parser reads this direction, from its first bytes (and ports for DNS)."""
        kind = _claim_kind(data, sport, dport)
        peer = af.streams[1 - (code & 1)] if af.streams is not None else None
        if not kind and peer is not None and peer.mode == "http" and peer.http is not None:
            # the other direction is HTTP: this one is too, though its first bytes are
            # not a head (the capture lost them); the assembler finds the next head at
            # a segment boundary
            kind = "http"
            response = peer.http.direction == "request"
        else:
            response = data.startswith(b"HTTP/")
        if not kind:
            return "done"
        self._activate(code)
        if kind == "http":
            st.http = new_assembler("response" if response else "request")
            if response:
                st.http.request_of = _request_of(af)
            af.info.setdefault("service", "http")
        return kind

    def _active_codes(self, extra: list[int]) -> np.ndarray[Any, Any]:
        """Sorted codes of the directions a parser reads, plus ``extra``."""
        if self._active_dirty:
            self._active_arr = np.fromiter(self._active, dtype=np.int64, count=len(self._active))
            self._active_arr.sort()
            self._active_dirty = False
        if not extra:
            return self._active_arr
        return np.union1d(self._active_arr, np.array(extra, dtype=np.int64))

    def _activate(self, code: int) -> None:
        self._active.add(code)
        self._active_dirty = True

    def _done(self, af: _AppFlow, st: _Stream, code: int) -> None:
        st.mode = "done"
        st.buf = b""
        st.pending = []
        if code in self._active:
            self._active.discard(code)
            self._active_dirty = True

    def _gap(self, af: _AppFlow, st: _Stream, code: int, n: int) -> None:
        if st.mode == "http" and st.http is not None:
            st.http.gap(n)
        elif st.mode in ("tls", "dns") or not st.mode:
            if st.mode == "tls":
                self.tls.anomalies["tls_hello_gap"] += 1
            self._done(af, st, code)

    # -- TLS ------------------------------------------------------------------------------
    def _tls_bytes(self, af: _AppFlow, st: _Stream, code: int, i: int, data: bytes) -> None:
        st.buf += data
        if len(st.buf) >= 6 and st.buf[0] == 0x16 and st.buf[5] not in (1, 2):
            # the first handshake message is not a hello (read_hello would say
            # tls_unexpected_message): this direction has nothing for us
            self._done(af, st, code)
            return
        if len(st.buf) >= 9 and st.buf[0] == 0x16:
            # the first handshake message's length: a hello claiming more than the bound
            # can never be read (given up at once, not after buffering the bound), and
            # one not yet all here is not parsed again for every segment
            need = 9 + int.from_bytes(st.buf[6:9], "big")
            if need > MAX_HELLO_STREAM:
                self.tls.anomalies["tls_hello_over_bound"] += 1
                self._done(af, st, code)
                return
            if len(st.buf) < need:
                return
        read = tlsmod.read_hello(st.buf)
        if not read.complete:
            if "tls_not_handshake" in read.anomalies or "tls_unexpected_message" in read.anomalies:
                self._done(af, st, code)
            elif len(st.buf) > MAX_HELLO_STREAM:
                self.tls.anomalies["tls_hello_over_bound"] += 1
                self._done(af, st, code)
            return
        buf = st.buf
        self._done(af, st, code)
        hello = read.hello
        for a in read.anomalies:
            self.tls.anomalies[a] += 1
        if isinstance(hello, tlsmod.ClientHello):
            fp = tlsmod.client_fingerprints(hello, "t")
            t = af.info.setdefault("tls", {})
            af.info.setdefault("service", "ssl")
            if "ja4" in t:  # the second ClientHello, after a HelloRetryRequest
                t["retry_ja4"] = fp.ja4.hash
                self._client_figures(af, hello, fp, i, quic=False)
                if self.events is not None:
                    self.events.setdefault(self._frame(i), {}).update(_client_event(hello, fp))
                return
            version_name = self._client_figures(af, hello, fp, i, quic=False)
            t.update({
                "client_version": version_name,
                "sni": hello.sni,
                "alpn": [_alpn_text(a) for a in hello.alpn],
                "ja3": fp.ja3.hash,
                "ja3n": fp.ja3n.hash,
                "ja4": fp.ja4.hash,
                "ja4_r": fp.ja4.raw,
            })  # fmt: skip
            if self.events is not None:
                self.events.setdefault(self._frame(i), {}).update(_client_event(hello, fp))
        elif isinstance(hello, tlsmod.ServerHello):
            t = af.info.setdefault("tls", {})
            af.info.setdefault("service", "ssl")
            if (buf[:1] == b"\x16" and buf[11:43] == _HRR_RANDOM
                    and "hello_retry_request" not in t and af.streams is not None):  # fmt: skip
                # A HelloRetryRequest (RFC 8446 §4.1.4): the client sends a second
                # ClientHello and the server then its real ServerHello; read both.
                t["hello_retry_request"] = True
                self.tls.hello_retry_requests += 1
                if self.events is not None:
                    hrr = tlsmod.server_fingerprint(hello)
                    self.events.setdefault(self._frame(i), {}).update({
                        "tls.handshake.type": 2,
                        "tls.handshake.ja3s": hrr.hash,
                        "tls.handshake.ja3s_full": hrr.raw,
                    })  # fmt: skip
                rest = buf[read.consumed :]
                self._reopen(st, code, i, rest)
                self._reopen(af.streams[1 - (code & 1)], code ^ 1, i, None)
                return
            self.tls.server_hellos += 1
            ja3s = tlsmod.server_fingerprint(hello)
            version = tls_version_name(_version_of_server(hello))
            cipher = None if hello.cipher_suite is None else f"0x{hello.cipher_suite:04x}"
            t.update({"version": version, "cipher": cipher, "ja3s": ja3s.hash})
            if hello.alpn:
                t["alpn_chosen"] = _alpn_text(hello.alpn[0])
            self.tls.server_versions[version or "?"] += 1
            if cipher is not None:
                self.tls.ciphers[cipher] += 1
            self.tls.ja3s[ja3s.hash] += 1
            if self.events is not None:
                self.events.setdefault(self._frame(i), {}).update({
                    "tls.handshake.type": 2,
                    "tls.handshake.ja3s": ja3s.hash,
                    "tls.handshake.ja3s_full": ja3s.raw,
                })  # fmt: skip

    def _reopen(self, st: _Stream, code: int, i: int, rest: bytes | None) -> None:
        """Read a direction again for a hello after row ``i`` (``rest``: bytes already in
        order after the last one read; None: pick up at the direction's next segment)."""
        st.mode = "tls"
        st.pending = []
        st.buf = rest or b""
        if rest is None:
            st.next_seq = -1
        self._activate(code)
        self._reopened.append((code, i))

    def _client_figures(self, af: _AppFlow, ch: tlsmod.ClientHello, fp: Any, i: int,
                        quic: bool) -> str | None:  # fmt: skip
        """Count a ClientHello in the report's tables; returns its highest version's name."""
        f = self.tls
        if not quic:
            f.client_hellos += 1
        client = af.client
        if client is None:
            client = af.client = self._sender(i)
        version = _client_version_name(ch)
        f.client_versions[version or "?"] += 1
        if ch.alpn:
            f.alpn[_alpn_text(ch.alpn[0])] += 1
        c = f.clients.get(client)
        c.weight += 1
        c.ja4.add(fp.ja4.hash)
        if ch.sni is None:
            f.without_sni += 1
        else:
            c.snis.add(ch.sni)
            f.snis.add(ch.sni)
            s = f.sni_clients.get(ch.sni)
            if s is None:
                if len(f.sni_clients) > 4 * COUNTER_CAP:
                    f._prune_sni_clients()
                s = f.sni_clients[ch.sni] = _CappedSet(10_000, f.clients_budget)
            s.add(client)
        for table, p in ((f.ja4, fp.ja4), (f.ja3, fp.ja3)):
            row = table.get(p.hash)
            row.weight += 1
            row.raw = p.raw
            row.clients.add(client)
            if ch.sni is not None:
                row.snis.add(ch.sni)
        return version

    def _frame(self, i: int) -> int:
        if self._frame_override is not None:
            return self._frame_override
        return self._frames[i][1] if self._frames is not None else int(self._cols.frame[i])

    def _sender(self, i: int) -> tuple[int, int]:
        c = self._cols
        return int(c.ip_src_hi[i]), int(c.ip_src_lo[i])

    # -- HTTP -----------------------------------------------------------------------------
    def _http_head(self, af: _AppFlow, head: Head, i: int) -> None:
        f = self.http
        h = af.info.setdefault("http", {"requests": 0, "responses": 0})
        f.versions[head.version] += 1
        content_type = head.content_type
        if content_type:
            f.content_types.add(content_type.split(";")[0].strip().lower())
        if head.kind == "request":
            f.requests += 1
            h["requests"] += 1
            method = head.method or "?"
            f.methods[method] += 1
            host = head.host
            user_agent = head.user_agent
            if host is not None:
                f.hosts.add(host)
            if user_agent is not None:
                f.user_agents.add(user_agent)
            if head.target is not None:
                f.uris.add(head.target)
            if len(af.requests) < 1000:
                af.requests.append(method)
            reqs = h.setdefault("request_list", [])
            if len(reqs) < MAX_FLOW_ITEMS:
                reqs.append({"method": method, "host": host, "uri": head.target,
                             "user_agent": user_agent})  # fmt: skip
            ev = self.events.setdefault(self._frame(i), {}) if self.events is not None and i >= 0 else None
            if ev is not None and "http.request.method" not in ev:  # a frame shows its first head
                ev.update({
                    "http.request.method": method,
                    "http.host": host,
                    "http.request.uri": head.target,
                    "http.user_agent": user_agent,
                    "http.request.version": head.version,
                })  # fmt: skip
        else:
            f.responses += 1
            h["responses"] += 1
            status = head.status
            f.status[str(status)] += 1
            codes = h.setdefault("status_codes", [])
            if len(codes) < MAX_FLOW_ITEMS:
                codes.append(status)
            ev = self.events.setdefault(self._frame(i), {}) if self.events is not None and i >= 0 else None
            if ev is not None and "http.response.code" not in ev:  # a frame shows its first head
                ev.update({
                    "http.response.code": status,
                    "http.response.version": head.version,
                    "http.content_type": content_type,
                })  # fmt: skip

    def _http_anomalies(self, a: Assembler) -> None:
        self.http.anomalies.update(a.anomalies)

    def _dns_message_tcp(self, i: int, code: int, m: bytes, ts: int) -> None:
        if i < 0:
            # read from held segments when the flow ended: no packet of this batch
            # carried it, so there is no time or address to put it under
            self.dns.anomalies["dns_tcp_message_at_flow_end"] += 1
            return
        self._dns_messages(self._cols, np.array([i]), [code], [_SUMMARIZE(m)], True, [len(m)])

    def _dns_events(self, cols: PacketColumns, rows: np.ndarray[Any, Any], msgs: list[tuple[Any, ...]],
                    tcp: bool, sizes: list[int]) -> DnsEvents:  # fmt: skip
        """The messages as the detectors see them (:class:`netsift.detect.DnsEvents`)."""
        n = len(msgs)
        if self._frames is not None:
            refs = [self._frames[i] for i in rows.tolist()]
        elif self._frame_override is not None:
            refs = [(self._file_index, self._frame_override)] * n
        else:
            refs = [(self._file_index, f) for f in cols.frame[rows].tolist()]
        response = [bool(m[1] & 0x8000) for m in msgs]
        src = list(zip(cols.ip_src_hi[rows].tolist(), cols.ip_src_lo[rows].tolist(), strict=True))
        dst = list(zip(cols.ip_dst_hi[rows].tolist(), cols.ip_dst_lo[rows].tolist(), strict=True))
        sport, dport = cols.sport[rows].tolist(), cols.dport[rows].tolist()
        return DnsEvents(
            ts_ns=cols.ts_ns[rows].tolist(),
            file_index=[f for f, _ in refs],
            frame=[x for _, x in refs],
            client=[d if r else s_ for r, s_, d in zip(response, src, dst, strict=True)],
            server=[s_ if r else d for r, s_, d in zip(response, src, dst, strict=True)],
            server_port=[sp if r else dp for r, sp, dp in zip(response, sport, dport, strict=True)],
            transport=["tcp" if tcp else "udp"] * n,
            response=response,
            qname=[m[4] for m in msgs],
            qtype=[m[5] for m in msgs],
            rcode=[m[2] for m in msgs],
            answers=[m[7] for m in msgs],
            size=list(sizes),
        )

    _cols: PacketColumns


def _alpn_text(value: bytes) -> str:
    return value.decode("latin-1")


def _claim_kind(data: bytes, sport: int, dport: int) -> str:
    """The parser a TCP direction's first payload bytes call for: dns, tls, http or '' (none).

    HTTP: a status line, a request line with a registered method, or any method token
    whose first line ends in an HTTP/1.x version (``CCM_POST / HTTP/1.1``).
    """
    if sport == 53 or dport == 53:
        return "dns"
    if len(data) >= 3 and data[0] == 0x16 and data[1] == 3:
        return "tls"
    if data.startswith(b"HTTP/1.") or data.startswith(_HTTP_METHODS) or _ANY_REQUEST.match(data):
        return "http"
    if sport in PREAMBLE_PORTS or dport in PREAMBLE_PORTS:
        return "preamble"
    return ""


#: A request line with an unregistered method: token, target, HTTP/1.x version (RFC 9112 §3).
_ANY_REQUEST: Final = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32} [^\r\n]{1,200} HTTP/1\.[0-9]\r?\n")
#: TCP ports whose plaintext protocol can switch to TLS in the same connection
#: (STARTTLS: SMTP 25/587/2525, POP3 110, IMAP 143, NNTP 119, FTP 21, LDAP 389,
#: XMPP 5222/5269, Sieve 4190; PostgreSQL SSLRequest 5432; MySQL SSL request 3306;
#: RDP 3389 after X.224; SOCKS 1080).
PREAMBLE_PORTS: Final = frozenset({21, 25, 110, 119, 143, 389, 587, 1080, 2525, 3306, 3389, 4190,
                                   5222, 5269, 5432})
#: Segments of such a direction looked at for the start of a TLS handshake.
PREAMBLE_SEGMENTS: Final = 32
#: A first payload this short does not claim a direction (a keep-alive probe's byte).
MIN_CLAIM_BYTES: Final = 4
#: Bytes of a first payload the claim looks at.
CLAIM_BYTES: Final = 256


def _port_service(sport: int, dport: int) -> str | None:
    """The usual service of whichever port is a :data:`PREAMBLE_PORTS` one."""
    port = dport if dport in PREAMBLE_PORTS else sport
    return SERVICES.get((_TCP, port))


def _request_of(af: _AppFlow) -> Any:
    """The response stream's question to the request stream: which method does this
    response answer (the oldest unanswered request); notes a CONNECT answered 2xx."""
    requests = af.requests

    def request_of(head: Head) -> str | None:
        method = requests.pop(0) if requests else None
        if method == "CONNECT" and head.status is not None and 200 <= head.status < 300:
            af.tunnel = True
        return method

    return request_of


def _hello_in_one_record(head: bytes, n: int) -> bool:
    """Whether a TLS direction's first segment (``n`` bytes, ``head`` its start) decides
    it: the first record holds no hello (its handshake type is neither ClientHello nor
    ServerHello), or the whole first hello is in this segment, inside the first record.
    :func:`tls.read_hello` then reads nothing more of the direction."""
    if len(head) < 9:
        return False
    if head[5] not in (1, 2):
        return True
    record = int.from_bytes(head[3:5], "big")
    message = int.from_bytes(head[6:9], "big") + 4
    return message <= record and 5 + message <= n


def dns_flow_step(flows: dict[int, Any], codes: list[int], msgs: list[tuple[Any, ...]],
                  ts: list[int], make: Any, max_outstanding: int) -> tuple[list[int], list[int], list[int]]:  # fmt: skip
    """Apply DNS messages to their flows' states; the specification of the C version
    (``netsift._dns.flow_step``).

    ``msgs[k]`` (a summary tuple, :class:`netsift.dns.DnsSummary` layout) travelled
    in flow direction ``codes[k]`` (a :class:`FlowOut` code) at ``ts[k]`` (ns).
    ``flows`` maps a flow id to its state, a list made by ``make(tuple)`` with the
    :class:`_DnsState` layout: queries, responses, first qname, its qtype, first
    response, first RTT (µs), outstanding query ids ({id: ts}, at most
    ``max_outstanding``), anomaly codes in order of first appearance.

    Returns the indexes of queries that carry a question, the indexes of
    responses, and the RTTs (µs) of responses that answered an outstanding query.
    """
    q_at: list[int] = []
    r_at: list[int] = []
    rtts: list[int] = []
    for k, s in enumerate(msgs):
        key = codes[k] >> 1
        st = flows.get(key)
        if st is None:
            st = flows[key] = make((0, 0, None, None, None, None, None, None))
        if s[8]:
            if st[7] is None:
                st[7] = []
            st[7].extend(a for a in s[8] if a not in st[7])
        if not s[1] & 0x8000:
            st[0] += 1
            if s[4] is not None:
                q_at.append(k)
                if st[2] is None:
                    st[2], st[3] = s[4], s[5]
            pending = st[6]
            if pending is None:
                pending = st[6] = {}
            if len(pending) < max_outstanding:
                pending.setdefault(s[0], ts[k])
        else:
            st[1] += 1
            r_at.append(k)
            pending = st[6]
            sent = pending.pop(s[0], None) if pending else None
            if sent is not None:
                rtt = max(0, ts[k] - sent) // 1000
                rtts.append(rtt)
                if st[5] is None:
                    st[5] = rtt
            if st[4] is None:
                st[4] = s
    return q_at, r_at, rtts


def _dns_event(s: tuple[Any, ...]) -> dict[str, Any]:
    """``netsift packets`` fields of a DNS summary tuple (:class:`netsift.dns.DnsSummary` layout)."""
    return {
        "dns.id": s[0],
        "dns.flags.response": int(bool(s[1] & 0x8000)),
        "dns.flags.rcode": s[2],
        "dns.qry.name": s[4],
        "dns.qry.type": s[5],
        "dns.count.answers": s[3][1],
        "dns.a": ",".join(t for rt, _, t in s[7] if rt == 1 and t) or None,
        "dns.aaaa": ",".join(t for rt, _, t in s[7] if rt == 28 and t) or None,
    }


def _client_event(ch: tlsmod.ClientHello, fp: Any) -> dict[str, Any]:
    return {
        "tls.handshake.type": 1,
        "tls.handshake.extensions_server_name": ch.sni,
        "tls.handshake.ja3": fp.ja3.hash,
        "tls.handshake.ja3_full": fp.ja3.raw,
        "tls.handshake.ja4": fp.ja4.hash,
        "tls.handshake.ja4_r": fp.ja4.raw,
        "tls.handshake.extensions_alpn_str": ",".join(_alpn_text(a) for a in ch.alpn) or None,
    }


def _summarize_fn() -> Any:
    try:
        from ._dns import summarize
    except ImportError:  # no C extension: the reference (same tuple layout)
        return dnsmod.summarize_py
    return summarize


def _dns_c_fn(name: str) -> Any:
    """``netsift._dns.<name>``, or None without the C extension (or with an older build)."""
    try:
        from . import _dns
    except ImportError:
        return None
    return getattr(_dns, name, None)


#: bytes-like -> DNS summary tuple (:class:`netsift.dns.DnsSummary` layout)
_SUMMARIZE: Final = _summarize_fn()
#: (buffer, starts, lens) -> the summary tuples of buffer[o : o + n]; None without C
_SUMMARIZE_MANY: Final = _dns_c_fn("summarize_many")
#: :func:`dns_flow_step`, in C when built
_FLOW_STEP: Final = _dns_c_fn("flow_step") or dns_flow_step

#: ServerHello.random of a HelloRetryRequest: SHA-256 of "HelloRetryRequest" (RFC 8446 §4.1.3).
_HRR_RANDOM: Final = hashlib.sha256(b"HelloRetryRequest").digest()

_DNS_PORT_ARR: Final = np.array(sorted(DNS_PORTS), dtype=np.uint16)
