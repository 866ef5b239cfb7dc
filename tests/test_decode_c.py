"""The C decoder (``netsift._decode``) must fill exactly the columns of the numpy decoder.

``decode_fast._decode_numpy`` is the specification; ``decode_fast._decode_c``
runs the same decoding as one C loop.  Inputs:

- the shared capture corpus, with the file selection of ``test_differential``
  (sampled by default; every file when ``CI=true`` or ``NETSIFT_FULL_CORPUS=1``);
- the Hypothesis packet strategies of ``test_differential`` (intact, cut by a
  snaplen, corrupted, lying wire lengths), mixed link types in one batch, and
  pure random bytes for every link type with random truncations.

Batches for generated records are built directly (records at odd offsets in
one buffer, gaps between them), so the C code is also checked not to read
outside a record.  Columns are compared with ``np.array_equal``, no tolerance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from netsift import decode_fast
from netsift.capture import CaptureReader, RecordBatch
from netsift.columns import LINK_TYPES, PacketColumns

try:
    from netsift import _decode
except ImportError:  # pragma: no cover - only where the extension could not be built
    pytest.skip("the C decoder netsift._decode is not built", allow_module_level=True)

from test_differential import FRAMES, GENERATED, corpus_dir, corpus_params, hostile

Record = tuple[int, bytes, int]  # (link type, captured bytes, wire length)


# --- comparison -------------------------------------------------------------------------
def mismatches(got: PacketColumns, want: PacketColumns, shown: int = 5) -> list[str]:
    """One line per differing column: the first differing frames and both values."""
    lines = []
    for name, c_col in got.as_dict().items():
        np_col = getattr(want, name)
        if c_col.dtype == np_col.dtype and np.array_equal(c_col, np_col):
            continue
        if c_col.shape != np_col.shape or c_col.dtype != np_col.dtype:
            lines.append(f"  {name}: c {c_col.dtype}{c_col.shape} vs numpy {np_col.dtype}{np_col.shape}")
            continue
        rows = np.nonzero(c_col != np_col)[0]
        lines.append(
            f"  {name}: {rows.shape[0]} frame(s) differ, first {got.frame[rows[:shown]].tolist()}: "
            f"c={c_col[rows[:shown]].tolist()} numpy={np_col[rows[:shown]].tolist()}"
        )
    return lines


def check_batch(batch: RecordBatch, what: str, detail: str = "") -> None:
    got = decode_fast._decode_c(batch)
    want = decode_fast._decode_numpy(batch)
    diff = mismatches(got, want)
    assert not diff, f"{what}: C and numpy decoders disagree\n" + "\n".join(diff) + detail


def make_batch(records: list[Record], gaps: list[int] | None = None) -> RecordBatch:
    """A batch holding ``records`` in one buffer, ``gaps[i]`` junk bytes before record i."""
    chunks: list[bytes] = []
    offsets: list[int] = []
    pos = 0
    for i, (_lt, data, _wire) in enumerate(records):
        gap = gaps[i] if gaps else 0
        chunks.append(b"\xa5" * gap)
        pos += gap
        offsets.append(pos)
        chunks.append(data)
        pos += len(data)
    n = len(records)
    return RecordBatch(
        buf=np.frombuffer(b"".join(chunks), dtype=np.uint8).copy(),
        off=np.array(offsets, dtype=np.int64),
        caplen=np.array([len(d) for _lt, d, _w in records], dtype=np.int64),
        wirelen=np.array([w for _lt, _d, w in records], dtype=np.int64),
        ts_ns=np.arange(n, dtype=np.int64),
        link_type=np.array([lt for lt, _d, _w in records], dtype=np.int32),
        iface=np.zeros(n, dtype=np.int32),
        first_frame=1,
    )


def describe(records: list[Record]) -> str:
    return "\n" + "\n".join(
        f"  frame {n}: linktype {lt} wirelen {w} bytes {d.hex()}"
        for n, (lt, d, w) in enumerate(records, start=1)
    )


# --- the implementation in use ------------------------------------------------------------
def test_c_decoder_is_the_default() -> None:
    assert decode_fast.IMPLEMENTATION == "c"
    assert decode_fast.decode is decode_fast._decode_c
    assert len(decode_fast.C_COLUMNS) == _decode.N_OUTPUTS
    assert set(decode_fast.C_COLUMNS) | {"frame", "ts_ns", "caplen", "wirelen", "link_type"} == set(
        PacketColumns.empty(0).as_dict()
    )


def test_bad_arguments_raise() -> None:
    batch = make_batch([(1, bytes(60), 60)])
    c = PacketColumns.empty(1)
    outs = [getattr(c, name) for name in decode_fast.C_COLUMNS]
    args: list[Any] = [batch.buf, batch.off, batch.caplen, batch.wirelen, batch.link_type]
    _decode.decode(*args, tuple(outs))  # the right types work
    wrong = list(outs)
    wrong[decode_fast.C_COLUMNS.index("anomalies")] = np.zeros(1, np.uint16)
    with pytest.raises(TypeError):
        _decode.decode(*args, tuple(wrong))
    with pytest.raises(TypeError):
        _decode.decode(*args, tuple(outs[:-1]))
    with pytest.raises(TypeError):
        _decode.decode(batch.buf, batch.off.astype(np.int32), *args[2:], tuple(outs))
    with pytest.raises(ValueError):  # a record past the end of the buffer
        _decode.decode(batch.buf, batch.off + 1, *args[2:], tuple(outs))
    with pytest.raises(ValueError):  # output of the wrong length
        _decode.decode(*args, tuple(np.concatenate([o, o]) for o in outs))
    with pytest.raises((BufferError, ValueError)):  # read-only output (numpy: ValueError)
        ro = outs[0].copy()
        ro.flags.writeable = False
        _decode.decode(*args, (ro, *outs[1:]))


def test_empty_batch() -> None:
    check_batch(make_batch([]), "empty batch")


# --- corpus -------------------------------------------------------------------------------
@pytest.mark.corpus
@pytest.mark.parametrize("capture", corpus_params())
def test_corpus_capture_decodes_identically(capture: str) -> None:
    path: Path = corpus_dir() / capture
    with CaptureReader(str(path)) as reader:
        for batch in reader.batches():
            check_batch(batch, str(capture))


# --- generated packets --------------------------------------------------------------------
#: every link type we decode, two we only count, and ones nobody uses
LINK_TYPE_CHOICES = [*sorted(LINK_TYPES), 9, 105, 2, 107, 300, -1]
#: wire lengths that lie (shorter than captured) or are huge (int32 column wrap-around)
wire_lengths = st.one_of(
    st.integers(0, 200), st.sampled_from([0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF])
)


@st.composite
def generated_records(draw: st.DrawFn) -> Record:
    lt = draw(st.sampled_from(sorted(FRAMES)))
    data, wire = draw(hostile(FRAMES[lt]))
    if draw(st.integers(0, 9)) == 0:
        wire = draw(wire_lengths)
    return lt, data, wire


@st.composite
def random_records(draw: st.DrawFn) -> Record:
    """Random bytes for any link type, often with a plausible start, perhaps truncated."""
    lt = draw(st.sampled_from(LINK_TYPE_CHOICES))
    prefix = draw(
        st.sampled_from(
            [
                b"",
                bytes(12) + b"\x08\x00\x45",  # Ethernet, IPv4 with a 20-byte header
                bytes(12) + b"\x86\xdd\x60",  # Ethernet, IPv6
                bytes(12) + b"\x81\x00\x00\x01\x08\x00\x46",  # VLAN, IPv4 with options
                b"\x45\x00",  # raw IPv4
                b"\x60\x00\x00\x00",  # raw IPv6
                b"\x02\x00\x00\x00\x45",  # NULL, AF_INET
                b"\x00\x00\x00\x1e\x60",  # LOOP, AF_INET6 (Darwin)
                b"\xff\x03\x08\x00\x45",  # NULL/LOOP: a PPP frame, not an ethertype
                b"\x45\x00\x00\x00",  # raw IPv4 with a zero (TSO) total length
            ]
        )
    )
    data = prefix + draw(st.binary(max_size=160))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    wire = draw(st.one_of(st.just(len(data)), wire_lengths))
    return lt, data, wire


def check_records(records: list[Record], gaps: list[int]) -> None:
    batch = make_batch(records, gaps)
    check_batch(batch, "generated batch", describe(records))
    for lt in {lt for lt, _d, _w in records}:  # one link type per batch, as readers produce
        same = [r for r in records if r[0] == lt]
        check_batch(make_batch(same), f"generated batch of link type {lt}", describe(same))


@GENERATED
@given(
    records=st.lists(generated_records(), min_size=1, max_size=12),
    gaps=st.lists(st.integers(0, 7), min_size=12, max_size=12),
)
def test_generated_packets_decode_identically(records: list[Record], gaps: list[int]) -> None:
    check_records(records, gaps)


@GENERATED
@given(
    records=st.lists(random_records(), min_size=1, max_size=12),
    gaps=st.lists(st.integers(0, 7), min_size=12, max_size=12),
)
def test_random_bytes_decode_identically(records: list[Record], gaps: list[int]) -> None:
    check_records(records, gaps)


def test_random_bytes_every_link_type() -> None:
    """Many random records of link types 0..299 in one batch (mixed link types)."""
    rng = np.random.default_rng(20240611)
    records: list[Record] = []
    for lt in range(300):
        for _ in range(20):
            data = rng.integers(0, 256, int(rng.integers(0, 100)), dtype=np.uint8).tobytes()
            records.append((lt, data, int(rng.integers(0, 140))))
    check_batch(make_batch(records), "random records of every link type")


def test_lengths_past_int32() -> None:
    """Zero IP lengths ("to the end of the frame") with wire lengths beyond 2**31."""
    tcp = bytes(12) + b"\x50\x10" + bytes(6)
    udp = b"\x00\x35\x00\x35\x00\x00\x00\x00"
    icmp = b"\x08" + bytes(7)
    v4 = [b"\x45\x00\x00\x00" + bytes(5) + bytes([proto]) + bytes(10) + l4
          for proto, l4 in ((6, tcp), (17, udp), (1, icmp))]
    v4.append(b"\x45\x00\x00\x00\x00\x00\x20\x00\x40\x11" + bytes(10) + udp)  # first fragment
    v6 = [b"\x60" + bytes(5) + bytes([nh]) + b"\x40" + bytes(32) + l4
          for nh, l4 in ((6, tcp), (17, udp), (58, icmp))]
    v6.append(b"\x60" + bytes(5) + b"\x00\x40" + bytes(32) + b"\x11" + bytes(7) + udp)  # jumbogram
    frames = [(101, ip) for ip in v4 + v6] + [
        (1, bytes(12) + (b"\x08\x00" if ip[0] == 0x45 else b"\x86\xdd") + ip) for ip in v4 + v6
    ]
    records: list[Record] = [
        (lt, data, wire)
        for lt, data in frames
        for wire in (0, len(data), 0x7FFF_FFF0, 0x8000_0000, 0x8000_0040, 0xFFFF_FFFF)
    ]
    check_batch(make_batch(records), "huge wire lengths", describe(records))
    got = decode_fast._decode_c(make_batch(records))
    assert (got.ip_len < 0).any() and (got.payload_len < 0).any()  # the int32 wrap is exercised
