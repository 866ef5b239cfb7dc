"""Record-boundary walks for pcap and pcapng buffers: the C extension, or the same in Python.

``walk_pcap`` and ``walk_epb`` have the contracts documented in ``_walk.c``.
The C extension is built at install time; when it is missing (no compiler),
the pure-Python versions here give identical results, only slower.
``IMPLEMENTATION`` says which one is in use.
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

__all__ = ["IMPLEMENTATION", "py_walk_epb", "py_walk_pcap", "walk_epb", "walk_pcap"]

MAX_BLOCK_BYTES = 16 << 20
EPB = 6


def py_walk_pcap(buf: bytes, pos: int, rec_len: int, big: bool, max_cap: int,
                 starts: npt.NDArray[np.int64]) -> tuple[int, int, int]:
    cap_at = struct.Struct(">I" if big else "<I").unpack_from
    end = len(buf)
    room = starts.shape[0]
    n = 0
    pos = max(pos, 0)
    out: list[int] = []
    append = out.append
    status = 0
    while pos + rec_len <= end:
        if n == room:
            status = 2
            break
        cap = cap_at(buf, pos + 8)[0]
        if cap > max_cap:
            status = 1
            break
        nxt = pos + rec_len + cap
        if nxt > end:
            break
        append(pos)
        n += 1
        pos = nxt
    starts[:n] = out
    return n, pos, status


def py_walk_epb(buf: bytes, pos: int, big: bool, n_ifaces: int,
                starts: npt.NDArray[np.int64], caps: npt.NDArray[np.int64],
                origs: npt.NDArray[np.int64], ifids: npt.NDArray[np.int32],
                units: npt.NDArray[np.uint64]) -> tuple[int, int, int]:
    order = ">" if big else "<"
    head = struct.Struct(order + "II").unpack_from
    body = struct.Struct(order + "5I").unpack_from
    u32 = struct.Struct(order + "I").unpack_from
    end = len(buf)
    room = min(a.shape[0] for a in (starts, caps, origs, ifids, units))
    n = 0
    pos = max(pos, 0)
    status = 0
    while pos + 12 <= end:
        if n == room:
            status = 2
            break
        btype, blen = head(buf, pos)
        if btype != EPB or blen < 32 or blen % 4 or blen > MAX_BLOCK_BYTES:
            status = 3
            break
        if pos + blen > end:
            break
        if u32(buf, pos + blen - 4)[0] != blen:
            status = 3
            break
        ifid, hi, lo, cap, orig = body(buf, pos + 8)
        if cap > blen - 32 or ifid >= n_ifaces:
            status = 3
            break
        starts[n] = pos + 28
        caps[n] = cap
        origs[n] = orig
        ifids[n] = ifid
        units[n] = (hi << 32) | lo
        n += 1
        pos += blen
    return n, pos, status


try:
    from ._walk import walk_epb, walk_pcap

    IMPLEMENTATION = "c"
except ImportError:  # pragma: no cover - exercised where no compiler was available
    walk_pcap = py_walk_pcap
    walk_epb = py_walk_epb
    IMPLEMENTATION = "python"
