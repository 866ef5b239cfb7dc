"""How a run is split across workers: by flow, and fragments by address pair.

Worker ``k`` of ``n`` reads every packet of every input but keeps, for the
flow stage and everything after it (fragments, flows, DNS/TLS/HTTP,
detectors), only the packets whose flow hashes to ``k``: unfragmented TCP
and UDP by their unordered (address, port) endpoints, everything else —
ICMP, other protocols, and every IP fragment — by the unordered address
pair.  Statistics are split by read batch instead (batch ``i`` belongs to
worker ``i % n``).

Why by flow and not by record range: a flow's state (Zeek's ``conn_state``
and ``history``, Wireshark's TCP analysis, stream reassembly) depends on
every earlier packet of that flow, so a flow cut at a record boundary cannot
be joined exactly afterwards — the second worker would have seen a
connection start in mid-stream.  Each flow is built whole by one worker, and
the partial results only ever add up.  NICs spread traffic over cores the
same way for the same reason (symmetric receive-side scaling).

Fragments carry no ports after the first, so a datagram's fragments are
counted (the fragments section, the fragmentation detector) by the worker of
their address pair; every worker also reassembles every datagram, and feeds
its flow stage those whose flow is its own (pipeline ``_Sessions``).  The
finer split by flow balances the work where a few address pairs carry much
of the traffic (a resolver and its busiest clients).

Rows without an IP header (ARP, LLDP, ...) enter no flow; they go with
their batch (worker ``i % n``) so that the flow stage counts them once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .capture import RecordBatch
from .columns import PacketColumns

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finalizer: every input bit affects every output bit."""
    x = (x ^ (x >> np.uint64(30))) * _M2
    x = (x ^ (x >> np.uint64(27))) * _M3
    out: npt.NDArray[np.uint64] = x ^ (x >> np.uint64(31))
    return out


def pair_hash(cols: PacketColumns) -> npt.NDArray[np.uint64]:
    """A hash of each row's unordered (source, destination) address pair (0 for non-IP rows)."""
    sh, sl, dh, dl = cols.ip_src_hi, cols.ip_src_lo, cols.ip_dst_hi, cols.ip_dst_lo
    fwd = (sh < dh) | ((sh == dh) & (sl <= dl))
    ah, al = np.where(fwd, sh, dh), np.where(fwd, sl, dl)
    bh, bl = np.where(fwd, dh, sh), np.where(fwd, dl, sl)
    with np.errstate(over="ignore"):
        h = _mix(al * _M1 ^ ah)
        h = _mix(h ^ bl * _M1 ^ (bh * _M2))
    return h


def flow_hash(cols: PacketColumns) -> npt.NDArray[np.uint64]:
    """Each row's hash for the flow stage: unfragmented TCP and UDP by their unordered
    (address, port) endpoints and protocol, everything else by :func:`pair_hash`."""
    h = pair_hash(cols)
    l4 = (cols.l4_off >= 0) & ~cols.is_fragment & ((cols.ip_proto == 6) | (cols.ip_proto == 17))
    if not l4.any():
        return h
    sh, sl, dh, dl = cols.ip_src_hi, cols.ip_src_lo, cols.ip_dst_hi, cols.ip_dst_lo
    sp, dp = cols.sport.astype(np.uint64), cols.dport.astype(np.uint64)
    lower = (sh < dh) | ((sh == dh) & (sl < dl))  # the source is the lower address
    same = (sh == dh) & (sl == dl)
    pa = np.where(same, np.minimum(sp, dp), np.where(lower, sp, dp))  # port of the lower endpoint
    pb = np.where(same, np.maximum(sp, dp), np.where(lower, dp, sp))
    with np.errstate(over="ignore"):
        h5 = _mix(h ^ _mix(((pa << np.uint64(16)) | pb) * _M1 + cols.ip_proto.astype(np.uint64)))
    out: npt.NDArray[np.uint64] = np.where(l4, h5, h)
    return out


def shares(cols: PacketColumns, parts: int) -> npt.NDArray[np.uint64]:
    """Which worker's flow stage each row belongs to (rows without IP: see :func:`rows_of`)."""
    out: npt.NDArray[np.uint64] = flow_hash(cols) % np.uint64(parts)
    return out


def rows_of(cols: PacketColumns, part: int, parts: int, batch_owner: bool) -> npt.NDArray[np.int64] | None:
    """The rows worker ``part`` of ``parts`` keeps for its flow stage (None: all of them)."""
    ip = cols.ip_version > 0
    mine = np.where(ip, shares(cols, parts) == np.uint64(part), batch_owner)
    if mine.all():
        return None
    return np.flatnonzero(mine)


def take_columns(cols: PacketColumns, rows: npt.NDArray[np.int64]) -> PacketColumns:
    """The decoded columns of ``rows`` only (frame numbers are kept)."""
    return PacketColumns(**{name: getattr(cols, name)[rows] for name in cols.__dataclass_fields__})


def take_batch(batch: RecordBatch, rows: npt.NDArray[np.int64]) -> RecordBatch:
    """The records of ``rows`` only; the buffer is shared, not copied."""
    return RecordBatch(
        buf=batch.buf,
        off=batch.off[rows],
        caplen=batch.caplen[rows],
        wirelen=batch.wirelen[rows],
        ts_ns=batch.ts_ns[rows],
        link_type=batch.link_type[rows],
        iface=batch.iface[rows],
        first_frame=batch.first_frame,
        file_index=batch.file_index,
    )
