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

from .columns import PacketColumns, lower_first

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finalizer: every input bit affects every output bit."""
    x = (x ^ (x >> np.uint64(30))) * _M2
    x = (x ^ (x >> np.uint64(27))) * _M3
    out: npt.NDArray[np.uint64] = x ^ (x >> np.uint64(31))
    return out


def _pair_hash(cols: PacketColumns) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """A hash of each row's unordered address pair (0 for non-IP rows), and whether the
    source is the lower address (or equal)."""
    fwd, ah, al, bh, bl = lower_first(cols.ip_src_hi, cols.ip_src_lo, cols.ip_dst_hi, cols.ip_dst_lo)
    with np.errstate(over="ignore"):
        h = _mix(al * _M1 ^ ah)
        h = _mix(h ^ bl * _M1 ^ (bh * _M2))
    return h, fwd


def flow_hash(cols: PacketColumns) -> npt.NDArray[np.uint64]:
    """Each row's hash for the flow stage: unfragmented TCP and UDP by their unordered
    (address, port) endpoints and protocol, everything else by its address pair."""
    h, fwd = _pair_hash(cols)
    l4 = (cols.l4_off >= 0) & ~cols.is_fragment & ((cols.ip_proto == 6) | (cols.ip_proto == 17))
    if not l4.any():
        return h
    sp, dp = cols.sport.astype(np.uint64), cols.dport.astype(np.uint64)
    same = (cols.ip_src_hi == cols.ip_dst_hi) & (cols.ip_src_lo == cols.ip_dst_lo)
    pa = np.where(same, np.minimum(sp, dp), np.where(fwd, sp, dp))  # port of the lower endpoint
    pb = np.where(same, np.maximum(sp, dp), np.where(fwd, dp, sp))
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
