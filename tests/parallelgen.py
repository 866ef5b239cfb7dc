"""Captures made from corpus captures for the split-run tests (tests/test_parallel.py).

Everything here works on classic little-endian microsecond pcap files with
Ethernet link type, record by record (no re-encoding of packets): the bytes of
each packet stay the corpus' own.
"""

from __future__ import annotations

import struct
from pathlib import Path

_LE_US = b"\xd4\xc3\xb2\xa1"
_REC = struct.Struct("<IIII")


def _header(path: Path) -> bytes:
    head = path.read_bytes()[:24]
    if head[:4] != _LE_US:
        raise ValueError(f"{path}: not a little-endian microsecond pcap")
    (network,) = struct.unpack_from("<I", head, 20)
    if network & 0xFFFF != 1:
        raise ValueError(f"{path}: link type {network} is not Ethernet")
    return head


def records(path: Path) -> list[bytes]:
    """The records (16-byte header and data) of a classic pcap, in file order."""
    _header(path)
    data = path.read_bytes()
    out = []
    pos = 24
    while pos + 16 <= len(data):
        _s, _us, incl, _orig = _REC.unpack_from(data, pos)
        end = pos + 16 + incl
        if end > len(data):
            break
        out.append(data[pos:end])
        pos = end
    return out


def _file_header(snaplen: int = 262_144) -> bytes:
    return _LE_US + struct.pack("<HHiIII", 2, 4, 0, 0, snaplen, 1)


def concat(paths: list[Path], out: Path, copies: int = 1) -> Path:
    """The records of ``paths`` one after the other (``copies`` times over), in one pcap.

    Each input's timestamps restart where it begins, so the result also has
    timestamps that go back in time at every junction."""
    bodies = []
    for p in paths:
        _header(p)
        bodies.append(p.read_bytes()[24:])
    with out.open("wb") as f:
        f.write(_file_header())
        for _ in range(copies):
            for body in bodies:
                f.write(body)
    return out


def reorder_and_duplicate(src: Path, out: Path, swap_every: int = 5, dup_every: int = 7) -> Path:
    """``src`` with every ``swap_every``-th pair of neighbouring records swapped (timestamps
    that go back) and every ``dup_every``-th record written twice (byte-for-byte duplicates)."""
    recs = records(src)
    for i in range(0, len(recs) - 1, swap_every):
        recs[i], recs[i + 1] = recs[i + 1], recs[i]
    with out.open("wb") as f:
        f.write(_file_header())
        for i, r in enumerate(recs):
            f.write(r)
            if i % dup_every == 0:
                f.write(r)
    return out


def cut_in_the_middle(src: Path, out: Path) -> Path:
    """The first half of ``src``'s bytes, ending inside a record (a damaged copy)."""
    data = src.read_bytes()
    half = len(data) // 2
    # make sure the cut falls inside a record, not on a record boundary
    starts = set()
    pos = 24
    while pos + 16 <= len(data):
        incl = _REC.unpack_from(data, pos)[2]
        starts.add(pos)
        pos += 16 + incl
    while half in starts:
        half += 1
    out.write_bytes(data[:half])
    return out
