"""The C flow engine (``netsift._flows``) behind :class:`netsift.flows.FlowTable`'s interface.

:class:`CFlowTable` runs the per-packet logic of :class:`~netsift.flows.FlowTable`
(the specification) in C and has the same public surface; the records and
counters are identical (``tests/test_flows_c.py``).  :func:`make_flow_table`
picks the C engine when it was built and the Python one otherwise.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .capture import RecordBatch
from .columns import PacketColumns
from .flows import EXPIRATIONS, SKIP_REASONS, FlowConfig, FlowOut, FlowRecord, FlowTable

try:
    _flows: Any = importlib.import_module("netsift._flows")
except ImportError:  # no compiler at install time
    _flows = None

#: True when the C extension is importable.
AVAILABLE: bool = _flows is not None

#: PacketColumns fields the C engine reads, in the order ``_flows.Table.update`` takes them.
_COLUMNS: tuple[str, ...] = (
    "ip_version", "is_fragment", "frame", "ts_ns", "ip_src_hi", "ip_src_lo", "ip_dst_hi",
    "ip_dst_lo", "ip_proto", "ip_len", "l4_off", "sport", "dport", "tcp_flags", "tcp_seq",
    "tcp_ack", "tcp_window", "icmp_type", "icmp_code", "payload_len", "vlan_depth",
    "vlan_outer", "vlan_inner",
)  # fmt: skip

_INT64_MAX = (1 << 63) - 1
_NS = 1_000_000_000


def _ns(seconds: float) -> int:
    """``int(seconds * 1e9)`` as :class:`FlowTable` computes it, bounded to int64.

    Time differences never exceed ``2**63 - 1`` ns, so a larger timeout acts the same.
    """
    return min(int(seconds * _NS), _INT64_MAX)


def _contiguous(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


class CFlowTable:
    """:class:`netsift.flows.FlowTable` with the per-packet work done in C."""

    def __init__(self, config: FlowConfig | None = None) -> None:
        if _flows is None:
            raise RuntimeError("the C flow engine (netsift._flows) is not built")
        self.config = c = config or FlowConfig()
        bitmap = bytearray(65536)
        for port in c.server_ports:
            if 0 <= port <= 0xFFFF:
                bitmap[port] = 1
        timeouts = (
            _ns(c.tcp_timeout_s), _ns(c.udp_timeout_s), _ns(c.icmp_timeout_s),
            _ns(c.other_timeout_s), _ns(c.tcp_attempt_s), _ns(c.tcp_close_s),
            _ns(c.active_timeout_s),
        )  # fmt: skip
        seed = int.from_bytes(os.urandom(8), "little")
        self._arrays: dict[int, tuple[PacketColumns, tuple[np.ndarray[Any, Any], ...]]] = {}
        self._auto_sweep = True
        self._table: Any = _flows.Table(
            c.max_flows, c.vlan_in_key, bytes(bitmap), timeouts, seed, c.community_id_seed
        )

    # -- counters -------------------------------------------------------------------
    @property
    def live(self) -> int:
        return int(self._table.live)

    @property
    def skipped(self) -> dict[str, int]:
        return dict(zip(SKIP_REASONS, self._table.counters()[0], strict=True))

    @property
    def expired(self) -> dict[str, int]:
        return dict(zip(EXPIRATIONS, self._table.counters()[1], strict=True))

    @property
    def flows_created(self) -> int:
        return int(self._table.counters()[2])

    @property
    def peak_flows(self) -> int:
        return int(self._table.counters()[3])

    # -- feeding --------------------------------------------------------------------
    def update(
        self,
        cols: PacketColumns,
        batch: RecordBatch,
        start: int = 0,
        stop: int | None = None,
        out: FlowOut | None = None,
    ) -> None:
        """Feed one decoded batch, or its rows ``start:stop`` (fragments are skipped: feed reassembled datagrams separately)."""
        self._feed(cols, batch, None, start, stop, out)

    def update_reassembled(
        self,
        cols: PacketColumns,
        batch: RecordBatch,
        frames: list[tuple[int, int]],
        start: int = 0,
        stop: int | None = None,
        out: FlowOut | None = None,
    ) -> None:
        """Feed decoded reassembled datagrams (raw-IP rows ``start:stop``); ``frames`` = (file, frame) of each completing fragment, one per row fed."""
        pairs = np.asarray(frames, dtype=np.int64).reshape(-1, 2)
        self._feed(cols, batch, pairs, start, stop, out)

    def _feed(
        self,
        cols: PacketColumns,
        batch: RecordBatch,
        frames: np.ndarray[Any, Any] | None,
        start: int,
        stop: int | None,
        out: FlowOut | None,
    ) -> None:
        # One tuple of column arrays per batch, reused while a batch and its
        # reassembled datagrams are fed in alternating slices.
        cached = self._arrays.get(id(cols))
        if cached is None or cached[0] is not cols:
            if len(self._arrays) >= 2:
                self._arrays.clear()
            cached = (cols, tuple(_contiguous(getattr(cols, name)) for name in _COLUMNS))
            self._arrays[id(cols)] = cached
        self._table.update(
            cached[1],
            _contiguous(batch.buf),
            _contiguous(batch.off),
            _contiguous(batch.caplen),
            batch.file_index,
            frames,
            start,
            -1 if stop is None else stop,
            *((out.fid, out.seen) if out is not None else ()),
        )

    def advance(self, ts_ns: int) -> None:
        """The clock reaches ``ts_ns`` (when later than it is): every flow expired by then ends."""
        self._table.advance(ts_ns)

    @property
    def auto_sweep(self) -> bool:
        return self._auto_sweep

    @auto_sweep.setter
    def auto_sweep(self, flag: bool) -> None:
        """Whether :meth:`update` ends flows idle past their timeouts (the pipeline calls :meth:`advance` instead)."""
        self._auto_sweep = flag
        self._table.set_auto_sweep(flag)

    def finish(self, limit: int | None = None) -> int:
        """End of capture: live flows end, at most ``limit`` per call; returns how many are still live."""
        return int(self._table.finish(-1 if limit is None else limit))

    def drain(self) -> list[FlowRecord]:
        """Records of the flows finished since the last call, in the order they ended."""
        return list(map(FlowRecord.from_raw, self._table.drain()))

    def drain_raw(self) -> list[tuple[Any, ...]]:
        """:meth:`drain` as raw tuples (:data:`~netsift.flows.RAW_FIELDS`), without building records."""
        raw: list[tuple[Any, ...]] = self._table.drain()
        return raw

    def __iter__(self) -> Iterator[FlowRecord]:
        return iter(self.drain())


def make_flow_table(
    config: FlowConfig | None = None, engine: str = "auto"
) -> FlowTable | CFlowTable:
    """The flow table for ``engine``: "auto" (C when built), "c" (C or RuntimeError) or "python"."""
    if engine == "python":
        return FlowTable(config)
    if engine not in ("auto", "c"):
        raise ValueError(f"unknown flow engine {engine!r} (choose from auto, c, python)")
    if AVAILABLE:
        return CFlowTable(config)
    if engine == "c":
        raise RuntimeError("the C flow engine (netsift._flows) is not built in this installation")
    return FlowTable(config)
