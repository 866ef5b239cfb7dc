"""Fuzz the packet decoders: the C decoder netsift._decode against the numpy decoder.

Input: a run of records, each ``[link][len_hi][len_lo][cut]`` followed by
``len`` captured bytes (the last record takes what is left).  ``link`` picks
the link type (``columns.LINK_TYPES`` in order, then three link types that are
only counted); ``cut`` > 0 makes the wire length longer than the captured bytes
(a snaplen).  One junk byte separates records in the buffer, as the reader's
buffers hold record headers between packets.  Checks:

- ``decode_fast._decode_c`` (the default, C) and ``decode_fast._decode_numpy``
  (its specification) fill identical columns, no tolerance (as
  tests/test_decode_c.py compares them); neither raises;
- only anomaly bits named in ``columns.ANOMALY_CODES`` are set.

``NETSIFT_FUZZ_SCAPY=1`` also compares the Scapy reference decoder
(tests/test_differential.py's comparison; much slower).
"""

from __future__ import annotations

import os
import sys

import atheris
import numpy as np
from _common import main

with atheris.instrument_imports(include=["netsift"]):
    from netsift import decode_fast
    from netsift.capture import RecordBatch
    from netsift.columns import ANOMALY_CODES, LINK_TYPES

LINKS = (*sorted(LINK_TYPES), 9, 105, 147)
SCAPY = os.environ.get("NETSIFT_FUZZ_SCAPY") == "1"
if SCAPY:
    from netsift import decode_scapy
ANOMALY_MASK = (1 << len(ANOMALY_CODES)) - 1


def batch_of(data: bytes) -> RecordBatch:
    buf = bytearray()
    off: list[int] = []
    caplen: list[int] = []
    wirelen: list[int] = []
    links: list[int] = []
    pos = 0
    while pos + 4 <= len(data) and len(off) < 64:
        link, length, cut = data[pos], (data[pos + 1] << 8) | data[pos + 2], data[pos + 3]
        packet = data[pos + 4:pos + 4 + length]
        pos += 4 + len(packet)
        buf.append(0xA5)
        off.append(len(buf))
        buf += packet
        caplen.append(len(packet))
        wirelen.append(len(packet) + (cut << 4 if cut & 0x80 else cut))
        links.append(LINKS[link % len(LINKS)])
    n = len(off)
    return RecordBatch(
        buf=np.frombuffer(bytes(buf), dtype=np.uint8).copy(),
        off=np.array(off, dtype=np.int64),
        caplen=np.array(caplen, dtype=np.int64),
        wirelen=np.array(wirelen, dtype=np.int64),
        ts_ns=np.arange(n, dtype=np.int64),
        link_type=np.array(links, dtype=np.int32),
        iface=np.zeros(n, dtype=np.int32),
        first_frame=1,
    )


def mismatches(got: object, want: object) -> list[str]:
    out = []
    for name, col in got.as_dict().items():  # type: ignore[attr-defined]
        ref = getattr(want, name)
        if not (col.dtype == ref.dtype and np.array_equal(col, ref)):
            out.append(f"{name}: {col.tolist()} != {ref.tolist()}")
    return out


def test_one_input(data: bytes) -> None:
    batch = batch_of(data)
    got = decode_fast._decode_c(batch)
    want = decode_fast._decode_numpy(batch)
    diff = mismatches(got, want)
    assert not diff, "C and numpy decoders disagree:\n" + "\n".join(diff)
    assert not (got.anomalies.astype(np.int64) & ~ANOMALY_MASK).any()
    if SCAPY:
        diff = mismatches(got, decode_scapy.decode(batch))
        assert not diff, "fast and scapy decoders disagree:\n" + "\n".join(diff)


if __name__ == "__main__":
    main(test_one_input, max_len=8192)
    sys.exit(0)
