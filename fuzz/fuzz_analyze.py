"""Fuzz the whole analysis in-process: netsift.analyze on a small capture file.

Input: a whole capture file (pcap or pcapng, possibly gzipped), written to a
temporary file and analyzed with the defaults (fast C decoder, flows, IP
reassembly, DNS/TLS/QUIC/HTTP, detectors).  Checks:

- ``NetsiftError`` subclasses (not a capture, ...) are the documented errors;
  any other exception is a finding;
- the report serializes to JSON (``Report.to_json``) and has the sections
  every report has.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import warnings

import atheris
from _common import main

with atheris.instrument_imports(include=["netsift"]):
    import netsift
    from netsift.errors import NetsiftError

_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
_FD, PATH = tempfile.mkstemp(prefix="netsift-fuzz-", suffix=".pcap", dir=_DIR)
os.close(_FD)


def test_one_input(data: bytes) -> None:
    with open(PATH, "wb") as fh:
        fh.write(data)
    try:
        report = netsift.analyze(PATH, warn=lambda _msg: None)
    except NetsiftError:
        return
    parsed = json.loads(report.to_json(indent=None))
    for section in ("capture", "quality"):
        assert section in parsed, sorted(parsed)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    try:
        main(test_one_input, max_len=16384)
    finally:
        os.unlink(PATH)
    sys.exit(0)
