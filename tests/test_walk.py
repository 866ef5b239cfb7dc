"""The C record walker and its Python fallback find the same records, on good and bad bytes."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsift import walk

pytestmark = pytest.mark.skipif(walk.IMPLEMENTATION != "c", reason="C walker not built")


def _pcap_records(lengths: list[int], big: bool) -> bytes:
    order = ">" if big else "<"
    return b"".join(struct.pack(order + "4I", 1, 2, n, n + 3) + bytes(n) for n in lengths)


def _both_pcap(buf: bytes, pos: int, rec_len: int, big: bool, max_cap: int, room: int
               ) -> tuple[tuple[int, int, int], list[int]]:
    results = []
    for fn in (walk.walk_pcap, walk.py_walk_pcap):
        starts = np.full(room, -7, dtype=np.int64)
        n, end, status = fn(buf, pos, rec_len, big, max_cap, starts)
        results.append(((n, end, status), starts[:n].tolist()))
    assert results[0] == results[1]
    return results[0]


@given(st.lists(st.integers(0, 300), max_size=40), st.booleans(), st.integers(0, 50))
@settings(max_examples=200, deadline=None)
def test_pcap_walk_agrees_on_valid_records(lengths: list[int], big: bool, cut: int) -> None:
    buf = _pcap_records(lengths, big)
    buf = buf[: max(len(buf) - cut, 0)]
    (_n, end, status), starts = _both_pcap(buf, 0, 16, big, 262_144, 1000)
    assert status == 0
    expect, pos = [], 0
    for length in lengths:
        if pos + 16 + length > len(buf):
            break
        expect.append(pos)
        pos += 16 + length
    assert starts == expect and end == pos


@given(st.binary(max_size=600), st.sampled_from([16, 24]), st.booleans(), st.integers(0, 5))
@settings(max_examples=300, deadline=None)
def test_pcap_walk_agrees_on_garbage(data: bytes, rec_len: int, big: bool, room: int) -> None:
    _both_pcap(data, 0, rec_len, big, 200, room)


def test_pcap_walk_reports_impossible_length_and_full_output() -> None:
    buf = _pcap_records([10, 20], False) + struct.pack("<4I", 0, 0, 10**6, 10**6)
    (n, end, status), _ = _both_pcap(buf, 0, 16, False, 262_144, 100)
    assert (n, status) == (2, 1) and end == 16 * 2 + 30
    (n, end, status), _ = _both_pcap(buf, 0, 16, False, 262_144, 1)
    assert (n, end, status) == (1, 26, 2)


def _epb(ifid: int, cap: int, orig: int, big: bool, ts: int = 5) -> bytes:
    order = ">" if big else "<"
    pad = (-cap) % 4
    blen = 32 + cap + pad
    return (struct.pack(order + "7I", 6, blen, ifid, ts >> 32, ts & 0xFFFFFFFF, cap, orig)
            + bytes(cap + pad) + struct.pack(order + "I", blen))


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 90)), max_size=20), st.booleans(),
       st.binary(max_size=40), st.integers(0, 60))
@settings(max_examples=200, deadline=None)
def test_epb_walk_agrees(blocks: list[tuple[int, int]], big: bool, tail: bytes, cut: int) -> None:
    buf = b"".join(_epb(i, c, c + 1, big, ts=(i << 40) + c) for i, c in blocks) + tail
    buf = buf[: max(len(buf) - cut, 0)]
    results = []
    for fn in (walk.walk_epb, walk.py_walk_epb):
        arrays = (np.zeros(64, np.int64), np.zeros(64, np.int64), np.zeros(64, np.int64),
                  np.zeros(64, np.int32), np.zeros(64, np.uint64))
        n, end, status = fn(buf, 0, big, 2, *arrays)
        results.append(((n, end, status), [a[:n].tolist() for a in arrays]))
    assert results[0] == results[1]
