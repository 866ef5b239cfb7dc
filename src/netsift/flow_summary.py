"""Mergeable aggregate of finished flows for the report: counts, top flows, TCP-analysis totals."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from .columns import IP_PROTO_NAMES
from .flows import RAW_FIELDS, TCP_ANALYSIS, FlowRecord, unpack_summary_key

(_KEY, _O_COUNTS, _R_COUNTS, _O_IP_BYTES, _R_IP_BYTES, _O_PKTS, _R_PKTS, _START, _FIRST_FILE,
 _FIRST_FRAME) = (
    RAW_FIELDS.index(name) for name in (
        "summary_key", "orig_counts", "resp_counts", "orig_ip_bytes", "resp_ip_bytes", "orig_pkts", "resp_pkts",
        "start_ns", "first_file", "first_frame",
    )
)  # fmt: skip


@dataclass
class FlowSummary:
    """Mergeable aggregate of finished flows for the report (counts, top flows, TCP analysis totals)."""

    top_n: int = 20
    flows: int = 0
    by_transport: dict[str, int] = field(default_factory=dict)
    by_state: dict[str, dict[str, int]] = field(default_factory=dict)
    by_expiration: dict[str, int] = field(default_factory=dict)
    tcp_analysis: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TCP_ANALYSIS, 0))
    #: (sort key, record) pairs, best first; see :attr:`top_bytes` / :attr:`top_packets`
    ranked_bytes: list[tuple[tuple[int, ...], FlowRecord]] = field(default_factory=list)
    ranked_packets: list[tuple[tuple[int, ...], FlowRecord]] = field(default_factory=list)

    @property
    def top_bytes(self) -> list[FlowRecord]:
        """The largest flows by IP bytes (ties: earlier first packet first)."""
        return [r for _, r in self.ranked_bytes]

    @property
    def top_packets(self) -> list[FlowRecord]:
        """The largest flows by packets (ties: earlier first packet first)."""
        return [r for _, r in self.ranked_packets]

    def add(self, records: Sequence[tuple[Any, ...]]) -> None:
        """Count finished flows: :class:`FlowRecord` objects or raw engine tuples (same layout)."""
        if not records:
            return
        self.flows += len(records)
        # Count by the packed inputs of conn_state; decode each distinct key once.
        for key, k in Counter(map(itemgetter(_KEY), records)).items():
            proto, state, exp = unpack_summary_key(key)
            transport = IP_PROTO_NAMES.get(proto, f"ip-{proto}")
            self.by_transport[transport] = self.by_transport.get(transport, 0) + k
            states = self.by_state.setdefault(transport, {})
            states[state] = states.get(state, 0) + k
            self.by_expiration[exp] = self.by_expiration.get(exp, 0) + k
        counts = [
            c for r in records for c in (r[_O_COUNTS], r[_R_COUNTS]) if c is not None and any(c)
        ]
        if counts:
            t = self.tcp_analysis
            for name, total in zip(TCP_ANALYSIS, map(sum, zip(*counts, strict=True)), strict=True):
                t[name] += total
        self.ranked_bytes = _top(self.ranked_bytes, records, self.top_n, _by_bytes)
        self.ranked_packets = _top(self.ranked_packets, records, self.top_n, _by_packets)

    def merge(self, other: FlowSummary) -> None:
        self.flows += other.flows
        for k, v in other.by_transport.items():
            self.by_transport[k] = self.by_transport.get(k, 0) + v
        for t, states in other.by_state.items():
            mine = self.by_state.setdefault(t, {})
            for k, v in states.items():
                mine[k] = mine.get(k, 0) + v
        for k, v in other.by_expiration.items():
            self.by_expiration[k] = self.by_expiration.get(k, 0) + v
        for k, v in other.tcp_analysis.items():
            self.tcp_analysis[k] += v
        self.ranked_bytes = _top(self.ranked_bytes, other.top_bytes, self.top_n, _by_bytes)
        self.ranked_packets = _top(self.ranked_packets, other.top_packets, self.top_n, _by_packets)


def _by_bytes(r: FlowRecord) -> tuple[int, int, int, int]:
    return (-(r.orig_ip_bytes + r.resp_ip_bytes), r.start_ns, r.first_file, r.first_frame)


def _by_packets(r: FlowRecord) -> tuple[int, int, int, int]:
    return (-(r.orig_pkts + r.resp_pkts), r.start_ns, r.first_file, r.first_frame)


def _top(
    current: list[tuple[tuple[int, ...], FlowRecord]],
    new: Sequence[tuple[Any, ...]],
    n: int,
    key: Callable[[FlowRecord], tuple[int, ...]],
) -> list[tuple[tuple[int, ...], FlowRecord]]:
    """The ``n`` best (smallest ``key``: largest flows, ties by first packet) of both, as (key, record).

    ``current`` is already ranked.  Once it is full, a new flow must at least
    equal its last one's size to enter, checked on the raw tuples with plain
    integer comparisons before any record or key is built.
    """
    if n <= 0:
        return []
    a, b = (_O_IP_BYTES, _R_IP_BYTES) if key is _by_bytes else (_O_PKTS, _R_PKTS)
    if len(current) >= n:
        worst_key = current[-1][0]
        worst, tail = -worst_key[0], worst_key[1:]
        # larger, or as large with an earlier first packet (a flood of equal flows
        # must not rebuild the ranking for every batch)
        new = [
            r for r in new
            if (size := r[a] + r[b]) > worst
            or (size == worst and (r[_START], r[_FIRST_FILE], r[_FIRST_FRAME]) < tail)
        ]  # fmt: skip
        if not new:
            return current
    elif len(new) > n:
        # the ranking is not full yet: only the n best new flows can enter it
        new = heapq.nsmallest(
            n, new, key=lambda r: (-(r[a] + r[b]), r[_START], r[_FIRST_FILE], r[_FIRST_FRAME])
        )
    made = (r if isinstance(r, FlowRecord) else FlowRecord.from_raw(r) for r in new)
    merged = current + [(key(r), r) for r in made]
    merged.sort()  # keys are unique (first packet), so records are never compared
    return merged[:n]
