"""Mergeable aggregate of finished flows for the report: counts, top flows, TCP-analysis totals."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from .flows import TCP_ANALYSIS, FlowRecord


@dataclass
class FlowSummary:
    """Mergeable aggregate of finished flows for the report (counts, top flows, TCP analysis totals)."""

    top_n: int = 20
    flows: int = 0
    by_transport: dict[str, int] = field(default_factory=dict)
    by_state: dict[str, dict[str, int]] = field(default_factory=dict)
    by_expiration: dict[str, int] = field(default_factory=dict)
    tcp_analysis: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TCP_ANALYSIS, 0))
    top_bytes: list[FlowRecord] = field(default_factory=list)
    top_packets: list[FlowRecord] = field(default_factory=list)

    def add(self, records: list[FlowRecord]) -> None:
        if not records:
            return
        for rec in records:
            self.flows += 1
            self.by_transport[rec.transport] = self.by_transport.get(rec.transport, 0) + 1
            states = self.by_state.setdefault(rec.transport, {})
            states[rec.conn_state] = states.get(rec.conn_state, 0) + 1
            self.by_expiration[rec.expiration] = self.by_expiration.get(rec.expiration, 0) + 1
            if rec.orig_tcp is not None and rec.resp_tcp is not None:
                t = self.tcp_analysis
                for k in TCP_ANALYSIS:
                    t[k] += rec.orig_tcp[k] + rec.resp_tcp[k]
        self.top_bytes = _top(self.top_bytes + records, self.top_n, lambda r: r.ip_bytes)
        self.top_packets = _top(self.top_packets + records, self.top_n, lambda r: r.packets)

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
        self.top_bytes = _top(self.top_bytes + other.top_bytes, self.top_n, lambda r: r.ip_bytes)
        self.top_packets = _top(
            self.top_packets + other.top_packets, self.top_n, lambda r: r.packets
        )


def _top(records: list[FlowRecord], n: int, key: Any) -> list[FlowRecord]:
    """The ``n`` largest by ``key``; ties broken by the first packet so the order is stable."""
    if len(records) <= n:
        return sorted(records, key=lambda r: (-key(r), r.start_ns, r.first_file, r.first_frame))
    return heapq.nsmallest(
        n, records, key=lambda r: (-key(r), r.start_ns, r.first_file, r.first_frame)
    )
