"""Test-only: TCP payload segments of a capture, first copy of each, in capture order.

A stand-in for issue 3's flow reassembly used by the TLS and HTTP
conformance harnesses: segments with payload (fragments excluded), keyed by
direction; a segment whose (direction, sequence number) was already seen is a
retransmission and is dropped.  No reordering, no gap handling.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netsift.capture import CaptureReader
from netsift.decode_fast import decode

TCP = 6

#: (src hi, src lo, dst hi, dst lo, sport, dport), addresses as stored in the columns
Direction = tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class Segment:
    frame: int
    direction: Direction
    seq: int
    flags: int
    payload: bytes  # the captured bytes
    payload_len: int  # the wire length (more than len(payload) when snaplen cut it)


def tcp_segments(path: Path) -> Iterator[Segment]:
    seen: set[tuple[Direction, int]] = set()
    with CaptureReader(str(path)) as reader:
        for batch in reader.batches():
            cols = decode(batch)
            for i in range(len(batch)):
                if int(cols.ip_proto[i]) != TCP or int(cols.payload_len[i]) <= 0 or cols.is_fragment[i]:
                    continue
                direction: Direction = (
                    int(cols.ip_src_hi[i]), int(cols.ip_src_lo[i]), int(cols.ip_dst_hi[i]),
                    int(cols.ip_dst_lo[i]), int(cols.sport[i]), int(cols.dport[i]))
                seq = int(cols.tcp_seq[i])
                if (direction, seq) in seen:
                    continue
                seen.add((direction, seq))
                off = int(cols.payload_off[i])
                length = int(cols.payload_len[i])
                yield Segment(int(cols.frame[i]), direction, seq, int(cols.tcp_flags[i]),
                              batch.packet_bytes(i)[off:off + length], length)
