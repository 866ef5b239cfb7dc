"""IP-fragmentation attacks: overlaps (and what each OS would have reassembled),
IPv6 overlaps, teardrop, tiny first fragments, oversize datagrams, fragment floods.

Input: the events of the fragment tracker (:class:`netsift.defrag.FragmentEvent`,
read from :attr:`FinishContext.fragments` when the run ends); the detector
never looks at packets itself.  Rules (LANDSCAPE.md §2.8, §2.4, §4 item 5):

- ``fragment_overlap_conflicting`` (high): IPv4 fragments of one datagram
  overlap with different bytes (Zeek ``fragment_inconsistency``, Snort 123:8,
  Suricata ``ipv4.frag_overlap``).  The tracker replays the fragments under
  Suricata's six overlap policies (first, last, bsd, linux, windows, solaris,
  ``defrag.c DefragInsertFrag``); when their outcomes differ, a sensor and the
  target may have seen different datagrams: evasion evidence, shown per policy.
- ``fragment_overlap_identical`` (low): overlapping bytes are all equal (Zeek
  ``fragment_overlap``): a duplicated fragment (SPAN double capture, a
  retransmission) or a harmless re-fragmentation; for IPv6 only exact
  duplicates, which RFC 8200 §4.5 tolerates.
- ``ipv6_fragment_overlap`` (high): IPv6 fragments overlap other than as exact
  duplicates: RFC 5722 (RFC 8200 §4.5) forbids it outright, no honest stack
  sends it.
- ``teardrop`` (high): a last fragment overlapping a fragment to its left and
  ending before data already received (Snort ``defrag.cc`` 123:2).  An IPv4
  teardrop train is not also reported as an overlap; an IPv6 one is (it breaks
  RFC 5722 as well).
- ``tiny_fragment`` (medium): a first TCP fragment carrying fewer than 16
  transport bytes, so the TCP flags are not in it (RFC 1858 §3.1, tmin = 16).
- ``oversize_datagram`` (high): fragments reaching past 65,535 bytes (ping of
  death; Suricata ``ipv4|ipv6.frag_pkt_too_large``, Snort 123:7).
- ``fragment_flood`` (medium, high from ``flood_high_incomplete``): many
  datagrams to one destination that never completed within ``flood_window_s``
  (reassembly-buffer exhaustion; Rose / "jolt" style floods).

One finding per code and (source, destination) pair; a flood is one finding
per destination (its sources listed).  Thresholds: see :class:`FragmentationThresholds`.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ..defrag import MAX_EVENTS_PER_KIND, OVERLAP_POLICIES, TINY_TCP_MIN, FragmentEvent
from .base import Detector, FinishContext, Sample
from .finding import MAX_PARTIES, Finding, PacketRefs, Severity, Technique

if TYPE_CHECKING:
    from ..defrag import FragmentTracker

__all__ = ["CODES", "DETECTOR", "FragmentationDetector", "FragmentationThresholds"]

#: Finding codes (stable).
CODES: Final = (
    "fragment_overlap_conflicting",
    "fragment_overlap_identical",
    "ipv6_fragment_overlap",
    "teardrop",
    "tiny_fragment",
    "oversize_datagram",
    "fragment_flood",
)

#: Teardrop and ping of death crash the reassembling stack (a software flaw
#: exploited to deny service).
CRASH: Final = Technique("T1499.004", "Endpoint Denial of Service: Application or System Exploitation")
#: A fragment flood exhausts the target's reassembly buffers (an OS resource).
EXHAUSTION: Final = Technique("T1499.001", "Endpoint Denial of Service: OS Exhaustion Flood")
#: Overlaps and tiny fragments are evasion of network sensors and filters:
#: ATT&CK Enterprise has no technique for that, so those findings carry none.

#: Trains detailed per finding (the others are counted).
MAX_TRAINS_LISTED: Final = 5

_SEVERITY: Final = {
    "fragment_overlap_conflicting": Severity.HIGH,
    "fragment_overlap_identical": Severity.LOW,
    "ipv6_fragment_overlap": Severity.HIGH,
    "teardrop": Severity.HIGH,
    "tiny_fragment": Severity.MEDIUM,
    "oversize_datagram": Severity.HIGH,
    "fragment_invalid_length": Severity.MEDIUM,
    "ipv6_atomic_fragment": Severity.LOW,
}
_TECHNIQUE: Final[dict[str, Technique | None]] = {
    "fragment_overlap_conflicting": None,
    "fragment_overlap_identical": None,
    "ipv6_fragment_overlap": None,
    "teardrop": CRASH,
    "tiny_fragment": None,
    "oversize_datagram": CRASH,
    "fragment_invalid_length": None,
    "ipv6_atomic_fragment": None,
}


@dataclass(frozen=True)
class FragmentationThresholds:
    #: Incomplete datagrams to one destination within ``flood_window_s`` that make a
    #: fragment flood.  netsift's own choice: no reference tool has a number (Zeek and
    #: Suricata only count timeouts); a capture cut mid-train leaves a handful, a
    #: flood leaves thousands, 100 sits well between.
    flood_min_incomplete: int = 100
    #: From this many in the window the flood is high: netsift's own choice, 10x the
    #: minimum (a thousand half-datagrams held is a real load on a reassembly table).
    flood_high_incomplete: int = 1000
    #: Sliding window for the flood count, seconds: 60 s is Suricata's
    #: ``defrag.timeout`` (LANDSCAPE.md §2.4), the time a stack holds a train.
    flood_window_s: float = 60.0
    #: Report overlaps whose bytes are all equal (low).  netsift's choice: on by
    #: default (Zeek logs ``fragment_overlap`` too); turn off where a SPAN port
    #: duplicates packets.
    report_identical_overlaps: bool = True
    #: Destinations tracked for the flood count (a cap on state; the finding says
    #: when it was reached).  netsift's choice, as the tracker's event cap.
    max_destinations: int = 10_000

    def __post_init__(self) -> None:
        if self.flood_min_incomplete < 1:
            raise ValueError(f"flood_min_incomplete must be at least 1, got {self.flood_min_incomplete!r}")
        if self.flood_high_incomplete < self.flood_min_incomplete:
            raise ValueError(f"flood_high_incomplete must be at least flood_min_incomplete "
                             f"({self.flood_min_incomplete}), got {self.flood_high_incomplete!r}")  # fmt: skip
        if not self.flood_window_s > 0:
            raise ValueError(f"flood_window_s must be positive, got {self.flood_window_s!r}")
        if self.max_destinations < 1:
            raise ValueError(f"max_destinations must be at least 1, got {self.max_destinations!r}")


def _order(ev: FragmentEvent) -> tuple[Any, ...]:
    return (ev.first_ns, ev.file_index, ev.frames, ev.kind, ev.src, ev.dst, ev.ident, ev.last_ns)


def _train(ev: FragmentEvent) -> tuple[Any, ...]:
    """A train's identity across its events (the first frame is the train's first fragment)."""
    return (ev.src, ev.dst, ev.ident, ev.file_index, ev.frames[:1])


class FragmentationDetector(Detector):
    """IP-fragmentation attacks (module doc)."""

    name: ClassVar[str] = "fragmentation"
    title: ClassVar[str] = "IP fragmentation attacks: overlaps and reassembly-policy evasion, teardrop, tiny, oversize, floods"
    Thresholds: ClassVar[type] = FragmentationThresholds
    t: FragmentationThresholds

    def __init__(self, thresholds: FragmentationThresholds | None = None) -> None:
        super().__init__(thresholds)
        #: the tracker's events, by kind (capped at MAX_EVENTS_PER_KIND each)
        self.events: dict[str, list[FragmentEvent]] = {}
        #: events the tracker (or a merge) could not keep, by kind
        self.dropped: Counter[str] = Counter()

    # -- state -------------------------------------------------------------------------
    def absorb(self, tracker: FragmentTracker) -> None:
        """Take the events of a finished fragment tracker."""
        for ev in tracker.events:
            self._add(ev)
        self.dropped.update(tracker.events_dropped)

    def _add(self, ev: FragmentEvent) -> None:
        bucket = self.events.setdefault(ev.kind, [])
        if len(bucket) < MAX_EVENTS_PER_KIND:
            bucket.append(ev)
        else:
            self.dropped[ev.kind] += 1

    def merge(self, other: Detector) -> None:
        if not isinstance(other, FragmentationDetector):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        for kind, evs in other.events.items():
            mine = self.events.setdefault(kind, [])
            both = sorted(mine + evs, key=_order)
            self.dropped[kind] += max(0, len(both) - MAX_EVENTS_PER_KIND)
            self.events[kind] = both[:MAX_EVENTS_PER_KIND]
        self.dropped.update(other.dropped)

    def finish(self, ctx: FinishContext) -> list[Finding]:
        if ctx.fragments is not None:
            self.absorb(ctx.fragments)
        return self.findings()

    # -- findings ----------------------------------------------------------------------
    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        by_kind = {k: sorted(v, key=_order) for k, v in self.events.items()}
        teardrops = by_kind.get("teardrop", [])
        teardrop_trains = {_train(ev) for ev in teardrops}
        overlaps = {_train(ev): ev for ev in by_kind.get("overlap", [])}
        groups: dict[tuple[str, str, str], list[FragmentEvent]] = {}
        for ev in by_kind.get("overlap", []):
            if ev.ip_version == 4 and _train(ev) in teardrop_trains:
                continue  # the teardrop finding shows this train's policies
            d = ev.detail
            if ev.ip_version == 6 and d.get("rfc8200_violation"):
                code = "ipv6_fragment_overlap"
            elif d.get("conflicting") or d.get("policies_disagree"):
                code = "fragment_overlap_conflicting"
            elif self.t.report_identical_overlaps:
                code = "fragment_overlap_identical"
            else:
                continue
            groups.setdefault((code, ev.src, ev.dst), []).append(ev)
        for kind, code in (("teardrop", "teardrop"), ("tiny_first_fragment", "tiny_fragment"),
                           ("oversize_datagram", "oversize_datagram"),
                           ("non_last_not_multiple_of_8", "fragment_invalid_length"),
                           ("ipv6_atomic_fragment", "ipv6_atomic_fragment")):  # fmt: skip
            for ev in by_kind.get(kind, []):
                groups.setdefault((code, ev.src, ev.dst), []).append(ev)
        for (code, src, dst), evs in groups.items():
            out.append(self._pair_finding(code, src, dst, evs, overlaps))
        out.extend(self._floods(by_kind.get("incomplete", [])))
        return sorted(out, key=Finding.sort_key)

    def _capped(self, kind: str) -> dict[str, Any]:
        n = self.dropped.get(kind, 0)
        return {"events_capped": True, "events_not_kept": n, "events_cap": MAX_EVENTS_PER_KIND} if n else {}

    def _pair_finding(self, code: str, src: str, dst: str, evs: list[FragmentEvent],
                      overlaps: dict[tuple[Any, ...], FragmentEvent]) -> Finding:  # fmt: skip
        refs = PacketRefs()
        for ev in evs:
            for frame in ev.frames:
                refs.add(ev.file_index, frame)
        ids = sorted({ev.ident for ev in evs})
        n = len(evs)
        evidence: dict[str, Any] = {
            "ip_version": evs[0].ip_version,
            "datagrams": len({_train(ev) for ev in evs}),
            "occurrences": n,
            "datagram_ids": ids[:10],
            "protocols": sorted({ev.proto for ev in evs if ev.proto >= 0}),
        }
        kind = evs[0].kind
        if kind == "overlap" or code == "teardrop":
            listed: list[dict[str, Any]] = []
            disagree = 0
            for ev in evs:
                ov = ev if ev.kind == "overlap" else overlaps.get(_train(ev))
                if ov is not None and ov.detail.get("policies_disagree"):
                    disagree += 1
                if len(listed) < MAX_TRAINS_LISTED:
                    listed.append(_train_evidence(ev, ov))
            evidence["policies_disagree_datagrams"] = disagree
            evidence["trains"] = listed
        if code == "teardrop":
            d = evs[0].detail
            evidence.update(last_fragment_offset=d.get("offset"), last_fragment_end=d.get("end"),
                            data_already_to=d.get("earlier_end"))  # fmt: skip
        elif code == "tiny_fragment":
            evidence["min_transport_bytes"] = min(int(ev.detail.get("transport_bytes", 0)) for ev in evs)
        elif code == "oversize_datagram":
            evidence["max_datagram_end"] = max(int(ev.detail.get("end", 0)) for ev in evs)
        elif code == "fragment_invalid_length":
            evidence["fragment_lengths"] = sorted({int(ev.detail.get("length", 0)) for ev in evs})[:10]
        evidence.update(self._capped(kind))
        summary = _SUMMARY[code](src, dst, evidence)
        return Finding(
            detector=self.name, code=code, severity=_SEVERITY[code], technique=_TECHNIQUE[code],
            first_ns=min(ev.first_ns for ev in evs), last_ns=max(ev.last_ns for ev in evs),
            summary=summary, key=(src, dst), sources=(src,), sources_total=1,
            destinations=(dst,), destinations_total=1, evidence=evidence,
            thresholds=_RULE_THRESHOLDS.get(code, {}) | (
                {"report_identical_overlaps": self.t.report_identical_overlaps}
                if code == "fragment_overlap_identical" else {}),
            packets=tuple(refs.sorted()), packets_total=refs.total,
        )  # fmt: skip

    def _floods(self, incomplete: list[FragmentEvent]) -> list[Finding]:
        per_dst: dict[str, list[FragmentEvent]] = {}
        dst_capped = 0
        for ev in incomplete:  # sorted by first_ns
            bucket = per_dst.get(ev.dst)
            if bucket is None:
                if len(per_dst) >= self.t.max_destinations:
                    dst_capped += 1
                    continue
                bucket = per_dst[ev.dst] = []
            bucket.append(ev)
        window = int(self.t.flood_window_s * 1e9)
        out: list[Finding] = []
        for dst, evs in per_dst.items():
            if len(evs) < self.t.flood_min_incomplete:
                continue
            times = sorted(ev.last_ns for ev in evs)
            best = lo = 0
            best_lo = 0
            for hi, t in enumerate(times):
                while t - times[lo] > window:
                    lo += 1
                if hi - lo + 1 > best:
                    best, best_lo = hi - lo + 1, lo
            if best < self.t.flood_min_incomplete:
                continue
            t0, t1 = times[best_lo], times[best_lo + best - 1]
            inside = [ev for ev in evs if t0 <= ev.last_ns <= t1]
            srcs = Counter(ev.src for ev in inside)
            refs = PacketRefs()
            for ev in inside:
                for frame in ev.frames[:2]:
                    refs.add(ev.file_index, frame)
            severity = Severity.HIGH if best >= self.t.flood_high_incomplete else Severity.MEDIUM
            seconds = round((t1 - t0) / 1e9, 3)
            evidence: dict[str, Any] = {
                "incomplete_in_window": best,
                "window_seconds_used": seconds,
                "incomplete_total": len(evs),
                "distinct_sources": len(srcs),
                "fragments_in_window": sum(int(ev.detail.get("fragments", 0)) for ev in inside),
                "bytes_held_in_window": sum(int(ev.detail.get("bytes_held", 0)) for ev in inside),
                "reasons": dict(sorted(Counter(str(ev.detail.get("reason")) for ev in inside).items())),
            }
            evidence.update(self._capped("incomplete"))
            if dst_capped:
                evidence.update(destinations_capped=True, events_past_destination_cap=dst_capped)
            top = [s for s, _ in sorted(srcs.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_PARTIES]]
            out.append(Finding(
                detector=self.name, code="fragment_flood", severity=severity, technique=EXHAUSTION,
                first_ns=min(ev.first_ns for ev in inside), last_ns=max(ev.last_ns for ev in inside),
                summary=(f"{dst} received {best} fragmented datagrams that never completed within "
                         f"{seconds} s (from {len(srcs)} source(s); flood threshold "
                         f"{self.t.flood_min_incomplete} per {self.t.flood_window_s:g} s)."),
                key=(dst,), sources=tuple(top), sources_total=len(srcs),
                destinations=(dst,), destinations_total=1, evidence=evidence,
                thresholds={"flood_min_incomplete": self.t.flood_min_incomplete,
                            "flood_high_incomplete": self.t.flood_high_incomplete,
                            "flood_window_s": self.t.flood_window_s},
                packets=tuple(refs.sorted()), packets_total=refs.total,
            ))  # fmt: skip
        return out

    @classmethod
    def samples(cls) -> list[Sample]:
        return [
            Sample("overlap_evasion", "an IPv4 UDP datagram whose second fragment rewrites bytes of the "
                   "first with different data (policies disagree)", _build_overlap,
                   frozenset({"fragment_overlap_conflicting"})),
            Sample("ipv6_overlap", "IPv6 fragments of one datagram overlapping (RFC 5722)",
                   _build_ipv6_overlap, frozenset({"ipv6_fragment_overlap"})),
            Sample("teardrop", "the teardrop pair: a last fragment ending inside the first one",
                   _build_teardrop, frozenset({"teardrop"})),
            Sample("tiny_syn", "a TCP SYN whose first fragment carries 8 transport bytes (RFC 1858)",
                   _build_tiny, frozenset({"tiny_fragment"})),
            Sample("ping_of_death", "an ICMP echo fragmented to 65,608 bytes", _build_ping_of_death,
                   frozenset({"oversize_datagram"})),
            Sample("fragment_flood", "300 first fragments of datagrams never completed, to one host in 15 s",
                   _build_flood, frozenset({"fragment_flood"})),
            Sample("ordinary_fragments", "large DNS answers and big pings fragmented by an honest stack",
                   _build_ordinary),
        ]


def _train_evidence(ev: FragmentEvent, ov: FragmentEvent | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": ev.ident, "first_frame": ev.frames[0] if ev.frames else None}
    if ov is None:
        return out
    d = ov.detail
    out.update(fragments=d.get("fragments"), completed=d.get("completed"),
               overlap_frames=list(d.get("overlap_frames", []))[:10])  # fmt: skip
    policies = d.get("policies")
    if policies is None:
        out["policies"] = None
        out["policies_skipped"] = d.get("policies_skipped")
    else:
        out["policies"] = {p: f"{policies[p]['sha256']}/{policies[p]['length']}"
                           for p in OVERLAP_POLICIES}  # fmt: skip
        out["policies_disagree"] = d.get("policies_disagree")
        out["first_difference"] = d.get("first_difference")
        out["policy_groups"] = d.get("groups")
    return out


def _overlap_summary(what: str) -> Any:
    def text(src: str, dst: str, e: dict[str, Any]) -> str:
        n = e["datagrams"]
        s = f"{src} sent {dst} {n} datagram(s) whose {what}"
        if e.get("policies_disagree_datagrams"):
            s += (f"; in {e['policies_disagree_datagrams']} the reassembly policies (first/last/bsd/linux/"
                  f"windows/solaris) disagree, so a sensor and the target can see different data")
        return s + "."
    return text


_SUMMARY: Final[dict[str, Any]] = {
    "fragment_overlap_conflicting": _overlap_summary("fragments overlap with different bytes"),
    "fragment_overlap_identical": _overlap_summary("fragments overlap with identical bytes"),
    "ipv6_fragment_overlap": _overlap_summary("IPv6 fragments overlap, which RFC 5722 forbids"),
    "teardrop": lambda s, d, e: (f"{s} sent {d} {e['datagrams']} teardrop datagram(s): a last fragment at "
                                 f"offset {e['last_fragment_offset']} ends at {e['last_fragment_end']}, "
                                 f"inside data already received up to {e['data_already_to']}."),
    "tiny_fragment": lambda s, d, e: (f"{s} sent {d} {e['datagrams']} TCP datagram(s) whose first fragment "
                                      f"carries only {e['min_transport_bytes']} transport bytes "
                                      f"(RFC 1858 minimum {TINY_TCP_MIN}), hiding the TCP flags."),
    "oversize_datagram": lambda s, d, e: (f"{s} sent {d} {e['datagrams']} fragmented datagram(s) reaching "
                                          f"{e['max_datagram_end']} bytes, past the 65,535-byte maximum "
                                          f"(ping of death)."),
    "fragment_invalid_length": lambda s, d, e: (
        f"{s} sent {d} {e['occurrences']} non-last fragment(s) whose data ({e['fragment_lengths']} bytes) is not "
        f"a multiple of 8, which RFC 791 and RFC 8200 forbid: hosts drop them, a sensor may not."),
    "ipv6_atomic_fragment": lambda s, d, e: (
        f"{s} sent {d} {e['occurrences']} IPv6 atomic fragment(s) (a Fragment header on a whole datagram, "
        f"offset 0 and no more fragments): RFC 8021 deprecates sending them; they serve fragmentation "
        f"attacks and header-chain evasion."),
}  # fmt: skip

#: The fixed rule each code compares with (not configurable: they are the RFCs' numbers).
_RULE_THRESHOLDS: Final[dict[str, dict[str, Any]]] = {
    "tiny_fragment": {"rfc1858_tmin_bytes": TINY_TCP_MIN},
    "oversize_datagram": {"max_datagram_bytes": 65_535},
    "ipv6_fragment_overlap": {"rfc5722_overlaps_allowed": 0},
    "teardrop": {"snort_123_2": "last fragment overlaps left and ends before the received size"},
    "fragment_invalid_length": {"non_last_fragment_multiple_of_bytes": 8},
    "ipv6_atomic_fragment": {"rfc8021_atomic_fragments_expected": 0},
}

DETECTOR = FragmentationDetector


# --- crafted samples (Scapy is imported only when they are built) -------------------

_SRC_MAC, _DST_MAC = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
_T0 = 1_700_000_000.0


def _eth(ip: Any, t: float) -> Any:
    from scapy.layers.l2 import Ether

    p = Ether(src=_SRC_MAC, dst=_DST_MAC) / ip
    p.time = t
    return p


def _frag4(src: str, dst: str, ident: int, proto: int, offset8: int, mf: bool, data: bytes, t: float) -> Any:
    from scapy.layers.inet import IP
    from scapy.packet import Raw

    return _eth(IP(src=src, dst=dst, id=ident, proto=proto, flags="MF" if mf else 0, frag=offset8)
                / Raw(data), t)  # fmt: skip


def _udp_bytes(sport: int, dport: int, payload: bytes) -> bytes:
    import struct

    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _build_overlap() -> list[Any]:
    body = _udp_bytes(40000, 53, b"A" * 40)  # 48 bytes
    return [
        _frag4("192.0.2.10", "198.51.100.20", 4242, 17, 0, True, body[:24], _T0),
        _frag4("192.0.2.10", "198.51.100.20", 4242, 17, 2, True, b"EVILEVILEVILEVIL", _T0 + 0.001),
        _frag4("192.0.2.10", "198.51.100.20", 4242, 17, 3, False, body[24:], _T0 + 0.002),
    ]


def _build_ipv6_overlap() -> list[Any]:
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
    from scapy.packet import Raw

    body = _udp_bytes(40000, 53, b"B" * 56)  # 64 bytes
    src, dst = "2001:db8::10", "2001:db8::20"
    out = []
    for i, (off, m, data) in enumerate(((0, 1, body[:32]), (16, 1, body[16:48]), (32, 0, body[32:]))):
        ip = IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(nh=17, id=777, offset=off // 8, m=m) / Raw(data)
        out.append(_eth(ip, _T0 + i * 0.001))
    return out


def _build_teardrop() -> list[Any]:
    return [
        _frag4("192.0.2.66", "198.51.100.7", 1, 17, 0, True, _udp_bytes(1234, 5678, b"X" * 24), _T0),
        _frag4("192.0.2.66", "198.51.100.7", 1, 17, 3, False, b"YYYY", _T0 + 0.001),
    ]


def _build_tiny() -> list[Any]:
    import struct

    tcp = struct.pack("!HHIIBBHHH", 40001, 80, 1000, 0, 5 << 4, 0x02, 1024, 0, 0)
    return [
        _frag4("192.0.2.30", "198.51.100.80", 99, 6, 0, True, tcp[:8], _T0),
        _frag4("192.0.2.30", "198.51.100.80", 99, 6, 1, False, tcp[8:], _T0 + 0.001),
    ]


def _build_ping_of_death() -> list[Any]:
    import struct

    icmp = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"P" * 65_600
    out = []
    step = 1480
    for i, off in enumerate(range(0, len(icmp), step)):
        chunk = icmp[off : off + step]
        out.append(_frag4("192.0.2.99", "198.51.100.99", 31337, 1, off // 8, off + step < len(icmp),
                          chunk, _T0 + i * 0.0001))  # fmt: skip
    return out


def _build_flood() -> list[Any]:
    rng = random.Random(20261128)
    out = []
    for i in range(300):
        src = f"203.0.113.{rng.randrange(1, 255)}"
        out.append(_frag4(src, "198.51.100.50", rng.randrange(65536), 17, 0, True,
                          bytes(rng.randrange(256) for _ in range(64)), _T0 + i * 0.05))  # fmt: skip
    return out


def _build_ordinary() -> list[Any]:
    rng = random.Random(7)
    out: list[Any] = []
    t = _T0
    for n in range(20):
        # a DNS answer of 1,800-3,800 bytes from a resolver, cut at the 1,480-byte MTU
        body = _udp_bytes(53, 40000 + n, bytes(rng.randrange(256) for _ in range(rng.randrange(1800, 3800))))
        ident = rng.randrange(65536)
        for off in range(0, len(body), 1480):
            out.append(_frag4("198.51.100.53", "192.0.2.10", ident, 17, off // 8, off + 1480 < len(body),
                              body[off : off + 1480], t))  # fmt: skip
            t += 0.0002
        # a 4,000-byte ping
        import struct

        icmp = struct.pack("!BBHHH", 8, 0, 0, 7, n) + bytes(4000)
        ident = rng.randrange(65536)
        for off in range(0, len(icmp), 1480):
            out.append(_frag4("192.0.2.10", "198.51.100.1", ident, 1, off // 8, off + 1480 < len(icmp),
                              icmp[off : off + 1480], t))  # fmt: skip
            t += 0.0002
        t += 0.5
    return out
