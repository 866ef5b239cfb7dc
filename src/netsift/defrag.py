"""IPv4 and IPv6 fragment tracking and reassembly, with the facts a fragmentation-attack detector needs.

:class:`FragmentTracker` is fed decoded batches; only rows whose
``is_fragment`` column is set are looked at (one numpy mask per batch, no
per-packet work for unfragmented traffic), and each fragment is handled in
pure Python (fragments are rare).  ``update`` returns the datagrams it
completed, :meth:`FragmentTracker.finish` flushes what is left at the end of
the capture.

Reassembly
    Keys are ``(src, dst, id, protocol)`` for IPv4 (RFC 791 §3.2; leaving the
    protocol out is CVE-2017-7177) and ``(src, dst, 32-bit id)`` for IPv6
    (RFC 8200 §4.5).  A reassembled IPv4 datagram is the first fragment's
    header (options included) with the total length set, the flags and
    offset word zeroed (DF too, as PcapPlusPlus does) and the header checksum recomputed; an IPv6 datagram is
    the first fragment's unfragmentable part with the Fragment header removed,
    the preceding Next Header patched and the payload length fixed.  That is
    what PcapPlusPlus's ``IPReassembly`` writes; ``tests/test_defrag.py``
    checks the bytes against its expected captures.  Link-layer padding after
    the IP length is ignored.  An IPv6 atomic fragment (offset 0, M=0,
    RFC 6946) is a whole datagram by itself and is returned at once.

Overlap policy
    **First-seen bytes win** for both families: a byte already held is never
    rewritten (the "first" policy of Snort's frag3 / Suricata's
    ``defrag.policy``).  RFC 8200 §4.5 (RFC 5722) says an IPv6 node must
    instead abandon the whole datagram when fragments overlap; set
    ``drop_ipv6_overlaps=True`` for that behaviour (exact duplicates are
    still tolerated, as the RFC allows).  Either way the overlap is counted as
    ``overlap_identical`` or ``overlap_conflicting``.

Facts (:data:`FRAGMENT_FACTS`, one count per fragment or train, plus up to
:data:`MAX_EXAMPLES` examples each with frame numbers)
    - ``overlap_identical`` / ``overlap_conflicting``: the fragment covers
      bytes already held, all equal / some different (Zeek ``fragment_overlap``
      / ``fragment_inconsistency``; Snort 123:8).
    - ``tiny_first_fragment``: offset 0, more fragments follow, TCP, and fewer
      than :data:`TINY_TCP_MIN` transport bytes (RFC 1858 §3.1, tmin = 16).
    - ``oversize_datagram``: IPv4 ``IHL + offset + length > 65535`` (ping of
      death; Suricata ``IPV4_FRAG_PKT_TOO_LARGE``, Snort 123:7); IPv6
      ``offset + length > 65535`` (Suricata ``IPV6_FRAG_PKT_TOO_LARGE``).
    - ``incomplete_train``: a train that never completed (timeout, eviction or
      end of capture; the reason is in the ``trains_*`` counters).
    - ``df_on_fragment``: IPv4 DF set on a fragment (Zeek ``fragment_with_DF``).
    - ``non_last_not_multiple_of_8``: MF set and a payload that is not a
      multiple of 8 bytes (RFC 791 §3.2, RFC 8200 §4.5; Snort 123:3).
    - ``teardrop``: a last fragment (MF=0) that overlaps data to its left and
      ends before data already received or before an earlier last fragment's
      end (Snort defrag.cc, 123:2; LANDSCAPE §2.8).
    - ``inconsistent_last_fragment``: a last fragment whose end disagrees with
      an earlier last fragment or with data already received beyond it (Zeek
      ``fragment_size_inconsistency``); the first-seen size is kept.
    - ``data_past_last_fragment``: a fragment ending after the size a last
      fragment already fixed (Snort 123:4).
    - ``zero_length_fragment``: a fragment with no data (Snort 123:5).
    - ``too_many_fragments``: a train passed :data:`MAX_FRAGMENTS_PER_TRAIN`
      fragments and was dropped.

Bounds (every drop is counted in :data:`FRAGMENT_COUNTERS`)
    - ``timeout_s`` (default :data:`DEFAULT_TIMEOUT_S` = 60 s of capture time,
      Suricata's ``defrag.timeout``), measured from a train's last fragment.
    - ``max_trains`` (default :data:`DEFAULT_MAX_TRAINS` = 65,535, Suricata's
      ``defrag.trackers``) and ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`
      = 32 MiB, Suricata's ``defrag.memcap``): past either, the least recently
      updated train is evicted.
    - :data:`MAX_FRAGMENTS_PER_TRAIN` = 1,024 fragments per train: 65,535
      bytes in fragments of Zeek's 64-byte ``MIN_ACCEPTABLE_FRAG_SIZE``.

Events and overlap policies (detector input)
    Besides the counts, the tracker keeps :class:`FragmentEvent` records for
    the fragmentation detector (:mod:`netsift.detect.fragmentation`), at most
    :data:`MAX_EVENTS_PER_KIND` of each kind, those that begin earliest (the
    rest are counted in ``events_dropped``): ``tiny_first_fragment``, ``oversize_datagram`` and
    ``teardrop`` per occurrence, ``incomplete`` per train that ended without
    completing, and ``overlap`` per train in which fragments overlapped, when
    it ends.  For an overlapping train the fragments (offset, bytes, MF, in
    arrival order) are kept, at most :data:`MAX_POLICY_BYTES` bytes per train,
    and :func:`policy_outcomes` replays them under each of Suricata's overlap
    policies (:data:`OVERLAP_POLICIES`); the event says whether the outcomes
    differ (evasion evidence), with a digest of each and the first offset where
    they differ.  Up to the first overlap no byte was written twice, so the
    fragments received before it are taken back from the held bytes: trains
    without an overlap cost one (offset, end, MF) tuple per fragment.

Merging
    :meth:`FragmentTracker.merge` adds counters, examples and events only.  Live trains
    are **not** merged across workers: a train split between two workers is
    reported incomplete by both (a parallel run should shard by the key).
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from netsift.capture import RecordBatch
from netsift.columns import PacketColumns, ip_text

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_TRAINS",
    "DEFAULT_TIMEOUT_S",
    "FRAGMENT_COUNTERS",
    "FRAGMENT_FACTS",
    "MAX_EVENTS_PER_KIND",
    "MAX_EXAMPLES",
    "MAX_FRAGMENTS_PER_TRAIN",
    "MAX_POLICY_BYTES",
    "OVERLAP_POLICIES",
    "TINY_TCP_MIN",
    "FragmentEvent",
    "FragmentTracker",
    "Reassembled",
    "policy_outcomes",
]

#: Suricata ``defrag.timeout`` default (seconds of capture time).
DEFAULT_TIMEOUT_S = 60.0
#: Suricata ``defrag.trackers`` default.
DEFAULT_MAX_TRAINS = 65_535
#: Suricata ``defrag.memcap`` default (32 MiB).
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
#: 65,535 bytes / Zeek's MIN_ACCEPTABLE_FRAG_SIZE (64): no honest datagram needs more.
MAX_FRAGMENTS_PER_TRAIN = 1024
#: RFC 1858 §3.1: tmin, the transport bytes a first TCP fragment must carry (up to the flags).
TINY_TCP_MIN = 16
#: Examples kept per fact.
MAX_EXAMPLES = 10
#: Largest IP datagram (RFC 791 total length, RFC 8200 payload length are 16 bits).
MAX_DATAGRAM = 65_535

#: Events of each kind kept for the detector (the rest are only counted).
MAX_EVENTS_PER_KIND = 10_000
#: Fragment bytes kept per overlapping train to replay the overlap policies
#: (four full datagrams: more is an attack whatever the policies say).
MAX_POLICY_BYTES = 4 * 65_535
#: Suricata's defrag overlap policies (defrag.c DefragInsertFrag; LANDSCAPE §2.4).
OVERLAP_POLICIES: tuple[str, ...] = ("first", "last", "bsd", "linux", "windows", "solaris")
#: Evidence frames kept per event.
MAX_EVENT_FRAMES = 50

#: Stable fact names (detector input).  Append only.
FRAGMENT_FACTS: tuple[str, ...] = (
    "overlap_identical",
    "overlap_conflicting",
    "tiny_first_fragment",
    "oversize_datagram",
    "incomplete_train",
    "df_on_fragment",
    "non_last_not_multiple_of_8",
    "teardrop",
    "inconsistent_last_fragment",
    "data_past_last_fragment",
    "zero_length_fragment",
    "too_many_fragments",
)

#: Stable health counter names.  Append only.
FRAGMENT_COUNTERS: tuple[str, ...] = (
    "fragments",
    "fragments_ipv4",
    "fragments_ipv6",
    "fragments_truncated",  # captured bytes shorter than the IP length: tracked, never reassembled
    "fragments_malformed",  # unusable header (bad lengths, no IPv6 Fragment header found)
    "fragments_ignored_dropped_train",  # arrived for a train already dropped (too many fragments)
    "ipv6_atomic_fragments",  # offset 0 and M=0 (RFC 6946): returned as they are
    "trains_started",
    "datagrams_reassembled",
    "trains_timed_out",
    "trains_evicted_count_cap",
    "trains_evicted_byte_cap",
    "trains_flushed_at_end",
    "trains_discarded_overlap",  # IPv6 with drop_ipv6_overlaps=True
    "trains_not_reassembled_truncated",  # completed, but a fragment was cut by the snaplen
    "peak_trains",
    "peak_bytes",
    "trains_not_reassembled_oversize",  # complete, but longer than 65,535 bytes (ping of death)
)

_PEAKS = ("peak_trains", "peak_bytes")

#: IPv6 extension headers that may precede the Fragment header (RFC 8200 §4.1, RFC 7045).
_IPV6_EXT = frozenset((0, 43, 60, 135, 139, 140))
_IPV6_AH = 51
_IPV6_FRAGMENT = 44
_TCP = 6


@dataclass
class Reassembled:
    """One reassembled datagram: the IP bytes from the IP header on."""

    ip_version: int
    data: bytes
    #: frame numbers of the fragments used, in arrival order (duplicates included)
    frames: tuple[int, ...]
    #: capture time of the fragment that completed it
    ts_ns: int
    file_index: int = 0
    #: some fragment overlapped held bytes / some overlap had different bytes
    overlap: bool = False
    overlap_conflict: bool = False


@dataclass
class FragmentEvent:
    """One fact about one train, for the fragmentation detector (module doc).

    ``kind`` is ``tiny_first_fragment``, ``oversize_datagram``, ``teardrop``,
    ``incomplete`` or ``overlap``; ``detail`` holds what the kind measures
    (JSON-able).
    """

    kind: str
    ip_version: int
    src: str
    dst: str
    ident: int
    #: IPv4 protocol / IPv6 Next Header after the Fragment header (-1: unknown)
    proto: int
    first_ns: int
    last_ns: int
    file_index: int
    frames: tuple[int, ...]
    detail: dict[str, Any] = field(default_factory=dict)


def event_order(ev: FragmentEvent) -> tuple[Any, ...]:
    """Events in time order (ties by where they are and what they say)."""
    return (ev.first_ns, ev.file_index, ev.frames, ev.kind, ev.src, ev.dst, ev.ident, ev.last_ns)


@dataclass
class _Train:
    version: int
    first_frame: int
    last_ts: int
    file_index: int
    first_ts: int = 0
    #: (offset, end, MF) of each fragment, in arrival order
    order: list[tuple[int, int, bool]] = field(default_factory=list)
    #: from the first overlap on: (offset, MF, bytes) of each fragment, in arrival order
    #: (None: not kept, the train passed MAX_POLICY_BYTES or was truncated)
    pieces: list[tuple[int, bool, bytes]] | None = None
    piece_bytes: int = 0
    pieces_lost: bool = False
    #: frames of the fragments that overlapped held bytes
    overlap_frames: list[int] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    #: sorted, disjoint, non-adjacent-merged [start, end) ranges held in ``data``
    have: list[list[int]] = field(default_factory=list)
    #: IPv6 only: (offset, end) of each fragment, to tell an exact duplicate from an overlap
    spans: set[tuple[int, int]] = field(default_factory=set)
    #: IPv4 header or IPv6 unfragmentable part from the offset-0 fragment
    header: bytes | None = None
    #: IPv6: offset in ``header`` of the Next Header byte to patch
    nh_at: int = 0
    next_header: int = 0
    total: int | None = None  # end of the last fragment (MF=0), first seen wins
    max_end: int = 0
    truncated: bool = False
    overlapped: bool = False  # IPv6: an overlap RFC 8200 does not tolerate
    overlap: bool = False
    conflict: bool = False
    dropped: bool = False

    def size(self) -> int:
        return len(self.data) + (len(self.header) if self.header else 0) + 64

    def held(self) -> int:
        return sum(e - s for s, e in self.have)


def ipv4_checksum(header: bytes | bytearray) -> int:
    """RFC 1071 one's-complement sum of a header whose checksum field is zero."""
    if len(header) % 2:
        header = bytes(header) + b"\0"
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


#: Facts that also make a FragmentEvent, one per occurrence.
_EVENT_FACTS = frozenset(("tiny_first_fragment", "oversize_datagram", "teardrop", "non_last_not_multiple_of_8"))


def _wins(policy: str, new: tuple[int, int], old: tuple[int, int]) -> bool:
    """Whether the later fragment ``new`` supplies the bytes it shares with ``old`` ((offset, end) each)."""
    if policy == "first":
        return False
    if policy == "last":
        return True
    if policy == "bsd":
        return new[0] < old[0]
    if policy == "linux":
        return new[0] <= old[0]
    if policy == "windows":
        return new[0] < old[0] and new[1] > old[1]
    # solaris
    return new[0] < old[0] and new[1] >= old[1]


def policy_outcomes(pieces: list[tuple[int, bool, bytes]]) -> dict[str, Any]:
    """Replay fragments ((offset, MF, bytes) in arrival order) under each overlap policy.

    Each byte goes to one fragment: a fragment's bytes fill what nothing holds
    yet, and where it overlaps bytes held by an earlier fragment the policy's
    rule decides (Suricata defrag.c ``DefragInsertFrag``, its trims and its
    in-offset-order copy; LANDSCAPE §2.4):

    - first: the earlier fragment; last: the later one;
    - bsd: the later one if it starts before the earlier one;
    - linux: the later one if it starts at or before the earlier one;
    - windows: the later one if it starts before and ends after the earlier one;
    - solaris: the later one if it starts before it and ends at or after its end.

    Suricata compares a new fragment with the already trimmed ones; this model
    compares it with the whole fragment that holds each byte, which is the same
    for two overlapping fragments and may differ in chains of three or more.
    Returns ``policies`` (per policy: length, holes, sha256 prefix),
    ``policies_disagree``, ``first_difference`` (offset of the first byte that
    differs between two outcomes, None if they agree) and ``groups`` (the
    policies with identical outcomes together).
    """
    spans = [(off, off + len(data)) for off, _, data in pieces]
    outcomes: dict[str, bytes] = {}
    result: dict[str, Any] = {}
    for policy in OVERLAP_POLICIES:
        owner: list[list[int]] = []  # sorted disjoint [start, end, piece index]
        for idx, (start, end) in enumerate(spans):
            if start >= end:
                continue
            out: list[list[int]] = []
            cursor = start
            for seg in owner:
                s, e, who = seg
                if e <= start or s >= end:
                    out.append(seg)
                    continue
                if s < start:
                    out.append([s, start, who])
                if cursor < s:
                    out.append([cursor, s, idx])
                lo, hi = max(s, start), min(e, end)
                out.append([lo, hi, idx if _wins(policy, (start, end), spans[who]) else who])
                cursor = hi
                if e > end:
                    out.append([end, e, who])
            if cursor < end:
                out.append([cursor, end, idx])
            out.sort()
            owner = out
        buf = bytearray(owner[-1][1] if owner else 0)
        holes = 0
        at = 0
        for s, e, who in owner:
            holes += s - at
            off = spans[who][0]
            buf[s:e] = pieces[who][2][s - off : e - off]
            at = e
        outcomes[policy] = bytes(buf)
        result[policy] = {"length": len(buf), "holes": holes,
                          "sha256": hashlib.sha256(buf).hexdigest()[:16]}  # fmt: skip
    first_diff: int | None = None
    ref = outcomes[OVERLAP_POLICIES[0]]
    for data in outcomes.values():
        if data != ref:
            n = min(len(data), len(ref))
            d = next((k for k in range(n) if data[k] != ref[k]), n)
            first_diff = d if first_diff is None else min(first_diff, d)
    groups: dict[bytes, list[str]] = {}
    for policy, data in outcomes.items():
        groups.setdefault(data, []).append(policy)
    return {
        "policies": result,
        "policies_disagree": len(groups) > 1,
        "first_difference": first_diff,
        "groups": list(groups.values()),
    }


#: PacketColumns fields :meth:`FragmentTracker._fragment` reads.
_FRAGMENT_COLUMNS = (
    "frame", "ts_ns", "ip_version", "l3_off", "ip_len", "ip_hdr_len", "ip_src_hi", "ip_src_lo",
    "ip_dst_hi", "ip_dst_lo", "ip_id", "ip_proto", "frag_offset", "frag_mf", "ip_df",
)  # fmt: skip


class FragmentTracker:
    """Tracks IP fragment trains, reassembles them and counts fragmentation facts (module doc)."""

    def __init__(
        self,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_trains: int = DEFAULT_MAX_TRAINS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        drop_ipv6_overlaps: bool = False,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        if max_trains < 1:
            raise ValueError(f"max_trains must be at least 1, got {max_trains!r}")
        if max_bytes < MAX_DATAGRAM * 2:
            raise ValueError(f"max_bytes must be at least {MAX_DATAGRAM * 2}, got {max_bytes!r}")
        self.timeout_ns = int(timeout_s * 1e9)
        self.max_trains = max_trains
        self.max_bytes = max_bytes
        self.drop_ipv6_overlaps = drop_ipv6_overlaps
        self.facts: dict[str, int] = dict.fromkeys(FRAGMENT_FACTS, 0)
        self.counters: dict[str, int] = dict.fromkeys(FRAGMENT_COUNTERS, 0)
        # per fact, the MAX_EXAMPLES examples that begin earliest: ((file, first frame), example),
        # sorted; "earliest" rather than "first found" so that a split run's merge keeps the same
        self._examples: dict[str, list[tuple[tuple[int, int], dict[str, Any]]]] = {}
        self._trains: OrderedDict[tuple[int, ...], _Train] = OrderedDict()
        self._bytes = 0
        #: detector input (module doc, :attr:`events`):
        # per kind, the events that begin earliest (at most MAX_EVENTS_PER_KIND once trimmed):
        # "earliest" rather than "first found" so that a split run's merge keeps the same
        self._events: dict[str, list[FragmentEvent]] = {}
        self._events_seen: dict[str, int] = {}
        self._now = (0, 0)  # (ts_ns, file_index) of the fragment being handled

    # -- public API -----------------------------------------------------------------
    def update(self, cols: PacketColumns, batch: RecordBatch) -> list[Reassembled]:
        """Feed one decoded batch; return the datagrams completed by it, in completion order."""
        out: list[Reassembled] = []
        rows = np.flatnonzero(cols.is_fragment)
        if len(rows):
            # The fragment rows' fields as Python lists: one gather per column
            # instead of a numpy scalar per field and fragment.
            c = SimpleNamespace(**{name: getattr(cols, name)[rows].tolist() for name in _FRAGMENT_COLUMNS})
            b = SimpleNamespace(buf=batch.buf, off=batch.off[rows].tolist(), caplen=batch.caplen[rows].tolist(),
                                file_index=batch.file_index)  # fmt: skip
            for j in range(len(rows)):
                self._fragment(c, b, j, out)  # type: ignore[arg-type]
        if self._trains and len(cols):
            self._expire(int(cols.ts_ns[-1]))
        return out

    def expire(self, now_ns: int) -> None:
        """Drop every train that timed out by ``now_ns`` (the pipeline calls it after every read batch).

        Every one, not just those ahead of the first live train: with timestamps out of
        order (an older capture read after a newer one) the trains are not in time order,
        and where a partial expiry stopped would depend on which other trains share the
        tracker (:mod:`netsift.partition`).
        """
        limit = now_ns - self.timeout_ns
        for key in [k for k, t in self._trains.items() if t.last_ts < limit]:
            self._drop(key, self._trains.pop(key), "trains_timed_out")

    @property
    def live(self) -> tuple[int, int]:
        """(trains being reassembled, bytes they hold)."""
        return len(self._trains), self._bytes

    def finish(self) -> None:
        """End of capture: every live train is incomplete; count and drop them."""
        while self._trains:
            key, train = self._trains.popitem(last=False)
            self._drop(key, train, "trains_flushed_at_end")

    def merge(self, other: FragmentTracker) -> None:
        """Add another worker's counters and examples.  Live trains are not merged (module doc)."""
        for k, v in other.facts.items():
            self.facts[k] = self.facts.get(k, 0) + v
        for k, v in other.counters.items():
            if k in _PEAKS:
                self.counters[k] = max(self.counters.get(k, 0), v)
            else:
                self.counters[k] = self.counters.get(k, 0) + v
        for fact, items in other._examples.items():
            for where, ex in items:
                self._example(fact, where, ex)
        for kind, evs in other._events.items():
            self._events.setdefault(kind, []).extend(evs)
            self._events_seen[kind] = self._events_seen.get(kind, 0) + other._events_seen.get(kind, 0)
            self._trim_events(kind)

    def summary(self) -> dict[str, Any]:
        """Counters, facts, examples and the bounds in force, for a report section."""
        return {
            "policy": "ipv6_drop_on_overlap" if self.drop_ipv6_overlaps else "first_seen_bytes_win",
            "limits": {
                "timeout_s": self.timeout_ns / 1e9,
                "max_trains": self.max_trains,
                "max_bytes": self.max_bytes,
                "max_fragments_per_train": MAX_FRAGMENTS_PER_TRAIN,
            },
            "counters": dict(self.counters),
            "facts": dict(self.facts),
            "examples": [dict(e) for e in self.examples],
            "live_trains": len(self._trains),
        }

    @property
    def examples(self) -> list[dict[str, Any]]:
        """Examples of each fact (the earliest :data:`MAX_EXAMPLES` of each), in capture order."""
        items = [item for per_fact in self._examples.values() for item in per_fact]
        return [ex for _, ex in sorted(items, key=lambda item: (item[0], item[1]["fact"]))]

    def _example(self, fact: str, where: tuple[int, int], ex: dict[str, Any]) -> None:
        kept = self._examples.setdefault(fact, [])
        if len(kept) >= MAX_EXAMPLES and where >= kept[-1][0]:
            return
        bisect.insort(kept, (where, ex), key=lambda item: item[0])
        del kept[MAX_EXAMPLES:]

    @property
    def live_trains(self) -> int:
        return len(self._trains)

    @property
    def buffered_bytes(self) -> int:
        return self._bytes

    # -- internals ----------------------------------------------------------------------
    def _fact(self, name: str, key: tuple[int, ...], frames: list[int], **detail: Any) -> None:
        self.facts[name] += 1
        if name in _EVENT_FACTS:
            ts, file_index = self._now
            self._event(name, key, ts, ts, file_index, frames, detail)
        where = (self._now[1], frames[0] if frames else 0)
        kept = self._examples.get(name)
        if kept is None or len(kept) < MAX_EXAMPLES or where < kept[-1][0]:
            if key[0] == 4:
                src, dst, ident = ip_text(0, key[1]), ip_text(0, key[2]), key[3]
            else:
                src, dst, ident = ip_text(key[1], key[2]), ip_text(key[3], key[4]), key[5]
            self._example(name, where, {
                "fact": name, "ip_version": key[0], "src": src, "dst": dst, "id": ident,
                "frames": list(frames[:16]),
            })

    @property
    def events(self) -> list[FragmentEvent]:
        """The detector's input: of each kind the :data:`MAX_EVENTS_PER_KIND` that begin earliest, in time order."""
        for kind in self._events:
            self._trim_events(kind, MAX_EVENTS_PER_KIND)
        return sorted((ev for evs in self._events.values() for ev in evs), key=event_order)

    @property
    def events_dropped(self) -> dict[str, int]:
        """Events not kept, by kind."""
        return {k: n - MAX_EVENTS_PER_KIND for k, n in self._events_seen.items() if n > MAX_EVENTS_PER_KIND}

    def _trim_events(self, kind: str, over: int = 2 * MAX_EVENTS_PER_KIND) -> None:
        evs = self._events[kind]
        if len(evs) > over:
            evs.sort(key=event_order)
            del evs[MAX_EVENTS_PER_KIND:]

    def _event(self, kind: str, key: tuple[int, ...], first_ns: int, last_ns: int, file_index: int,
               frames: list[int], detail: dict[str, Any], proto: int = -1) -> None:  # fmt: skip
        if key[0] == 4:
            src, dst, ident, proto = ip_text(0, key[1]), ip_text(0, key[2]), key[3], key[4]
        else:
            src, dst, ident = ip_text(key[1], key[2]), ip_text(key[3], key[4]), key[5]
        self._add_event(FragmentEvent(kind, key[0], src, dst, ident, proto, first_ns, last_ns, file_index,
                                      tuple(frames[:MAX_EVENT_FRAMES]), detail))  # fmt: skip

    def _add_event(self, ev: FragmentEvent) -> None:
        self._events_seen[ev.kind] = self._events_seen.get(ev.kind, 0) + 1
        self._events.setdefault(ev.kind, []).append(ev)
        self._trim_events(ev.kind)

    def _train_end(self, key: tuple[int, ...], train: _Train, completed: bool, reason: str) -> None:
        """Events for a train that ends: ``overlap`` if fragments overlapped, ``incomplete`` if not completed."""
        proto = key[4] if key[0] == 4 else train.next_header if train.header is not None else -1
        if train.overlap:
            detail: dict[str, Any] = {
                "conflicting": train.conflict, "completed": completed, "fragments": len(train.order),
                "overlap_frames": train.overlap_frames[:MAX_EVENT_FRAMES],
                "overlapping_fragments": len(train.overlap_frames),
                "rfc8200_violation": train.overlapped,
            }  # fmt: skip
            if train.pieces is not None and not train.truncated:
                detail.update(policy_outcomes(train.pieces))
            else:
                detail["policies"] = None
                detail["policies_skipped"] = "truncated" if train.truncated else "byte_cap"
            self._event("overlap", key, train.first_ts, train.last_ts, train.file_index, train.frames,
                        detail, proto)  # fmt: skip
        if not completed:
            self._event("incomplete", key, train.first_ts, train.last_ts, train.file_index, train.frames,
                        {"reason": reason, "fragments": len(train.frames), "bytes_held": train.held(),
                         "too_many_fragments": train.dropped}, proto)  # fmt: skip

    def _expire(self, now: int) -> None:
        limit = now - self.timeout_ns
        while self._trains:
            key, train = next(iter(self._trains.items()))
            if train.last_ts >= limit:
                break
            del self._trains[key]
            self._drop(key, train, "trains_timed_out")

    def _drop(self, key: tuple[int, ...], train: _Train, reason: str) -> None:
        self._bytes -= train.size()
        self.counters[reason] += 1
        # A train ends (timed out, evicted, flushed) while another fragment is being
        # handled, or none: its facts are dated and placed by its own last fragment.
        self._now = (train.last_ts, train.file_index)
        if not train.dropped:
            self._fact("incomplete_train", key, train.frames)
        self._train_end(key, train, False, reason)

    def _fragment(self, c: PacketColumns, batch: RecordBatch, i: int, out: list[Reassembled]) -> None:
        self.counters["fragments"] += 1
        frame = int(c.frame[i])
        ts = int(c.ts_ns[i])
        self._now = (ts, batch.file_index)
        version = int(c.ip_version[i])
        l3 = int(c.l3_off[i])
        if l3 < 0 or version not in (4, 6):
            self.counters["fragments_malformed"] += 1
            return
        start = int(batch.off[i]) + l3
        cap = int(batch.caplen[i]) - l3
        ip_len = int(c.ip_len[i])
        raw = batch.buf[start : start + min(cap, ip_len)].tobytes()
        truncated = cap < ip_len
        if version == 4:
            self.counters["fragments_ipv4"] += 1
            ihl = int(c.ip_hdr_len[i])
            if ihl < 20 or ip_len < ihl or len(raw) < ihl:
                self.counters["fragments_malformed"] += 1
                return
            key: tuple[int, ...] = (4, int(c.ip_src_lo[i]), int(c.ip_dst_lo[i]),
                                    int(c.ip_id[i]), int(c.ip_proto[i]))
            offset = int(c.frag_offset[i])
            mf = bool(c.frag_mf[i])
            header = raw[:ihl]
            nh_at = 0
            next_header = int(c.ip_proto[i])
            payload = raw[ihl:]
            length = ip_len - ihl
            if c.ip_df[i]:
                self._fact("df_on_fragment", key, [frame])
            if ihl + offset + length > MAX_DATAGRAM:
                self._fact("oversize_datagram", key, [frame], end=ihl + offset + length)
        else:
            self.counters["fragments_ipv6"] += 1
            found = _ipv6_fragment_header(raw)
            if found is None:
                self.counters["fragments_malformed"] += 1
                return
            pos, nh_at = found
            word, ident = struct.unpack_from("!HI", raw, pos + 2)
            next_header = raw[pos]
            offset = word & 0xFFF8
            mf = bool(word & 1)
            key = (6, int(c.ip_src_hi[i]), int(c.ip_src_lo[i]), int(c.ip_dst_hi[i]),
                   int(c.ip_dst_lo[i]), ident)
            header = raw[:pos]
            payload = raw[pos + 8 :]
            length = ip_len - pos - 8
            if length < 0:
                self.counters["fragments_malformed"] += 1
                return
            if offset + length > MAX_DATAGRAM:
                self._fact("oversize_datagram", key, [frame], end=offset + length)
            if offset == 0 and not mf:
                self.counters["ipv6_atomic_fragments"] += 1
                # a Fragment header on a whole datagram (RFC 6946): legal to receive, but
                # RFC 8021 deprecates sending them and they serve fragmentation attacks
                self._event("ipv6_atomic_fragment", key, ts, ts, batch.file_index, [frame], {})
                if not truncated:
                    out.append(Reassembled(6, _ipv6_datagram(header, nh_at, next_header, payload),
                                           (frame,), ts, batch.file_index))
                    self.counters["datagrams_reassembled"] += 1
                return
        if truncated:
            self.counters["fragments_truncated"] += 1
        end = offset + length
        if mf and length % 8:
            self._fact("non_last_not_multiple_of_8", key, [frame], length=length)
        if length == 0:
            self._fact("zero_length_fragment", key, [frame])
        if offset == 0 and mf and next_header == _TCP and length < TINY_TCP_MIN:
            self._fact("tiny_first_fragment", key, [frame], transport_bytes=length)

        self._expire(ts)
        train = self._trains.get(key)
        if train is None:
            self._make_room()
            train = _Train(version, frame, ts, batch.file_index, ts)
            self._trains[key] = train
            self._bytes += train.size()
            self.counters["trains_started"] += 1
            self.counters["peak_trains"] = max(self.counters["peak_trains"], len(self._trains))
        else:
            self._trains.move_to_end(key)
            train.last_ts = ts
        if train.dropped:
            self.counters["fragments_ignored_dropped_train"] += 1
            return
        train.frames.append(frame)
        if len(train.frames) > MAX_FRAGMENTS_PER_TRAIN:
            self._fact("too_many_fragments", key, train.frames)
            train.dropped = True
            self._bytes -= len(train.data)
            train.data = bytearray()
            train.have = []
            train.pieces = None
            return
        train.truncated |= truncated

        # Facts about the size, before the first-seen total is (maybe) fixed.
        overlaps_left = any(s < offset < e for s, e in train.have)
        if not mf:
            if train.total is not None and end != train.total:
                self._fact("inconsistent_last_fragment", key, [train.frames[0], frame])
            elif train.total is None and end < train.max_end:
                self._fact("inconsistent_last_fragment", key, [frame])
            if overlaps_left and (end < train.max_end or (train.total is not None and end != train.total)):
                self._fact("teardrop", key, [train.frames[0], frame], offset=offset, end=end,
                           earlier_end=train.max_end if train.total is None else train.total)
            if train.total is None and end >= train.max_end:
                train.total = end
        elif train.total is not None and end > train.total:
            self._fact("data_past_last_fragment", key, [frame])
        if end > train.max_end:
            train.max_end = end
        if offset == 0 and train.header is None:
            train.header = header
            train.nh_at = nh_at
            train.next_header = next_header
            self._bytes += len(header)

        # Overlap check against held bytes, then write the uncovered parts (first wins).
        data = payload[:length]
        identical = conflicting = False
        gaps: list[tuple[int, int]] = []
        cursor = offset
        for s, e in train.have:
            if e <= offset:
                continue
            if s >= end:
                break
            lo, hi = max(s, offset), min(e, end)
            if cursor < lo:
                gaps.append((cursor, lo))
            if train.data[lo:hi] == data[lo - offset : hi - offset]:
                identical = True
            else:
                conflicting = True
            cursor = max(cursor, hi)
        if cursor < end:
            gaps.append((cursor, end))
        if identical or conflicting:
            if not train.overlap and not train.truncated:
                # First overlap: no byte was written twice so far, so the held
                # bytes give back every earlier fragment.
                train.pieces = [(o, m, bytes(train.data[o:e])) for o, e, m in train.order]
                train.piece_bytes = sum(e - o for o, e, _ in train.order)
            train.overlap_frames.append(frame)
        if train.pieces is not None:
            train.piece_bytes += length
            if train.truncated or train.piece_bytes > MAX_POLICY_BYTES:
                train.pieces = None
            else:
                train.pieces.append((offset, mf, data))
        train.order.append((offset, end, mf))
        train.overlap |= identical or conflicting
        train.conflict |= conflicting
        if conflicting:
            self._fact("overlap_conflicting", key, [train.frames[0], frame])
        elif identical:
            self._fact("overlap_identical", key, [train.frames[0], frame])
        # RFC 8200 §4.5 tolerates exact duplicates; any other IPv6 overlap poisons the train.
        if (identical or conflicting) and version == 6 and (
                conflicting or (offset, end) not in train.spans):
            train.overlapped = True
        if version == 6:
            train.spans.add((offset, end))
        grow = max(0, end - len(train.data))
        if grow:
            self._bytes += grow
            train.data.extend(b"\0" * grow)
        for s, e in gaps:
            train.data[s:e] = data[s - offset : e - offset]
            _add_range(train.have, s, e)
        self.counters["peak_bytes"] = max(self.counters["peak_bytes"], self._bytes)

        if (train.total is not None and train.header is not None and len(train.have) == 1
                and train.have[0][0] == 0 and train.have[0][1] >= train.total):
            del self._trains[key]
            self._bytes -= train.size()
            if train.overlap:
                self._train_end(key, train, True, "completed")
            if train.truncated:
                self.counters["trains_not_reassembled_truncated"] += 1
                return
            if train.version == 6 and train.overlapped and self.drop_ipv6_overlaps:
                self.counters["trains_discarded_overlap"] += 1
                return
            if len(train.header) + train.total - (40 if train.version == 6 else 0) > MAX_DATAGRAM:
                # Ping of death: the length field cannot say it; the fact was counted.
                self.counters["trains_not_reassembled_oversize"] += 1
                return
            body = bytes(train.data[: train.total])
            if train.version == 4:
                dgram = _ipv4_datagram(train.header, body)
            else:
                dgram = _ipv6_datagram(train.header, train.nh_at, train.next_header, body)
            self.counters["datagrams_reassembled"] += 1
            out.append(Reassembled(train.version, dgram, tuple(train.frames), ts, train.file_index,
                                   train.overlap, train.conflict))
        elif self._bytes > self.max_bytes:
            self._make_room()

    def _make_room(self) -> None:
        while len(self._trains) >= self.max_trains:
            key, train = self._trains.popitem(last=False)
            self._drop(key, train, "trains_evicted_count_cap")
        while self._bytes > self.max_bytes and self._trains:
            key, train = self._trains.popitem(last=False)
            self._drop(key, train, "trains_evicted_byte_cap")


def _add_range(have: list[list[int]], start: int, end: int) -> None:
    """Insert ``[start, end)`` into sorted disjoint ranges, merging touching ones."""
    have.append([start, end])
    have.sort()
    merged: list[list[int]] = []
    for s, e in have:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    have[:] = merged


def _ipv6_fragment_header(raw: bytes) -> tuple[int, int] | None:
    """Offset of the Fragment header and of the Next Header byte that names it."""
    if len(raw) < 48:
        return None
    nh = raw[6]
    nh_at = 6
    pos = 40
    for _ in range(16):
        if nh == _IPV6_FRAGMENT:
            return (pos, nh_at) if pos + 8 <= len(raw) else None
        if pos + 8 > len(raw):
            return None
        if nh in _IPV6_EXT:
            hlen = (raw[pos + 1] + 1) * 8
        elif nh == _IPV6_AH:
            hlen = (raw[pos + 1] + 2) * 4
        else:
            return None
        nh, nh_at = raw[pos], pos
        pos += hlen
    return None


def _ipv4_datagram(header: bytes, body: bytes) -> bytes:
    h = bytearray(header)
    struct.pack_into("!H", h, 2, len(h) + len(body))
    # Flags and offset zeroed, DF included: PcapPlusPlus's IPReassembly does the same.
    struct.pack_into("!H", h, 6, 0)
    struct.pack_into("!H", h, 10, 0)
    struct.pack_into("!H", h, 10, ipv4_checksum(h))
    return bytes(h) + body


def _ipv6_datagram(header: bytes, nh_at: int, next_header: int, body: bytes) -> bytes:
    h = bytearray(header)
    h[nh_at] = next_header
    struct.pack_into("!H", h, 4, (len(h) - 40 + len(body)) & 0xFFFF)
    return bytes(h) + body
