"""Tests for the streaming capture readers (``netsift.capture``).

Synthetic files are written byte by byte with ``tests/pcapgen.py`` so every
field is under the test's control; the shared corpus then checks the readers
against the pcapng conformance files and against Wireshark's capinfos counts.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import re
import struct
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcapgen as g
from conftest import find_corpus
from netsift import capture
from netsift.capture import (
    MAX_BLOCK_BYTES,
    MAX_RECORD_BYTES,
    CaptureReader,
    RecordBatch,
    sniff_format,
)
from netsift.errors import (
    InputNotFoundError,
    InputUnreadableError,
    NetsiftError,
    NotACaptureError,
)

# Payloads of awkward sizes: empty, 1 byte, not a multiple of 4, a full frame.
PAYLOADS = [b"", b"\x01", bytes(range(60)), bytes(range(256)) * 2 + b"xyz", bytes(1514)]


# -- helpers -------------------------------------------------------------------


@dataclass
class Pkt:
    caplen: int
    wirelen: int
    ts_ns: int
    link_type: int
    iface: int
    data: bytes


@dataclass
class Read:
    reader: CaptureReader
    packets: list[Pkt]
    batches: int

    @property
    def codes(self) -> list[str]:
        return [w.code for w in self.reader.warnings]


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def read(path: str, chunk_bytes: int | None = None) -> Read:
    """Read a whole file, checking the batch invariants every consumer relies on."""
    kwargs = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    packets: list[Pkt] = []
    nbatches = 0
    with CaptureReader(path, **kwargs) as reader:
        for batch in reader.batches():
            nbatches += 1
            n = len(batch)
            assert n > 0
            assert batch.first_frame == len(packets) + 1
            columns = (batch.off, batch.caplen, batch.wirelen, batch.ts_ns, batch.link_type)
            for arr in (*columns, batch.iface):
                assert arr.shape == (n,)
            assert batch.off.dtype == np.int64 and batch.ts_ns.dtype == np.int64
            assert batch.link_type.dtype == np.int32 and batch.iface.dtype == np.int32
            assert (batch.caplen >= 0).all() and (batch.ts_ns >= 0).all()
            assert (batch.off + batch.caplen <= batch.buf.shape[0]).all()
            for i in range(n):
                packets.append(
                    Pkt(
                        int(batch.caplen[i]),
                        int(batch.wirelen[i]),
                        int(batch.ts_ns[i]),
                        int(batch.link_type[i]),
                        int(batch.iface[i]),
                        batch.packet_bytes(i),
                    )
                )
    assert reader.records == len(packets)
    assert {w.code for w in reader.warnings} <= capture.WARNING_CODES
    assert set(reader.skipped) <= capture.SKIP_REASONS
    assert all("\n" not in w.message for w in reader.warnings)
    assert reader.truncated == any(w.code != "no_section_header" for w in reader.warnings), (
        "truncated must be set exactly when the file ended on damage"
    )
    return Read(reader, packets, nbatches)


def assert_same_packets(a: Read, b: Read) -> None:
    assert a.packets == b.packets
    assert a.codes == b.codes
    assert a.reader.skipped == b.reader.skipped
    assert a.reader.truncated == b.reader.truncated


# -- classic pcap ------------------------------------------------------------------

PCAP_FLAVOURS = {
    "us": (g.PCAP_MAGIC_US, 1_000, False),
    "ns": (g.PCAP_MAGIC_NS, 1, False),
    "modified": (g.PCAP_MAGIC_MODIFIED, 1_000, True),
}


def make_pcap(
    flavour: str, endian: str, *, linktype: int = 1, snaplen: int = 65535
) -> tuple[bytes, list[Pkt]]:
    """A pcap file with PAYLOADS (one cut by a small 'snaplen') and the expected packets."""
    magic, mult, modified = PCAP_FLAVOURS[flavour]
    raw = g.pcap_header(magic=magic, endian=endian, snaplen=snaplen, linktype=linktype)
    expected = []
    for i, data in enumerate(PAYLOADS):
        sec = 1_700_000_000 + i
        frac = (999_999 if mult == 1_000 else 999_999_999) - i
        wire = len(data) + (100 if i == 3 else 0)  # one record shorter than on the wire
        raw += g.pcap_record(
            data, ts_sec=sec, ts_frac=frac, wirelen=wire, endian=endian, modified=modified
        )
        expected.append(Pkt(len(data), wire, sec * 10**9 + frac * mult, linktype & 0xFFFF, 0, data))
    return raw, expected


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("endian", ["<", ">"], ids=["le", "be"])
@pytest.mark.parametrize("flavour", sorted(PCAP_FLAVOURS))
def test_pcap_flavours(tmp_path: Path, flavour: str, endian: str, compressed: bool) -> None:
    raw, expected = make_pcap(flavour, endian, linktype=113)
    path = write(tmp_path, "x.pcap", g.gzipped(raw) if compressed else raw)

    assert sniff_format(path) == ("pcap", "gzip" if compressed else None)
    result = read(path)
    assert result.packets == expected
    assert result.codes == [] and not result.reader.truncated and result.reader.skipped == {}

    info = result.reader.info
    assert info.format == "pcap"
    assert info.compression == ("gzip" if compressed else None)
    assert info.byte_order == ("little" if endian == "<" else "big")
    assert info.ts_precision == ("ns" if flavour == "ns" else "us")
    assert info.version == "2.4"
    assert info.sections == 1
    assert [(i.link_type, i.snaplen) for i in info.interfaces] == [(113, 65535)]
    assert info.file_bytes == os.path.getsize(path)

    # Records straddling every chunk boundary: nothing lost, nothing duplicated.
    small = read(path, chunk_bytes=64)
    assert_same_packets(small, result)
    assert small.batches > result.batches
    assert_same_packets(read(path, chunk_bytes=1), result)


def test_pcap_link_type_ignores_fcs_bits(tmp_path: Path) -> None:
    # LinkType field: bits 28-31 FCS length, bit 26 "F" flag; the link type is the low 16 bits.
    raw, _ = make_pcap("us", "<", linktype=0x6400_0001)
    result = read(write(tmp_path, "fcs.pcap", raw))
    assert {p.link_type for p in result.packets} == {1}
    assert result.reader.info.interfaces[0].link_type == 1


def test_pcap_header_only_and_zero_length_records(tmp_path: Path) -> None:
    assert read(write(tmp_path, "empty.pcap", g.pcap_header())).packets == []
    raw = g.pcap_header() + g.pcap_record(b"", wirelen=0) + g.pcap_record(b"", wirelen=60)
    result = read(write(tmp_path, "zero.pcap", raw))
    assert [(p.caplen, p.wirelen, p.data) for p in result.packets] == [(0, 0, b""), (0, 60, b"")]
    assert result.codes == []


def test_pcap_large_record_allowed_by_snaplen(tmp_path: Path) -> None:
    # USB/D-Bus captures legitimately exceed 256 KiB when their snaplen says so.
    big = bytes(MAX_RECORD_BYTES + 1000)
    raw = g.pcap_header(snaplen=1 << 20, linktype=220) + g.pcap_record(big) + g.pcap_record(b"x")
    result = read(write(tmp_path, "big.pcap", raw), chunk_bytes=4096)
    assert [p.caplen for p in result.packets] == [len(big), 1]
    assert result.packets[0].data == big and result.codes == []


def test_pcap_timestamps_keep_full_range(tmp_path: Path) -> None:
    # ts_sec is unsigned 32-bit: 2106 is representable in int64 ns.
    raw = g.pcap_header(magic=g.PCAP_MAGIC_NS) + g.pcap_record(
        b"x", ts_sec=0xFFFF_FFFF, ts_frac=999_999_999
    )
    (pkt,) = read(write(tmp_path, "late.pcap", raw)).packets
    assert pkt.ts_ns == 0xFFFF_FFFF * 10**9 + 999_999_999


# -- pcapng ----------------------------------------------------------------------


def test_pcapng_sections_with_different_byte_orders(tmp_path: Path) -> None:
    raw = (
        g.shb("<")
        + g.idb(1, 0, "<")
        + g.epb(b"le-0", ifid=0, ts=1_000_000, endian="<")
        + g.shb(">")
        + g.idb(101, 0, ">")
        + g.idb(1, 0, ">")
        + g.epb(b"be-1", ifid=1, ts=2_000_000, endian=">")
        + g.epb(b"be-0", ifid=0, ts=3_000_000, wirelen=40, endian=">")
        + g.shb("<")
        + g.idb(113, 0, "<", tsresol=9)
        + g.epb(b"le-again", ifid=0, ts=4, endian="<")
    )
    path = write(tmp_path, "sections.pcapng", raw)
    for chunk in (None, 64, 13):
        result = read(path, chunk_bytes=chunk)
        # interface ids restart in every section; the global index does not
        assert [(p.iface, p.link_type, p.ts_ns, p.data, p.wirelen) for p in result.packets] == [
            (0, 1, 1_000_000_000, b"le-0", 4),
            (2, 1, 2_000_000_000, b"be-1", 4),
            (1, 101, 3_000_000_000, b"be-0", 40),
            (3, 113, 4, b"le-again", 8),
        ]
        info = result.reader.info
        assert info.sections == 3
        assert info.byte_order == "little" and info.version == "1.0"
        assert [i.link_type for i in info.interfaces] == [1, 101, 1, 113]
        assert result.codes == []


def test_pcapng_big_endian_file_and_gzip(tmp_path: Path) -> None:
    raw = g.shb(">") + g.idb(1, 96, ">", name="eth0") + g.epb(b"abc", ts=7, endian=">")
    for name, data in (("be.pcapng", raw), ("be.pcapng.gz", g.gzipped(raw))):
        path = write(tmp_path, name, data)
        result = read(path)
        assert [(p.data, p.ts_ns) for p in result.packets] == [(b"abc", 7_000)]
        info = result.reader.info
        assert info.format == "pcapng" and info.byte_order == "big"
        assert info.interfaces[0].name == "eth0" and info.interfaces[0].snaplen == 96
        assert_same_packets(read(path, chunk_bytes=64), result)


def test_pcapng_interfaces_with_different_link_types(tmp_path: Path) -> None:
    links = [1, 101, 113, 127, 228]
    raw = g.shb() + b"".join(g.idb(lt) for lt in links)
    order = [4, 0, 2, 2, 1, 3, 0]
    raw += b"".join(g.epb(bytes([i]) * (i + 1), ifid=i, ts=k) for k, i in enumerate(order))
    result = read(write(tmp_path, "ifaces.pcapng", raw))
    assert [p.iface for p in result.packets] == order
    assert [p.link_type for p in result.packets] == [links[i] for i in order]
    assert [p.data for p in result.packets] == [bytes([i]) * (i + 1) for i in order]
    assert [p.ts_ns for p in result.packets] == [k * 1000 for k in range(len(order))]


# (if_tsresol byte, units, expected ns) -- expectations worked out by hand
TSRESOL_CASES = [
    (None, 1_700_000_000_123_456, 1_700_000_000_123_456_000),  # default 10^-6
    (6, 1_700_000_000_123_456, 1_700_000_000_123_456_000),
    (9, 1_700_000_000_123_456_789, 1_700_000_000_123_456_789),
    (3, 1_700_000_000_123, 1_700_000_000_123_000_000),
    (0, 1_700_000_000, 1_700_000_000_000_000_000),
    (12, 1_700_000_123_456_789_012, 1_700_000_123_456_789),  # ps: floored
    (0x80 | 20, 1_700_000_000 * 2**20 + 2**19, 1_700_000_000_500_000_000),  # 2^-20
    (0x80 | 20, 3 * 2**20 + 1, 3_000_000_000 + 953),  # 1e9 / 2^20 = 953.67 -> floor
    (0x80 | 0, 42, 42_000_000_000),  # 2^0: whole seconds
    (0x80 | 32, 2**32 * 5 + 2**31, 5_500_000_000),
    (0x80 | 40, 2**40 * 7 + 2**39, 7_500_000_000),  # beyond the vectorised range
    (19, 15 * 10**18 + 10**10, 1_500_000_001),  # units beyond int64
    (30, 2**64 - 1, 0),  # 10^-30 s: the largest timestamp is 18 ps
]


@pytest.mark.parametrize(("tsresol", "units", "expected"), TSRESOL_CASES)
def test_pcapng_if_tsresol(tmp_path: Path, tsresol: int | None, units: int, expected: int) -> None:
    raw = g.shb() + g.idb(1, tsresol=tsresol) + g.epb(b"x", ts=units)
    result = read(write(tmp_path, "res.pcapng", raw))
    assert [p.ts_ns for p in result.packets] == [expected]
    if tsresol is None:
        assert result.reader.info.interfaces[0].tsresol == (10, 6)
    elif tsresol & 0x80:
        assert result.reader.info.interfaces[0].tsresol == (2, tsresol & 0x7F)
    else:
        assert result.reader.info.interfaces[0].tsresol == (10, tsresol)


def test_pcapng_binary_resolution_is_exact_at_scale(tmp_path: Path) -> None:
    # float64 arithmetic would be off by ~100 ns here; the reader must be exact.
    units = [1_700_000_000 * 2**20 + k * 123_457 for k in range(500)]
    raw = g.shb() + g.idb(1, tsresol=0x80 | 20) + b"".join(g.epb(b"x", ts=u) for u in units)
    result = read(write(tmp_path, "bin.pcapng", raw))
    assert [p.ts_ns for p in result.packets] == [u * 10**9 // 2**20 for u in units]


@pytest.mark.parametrize(
    ("tsoffset", "units", "expected"),
    [
        (1_000, 5, 1_000_000_005_000),
        (-5, 10_000_000, 5_000_000_000),
        (-5, 1_000_000, 0),  # before the epoch: clamped to 0
        (1 << 40, 5, 2**63 - 1),  # beyond int64 ns: clamped
        (-(1 << 62), 2**62, 0),
    ],
)
def test_pcapng_if_tsoffset(tmp_path: Path, tsoffset: int, units: int, expected: int) -> None:
    raw = g.shb() + g.idb(1, tsoffset=tsoffset) + g.epb(b"x", ts=units)
    (pkt,) = read(write(tmp_path, "off.pcapng", raw)).packets
    assert pkt.ts_ns == expected


def test_pcapng_timestamp_overflow_saturates(tmp_path: Path) -> None:
    raw = (
        g.shb()
        + g.idb(1, tsresol=0)  # seconds: 2^62 s overflows int64 ns
        + g.idb(1, tsresol=9)
        + g.epb(b"a", ifid=0, ts=2**62)
        + g.epb(b"b", ifid=0, ts=3)
        + g.epb(b"c", ifid=1, ts=2**64 - 1)  # unsigned 64-bit maximum
    )
    result = read(write(tmp_path, "sat.pcapng", raw))
    assert [p.ts_ns for p in result.packets] == [2**63 - 1, 3 * 10**9, 2**63 - 1]


def test_pcapng_packet_block_types(tmp_path: Path) -> None:
    raw = (
        g.shb()
        + g.idb(1, snaplen=64, tsoffset=100)
        + g.idb(105)
        + g.epb(bytes(range(10)), ifid=1, ts=1, wirelen=300, opts=[(1, b"comment")])
        # SPB: captured length = min(original length, snaplen, room in the block)
        + g.spb(bytes(40), wirelen=40)  # whole packet
        + g.spb(bytes(64), wirelen=100)  # cut to the interface snaplen
        + g.spb(b"abcdefgh", wirelen=30)  # block holds less than snaplen and original
        + g.spb(b"0123456789", wirelen=10)  # padding is not packet data
        # obsolete Packet Block (type 2)
        + g.pb(b"old-style", ifid=1, drops=3, ts=2_000_000, wirelen=99)
    )
    result = read(write(tmp_path, "types.pcapng", raw))
    got = [(p.iface, p.link_type, p.caplen, p.wirelen, p.ts_ns, p.data) for p in result.packets]
    assert got == [
        (1, 105, 10, 300, 1_000, bytes(range(10))),
        # SPBs belong to the section's first interface and carry no timestamp: 0
        (0, 1, 40, 40, 0, bytes(40)),
        (0, 1, 64, 100, 0, bytes(64)),
        (0, 1, 8, 30, 0, b"abcdefgh"),
        (0, 1, 10, 10, 0, b"0123456789"),
        (1, 105, 9, 99, 2_000_000_000, b"old-style"),
    ]
    assert result.codes == [] and result.reader.skipped == {}


def test_pcapng_spb_uses_first_interface_of_its_section(tmp_path: Path) -> None:
    raw = (
        g.shb()
        + g.idb(1)
        + g.idb(101)
        + g.spb(b"one")
        + g.shb(">")
        + g.idb(113, endian=">")
        + g.idb(1, endian=">")
        + g.spb(b"two", endian=">")
    )
    result = read(write(tmp_path, "spb.pcapng", raw))
    assert [(p.iface, p.link_type, p.data) for p in result.packets] == [
        (0, 1, b"one"),
        (2, 113, b"two"),
    ]


def test_pcapng_non_packet_blocks_are_skipped(tmp_path: Path) -> None:
    raw = (
        g.shb(opts=[(2, b"x86_64"), (3, b"Linux"), (4, b"pcapgen")])
        + g.custom(copy=True)
        + g.nrb([(1, bytes([10, 0, 0, 1]) + b"host.example\x00"), (2, bytes(16) + b"v6\x00")])
        + g.idb(1)
        + g.dsb(b"CLIENT_RANDOM 00 11\n")
        + g.epb(b"first", ts=1)
        + g.block(0x0000_0BAD, b"\x00\x00\x7e\xd9" + b"custom copyable")
        + g.custom(copy=False, payload=b"do not copy")
        + g.block(0x1234_5678, b"unknown block type")
        + g.block(0x8000_0001, b"local use")
        + g.block(0x0000_0007, b"")  # reserved (was the IRIG Timestamp Block), empty
        + g.isb(0, ts=5, ifrecv=10, ifdrop=1, osdrop=2)
        + g.epb(b"second", ts=2)
    )
    path = write(tmp_path, "skip.pcapng", raw)
    result = read(path)
    assert [p.data for p in result.packets] == [b"first", b"second"]
    assert result.codes == [] and result.reader.skipped == {}
    assert_same_packets(read(path, chunk_bytes=64), result)


def test_pcapng_isb_counters_land_on_interfaces(tmp_path: Path) -> None:
    raw = (
        g.shb()
        + g.idb(1)
        + g.idb(1)
        + g.idb(1)
        + g.isb(0, ifrecv=100, ifdrop=5, osdrop=7)
        + g.isb(1, ifdrop=3, extra=[(2, bytes(8)), (1, b"isb comment"), (6, struct.pack("<Q", 9))])
        + g.isb(0, ifrecv=200, ifdrop=6, osdrop=8)  # a later ISB replaces the counters
        + g.isb(9, ifrecv=1)  # unknown interface: ignored
        + g.isb(2)  # no options
        + g.shb(">")
        + g.idb(1, endian=">")
        + g.isb(0, ifrecv=2**40, ifdrop=0, osdrop=1, endian=">")
    )
    result = read(write(tmp_path, "isb.pcapng", raw))
    counters = [
        (i.received, i.dropped_by_interface, i.dropped_by_os) for i in result.reader.info.interfaces
    ]
    assert counters == [(200, 6, 8), (None, 3, None), (None, None, None), (2**40, 0, 1)]
    assert result.packets == [] and result.codes == []


def test_pcapng_records_skipped_with_a_reason(tmp_path: Path) -> None:
    raw = (
        g.shb()
        + g.spb(b"no interface yet")
        + g.idb(1)
        + g.epb(b"ok-1", ifid=0)
        + g.epb(b"ghost", ifid=1)  # unknown interface
        + g.epb(b"ghost", ifid=2**32 - 1)
        + g.pb(b"ghost", ifid=5)
        + g.epb(b"tiny", caplen=400)  # captured length beyond the block
        + g.epb(b"ok-2", ifid=0)
    )
    result = read(write(tmp_path, "skipped.pcapng", raw))
    assert [p.data for p in result.packets] == [b"ok-1", b"ok-2"]
    assert result.reader.skipped == {"unknown_interface": 4, "epb_caplen_exceeds_block": 1}
    assert result.codes == [] and not result.reader.truncated


def test_pcapng_option_overrunning_its_block_is_ignored(tmp_path: Path) -> None:
    # An if_tsresol option whose length runs past the IDB: not read from the next block.
    body = struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 9, 200) + b"\x09\x00\x00\x00"
    raw = g.shb() + g.block(g.BT_IDB, body) + g.epb(b"x", ts=5) + g.nrb([(1, bytes(300))])
    result = read(write(tmp_path, "opt.pcapng", raw))
    assert result.reader.info.interfaces[0].tsresol == (10, 6)
    assert [p.ts_ns for p in result.packets] == [5_000]


def test_pcapng_chunk_boundaries(tmp_path: Path) -> None:
    raw = g.shb() + g.idb(1) + g.idb(113, tsresol=9)
    for k, data in enumerate(PAYLOADS * 3):
        raw += g.epb(data, ifid=k % 2, ts=k) if k % 3 else g.spb(data)
        if k % 4 == 0:
            raw += g.nrb([(1, b"\x7f\x00\x00\x01localhost\x00")])
    path = write(tmp_path, "chunks.pcapng", raw)
    whole = read(path)
    assert [p.data for p in whole.packets] == PAYLOADS * 3
    for chunk in (1, 7, 64, 1000):
        assert_same_packets(read(path, chunk_bytes=chunk), whole)


# -- damage inside a file: warnings, never exceptions ----------------------------------


def three_records(endian: str = "<") -> bytes:
    return g.pcap_header(endian=endian) + b"".join(
        g.pcap_record(bytes([i]) * 50, ts_sec=i, endian=endian) for i in range(3)
    )


@pytest.mark.parametrize("cut", [1, 8, 16, 17, 65])
@pytest.mark.parametrize("chunk", [None, 64])
def test_pcap_cut_mid_record(tmp_path: Path, cut: int, chunk: int | None) -> None:
    good = three_records()
    last = 24 + 2 * 66
    raw = good[: last + cut]  # the third record is cut `cut` bytes in
    result = read(write(tmp_path, "cut.pcap", raw), chunk_bytes=chunk)
    assert [p.data for p in result.packets] == [bytes([0]) * 50, bytes([1]) * 50]
    assert result.codes == ["cut_short"] and result.reader.truncated
    assert result.reader.warnings[0].offset == last


def test_pcap_cut_file_header(tmp_path: Path) -> None:
    result = read(write(tmp_path, "hdr.pcap", g.pcap_header()[:10]))
    assert result.packets == [] and result.codes == ["short_file_header"]


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcap_impossible_record_length(tmp_path: Path, endian: str) -> None:
    raw = (
        three_records(endian)
        + g.pcap_record(b"x" * 10, caplen=MAX_RECORD_BYTES + 1, endian=endian)
        + g.pcap_record(b"never read", endian=endian)
    )
    for chunk in (None, 64):
        result = read(write(tmp_path, "long.pcap", raw), chunk_bytes=chunk)
        assert len(result.packets) == 3
        assert result.codes == ["impossible_record_length"] and result.reader.truncated
        assert result.reader.warnings[0].offset == 24 + 3 * 66
        assert str(MAX_RECORD_BYTES + 1) in result.reader.warnings[0].message


def test_pcap_huge_snaplen_does_not_make_the_reader_buffer_the_file(tmp_path: Path) -> None:
    # snaplen 0xFFFFFFFF must not turn a damaged 2 GiB length into "read to the end".
    raw = (
        g.pcap_header(snaplen=0xFFFF_FFFF)
        + g.pcap_record(b"ok")
        + g.pcap_record(b"", caplen=0x7FFF_FFFF)
        + bytes(10_000)
    )
    result = read(write(tmp_path, "snap.pcap", raw), chunk_bytes=1024)
    assert [p.data for p in result.packets] == [b"ok"]
    assert result.codes == ["impossible_record_length"]
    assert str(MAX_BLOCK_BYTES) in result.reader.warnings[0].message


def pcapng_two_packets() -> bytes:
    return g.shb() + g.idb(1) + g.epb(b"one", ts=1) + g.epb(b"two", ts=2)


@pytest.mark.parametrize(
    ("tail", "code"),
    [
        (struct.pack("<II", g.BT_EPB, 33) + bytes(25), "impossible_block_length"),  # not /4
        (struct.pack("<II", 0x99, 8) + bytes(8), "impossible_block_length"),  # < 12
        (struct.pack("<II", g.BT_EPB, MAX_BLOCK_BYTES + 4) + bytes(8), "impossible_block_length"),
        (g.block(g.BT_EPB, bytes(20), trailer=36), "block_length_mismatch"),
        (g.block(g.BT_NRB, b"abcd", trailer=0), "block_length_mismatch"),
        (g.block(g.BT_EPB, bytes(16)), "impossible_block_length"),  # EPB shorter than 32
        (g.block(g.BT_SPB, b""), "impossible_block_length"),  # SPB shorter than 16
        (g.block(g.BT_PB, bytes(8)), "impossible_block_length"),
        (g.block(g.BT_IDB, b"\x01\x00"), "impossible_block_length"),  # IDB shorter than 20
        (g.block(g.BT_SHB, struct.pack("<I", 0x1A2B3C4D)), "impossible_block_length"),
        (g.block(g.BT_SHB, b"\x00\x01\x02\x03" + bytes(12)), "bad_byte_order_magic"),
    ],
    ids=[
        "not-multiple-of-4",
        "below-12",
        "above-cap",
        "epb-trailer",
        "nrb-trailer",
        "short-epb",
        "short-spb",
        "short-pb",
        "short-idb",
        "short-shb",
        "bad-bom",
    ],
)
def test_pcapng_damaged_block(tmp_path: Path, tail: bytes, code: str) -> None:
    raw = pcapng_two_packets() + tail + g.epb(b"after", ts=3)
    for chunk in (None, 64):
        result = read(write(tmp_path, "dmg.pcapng", raw), chunk_bytes=chunk)
        assert [p.data for p in result.packets] == [b"one", b"two"]
        assert result.codes == [code] and result.reader.truncated
        assert result.reader.warnings[0].offset == len(pcapng_two_packets())


@pytest.mark.parametrize("cut", [1, 4, 11, 12, 20, 35])
def test_pcapng_cut_mid_block(tmp_path: Path, cut: int) -> None:
    raw = pcapng_two_packets() + g.epb(b"three", ts=3)
    result = read(write(tmp_path, "cut.pcapng", raw[: len(pcapng_two_packets()) + cut]))
    assert [p.data for p in result.packets] == [b"one", b"two"]
    assert result.codes == ["cut_short"] and result.reader.truncated


def test_pcapng_magic_only(tmp_path: Path) -> None:
    result = read(write(tmp_path, "magic.pcapng", b"\x0a\x0d\x0d\x0a"))
    assert result.packets == [] and result.codes == ["cut_short"]


def test_gzip_stream_cut_keeps_earlier_records(tmp_path: Path) -> None:
    raw, expected = make_pcap("us", "<")
    noise = random.Random(0)  # incompressible, so half the stream is half the records
    raw += b"".join(g.pcap_record(noise.randbytes(1000), ts_sec=i) for i in range(200))
    gz = g.gzipped(raw)
    path = write(tmp_path, "cut.pcap.gz", gz[: len(gz) // 2])
    result = read(path)
    assert len(result.packets) > len(expected)  # the first half of the stream was decoded
    assert result.packets[: len(expected)] == expected
    assert "gzip_stream_damaged" in result.codes and result.reader.truncated
    assert set(result.codes) <= {"gzip_stream_damaged", "cut_short"}
    small = read(path, chunk_bytes=64)
    assert small.packets == result.packets


def test_gzip_stream_corrupt_midway(tmp_path: Path) -> None:
    noise = random.Random(1)
    raw = three_records() + b"".join(g.pcap_record(noise.randbytes(500)) for _ in range(400))
    gz = bytearray(g.gzipped(raw))
    middle = len(gz) // 2
    gz[middle : middle + 64] = bytes(64)
    result = read(write(tmp_path, "bad.pcap.gz", bytes(gz)))
    assert len(result.packets) >= 3
    assert result.codes[0] == "gzip_stream_damaged" and result.reader.truncated


def test_gzip_trailing_garbage_keeps_every_record(tmp_path: Path) -> None:
    raw = three_records()
    result = read(write(tmp_path, "tail.pcap.gz", g.gzipped(raw) + b"garbage!"))
    assert len(result.packets) == 3
    assert result.codes == ["gzip_stream_damaged"]


def test_gzip_multi_member_stream(tmp_path: Path) -> None:
    raw = three_records()
    result = read(write(tmp_path, "multi.pcap.gz", g.gzipped(raw[:50]) + g.gzipped(raw[50:])))
    assert len(result.packets) == 3 and result.codes == []


# -- files that are not captures, or cannot be read: typed, one-line errors --------------


def assert_error(exc: pytest.ExceptionInfo[NetsiftError], path: str, words: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert path in message
    assert words in message


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "too short"),
        (b"\xd4\xc3\xb2", "too short"),
        (b"Hello, this is a text file.\n" * 4, "not a pcap or pcapng"),
        (b"\x00" * 100, "not a pcap or pcapng"),
        (g.gzipped(b"just some text, compressed\n"), "not a pcap or pcapng"),
        (g.gzipped(b""), "too short"),
        (g.gzipped(b"\xd4\xc3"), "too short"),
        (b"\x1f\x8b\x08\x00" + bytes(6), "gzip stream is damaged"),  # header cut
        (b"\x1f\x8b\x08\x00" + bytes(6) + b"\xff" * 40, "gzip stream is damaged"),  # bad deflate
        (b"\x1f\x8b\x09\x00" + bytes(30), "gzip stream is damaged"),  # unknown method
        (b"\x1f\x8b", "gzip stream is damaged"),
    ],
    ids=[
        "empty",
        "3-bytes",
        "text",
        "zeros",
        "gzip-text",
        "gzip-empty",
        "gzip-short",
        "gzip-header-cut",
        "gzip-bad-deflate",
        "gzip-bad-method",
        "gzip-magic-only",
    ],
)
def test_not_a_capture(tmp_path: Path, content: bytes, words: str) -> None:
    path = write(tmp_path, "input.bin", content)
    with pytest.raises(NotACaptureError) as exc:
        sniff_format(path)
    assert_error(exc, path, words)
    with pytest.raises(NotACaptureError) as exc:
        CaptureReader(path)
    assert_error(exc, path, words)


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.pcap")
    with pytest.raises(InputNotFoundError) as exc:
        CaptureReader(path)
    assert_error(exc, path, "no such file")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputUnreadableError) as exc:
        CaptureReader(str(tmp_path))
    assert_error(exc, str(tmp_path), "is a directory")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root can read files without read permission",
)
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.pcap", three_records())
    os.chmod(path, 0)
    try:
        with pytest.raises(InputUnreadableError) as exc:
            CaptureReader(path)
        assert_error(exc, path, "permission denied")
    finally:
        os.chmod(path, 0o600)


def test_permission_error_is_mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs even as root: the error mapping itself, with open() refusing.
    path = write(tmp_path, "secret.pcap", three_records())

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(capture, "open", refuse, raising=False)
    with pytest.raises(InputUnreadableError) as exc:
        sniff_format(path)
    assert_error(exc, path, "permission denied")


def test_errors_carry_exit_codes() -> None:
    assert int(NotACaptureError.exit_code) == 5
    assert int(InputNotFoundError.exit_code) == 3
    assert int(InputUnreadableError.exit_code) == 4


def test_reader_requires_context_manager_and_sane_chunk(tmp_path: Path) -> None:
    path = write(tmp_path, "x.pcap", three_records())
    with pytest.raises(ValueError, match="chunk_bytes"):
        CaptureReader(path, chunk_bytes=0)
    with pytest.raises(RuntimeError, match="with"):
        list(CaptureReader(path).batches())


def test_file_index_is_carried(tmp_path: Path) -> None:
    path = write(tmp_path, "x.pcap", three_records())
    with CaptureReader(path, file_index=7) as reader:
        assert {b.file_index for b in reader.batches()} == {7}


# -- property: arbitrary bytes after a valid header never raise ---------------------

PCAP_HEADERS = [
    g.pcap_header(magic=m, endian=e, snaplen=s)
    for m in (g.PCAP_MAGIC_US, g.PCAP_MAGIC_NS, g.PCAP_MAGIC_MODIFIED)
    for e in ("<", ">")
    for s in (0, 65535, 0xFFFF_FFFF)
]
PCAPNG_HEADERS = [
    g.shb("<") + g.idb(1),
    g.shb(">") + g.idb(1, endian=">"),
    g.shb("<") + g.idb(1, tsresol=0x80 | 40, tsoffset=-(2**62)) + g.idb(113, 32, tsresol=127),
    g.shb("<"),
]


def exhaust(path: str, chunk: int, size: int) -> Read:
    """Read to the end; ``size`` is the uncompressed length of the capture."""
    result = read(path, chunk_bytes=chunk)
    # termination bound: every batch holds at least one record of 12+ bytes
    assert result.batches <= size // 12
    return result


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.sampled_from(PCAP_HEADERS + PCAPNG_HEADERS),
    tail=st.binary(max_size=600),
    chunk=st.sampled_from([1, 5, 64, 4096]),
    compress=st.booleans(),
)
def test_random_bytes_after_a_header_never_raise(
    tmp_path: Path, header: bytes, tail: bytes, chunk: int, compress: bool
) -> None:
    data = header + tail
    path = write(tmp_path, "fuzz.cap", g.gzipped(data) if compress else data)
    exhaust(path, chunk, len(data))


@st.composite
def random_block(draw: st.DrawFn) -> bytes:
    """A block with correct framing and arbitrary content: reaches the field parsers."""
    e = draw(st.sampled_from(["<", ">"]))
    kind = draw(st.sampled_from(["idb", "epb", "spb", "pb", "isb", "shb", "raw"]))
    u32 = st.integers(0, 2**32 - 1)
    if kind == "idb":
        opts = draw(
            st.lists(st.tuples(st.sampled_from([2, 9, 14, 99]), st.binary(max_size=12)), max_size=4)
        )
        return g.idb(draw(st.integers(0, 2**16 - 1)), draw(u32), e, opts=opts)
    if kind == "epb":
        return g.epb(
            draw(st.binary(max_size=40)),
            ifid=draw(st.integers(0, 3) | u32),
            ts=draw(st.integers(0, 2**64 - 1)),
            caplen=draw(st.none() | u32),
            wirelen=draw(st.none() | u32),
            endian=e,
        )
    if kind == "spb":
        return g.spb(draw(st.binary(max_size=40)), wirelen=draw(st.none() | u32), endian=e)
    if kind == "pb":
        return g.pb(
            draw(st.binary(max_size=40)),
            ifid=draw(st.integers(0, 3)),
            ts=draw(st.integers(0, 2**64 - 1)),
            endian=e,
        )
    if kind == "isb":
        opts = draw(st.lists(st.tuples(st.integers(1, 8), st.binary(max_size=10)), max_size=4))
        return g.isb(draw(st.integers(0, 3)), endian=e, extra=opts)
    if kind == "shb":
        return g.shb(e)
    return g.block(draw(u32), draw(st.binary(max_size=40)), e)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    blocks=st.lists(random_block(), max_size=12),
    chunk=st.sampled_from([3, 64, 8192]),
)
def test_random_pcapng_blocks_never_raise(tmp_path: Path, blocks: list[bytes], chunk: int) -> None:
    data = g.shb() + b"".join(blocks)
    path = write(tmp_path, "blocks.pcapng", data)
    result = exhaust(path, chunk, len(data))
    big = read(path)
    assert_same_packets(result, big)


# -- shared corpus: pcapng conformance files -------------------------------------------

CORPUS = find_corpus()
GENERATOR = "pcapng-test-generator"
_ABSENT = pytest.param(
    None, marks=pytest.mark.skip(reason="the shared corpus pcapng-test-generator files are absent")
)


def _generator_files() -> list[object]:
    if CORPUS is None or not (CORPUS / GENERATOR).is_dir():
        return [_ABSENT]
    files = sorted((CORPUS / GENERATOR).glob("output_*/*/test*.pcapng"))
    return [pytest.param(p, id=str(p.relative_to(CORPUS / GENERATOR))) for p in files] or [_ABSENT]


def parse_description(text: str) -> tuple[dict[str, int], list[str]]:
    """The 'Block counts' and 'Block sequence' of a pcapng-test-generator testNNN.txt."""
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^\t(\w+): (\d+)$", text, re.M)}
    seq_match = re.search(r"^Block sequence: (.*)$", text, re.M)
    assert seq_match is not None, "description without a block sequence"
    return counts, [s.strip() for s in seq_match[1].split(",")]


@pytest.mark.corpus
@pytest.mark.parametrize("path", _generator_files())
def test_pcapng_conformance_file(path: Path) -> None:
    counts, sequence = parse_description(path.with_suffix(".txt").read_text())
    assert sum(counts.values()) == len(sequence)
    expected_packets = sum(counts.get(k, 0) for k in ("EPB", "SPB", "PB"))

    result = read(str(path))
    assert len(result.packets) == expected_packets
    assert result.codes == [] and result.reader.skipped == {}
    info = result.reader.info
    assert info.sections == counts.get("SHB", 0)
    assert len(info.interfaces) == counts.get("IDB", 0)

    # SPBs belong to the first interface of their section, read off the sequence.
    idbs_before_section = 0
    idbs_seen = 0
    spb_ifaces = []
    for name in sequence:
        if name == "SHB":
            idbs_before_section = idbs_seen
        elif name == "IDB":
            idbs_seen += 1
        elif name == "SPB":
            spb_ifaces.append(idbs_before_section)
    packet_kinds = [n for n in sequence if n in ("EPB", "SPB", "PB")]
    got_spb = [
        p.iface for p, kind in zip(result.packets, packet_kinds, strict=True) if kind == "SPB"
    ]
    assert got_spb == spb_ifaces

    # Per packet, against an independent block-at-a-time reading of the same file.
    ref = g.walk_pcapng(path.read_bytes())
    assert ref.blocks == sequence
    assert [(p.iface, p.caplen, p.wirelen, p.ts_ns or 0, p.data) for p in ref.packets] == [
        (p.iface, p.caplen, p.wirelen, p.ts_ns, p.data) for p in result.packets
    ]
    assert [p.link_type for p in result.packets] == [
        ref.interfaces[p.iface].link_type for p in ref.packets
    ]
    assert [(i.link_type, i.snaplen, i.tsresol) for i in info.interfaces] == [
        (i.link_type, i.snaplen, i.tsresol) for i in ref.interfaces
    ]
    assert [(i.received, i.dropped_by_interface, i.dropped_by_os) for i in info.interfaces] == [
        (i.counters.get(4), i.counters.get(5), i.counters.get(7)) for i in ref.interfaces
    ]
    assert_same_packets(read(str(path), chunk_bytes=64), result)


# -- shared corpus: every capture against Wireshark's capinfos -----------------------------

#: Captures whose packet count differs from capinfos' on purpose:
#: path -> (our count or None for NotACaptureError, our warning codes, why).
KNOWN_COUNT_DIFFERENCES: dict[str, tuple[int | None, list[str], str]] = {
    "ndpi/tests/cfgs/default/pcap/fuzz-2021-10-13.pcap": (
        0,
        ["impossible_record_length"],
        "its only record claims 524,501 captured bytes in a 239-byte file (snaplen 0); we stop "
        "with impossible_record_length, capinfos counts the cut record",
    ),
    "pcapplusplus/Tests/ExamplesTest/pcap_examples/solaris.snoop": (
        None,
        [],
        "Sun snoop format: not supported, NotACaptureError",
    ),
    "pcapplusplus/Tests/Pcap++Test/PcapExamples/solaris.snoop": (
        None,
        [],
        "Sun snoop format: not supported, NotACaptureError",
    ),
}

#: Captures whose capinfos duration we do not reproduce: deliberately invalid timestamps.
KNOWN_DURATION_DIFFERENCES = {
    "tcpdump/tests/timestamp_invalid_micro.pcap": "µs field >= 10^6; Wireshark wraps it",
    "tcpdump/tests/timestamp_invalid_nano.pcap": "ns field >= 10^9; Wireshark wraps it",
    "tcpdump/tests/olsr-oobr-2.pcap": "ts_sec 4294934285 (>= 2^31): capinfos says -2749598990 s",
    "tcpdump/tests/bgp_vpn_rt-oobr.pcap": "fuzzed records; capinfos prints '-3116215213.-00058'",
    "tcpdump/tests/pim_header_asan-2.pcap": "ts_sec 2521431551 (>= 2^31): capinfos says 0 s",
    "tcpdump/tests/rx_serviceid_oobr.pcap": "µs field 3841916976 (>= 10^6); Wireshark wraps it",
    "pcapplusplus/Tests/Pcap++Test/PcapExamples/pcapng-example.pcapng": (
        "interface 1 stores negative 64-bit timestamps (0xffffffff_e1df....) and one EPB is "
        "in 2061; the spec says unsigned, Wireshark 4.0 computes something else"
    ),
}


def _capinfos_rows(corpus: Path) -> list[dict[str, str]]:
    table = corpus / "tshark-reference" / "scripts" / "capinfos.tsv"
    if not table.is_file():
        pytest.skip(f"{table} is absent")
    with table.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _tcpdump_frames(corpus: Path, rel: str) -> int | None:
    """Frame count from tcpdump's own expected output (``tcpdump -#``), if it exists."""
    out = (corpus / rel).with_suffix(".out")
    if not rel.startswith("tcpdump/") or not out.is_file():
        return None
    numbers = [int(m[1]) for m in re.finditer(r"^ {0,5}(\d+)  ", out.read_text("latin-1"), re.M)]
    return max(numbers, default=0)


@dataclass
class Summary:
    packets: int
    lo: int | None
    hi: int | None
    codes: list[str]
    skipped: dict[str, int]
    digest: str


def packet_data(batch: RecordBatch) -> bytes:
    """Every packet's bytes of a batch, concatenated, gathered in one vectorised step."""
    caplen = batch.caplen
    before = np.cumsum(caplen) - caplen  # where each packet starts in the output
    idx = np.repeat(batch.off - before, caplen) + np.arange(int(caplen.sum()))
    return batch.buf[idx].tobytes()


def summarise(path: str, chunk_bytes: int | None = None) -> Summary:
    kwargs = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    hashes = [hashlib.sha256() for _ in range(6)]
    n = 0
    lo: int | None = None
    hi: int | None = None
    with CaptureReader(path, **kwargs) as reader:
        for batch in reader.batches():
            n += len(batch)
            for h, arr in zip(
                hashes[:5],
                (batch.caplen, batch.wirelen, batch.ts_ns, batch.link_type, batch.iface),
                strict=True,
            ):
                h.update(arr.tobytes())
            hashes[5].update(packet_data(batch))
            bmin, bmax = int(batch.ts_ns.min()), int(batch.ts_ns.max())
            lo = bmin if lo is None else min(lo, bmin)
            hi = bmax if hi is None else max(hi, bmax)
    return Summary(
        n,
        lo,
        hi,
        [w.code for w in reader.warnings],
        dict(reader.skipped),
        "".join(h.hexdigest()[:16] for h in hashes),
    )


@pytest.mark.corpus
def test_corpus_matches_capinfos(corpus_dir: Path) -> None:
    rows = _capinfos_rows(corpus_dir)
    problems: list[str] = []
    checked = durations = 0
    for row in rows:
        rel = row["path"]
        path = corpus_dir / rel
        if not path.is_file():
            continue  # listed but not shipped in this copy of the corpus
        checked += 1
        known = KNOWN_COUNT_DIFFERENCES.get(rel)
        try:
            got = summarise(str(path))
        except NotACaptureError as exc:
            if known is None or known[0] is not None:
                problems.append(f"{rel}: {exc}")
            continue
        status = row["status"]
        if status.startswith("error"):
            # capinfos cannot read the link type: use tcpdump's frame numbers instead
            expected = _tcpdump_frames(corpus_dir, rel)
            if expected is None:
                problems.append(f"{rel}: no reference count ({status[:60]})")
                continue
        else:
            expected = int(row["packets"])
        if known is not None:
            if (got.packets, got.codes) != known[:2]:
                problems.append(f"{rel}: known difference changed: {got.packets} {got.codes}")
            continue
        if got.packets != expected:
            problems.append(f"{rel}: {got.packets} packets, reference {expected}")
        if status.startswith("warn") and "cut short" in status:
            if got.codes != ["cut_short"]:
                problems.append(f"{rel}: cut short for capinfos, our warnings {got.codes}")
        elif got.codes or got.skipped:
            problems.append(f"{rel}: unexpected warnings {got.codes} / skipped {got.skipped}")

        duration = row["duration_s"]
        if rel in KNOWN_DURATION_DIFFERENCES or not status.startswith("ok") or duration == "n/a":
            continue
        assert got.lo is not None and got.hi is not None
        digits = len(duration.split(".")[1]) if "." in duration else 0
        ours = Decimal(got.hi - got.lo) / 10**9
        if abs(ours - Decimal(duration)) > Decimal(1).scaleb(-digits):
            problems.append(f"{rel}: duration {ours} s, capinfos {duration} s")
        durations += 1

    assert checked > 0, "no capture listed in capinfos.tsv exists in the corpus"
    assert not problems, f"{len(problems)} of {checked} captures differ:\n" + "\n".join(problems)
    print(f"checked {checked} captures against capinfos, {durations} durations")


@pytest.mark.corpus
def test_corpus_chunk_size_does_not_change_results(corpus_dir: Path) -> None:
    """Every capture read in small odd-sized chunks gives exactly the records of one big read."""
    problems = []
    checked = 0
    for row in _capinfos_rows(corpus_dir):
        path = corpus_dir / row["path"]
        if not path.is_file():
            continue
        try:
            whole = summarise(str(path))
        except NotACaptureError:
            continue
        checked += 1
        small = summarise(str(path), chunk_bytes=16381)
        if small != whole:
            problems.append(row["path"])
    assert checked > 0
    assert not problems, "chunk size changed the records of: " + ", ".join(problems)
