"""Fuzz the capture readers: netsift.capture.CaptureReader (pcap, pcapng, gzip).

Input: a whole capture file.  It is written to a temporary file and read
twice, with the default chunk size and with 64-byte chunks.  Checks:

- the documented errors (``NetsiftError`` subclasses: not a capture,
  unreadable) are fine, any other exception is a finding;
- every batch keeps the invariants consumers rely on: at least one record,
  consecutive frame numbers, column shapes and dtypes, ``caplen >= 0``,
  ``ts_ns >= 0``, every record inside the buffer;
- warning codes and skip reasons come from ``capture.WARNING_CODES`` and
  ``capture.SKIP_REASONS``; ``truncated`` is set exactly when the file ended
  on damage; ``records`` counts the records delivered;
- both chunk sizes deliver the same records (bytes and metadata);
- every batch goes through the C decoder (``decode_fast.decode``) without
  error (its agreement with the numpy decoder is fuzz_decode.py's job).
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris
import numpy as np
from _common import main

with atheris.instrument_imports(include=["netsift"]):
    from netsift import capture, decode_fast
    from netsift.errors import NetsiftError

_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
_FD, PATH = tempfile.mkstemp(prefix="netsift-fuzz-", suffix=".cap", dir=_DIR)
os.close(_FD)


def read(path: str, chunk_bytes: int) -> list[tuple[int, ...]] | None:
    packets: list[tuple[int, ...]] = []
    try:
        with capture.CaptureReader(path, chunk_bytes=chunk_bytes) as reader:
            for batch in reader.batches():
                n = len(batch)
                assert n > 0
                assert batch.first_frame == len(packets) + 1
                for arr in (batch.off, batch.caplen, batch.wirelen, batch.ts_ns, batch.link_type,
                            batch.iface):
                    assert arr.shape == (n,)
                assert batch.off.dtype == np.int64 and batch.ts_ns.dtype == np.int64
                assert batch.link_type.dtype == np.int32 and batch.iface.dtype == np.int32
                assert (batch.caplen >= 0).all() and (batch.ts_ns >= 0).all()
                assert (batch.off >= 0).all()
                assert (batch.off + batch.caplen <= batch.buf.shape[0]).all()
                decode_fast.decode(batch)
                for i in range(n):
                    packets.append((int(batch.caplen[i]), int(batch.wirelen[i]), int(batch.ts_ns[i]),
                                    int(batch.link_type[i]), int(batch.iface[i]),
                                    hash(batch.packet_bytes(i))))
    except NetsiftError:
        return None
    assert reader.records == len(packets)
    assert {w.code for w in reader.warnings} <= capture.WARNING_CODES, reader.warnings
    assert set(reader.skipped) <= capture.SKIP_REASONS, reader.skipped
    assert all("\n" not in w.message for w in reader.warnings)
    assert reader.truncated == any(w.code != "no_section_header" for w in reader.warnings)
    return packets


def test_one_input(data: bytes) -> None:
    with open(PATH, "wb") as fh:
        fh.write(data)
    whole = read(PATH, capture.CHUNK_BYTES)
    small = read(PATH, 64)
    assert whole == small, (whole, small)


if __name__ == "__main__":
    try:
        main(test_one_input, max_len=16384)
    finally:
        os.unlink(PATH)
    sys.exit(0)
