"""Sampled checksum verification, to tell checksum offload from corruption.

A capture taken on a host whose NIC computes checksums (TX checksum offload)
shows that host's outgoing packets with wrong or zero TCP/UDP (and sometimes
IPv4 header) checksums: the bytes were captured before the NIC filled them
in.  Zeek drops such packets by default unless run with ``-C`` (zeek/zeek#1939,
#5294); Wireshark disables validation by default for the same reason.  The
analyst needs to know which it is: offload (bad checksums confined to one or
two senders, nearly all of their packets) is harmless; bad checksums spread
over many senders mean corrupted frames or crafted traffic.

Checking every packet would cost as much as decoding it, and offload shows
on every packet a host sends, so a deterministic sample is checked: at most
:data:`SAMPLE_PER_BATCH` fully captured, unfragmented packets per batch, of
at most :data:`MAX_SEGMENT_BYTES` transport bytes each.  Sums are computed
for the whole sample at once (RFC 1071 one's-complement arithmetic, done
modulo 65535 over byte prefix sums; pseudo-headers per RFC 9293 §3.1 and
RFC 8200 §8.1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .capture import RecordBatch
from .columns import PacketColumns

SAMPLE_PER_BATCH = 64
MAX_SEGMENT_BYTES = 2048
#: A sender whose sampled packets are at least this share bad is "offloading".
OFFLOAD_SHARE = 0.9
#: Senders that can plausibly be capture hosts (a capture is usually taken on one).
OFFLOAD_MAX_SENDERS = 2
#: Outside offload, a bad-checksum share above this (percent) degrades the verdict.
CORRUPTION_DEGRADED_PCT = 1.0
#: Distinct senders tracked (the table is small and bounded).
SENDER_CAP = 4096

I64 = npt.NDArray[np.int64]


def _segment_sums(buf: npt.NDArray[np.uint8], starts: I64, lengths: I64) -> I64:
    """One's-complement-compatible sums (mod 65535) of big-endian 16-bit words per segment."""
    total = int(lengths.sum())
    out = np.zeros(starts.shape[0], dtype=np.int64)
    if total == 0:
        return out
    seg_first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    within = np.arange(total, dtype=np.int64) - np.repeat(seg_first, lengths)
    idx = np.repeat(starts, lengths) + within
    vals = buf[idx].astype(np.int64) << np.where(within & 1, 0, 8)
    nonempty = lengths > 0
    out[nonempty] = np.add.reduceat(vals, seg_first[nonempty])
    return out


def _fold_words(x: npt.NDArray[np.uint64], nbits: int) -> I64:
    """Sum of the 16-bit words of an ``nbits``-bit unsigned value."""
    s = np.zeros(x.shape[0], dtype=np.int64)
    for shift in range(0, nbits, 16):
        s += ((x >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64)
    return s


def eligible(c: PacketColumns, rows: npt.NDArray[np.intp] | None = None) -> npt.NDArray[np.intp]:
    """Positions (in ``rows``, default all rows) whose checksums can be checked.

    Checkable: whole, unfragmented, anomaly-free TCP/UDP over IP.
    """
    sel = slice(None) if rows is None else rows
    l4_off = c.l4_off[sel]
    end_ip = c.l3_off[sel].astype(np.int64) + c.ip_len[sel]
    proto = c.ip_proto[sel]
    ok = (
        (c.ip_version[sel] > 0)
        & ~c.is_fragment[sel]
        & (l4_off >= 0)
        & ((proto == 6) | (proto == 17))
        & (c.anomalies[sel] == 0)
        & (c.caplen[sel] >= end_ip)
        & (end_ip - l4_off <= MAX_SEGMENT_BYTES)
    )
    return np.nonzero(ok)[0]


def verify(c: PacketColumns, batch: RecordBatch, cand: npt.NDArray[np.intp]
           ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Check rows ``cand`` (from :func:`eligible`); returns (rows checked, bad IPv4 header, bad TCP/UDP).

    UDP over IPv4 with checksum 0 ("not computed", RFC 768) is not checked.
    """
    buf = batch.buf
    base = batch.off[cand]
    l4 = base + c.l4_off[cand]
    proto = c.ip_proto[cand].astype(np.int64)
    v4 = c.ip_version[cand] == 4
    udp = proto == 17
    csum = (buf[l4 + np.where(udp, 6, 16)].astype(np.int64) << 8) | buf[l4 + np.where(udp, 7, 17)]
    keep = ~(udp & v4 & (csum == 0))
    cand, base, l4, proto, v4 = cand[keep], base[keep], l4[keep], proto[keep], v4[keep]
    l3 = base + c.l3_off[cand]
    l4_len = (c.l3_off[cand].astype(np.int64) + c.ip_len[cand] - c.l4_off[cand]).astype(np.int64)
    pseudo = (
        _fold_words(c.ip_src_hi[cand], 64) + _fold_words(c.ip_src_lo[cand], 64)
        + _fold_words(c.ip_dst_hi[cand], 64) + _fold_words(c.ip_dst_lo[cand], 64)
        + proto + l4_len
    )
    # (IPv4-mapped addresses add 0xffff per address: 0 modulo 65535.)
    bad_l4 = (_segment_sums(buf, l4, l4_len) + pseudo) % 0xFFFF != 0
    hdr_len = c.ip_hdr_len[cand].astype(np.int64)
    bad_ip = v4 & (_segment_sums(buf, l3, np.where(v4, hdr_len, 0)) % 0xFFFF != 0)
    return cand, bad_ip, bad_l4


class ChecksumSample:
    """Mergeable counts of sampled checksum checks, per sending address."""

    def __init__(self) -> None:
        self.checked = 0
        self.bad_ip = 0
        self.bad_transport = 0
        # sender (hi, lo) -> [checked, bad]
        self.senders: dict[tuple[int, int], list[int]] = {}
        self.senders_dropped = 0

    def update(self, c: PacketColumns, batch: RecordBatch) -> None:
        n = len(c)
        # Look at an evenly spread subset first: eligibility over every row costs
        # more than the checks themselves.
        rows = np.arange(0, n, max(1, n // (8 * SAMPLE_PER_BATCH)))
        cand = rows[eligible(c, rows)]
        if cand.shape[0] > SAMPLE_PER_BATCH:
            cand = cand[np.linspace(0, cand.shape[0] - 1, SAMPLE_PER_BATCH).astype(np.int64)]
        cand, bad_ip, bad_l4 = verify(c, batch, cand)
        if cand.shape[0] == 0:
            return
        self.checked += int(cand.shape[0])
        self.bad_ip += int(bad_ip.sum())
        self.bad_transport += int(bad_l4.sum())
        bad = bad_ip | bad_l4
        hi, lo = c.ip_src_hi[cand], c.ip_src_lo[cand]
        for h, low, b in zip(hi.tolist(), lo.tolist(), bad.tolist(), strict=True):
            slot = self.senders.get((h, low))
            if slot is None:
                if len(self.senders) >= SENDER_CAP:
                    self.senders_dropped += 1
                    continue
                slot = self.senders[(h, low)] = [0, 0]
            slot[0] += 1
            slot[1] += int(b)

    def merge(self, other: ChecksumSample) -> None:
        self.checked += other.checked
        self.bad_ip += other.bad_ip
        self.bad_transport += other.bad_transport
        self.senders_dropped += other.senders_dropped
        for key, (n, b) in other.senders.items():
            slot = self.senders.get(key)
            if slot is None:
                if len(self.senders) >= SENDER_CAP:
                    self.senders_dropped += n
                    continue
                slot = self.senders[key] = [0, 0]
            slot[0] += n
            slot[1] += b

    def summary(self) -> dict[str, Any]:
        from .columns import ip_text

        bad_senders = sorted(
            ((k, n, b) for k, (n, b) in self.senders.items() if b),
            key=lambda t: (-t[2], t[0]),
        )
        offloading = [
            (k, n, b) for k, n, b in bad_senders if b >= OFFLOAD_SHARE * n
        ]
        bad_total = sum(b for _, _, b in bad_senders)
        offload = (
            0 < len(offloading) <= OFFLOAD_MAX_SENDERS
            and sum(b for _, _, b in offloading) >= OFFLOAD_SHARE * bad_total
        )
        return {
            "sampled": self.checked,
            "bad_ip_header": self.bad_ip,
            "bad_transport": self.bad_transport,
            "offload_suspected": offload,
            "offloading_senders": [ip_text(*k) for k, _, _ in offloading] if offload else [],
            "bad_by_sender": [
                {"address": ip_text(*k), "sampled": n, "bad": b} for k, n, b in bad_senders[:5]
            ],
        }
