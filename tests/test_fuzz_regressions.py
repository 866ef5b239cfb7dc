"""Fuzzing's findings as regression tests, and a quick property test per parser.

The coverage-guided harnesses live in ``fuzz/`` (atheris, not part of this
run; see docs/robustness.md).  Here:

- every input a harness found that crashed, hung or raised an undocumented
  exception, as an exact bytes literal, with the outcome the parser documents;
- per parser, a Hypothesis property (about 300 random inputs each): arbitrary
  bytes never raise anything but the documented errors, anomaly codes come from
  the module's list, and where a C fast path exists it agrees with the Python
  specification.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netsift.http as http
import netsift.tls as tls
from fastpath import strict
from netsift import capture, decode_fast, dns, quic
from netsift.capture import CaptureReader, RecordBatch
from netsift.columns import ANOMALY_CODES, LINK_TYPES
from netsift.errors import NetsiftError
from pcapgen import block, epb, idb, pcap_header, pcap_record, shb

EXAMPLES = 300
PROPERTY = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- helpers


@contextmanager
def without(module: Any, name: str) -> Iterator[None]:
    """The module's C fast path ``name`` switched off inside the block."""
    saved = getattr(module, name)
    setattr(module, name, None)
    try:
        yield
    finally:
        setattr(module, name, saved)


def same_on_both_paths(module: Any, name: str, fn: Callable[[], Any]) -> Any:
    fast = fn()
    with without(module, name):
        slow = fn()
    assert strict(fast) == strict(slow)
    return fast


def read_capture(data: bytes) -> list[tuple[int, ...]] | None:
    """Every record of a capture file holding ``data``; None for a documented error."""
    fd, path = tempfile.mkstemp(suffix=".cap")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        out: list[tuple[int, ...]] = []
        with CaptureReader(path, chunk_bytes=64) as reader:
            for batch in reader.batches():
                assert (batch.off + batch.caplen <= batch.buf.shape[0]).all()
                assert (batch.caplen >= 0).all() and (batch.ts_ns >= 0).all()
                decode_fast.decode(batch)
                out += [(int(batch.caplen[i]), int(batch.wirelen[i]), int(batch.link_type[i]))
                        for i in range(len(batch))]
        assert {w.code for w in reader.warnings} <= capture.WARNING_CODES
        assert reader.records == len(out)
        return out
    except NetsiftError:
        return None
    finally:
        os.unlink(path)


# --------------------------------------------------------------------------- regressions
# (inputs found by the fuzz/ harnesses; see docs/robustness.md)

# fuzz_tls.py: a change_cipher_spec record (skipped before a hello) whose length runs past
# the input made read_hello report more bytes consumed than it was given (the skip did
# not clamp to the input, unlike a cut handshake record).  Fixed in tls.py and in
# tests/tls_reference.py, which test_tls_fast.py holds read_hello equal to.
TLS_CCS_PAST_END = bytes.fromhex(
    "1403010200ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
    "ffffffffffffffffffffffffffffffffffff0521f3baa9314acc8dd073ea8095599afac9602d17dc80ada321"
    "2b1b9fedc17b20e8019cc573591ef665834283ff3c56379932e6d9a587201603010200010001fc03030f9e38"
    "acb9a54a7c6e00e29a70ac2feee180ff76d7f25dca84932a66a42d1e5a20bc58b92f865e6b9aa4a6371cadcb"
    "0afe1da1c0f705209a11d52357f56d5dd9620020aaaa130113021303c02bc02fc02cc030cca9cca8c013c014"
    "009c009d002f0035010001939a9a0000ff01000100002f59eb321779706a18fa6b96b16c16404c2264ed687a"
    "59401878002d00020101000500050100000000446900050003026832000d001200000000000000da7408dbbd"
    "785074702f3e6b")
TLS_CCS_CASES = [TLS_CCS_PAST_END, bytes.fromhex("1403030005"), bytes.fromhex("140303000a1603")]


@pytest.mark.parametrize("data", TLS_CCS_CASES)
def test_tls_cut_change_cipher_spec_is_a_truncated_read(data: bytes) -> None:
    read = same_on_both_paths(tls, "_parse_hello_body", lambda: tls.read_hello(data))
    assert read.hello is None and not read.complete
    assert read.anomalies == ("tls_truncated",)


@pytest.mark.parametrize("data", TLS_CCS_CASES)
def test_tls_cut_change_cipher_spec_consumes_only_the_input(data: bytes) -> None:
    assert tls.read_hello(data).consumed <= len(data)


# fuzz_capture.py: a damaged gzip stream lost the records of the piece being decompressed
# when the damage was hit (GzipFile.read1 drops its output with the exception), so the
# default read size kept none of these 12 records and 64-byte reads kept all of them.
GZIP_DAMAGED = bytes.fromhex(
    "1f8b08003c3c3c000203bb7278d3422606165b060480a0c56b7387369f4763f0012121dfdede3cffffffff3c"
    "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3f3c3c3c"
    "3c3c3c7c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c"
    "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c"
    "3c3c3c3c3c3c3c3c3c3c3c000006ffffc33c3c3c3c3c3c3c3c3c3c3c01a658fb5a5997")

# the same, in a member whose header sets a reserved flag bit (gzip ignores it, zlib would not)
GZIP_DAMAGED_RESERVED_FLAG = bytes.fromhex(
    "1f8b08213c3c3c000203bb7278d34226061606048081c56b7387339f4763f0012121dfdede3cffffffff3c3c"
    "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3cff3c3c3c3c3c3c3c3c3c3c3c3c"
    "3cff3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c"
    "3c3c3c3c3c3c3c3c1a2b434d3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c"
    "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c000006ffffc33c3c3c3c3c3c3c3c3c0126581a2b434dfb5a"
    "5997")


def _records(path: str, chunk: int | None) -> list[tuple[int, ...]]:
    reader = CaptureReader(path, **({} if chunk is None else {"chunk_bytes": chunk}))
    with reader:
        return [(int(b.caplen[i]), int(b.ts_ns[i])) for b in reader.batches() for i in range(len(b))]


@pytest.mark.parametrize(("data", "records"), [(GZIP_DAMAGED, 12), (GZIP_DAMAGED_RESERVED_FLAG, 14)])
def test_damaged_gzip_keeps_every_record_before_the_damage_whatever_the_read_size(
    tmp_path: Any, data: bytes, records: int
) -> None:
    path = tmp_path / "damaged.pcap.gz"
    path.write_bytes(data)
    whole = _records(str(path), None)
    assert len(whole) == records
    for chunk in (1, 7, 64, 4096):
        assert _records(str(path), chunk) == whole


def test_damaged_gzip_past_a_mebibyte_keeps_the_records_before_it(tmp_path: Any) -> None:
    import gzip

    frame = bytes(range(256)) * 4  # 1,024-byte records: 3,000 of them, about 3 MB decompressed
    raw = pcap_header() + b"".join(pcap_record(frame, ts_sec=i) for i in range(3000))
    packed = bytearray(gzip.compress(raw, compresslevel=1))
    packed[len(packed) * 2 // 3] ^= 0xFF  # damage two thirds of the way in
    path = tmp_path / "big.pcap.gz"
    path.write_bytes(bytes(packed))
    reader = CaptureReader(str(path))
    with reader:
        kept = sum(len(b) for b in reader.batches())
    assert "gzip_stream_damaged" in [w.code for w in reader.warnings]
    # every record decompressed before the damage is kept: the same records as reading
    # the prefix zlib itself yields (byte by byte, up to its error) as a plain pcap
    import zlib

    d, out = zlib.decompressobj(31), bytearray()
    for i in range(len(packed)):
        try:
            out += d.decompress(bytes(packed[i : i + 1]))
        except zlib.error:
            break
    plain = tmp_path / "prefix.pcap"
    plain.write_bytes(bytes(out))
    assert kept == len(_records(str(plain), None))
    assert kept > 1_000  # more than the first mebibyte


def test_damaged_gzip_in_a_later_member_keeps_the_earlier_members(tmp_path: Any) -> None:
    import gzip

    frame = bytes(200)
    first = gzip.compress(pcap_header() + b"".join(pcap_record(frame, ts_sec=i) for i in range(50)))
    second = bytearray(gzip.compress(b"".join(pcap_record(frame, ts_sec=100 + i) for i in range(50))))
    second[3] |= 0x20  # a reserved flag bit: gzip reads on
    second[-8] ^= 0xFF  # a CRC that does not match
    path = tmp_path / "members.pcap.gz"
    path.write_bytes(first + b"\x00" * 16 + bytes(second))  # zero padding between members
    for chunk in (None, 64):
        assert len(_records(str(path), chunk)) == 100  # both members' data; the CRC ends the stream


# --------------------------------------------------------------------------- properties


@PROPERTY
@given(st.binary(max_size=600))
def test_dns_any_bytes(data: bytes) -> None:
    message = dns.parse_message(data)
    assert set(message.anomalies) <= set(dns.ANOMALIES)
    assert dns.summarize(data) == dns.summarize_py(data)


@PROPERTY
@given(st.binary(max_size=600), st.sampled_from([b"", b"\x16\x03\x01", b"\x16\x03\x03\x01\x00\x01"]))
def test_tls_any_bytes(data: bytes, prefix: bytes) -> None:
    data = prefix + data
    read = same_on_both_paths(tls, "_parse_hello_body", lambda: tls.read_hello(data))
    assert set(read.anomalies) <= set(tls.ANOMALY_CODES)
    hellos = [read.hello,
              same_on_both_paths(tls, "_parse_hello_body", lambda: tls.parse_client_hello(data)),
              same_on_both_paths(tls, "_parse_hello_body", lambda: tls.parse_server_hello(data))]
    for hello in hellos:
        if isinstance(hello, tls.ClientHello):
            for proto in tls.JA4_PROTOCOLS:
                fps = tls.client_fingerprints(hello, proto)
                assert fps.ja4 == tls.ja4(hello, proto) and fps.ja3 == tls.ja3(hello)
        elif isinstance(hello, tls.ServerHello):
            assert tls.server_fingerprint(hello) == tls.ja3s(hello)


@PROPERTY
@given(st.binary(max_size=600), st.sampled_from([b"", b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n"]),
       st.sampled_from([None, "request", "response"]))
def test_http_any_bytes(data: bytes, prefix: bytes, direction: Any) -> None:
    data = prefix + data
    parsed = same_on_both_paths(http, "_c_parse_head", lambda: http.parse_heads(data, direction))
    assert set(parsed.anomalies) <= set(http.ANOMALY_CODES)


@PROPERTY
@given(st.binary(max_size=600))
def test_quic_any_bytes(data: bytes) -> None:
    read = quic.read_datagram(data)
    assert set(read.anomalies) <= set(quic.ANOMALY_CODES)
    assembler = quic.CryptoAssembler()
    assembler.feed(data, flow="client")
    assert set(assembler.anomalies) <= set(quic.ANOMALY_CODES)


@PROPERTY
@given(st.binary(max_size=400), st.sampled_from(["pcap", "pcapng", "raw"]))
def test_capture_any_bytes(data: bytes, form: str) -> None:
    if form == "pcap":
        data = pcap_header() + pcap_record(data[:200]) + data[200:]
    elif form == "pcapng":
        data = shb() + idb() + epb(data[:200]) + block(6, data[200:])
    read_capture(data)


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from([*sorted(LINK_TYPES), 9, 147]), st.binary(max_size=120),
                          st.integers(0, 300)), max_size=8))
def test_decoders_agree_on_any_bytes(records: list[tuple[int, bytes, int]]) -> None:
    buf, off = bytearray(), []
    for _lt, data, _cut in records:
        buf.append(0xA5)
        off.append(len(buf))
        buf += data
    n = len(records)
    batch = RecordBatch(
        buf=np.frombuffer(bytes(buf), dtype=np.uint8).copy(),
        off=np.array(off, dtype=np.int64),
        caplen=np.array([len(d) for _lt, d, _c in records], dtype=np.int64),
        wirelen=np.array([len(d) + c for _lt, d, c in records], dtype=np.int64),
        ts_ns=np.zeros(n, dtype=np.int64),
        link_type=np.array([lt for lt, _d, _c in records], dtype=np.int32),
        iface=np.zeros(n, dtype=np.int32),
        first_frame=1,
    )
    got, want = decode_fast._decode_c(batch), decode_fast._decode_numpy(batch)
    for name, col in got.as_dict().items():
        assert col.dtype == getattr(want, name).dtype and np.array_equal(col, getattr(want, name)), name
    assert not (got.anomalies.astype(np.int64) >> len(ANOMALY_CODES)).any()

