"""SYN floods and SYN-ACK reflection, counted from the flow table's Zeek history.

What it detects
    ``syn_flood``: many TCP connection attempts to one destination port that
    mostly fail (no SYN-ACK, a RST, or a SYN-ACK never acknowledged).
    ``syn_flood_host``: the same against one host spread over many ports, from
    many sources (a vertical scan, one source and many ports, is the scan
    detector's and is left alone here).  ``syn_ack_reflection``: a host that
    receives SYN-ACKs for connections it never opened (the victim of
    reflection; the senders are the reflectors).

How it counts (LANDSCAPE.md §2.3, §2.9, §4 item 3)
    Attempts are the ``S`` letters of a flow's history: the flow table, like
    Zeek, repeats ``S`` only when the sequence number changes, so a
    retransmitted SYN (same ISN) is one attempt.  SYN-ACKs are ``h`` letters.
    A flow whose history has ``S``, ``h`` and an originator ``A`` or ``D`` completed
    its handshake; any other attempt flow is half-open or failed (Zeek's S0,
    REJ, RSTOS0, SH, ...).  Attempts are bucketed per (destination, port) and
    per 1-second bucket of the flow start; a sliding window of ``window_s``
    buckets gives the attempt rate (ntopng's ``syn_flood_victim`` > 50/s,
    Snort/Suricata ``threshold ... seconds 3``).  A SYN-ACK flow without an
    ``S`` (history ``^h``: the flow table flips it, the receiver becomes the
    originator; or ``H`` when the sender's port is not a likely server port)
    and without an ACK or data from its receiver is an unsolicited SYN-ACK.

Thresholds: see :class:`SynFloodThresholds` (each field cites its source).

State is bounded by ``max_cells`` (destination, port, second) cells per kind;
when it is reached, cells older than ten minutes that belong to no window
over the threshold are dropped, and flows that still find no room are
counted (``untracked_flows`` in the findings' evidence).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from ..columns import ip_text
from .base import Detector, FinishContext, Sample
from .finding import MAX_EVIDENCE_PACKETS, MAX_PARTIES, Finding, Severity, Technique, ns_to_iso

__all__ = ["DETECTOR", "SynFlood", "SynFloodThresholds"]

_NS: Final = 1_000_000_000
_M64: Final = 0xFFFF_FFFF_FFFF_FFFF
#: Cells older than this (seconds, behind the newest flow start) may be compacted at the cap:
#: twice Zeek's TCP inactivity timeout, so attempt flows (ended 5 s after their SYN) are all in.
_STALE_S: Final = 600
_FLOOD: Final = Technique("T1498.001", "Network Denial of Service: Direct Network Flood")
_REFLECT: Final = Technique("T1498.002", "Network Denial of Service: Reflection Amplification")

# Indexes into the raw flow tuple (netsift.flows.RAW_FIELDS).
_PROTO, _OHI, _OLO, _RHI, _RLO, _RP, _START, _END = 0, 1, 2, 4, 5, 6, 10, 11
_OPKTS, _RPKTS, _HIST, _FFILE, _FFRAME = 13, 14, 23, 25, 26

# Cell layout (a list, for cheap in-place updates).
# attempt cells: flows, attempts, syn_acks, completed, unanswered, rejected, min_ns, max_ns, sources, refs
_F, _A, _SA, _C, _UN, _RJ, _LO, _HI, _SRC, _REF = range(10)
# reflection cells: flows, syn_acks, syn_ack_packets, min_ns, max_ns, senders, refs
_RF, _RSA, _RPK, _RLO_, _RHI_, _RSRC, _RREF = range(7)


@dataclass(frozen=True)
class SynFloodThresholds:
    #: Sliding window in 1-second buckets over which the attempt rate is measured.
    #: Source: LANDSCAPE.md §2.9, Snort/Suricata community rules ``threshold: type both,
    #: track by_dst, count 20, seconds 3`` (the 3-second window; their count is far lower).
    window_s: int = 3
    #: Attempts per second (averaged over the window) at or above which a destination is
    #: flooded.  Source: LANDSCAPE.md §2.9, ntopng host check ``syn_flood_victim;gt;50``.
    min_rate: float = 50.0
    #: Fewest attempts a finding needs in all (so a short burst on a tiny capture stays
    #: quiet when min_rate is lowered).  netsift's own floor.
    min_attempts: int = 100
    #: Highest share of attempt flows that completed the handshake for a flood: a busy
    #: server completes most of its connections, a flood leaves most half-open.
    #: netsift's own choice (LANDSCAPE.md §2.9 lists the completion ratio, with no number).
    max_completion_ratio: float = 0.5
    #: Peak attempts in one second that make a flood high severity: ten times ntopng's 50/s.
    #: netsift's own choice.
    high_rate: float = 500.0
    #: Distinct sources at or above which, with few attempts per source, the sources look
    #: spoofed (LANDSCAPE.md §2.9: "many distinct src IPs ... suggest spoofing").  netsift's
    #: own number (spoofing tools draw a random source per packet).
    spoof_min_sources: int = 50
    #: Most attempt flows per source (on average) still counted as spoofing: random
    #: sources rarely repeat, a botnet's real hosts connect again and again.  netsift's own.
    spoof_max_repeat: float = 2.0
    #: Distinct sources a flood over many ports of one host needs: a vertical scan is one
    #: source (Zeek's scan policy and LANDSCAPE.md §2.9 "one src, many dst ports"), so a
    #: handful of sources is left to the scan detector.  netsift's own number.
    host_min_sources: int = 10
    #: Unsolicited SYN-ACKs per second (averaged over the window) at or above which a host
    #: is a reflection victim: ntopng's SYN flood rate (LANDSCAPE.md §2.9) applied to
    #: SYN-ACKs, netsift's own transfer.
    reflection_min_rate: float = 50.0
    #: Distinct SYN-ACK senders (reflectors) a reflection needs: reflection spreads over
    #: many reflectors, one or two senders look like a capture that missed the SYNs.
    #: netsift's own number.
    reflection_min_reflectors: int = 10
    #: (destination, port, second) cells kept per kind; bounds memory (about 300 bytes a
    #: cell).  netsift's own choice.
    max_cells: int = 300_000
    #: Sources kept per cell: the ones with the smallest hashes (a K-minimum-values sketch,
    #: so the distinct count past this is an estimate and merging stays exact).  netsift's own.
    max_sources_kept: int = 1024

    def __post_init__(self) -> None:
        if not 1 <= self.window_s <= 3600:
            raise ValueError(f"window_s must be 1 to 3600 seconds, got {self.window_s!r}")
        for name in ("min_rate", "high_rate", "reflection_min_rate", "spoof_max_repeat"):
            value = getattr(self, name)
            if not value > 0 or value == float("inf"):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not 0.0 <= self.max_completion_ratio <= 1.0:
            raise ValueError(f"max_completion_ratio must be between 0 and 1, got {self.max_completion_ratio!r}")
        for name in ("min_attempts", "spoof_min_sources", "host_min_sources", "reflection_min_reflectors"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.max_cells < 1:
            raise ValueError(f"max_cells must be at least 1, got {self.max_cells!r}")
        if self.max_sources_kept < 16:
            raise ValueError(f"max_sources_kept must be at least 16, got {self.max_sources_kept!r}")


def _mix(addr: int) -> int:
    """A 64-bit hash of an address (splitmix64's finalizer over its halves), uniform enough for the sketch."""
    x = ((addr >> 64) * 0x9E3779B97F4A7C15 ^ addr) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _trim_sources(items: list[Any], k: int) -> list[tuple[int, int]]:
    """The k distinct sources with the smallest hashes, as sorted (hash, address).

    ``items`` holds addresses (the two halves as one int, ``hi << 64 | lo``) and
    already-hashed (hash, address) pairs.
    """
    out = {s if isinstance(s, tuple) else (_mix(s), s) for s in items}
    return heapq.nsmallest(k, out)


def _addr_text(addr: int) -> str:
    return ip_text(addr >> 64, addr & _M64)


def _trim_refs(refs: list[int]) -> list[int]:
    return heapq.nsmallest(MAX_EVIDENCE_PACKETS, set(refs))


def _distinct(sketch: list[tuple[int, int]], k: int) -> tuple[int, bool]:
    """Distinct sources from a KMV sketch: exact below k, estimated (k-1)/h_k past it."""
    if len(sketch) < k:
        return len(sketch), False
    return round((k - 1) / ((sketch[k - 1][0] + 1) / 2**64)), True


class SynFlood(Detector):
    """SYN floods (per destination port and per host) and SYN-ACK reflection (module doc)."""

    name: ClassVar[str] = "syn_flood"
    title: ClassVar[str] = "SYN floods (retransmit-aware, per destination) and SYN-ACK reflection victims"
    Thresholds: ClassVar[type] = SynFloodThresholds

    def __init__(self, thresholds: SynFloodThresholds | None = None) -> None:
        super().__init__(thresholds)
        self.t: SynFloodThresholds
        #: (resp_hi, resp_lo, resp_p, second) -> attempt cell
        self.cells: dict[tuple[int, int, int, int], list[Any]] = {}
        #: (victim_hi, victim_lo, second) -> reflection cell
        self.rcells: dict[tuple[int, int, int], list[Any]] = {}
        self.untracked = 0
        self.compacted = 0
        #: newest flow start seen (seconds)
        self.newest = 0
        #: no compaction before this second (one that found nothing to drop is not repeated at once)
        self._compact_after = -1

    # --- feeding --------------------------------------------------------------

    def flows(self, records: list[Any]) -> None:
        cells, rcells = self.cells, self.rcells
        cap = self.t.max_cells
        k = self.t.max_sources_kept
        newest = self.newest
        for r in records:
            if r[_PROTO] != 6:
                continue
            h = r[_HIST]
            if "S" in h:
                b = r[_START] // _NS
                if b > newest:
                    newest = b
                key = (r[_RHI], r[_RLO], r[_RP], b)
                c = cells.get(key)
                if c is None:
                    self.newest = newest
                    if len(cells) >= cap and not self._room(cells):
                        self.untracked += 1
                        continue
                    c = cells[key] = [0, 0, 0, 0, 0, 0, r[_START], r[_END], [], []]
                c[_F] += 1
                c[_A] += h.count("S")
                if "h" in h:
                    c[_SA] += h.count("h")
                    if "A" in h or "D" in h:
                        c[_C] += 1
                elif "r" in h:
                    c[_RJ] += 1
                else:
                    c[_UN] += 1
                if r[_START] < c[_LO]:
                    c[_LO] = r[_START]
                if r[_END] > c[_HI]:
                    c[_HI] = r[_END]
                src = c[_SRC]
                src.append(r[_OHI] << 64 | r[_OLO])
                if len(src) > 2 * k:
                    c[_SRC] = _trim_sources(src, k)
                ref = c[_REF]
                ref.append(r[_FFILE] << 40 | r[_FFRAME])
                if len(ref) > 2 * MAX_EVIDENCE_PACKETS:
                    c[_REF] = _trim_refs(ref)
            elif "h" in h:
                # the responder sent the SYN-ACK, the originator (the receiver) never a SYN
                if "A" not in h and "D" not in h:
                    self._reflected(rcells, r[_OHI], r[_OLO], r[_RHI] << 64 | r[_RLO], r, h.count("h"), r[_RPKTS])
            elif "H" in h and "s" not in h and "a" not in h and "d" not in h:
                self._reflected(rcells, r[_RHI], r[_RLO], r[_OHI] << 64 | r[_OLO], r, h.count("H"), r[_OPKTS])
        self.newest = newest

    def _reflected(self, rcells: dict[tuple[int, int, int], list[Any]], vhi: int, vlo: int, sender: int,
                   r: Any, synacks: int, pkts: int) -> None:  # fmt: skip
        key = (vhi, vlo, r[_START] // _NS)
        c = rcells.get(key)
        if c is None:
            if len(rcells) >= self.t.max_cells:
                self.untracked += 1
                return
            c = rcells[key] = [0, 0, 0, r[_START], r[_END], [], []]
        c[_RF] += 1
        c[_RSA] += synacks
        c[_RPK] += pkts
        if r[_START] < c[_RLO_]:
            c[_RLO_] = r[_START]
        if r[_END] > c[_RHI_]:
            c[_RHI_] = r[_END]
        c[_RSRC].append(sender)
        if len(c[_RSRC]) > 2 * self.t.max_sources_kept:
            c[_RSRC] = _trim_sources(c[_RSRC], self.t.max_sources_kept)
        c[_RREF].append(r[_FFILE] << 40 | r[_FFRAME])
        if len(c[_RREF]) > 2 * MAX_EVIDENCE_PACKETS:
            c[_RREF] = _trim_refs(c[_RREF])

    def _room(self, cells: dict[tuple[int, int, int, int], list[Any]]) -> bool:
        """At the cap: drop stale cells that are in no window over the threshold; True if room was made.

        Each try reads every cell: after one that freed less than a tenth of the cap, the next
        waits until the newest flow start has moved on by a minute.
        """
        if self.newest < self._compact_after:
            return False
        w = self.t.window_s
        need = self.t.min_rate * w
        horizon = self.newest - _STALE_S
        per_host: dict[tuple[int, int, int], int] = {}
        for (hi, lo, _p, b), c in cells.items():
            per_host[(hi, lo, b)] = per_host.get((hi, lo, b), 0) + c[_A]
        drop = []
        for key in cells:
            hi, lo, p, b = key
            if b >= horizon:
                continue
            port = [cells[(hi, lo, p, x)][_A] if (hi, lo, p, x) in cells else 0 for x in range(b - w + 1, b + w)]
            host = [per_host.get((hi, lo, x), 0) for x in range(b - w + 1, b + w)]
            if max(sum(port[i:i + w]) for i in range(w)) < need and max(sum(host[i:i + w]) for i in range(w)) < need:
                drop.append(key)
        for key in drop:
            del cells[key]
        self.compacted += len(drop)
        if len(drop) < self.t.max_cells // 10:
            self._compact_after = self.newest + 60
        return len(cells) < self.t.max_cells

    # --- merging ----------------------------------------------------------------

    def merge(self, other: Detector) -> None:
        if not isinstance(other, SynFlood):
            raise TypeError(f"cannot merge {type(other).__name__} into SynFlood")
        k = self.t.max_sources_kept
        for key, oc in other.cells.items():
            c = self.cells.get(key)
            if c is None:
                self.cells[key] = [*oc[:_SRC], list(oc[_SRC]), list(oc[_REF])]
                continue
            for i in (_F, _A, _SA, _C, _UN, _RJ):
                c[i] += oc[i]
            c[_LO] = min(c[_LO], oc[_LO])
            c[_HI] = max(c[_HI], oc[_HI])
            c[_SRC] = _trim_sources(c[_SRC] + oc[_SRC], k)
            c[_REF] = _trim_refs(c[_REF] + oc[_REF])
        for rkey, orc in other.rcells.items():
            rc = self.rcells.get(rkey)
            if rc is None:
                self.rcells[rkey] = [*orc[:_RSRC], list(orc[_RSRC]), list(orc[_RREF])]
                continue
            for i in (_RF, _RSA, _RPK):
                rc[i] += orc[i]
            rc[_RLO_] = min(rc[_RLO_], orc[_RLO_])
            rc[_RHI_] = max(rc[_RHI_], orc[_RHI_])
            rc[_RSRC] = _trim_sources(rc[_RSRC] + orc[_RSRC], k)
            rc[_RREF] = _trim_refs(rc[_RREF] + orc[_RREF])
        self.untracked += other.untracked
        self.compacted += other.compacted
        self.newest = max(self.newest, other.newest)

    # --- findings ---------------------------------------------------------------

    def finish(self, ctx: FinishContext) -> list[Finding]:
        out: list[Finding] = []
        t = self.t
        # a destination whose attempts in all stay below one window's worth cannot be flooded
        need = max(t.min_attempts, t.min_rate * t.window_s)
        # attempts per second, per destination port and per destination host
        port_counts: dict[tuple[int, int, int], dict[int, int]] = {}
        host_counts: dict[tuple[int, int], dict[int, int]] = {}
        for (hi, lo, p, b), c in self.cells.items():
            a = c[_A]
            pc = port_counts.get((hi, lo, p))
            if pc is None:
                pc = port_counts[(hi, lo, p)] = {}
            pc[b] = a
            hc = host_counts.get((hi, lo))
            if hc is None:
                hc = host_counts[(hi, lo)] = {}
            hc[b] = hc.get(b, 0) + a
        # only a destination with a window at the rate can be flooded (_flood finds the same
        # windows from the same counts): gather the cells of those alone
        hot_ports = {k for k, pc in port_counts.items()
                     if sum(pc.values()) >= need and self._windows(pc, t.min_rate)[0]}  # fmt: skip
        hot_hosts = {k for k, hc in host_counts.items()
                     if sum(hc.values()) >= need and self._windows(hc, t.min_rate)[0]}  # fmt: skip
        by_port: dict[tuple[int, int, int], dict[int, list[Any]]] = {}
        by_host: dict[tuple[int, int], dict[int, list[Any]]] = {}
        if hot_ports or hot_hosts:
            for (hi, lo, p, b), c in self.cells.items():
                if (hi, lo, p) in hot_ports:
                    by_port.setdefault((hi, lo, p), {})[b] = c
                if (hi, lo) in hot_hosts:
                    by_host.setdefault((hi, lo), {}).setdefault(b, []).append(c)
        flooded_hosts: set[tuple[int, int]] = set()
        for (hi, lo, p), buckets in by_port.items():
            f = self._flood({b: [c] for b, c in buckets.items()}, (hi, lo), p)
            if f is not None:
                out.append(f)
                flooded_hosts.add((hi, lo))
        for (hi, lo), hb in by_host.items():
            if (hi, lo) in flooded_hosts or all(len(cs) == 1 for cs in hb.values()):
                continue  # a host with one port per second is covered by the per-port check
            f = self._flood(hb, (hi, lo), None)
            if f is not None:
                out.append(f)
        rneed = t.reflection_min_rate * t.window_s
        victim_total: dict[tuple[int, int], int] = {}
        for (hi, lo, _b), rc in self.rcells.items():
            victim_total[(hi, lo)] = victim_total.get((hi, lo), 0) + rc[_RSA]
        by_victim: dict[tuple[int, int], dict[int, list[Any]]] = {}
        for (hi, lo, b), rc in self.rcells.items():
            if victim_total[(hi, lo)] >= rneed:
                by_victim.setdefault((hi, lo), {})[b] = rc
        for (hi, lo), rb in by_victim.items():
            f = self._reflection(rb, (hi, lo))
            if f is not None:
                out.append(f)
        return out

    def _windows(self, counts: dict[int, int], rate: float) -> tuple[set[int], int, int]:
        """Buckets in a window at or over ``rate``; the peak window's first bucket and count."""
        w = self.t.window_s
        need = rate * w
        hot: set[int] = set()
        peak_b, peak = -1, -1
        # a window starting on an empty second holds no more than the one starting on its first busy second
        starts = sorted(counts)
        for s in starts:
            n = sum(counts.get(s + i, 0) for i in range(w))
            if n > peak:
                peak_b, peak = s, n
            if n >= need:
                hot.update(s + i for i in range(w) if s + i in counts)
        return hot, peak_b, peak

    def _flood(self, cells: dict[int, list[list[Any]]], dst: tuple[int, int], port: int | None) -> Finding | None:
        t = self.t
        counts = {b: sum(c[_A] for c in cs) for b, cs in cells.items()}
        hot, peak_b, peak = self._windows(counts, t.min_rate)
        if not hot:
            return None
        sel = [c for b in sorted(hot) for c in cells[b]]
        flows = sum(c[_F] for c in sel)
        attempts = sum(c[_A] for c in sel)
        synacks = sum(c[_SA] for c in sel)
        completed = sum(c[_C] for c in sel)
        if attempts < t.min_attempts:
            return None
        completion = completed / flows
        if completion > t.max_completion_ratio:
            return None
        k = t.max_sources_kept
        sketch = _trim_sources([s for c in sel for s in c[_SRC]], k)
        n_src, estimated = _distinct(sketch, k)
        if port is None and n_src < t.host_min_sources:
            return None  # one or a few sources over many ports: a scan, not this detector's
        repeat = flows / max(n_src, 1)
        spoofed = n_src >= t.spoof_min_sources and repeat <= t.spoof_max_repeat
        peak_second = max(counts[b] for b in hot)
        fast = peak_second >= t.high_rate
        severity = Severity.CRITICAL if fast and spoofed else Severity.HIGH if fast or spoofed else Severity.MEDIUM
        refs = _trim_refs([x for c in sel for x in c[_REF]])
        dst_text = ip_text(*dst)
        half_open = flows - completed
        peak_rate = peak / t.window_s
        evidence: dict[str, Any] = {}
        if port is not None:
            evidence["destination_port"] = port
        evidence.update({
            "attempts": attempts,
            "attempt_flows": flows,
            "syn_acks": synacks,
            "completed": completed,
            "half_open": half_open,
            "unanswered": sum(c[_UN] for c in sel),
            "rejected": sum(c[_RJ] for c in sel),
            "completion_ratio": round(completion, 3),
            "syn_synack_ratio": None if synacks == 0 else round(attempts / synacks, 2),
            "distinct_sources": n_src,
            "distinct_sources_estimated": estimated,
            "attempts_per_source": round(repeat, 2),
            "spoofing_suspected": spoofed,
            "flood_seconds": len(hot),
            "peak_window_start": ns_to_iso(peak_b * _NS),
            "peak_window_attempts": peak,
            "peak_window_rate": round(peak_rate, 1),
            "peak_second_attempts": peak_second,
        })
        if self.untracked or self.compacted:
            evidence["untracked_flows"] = self.untracked
            evidence["cells_compacted"] = self.compacted
        where = f"{dst_text} port {port}" if port is not None else f"{dst_text} (many ports)"
        spoof_text = ", sources look spoofed" if spoofed else ""
        summary = (f"SYN flood on {where}: {attempts} connection attempts over {len(hot)} s "
                   f"(peak {peak_rate:.0f}/s over {t.window_s} s), {completion:.0%} completed, "
                   f"{'about ' if estimated else ''}{n_src} distinct sources{spoof_text}.")  # fmt: skip
        if port is None:
            n_ports = len({p for (hi, lo, p, b) in self.cells if (hi, lo) == dst and b in hot})
            evidence = {"destination_ports": n_ports, **evidence}
            summary = summary.replace("(many ports)", f"({n_ports} ports)")
        return Finding(
            detector=self.name,
            code="syn_flood" if port is not None else "syn_flood_host",
            severity=severity,
            technique=_FLOOD,
            first_ns=min(c[_LO] for c in sel),
            last_ns=max(c[_HI] for c in sel),
            summary=summary,
            key=(dst_text, port) if port is not None else (dst_text,),
            sources=tuple(_addr_text(a) for a in sorted(a for _h, a in sketch[:MAX_PARTIES])),
            sources_total=n_src,
            destinations=(dst_text,),
            destinations_total=1,
            evidence=evidence,
            thresholds={
                "window_s": t.window_s,
                "min_rate": t.min_rate,
                "min_attempts": t.min_attempts,
                "max_completion_ratio": t.max_completion_ratio,
                "high_rate": t.high_rate,
                "spoof_min_sources": t.spoof_min_sources,
                "spoof_max_repeat": t.spoof_max_repeat,
                **({"host_min_sources": t.host_min_sources} if port is None else {}),
            },
            packets=tuple((x >> 40, x & ((1 << 40) - 1)) for x in refs),
            packets_total=flows,
        )

    def _reflection(self, buckets: dict[int, list[Any]], victim: tuple[int, int]) -> Finding | None:
        t = self.t
        counts = {b: c[_RSA] for b, c in buckets.items()}
        hot, peak_b, peak = self._windows(counts, t.reflection_min_rate)
        if not hot:
            return None
        sel = [buckets[b] for b in sorted(hot)]
        k = t.max_sources_kept
        sketch = _trim_sources([s for c in sel for s in c[_RSRC]], k)
        n_src, estimated = _distinct(sketch, k)
        if n_src < t.reflection_min_reflectors:
            return None
        synacks = sum(c[_RSA] for c in sel)
        flows = sum(c[_RF] for c in sel)
        pkts = sum(c[_RPK] for c in sel)
        peak_second = max(counts[b] for b in hot)
        severity = Severity.HIGH if peak_second >= t.high_rate else Severity.MEDIUM
        refs = _trim_refs([x for c in sel for x in c[_RREF]])
        vtext = ip_text(*victim)
        peak_rate = peak / t.window_s
        evidence: dict[str, Any] = {
            "unsolicited_syn_acks": synacks,
            "unsolicited_flows": flows,
            "syn_ack_packets": pkts,
            "packets_per_syn_ack": round(pkts / max(synacks, 1), 2),
            "distinct_reflectors": n_src,
            "distinct_reflectors_estimated": estimated,
            "flood_seconds": len(hot),
            "peak_window_start": ns_to_iso(peak_b * _NS),
            "peak_window_syn_acks": peak,
            "peak_window_rate": round(peak_rate, 1),
            "peak_second_syn_acks": peak_second,
        }
        if self.untracked:
            evidence["untracked_flows"] = self.untracked
        summary = (f"SYN-ACK reflection against {vtext}: {synacks} SYN-ACKs it never asked for from "
                   f"{'about ' if estimated else ''}{n_src} reflectors over {len(hot)} s "
                   f"(peak {peak_rate:.0f}/s over {t.window_s} s).")  # fmt: skip
        return Finding(
            detector=self.name,
            code="syn_ack_reflection",
            severity=severity,
            technique=_REFLECT,
            first_ns=min(c[_RLO_] for c in sel),
            last_ns=max(c[_RHI_] for c in sel),
            summary=summary,
            key=(vtext,),
            sources=tuple(_addr_text(a) for a in sorted(a for _h, a in sketch[:MAX_PARTIES])),
            sources_total=n_src,
            destinations=(vtext,),
            destinations_total=1,
            evidence=evidence,
            thresholds={
                "window_s": t.window_s,
                "reflection_min_rate": t.reflection_min_rate,
                "reflection_min_reflectors": t.reflection_min_reflectors,
                "high_rate": t.high_rate,
            },
            packets=tuple((x >> 40, x & ((1 << 40) - 1)) for x in refs),
            packets_total=flows,
        )

    # --- selftest samples ---------------------------------------------------------

    @classmethod
    def samples(cls) -> list[Sample]:
        flood = Sample("spoofed_syn_flood", "2,000 SYNs from random sources to one web server port in 4 s, "
                       "unanswered, a quarter retransmitted",
                       _spoofed_flood, frozenset({"syn_flood"}))
        reflection = Sample("syn_ack_reflection", "600 SYN-ACKs from 60 servers to one host that sent no SYN",
                            _reflection_sample, frozenset({"syn_ack_reflection"}))
        busy = Sample("busy_server", "400 clients connect in 4 s and complete; a third retransmit their SYN (same ISN)",
                      _busy_server)
        scan = Sample("port_scan", "one source sends a SYN to each of 1,000 ports of one host", _port_scan)
        return [flood, reflection, busy, scan]


# --- sample builders (Scapy imported lazily: the library does not need it) ------------

_T0: Final = 1_700_000_000.0
_MAC_A: Final = "02:00:00:00:00:01"
_MAC_B: Final = "02:00:00:00:00:02"


def _pkt(src: str, dst: str, sport: int, dport: int, flags: str, seq: int, ack: int, ts: float,
         forward: bool = True) -> Any:  # fmt: skip
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    macs = (_MAC_A, _MAC_B) if forward else (_MAC_B, _MAC_A)
    p = Ether(src=macs[0], dst=macs[1]) / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags,
                                                                     seq=seq, ack=ack)  # fmt: skip
    p.time = ts
    return p


def _spoofed_flood() -> list[Any]:
    """2,000 spoofed SYNs in 4 s; a quarter of the sources retransmit theirs (same ISN)
    1 s later, as a real stack would, which must not count as more attempts."""
    import random

    rng = random.Random(1)
    out = []
    for i in range(2000):
        src = f"{rng.randint(11, 200)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        sport, isn = rng.randint(1024, 65535), rng.getrandbits(32)
        out.append(_pkt(src, "10.0.0.80", sport, 80, "S", isn, 0, _T0 + i * 0.002))
        if i % 4 == 0:
            out.append(_pkt(src, "10.0.0.80", sport, 80, "S", isn, 0, _T0 + i * 0.002 + 1.0))
    return sorted(out, key=lambda p: float(p.time))


def _reflection_sample() -> list[Any]:
    import random

    rng = random.Random(2)
    reflectors = [f"198.51.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(60)]
    return [_pkt(reflectors[i % 60], "10.0.0.9", 443 if i % 2 else 80, rng.randint(1024, 65535), "SA",
                 rng.getrandbits(32), rng.getrandbits(32), _T0 + i * 0.004, forward=False)
            for i in range(600)]  # fmt: skip


def _busy_server() -> list[Any]:
    import random

    rng = random.Random(3)
    out = []
    for i in range(400):
        cli = f"172.16.{i // 250}.{i % 250 + 1}"
        sport = rng.randint(1024, 65535)
        isn, sisn = rng.getrandbits(32), rng.getrandbits(32)
        t = _T0 + i * 0.01
        out.append(_pkt(cli, "10.0.0.80", sport, 443, "S", isn, 0, t))
        if i % 3 == 0:  # retransmitted SYN: same ISN, one attempt
            t += 1.0
            out.append(_pkt(cli, "10.0.0.80", sport, 443, "S", isn, 0, t))
        out.append(_pkt("10.0.0.80", cli, 443, sport, "SA", sisn, isn + 1, t + 0.001, forward=False))
        out.append(_pkt(cli, "10.0.0.80", sport, 443, "A", isn + 1, sisn + 1, t + 0.002))
    out.sort(key=lambda p: float(p.time))
    return out


def _port_scan() -> list[Any]:
    out = []
    for i in range(1000):
        port = i + 1
        t = _T0 + i * 0.001
        out.append(_pkt("192.0.2.66", "10.0.0.5", 40000, port, "S", 1000 + i, 0, t))
        out.append(_pkt("10.0.0.5", "192.0.2.66", port, 40000, "RA", 0, 1001 + i, t + 0.0002, forward=False))
    return out


DETECTOR = SynFlood
