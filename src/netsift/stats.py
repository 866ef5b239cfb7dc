"""Traffic statistics over decoded columns: mergeable state, rendered into the report.

:class:`TrafficStats` is fed one batch at a time (``update``), can absorb the
state of another run (``merge``: counters add, tables re-group, time series
re-bin), and renders the report sections (``to_report``).  Every table is
bounded; when a bound is hit the report says so (``approximate`` with the
error bound) instead of silently dropping.

Definitions borrowed from peers, cited where they are implemented:
- protocol hierarchy: tshark ``-z io,phs`` (frames and bytes per protocol
  path, bytes = frame length on the wire);
- conversations: tshark ``-z conv,ip`` (unordered address pairs, "A→B" where
  A is the lower address, frames and bytes per direction);
- packet sizes: Wireshark's Statistics › Packet Lengths buckets;
- duplicates: editcap ``-D 5`` (a frame whose captured bytes equal one of the
  four frames before it), limited to frames within :data:`DUP_WINDOW_NS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .capture import RecordBatch
from .checksums import ChecksumSample
from .columns import (
    ANOMALY_BIT,
    ANOMALY_CODES,
    ETH_LLC_MAX,
    ETHERTYPE_NAMES,
    IP_PROTO_NAMES,
    L2_ETHERNET,
    L2_NONE,
    L2_NULL,
    L2_RAW,
    L2_SLL,
    L2_SLL2,
    LINK_TYPES,
    PacketColumns,
    ip_text,
    link_type_name,
    lower_first,
)
from .keyed import MAX, MIN, SUM, KeyedTable, SplitTable, top

TOP_N = 20
#: editcap -D default window is 5 frames: compare each frame with the 4 before it.
DUP_FRAMES_BACK = 4
#: ... and only when they are at most 10 ms apart (a SPAN or tap copy arrives
#: within microseconds; an identical resend by the application or a TCP
#: retransmission after an RTO (>= 200 ms on Linux) is not a capture duplicate).
DUP_WINDOW_NS = 10_000_000
#: Wireshark "Packet Lengths" statistic buckets (ui/packet_lengths / plen tap).
SIZE_BUCKETS = (0, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120)
#: Candidate time-series intervals (ns); the report uses the smallest that
#: gives at most MAX_TIME_BINS bins.  Each divides the next, so bins re-bin exactly.
TIME_INTERVALS_NS = (
    1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000, 60_000_000_000,
    600_000_000_000, 3_600_000_000_000, 86_400_000_000_000, 864_000_000_000_000,
    8_640_000_000_000_000, 86_400_000_000_000_000, 864_000_000_000_000_000,
    8_640_000_000_000_000_000,
)
MAX_TIME_BINS = 600
#: stored fine bins before coarsening the stored resolution
TIME_BIN_CAP = 20_000
#: Ports below which a name is meaningful for DNS/TLS/HTTP visibility checks.
DNS_PORTS = (53, 5353, 5355)
TLS_PORTS = (443, 465, 636, 853, 993, 995, 8443)
HTTP_PORTS = (80, 8000, 8008, 8080)

TCP_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS")

_L2_NODE = {L2_ETHERNET: "eth", L2_SLL: "sll", L2_SLL2: "sll", L2_RAW: "raw", L2_NULL: "null"}


def tcp_flag_label(flags: int) -> str:
    names = [n for i, n in enumerate(TCP_FLAG_NAMES) if flags & (1 << i)]
    return ",".join(names) if names else "none"


def _path_for(key: int) -> str:
    """Protocol path for a packed hierarchy key (see ``_hier_keys``)."""
    lt = key >> 40
    vd = (key >> 36) & 0xF
    et = (key >> 20) & 0xFFFF
    ipv = (key >> 16) & 0xF
    proto = (key >> 8) & 0xFF
    has_l4 = key & 1
    code = LINK_TYPES.get(lt, (L2_NONE, ""))[0]
    if code == L2_NONE:
        return link_type_name(lt)
    # LINKTYPE_IPV4/IPV6 have no link header: tshark's hierarchy starts at ip/ipv6.
    parts = [] if lt in (228, 229) else [_L2_NODE[code]]
    parts += ["vlan"] * vd
    if (key >> 4) & 1:  # no network layer (link header cut or unknown family)
        return ":".join(parts) or link_type_name(lt)
    if code == L2_ETHERNET and et <= ETH_LLC_MAX:
        parts.append("llc")
    elif ipv == 4:
        parts.append("ip")
    elif ipv == 6:
        parts.append("ipv6")
    elif et in ETHERTYPE_NAMES:
        parts.append(ETHERTYPE_NAMES[et])
    elif code in (L2_ETHERNET, L2_SLL, L2_SLL2):
        parts.append(f"ethertype-0x{et:04x}")
    if ipv and has_l4:
        parts.append(IP_PROTO_NAMES.get(proto, f"ipproto-{proto}"))
    return ":".join(parts)


#: IP header anomalies after which the transport header was never located.
_IP_HEADER_UNUSABLE = np.uint32(
    ANOMALY_BIT["truncated_ip_header"]
    | ANOMALY_BIT["bad_ip_total_length"]
    | ANOMALY_BIT["ipv6_extension_chain_too_long"]
)


def _hier_keys(c: PacketColumns) -> npt.NDArray[np.int64]:
    lt = c.link_type.astype(np.int64) & 0xFFFFFF
    vd = np.minimum(c.vlan_depth, 15).astype(np.int64)
    et = c.eth_type.astype(np.int64)
    ipv = c.ip_version.astype(np.int64)
    proto = c.ip_proto.astype(np.int64)
    no_l3 = (c.l3_off < 0).astype(np.int64)
    # A transport node is shown for every packet that is not a non-first fragment
    # (tshark shows the transport protocol once per datagram, too), unless the IP
    # header itself was cut or invalid: decoding stopped at IP, as tshark's does.
    ip_bad = (c.anomalies & _IP_HEADER_UNUSABLE) != 0
    has_l4 = ((ipv > 0) & (c.frag_offset == 0) & ~ip_bad).astype(np.int64)
    keys: npt.NDArray[np.int64] = (
        (lt << 40) | (vd << 36) | (et << 20) | (ipv << 16) | (proto << 8) | (no_l3 << 4) | has_l4
    )
    return keys


def _fingerprints(c: PacketColumns) -> npt.NDArray[np.uint64]:
    """A cheap hash of the fields that differ between distinct packets of one flow.

    Equal fingerprints only make a duplicate candidate, confirmed on the full bytes.
    """
    fp: npt.NDArray[np.uint64] = c.caplen.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for col in (c.wirelen, c.ip_id, c.ip_src_lo, c.ip_dst_lo, c.tcp_seq, c.tcp_ack):
        fp = (fp ^ col.astype(np.uint64)) * np.uint64(0x100000001B3)
    return fp


@dataclass
class FileState:
    """What must persist between batches of one file (ordering, duplicate window)."""

    last_ts: int | None = None
    tail: list[tuple[int, int, bytes]] = field(default_factory=list)  # (fingerprint, ts, bytes)


class TrafficStats:
    """Mergeable traffic statistics (see module docstring)."""

    def __init__(self, table_cap: int = 100_000) -> None:
        self.packets = 0
        self.wire_bytes = 0
        self.captured_bytes = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.link_types: dict[int, int] = {}
        self.snaplen_truncated = 0
        self.truncated_bytes = 0
        self.caplen_exceeds_wirelen = 0
        self.hidden: dict[str, int] = {}
        self.out_of_order = 0
        self.max_backwards_ns = 0
        self.duplicates = 0
        self._dup_examples: list[tuple[int, int]] = []  # (file index, frame), the first 10
        self.anomalies = np.zeros(len(ANOMALY_CODES), dtype=np.int64)
        self.ip_packets = {4: 0, 6: 0}
        self.fragments = 0
        self.hierarchy = KeyedTable(1, (SUM, SUM), cap=table_cap)
        # (hi, lo) address halves; IPv4 rows are grouped on lo alone (SplitTable)
        self.src = SplitTable(2, (0,), (SUM, SUM), cap=table_cap)
        self.dst = SplitTable(2, (0,), (SUM, SUM), cap=table_cap)
        # (a_hi, a_lo, b_hi, b_lo) with a <= b: pkts a->b, bytes a->b, pkts b->a, bytes b->a, first, last
        self.conversations = SplitTable(4, (0, 2), (SUM, SUM, SUM, SUM, MIN, MAX), cap=table_cap)
        self.ports = {
            (proto, side): np.zeros(65536, dtype=np.int64)
            for proto in ("tcp", "udp")
            for side in ("dst", "src")
        }
        self.tcp_flags = np.zeros(512, dtype=np.int64)
        self.sizes = np.zeros(len(SIZE_BUCKETS), dtype=np.int64)
        self.ts_res_ns = TIME_INTERVALS_NS[0]
        self.timeline = KeyedTable(1, (SUM, SUM), cap=1 << 62)
        self._files: dict[int, FileState] = {}
        self.checksums = ChecksumSample()

    # ------------------------------------------------------------------ update
    def update(self, c: PacketColumns, batch: RecordBatch) -> None:
        n = len(c)
        if n == 0:
            return
        wl = c.wirelen.astype(np.int64)
        cl = c.caplen.astype(np.int64)
        ts = c.ts_ns
        self.packets += n
        self.wire_bytes += int(wl.sum())
        self.captured_bytes += int(cl.sum())
        lo, hi = int(ts.min()), int(ts.max())
        self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
        self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        lts, cnt = np.unique(c.link_type, return_counts=True)
        for lt, k in zip(lts.tolist(), cnt.tolist(), strict=True):
            self.link_types[lt] = self.link_types.get(lt, 0) + k
        trunc = cl < wl
        self.snaplen_truncated += int(trunc.sum())
        self.truncated_bytes += int((wl - cl)[trunc].sum())
        self.caplen_exceeds_wirelen += int((cl > wl).sum())
        if trunc.any():
            self._hidden_layers(c, trunc)
        for i in range(len(ANOMALY_CODES)):
            self.anomalies[i] += int(np.count_nonzero(c.anomalies & np.uint32(1 << i)))

        state = self._files.setdefault(batch.file_index, FileState())
        self._ordering(ts, state)
        self._duplicates(c, batch, state)

        self.hierarchy.update([_hier_keys(c)], [np.ones(n, np.int64), wl])

        ip = c.ip_version > 0
        self.ip_packets[4] += int(np.count_nonzero(c.ip_version == 4))
        self.ip_packets[6] += int(np.count_nonzero(c.ip_version == 6))
        self.fragments += int(np.count_nonzero(c.is_fragment))
        if ip.any():
            self._addresses(c, ip, wl[ip], ts[ip])

        has_l4 = c.l4_off >= 0
        for proto_num, name in ((6, "tcp"), (17, "udp")):
            sel = has_l4 & (c.ip_proto == proto_num)
            if sel.any():
                self.ports[(name, "dst")] += np.bincount(c.dport[sel], minlength=65536)
                self.ports[(name, "src")] += np.bincount(c.sport[sel], minlength=65536)
        tcp = has_l4 & (c.ip_proto == 6)
        if tcp.any():
            self.tcp_flags += np.bincount(c.tcp_flags[tcp], minlength=512)
        top_bucket = SIZE_BUCKETS[-1]
        per_len = np.bincount(np.minimum(wl, top_bucket), minlength=top_bucket + 1)
        self.sizes += np.add.reduceat(per_len, SIZE_BUCKETS)
        self._timeline(ts, wl)
        self.checksums.update(c, batch)

    def _addresses(self, c: PacketColumns, ip: npt.NDArray[np.bool_], w: npt.NDArray[np.int64],
                   t: npt.NDArray[np.int64]) -> None:
        """Top talkers and conversations (unordered address pairs, lower address first)."""
        sh, sl, dh, dl = c.ip_src_hi[ip], c.ip_src_lo[ip], c.ip_dst_hi[ip], c.ip_dst_lo[ip]
        ones = np.ones(w.shape[0], np.int64)
        fwd, ah, al, bh, bl = lower_first(sh, sl, dh, dl)
        f = fwd.astype(np.int64)
        conv_vals = [f, w * f, 1 - f, w * (1 - f), t, t]
        self.src.update([sh, sl], [ones, w])
        self.dst.update([dh, dl], [ones, w])
        self.conversations.update([ah, al, bh, bl], conv_vals)

    def _hidden_layers(self, c: PacketColumns, trunc: npt.NDArray[np.bool_]) -> None:
        """Classify what snaplen truncation hid, per packet (one layer each, the lowest)."""
        bit = {name: np.uint32(1 << i) for i, name in enumerate(ANOMALY_CODES)}
        a = c.anomalies
        header_cut = trunc & ((a & (bit["truncated_link_header"] | bit["truncated_ip_header"])) != 0)
        # A TCP header is data-offset long (RFC 9293 §3.1): options cut = header cut.
        l4_cut = trunc & ~header_cut & (
            ((a & bit["truncated_transport_header"]) != 0) | (c.payload_off > c.caplen)
        )
        captured_payload = c.caplen.astype(np.int64) - c.payload_off
        pay_cut = trunc & ~header_cut & ~l4_cut & (c.payload_off >= 0) & (
            captured_payload < c.payload_len
        )
        # IP payload without a decoded transport header (non-first fragments, ESP,
        # tunnels, ...): whatever of the datagram was not captured is other payload.
        ip_data_cut = trunc & ~header_cut & ~l4_cut & (c.payload_off < 0) & (c.ip_version > 0) & (
            c.l3_off.astype(np.int64) + c.ip_len > c.caplen
        )
        ports = np.where(c.ip_proto == 6, 1, np.where(c.ip_proto == 17, 2, 0))
        dns = pay_cut & (ports > 0) & (np.isin(c.sport, DNS_PORTS) | np.isin(c.dport, DNS_PORTS))
        tls = pay_cut & (ports == 1) & (np.isin(c.sport, TLS_PORTS) | np.isin(c.dport, TLS_PORTS))
        http = pay_cut & (ports == 1) & (np.isin(c.sport, HTTP_PORTS) | np.isin(c.dport, HTTP_PORTS))
        other = (pay_cut & ~dns & ~tls & ~http) | ip_data_cut
        for name, m in (
            ("network_headers", header_cut),
            ("transport_headers", l4_cut),
            ("dns_messages", dns),
            ("tls_records", tls),
            ("http_messages", http),
            ("other_payload", other),
        ):
            k = int(np.count_nonzero(m))
            if k:
                self.hidden[name] = self.hidden.get(name, 0) + k

    @property
    def duplicate_examples(self) -> list[int]:
        """Frame numbers of the first ten duplicates."""
        return [frame for _, frame in self._dup_examples]

    def carry(self, c: PacketColumns, batch: RecordBatch) -> None:
        """A batch another worker counts (:mod:`netsift.partition`): keep what the next batch's
        ordering and duplicate checks need of it, count nothing."""
        n = len(c)
        if n == 0:
            return
        state = self._files.setdefault(batch.file_index, FileState())
        state.last_ts = int(c.ts_ns[-1])
        keep = min(DUP_FRAMES_BACK, n)
        fp = _fingerprints(c)
        new_tail = [(int(fp[i]), int(c.ts_ns[i]), batch.packet_bytes(i)) for i in range(n - keep, n)]
        state.tail = (state.tail + new_tail)[-DUP_FRAMES_BACK:]

    def _ordering(self, ts: npt.NDArray[np.int64], state: FileState) -> None:
        prev = np.empty_like(ts)
        prev[1:] = ts[:-1]
        prev[0] = ts[0] if state.last_ts is None else state.last_ts
        back = prev - ts
        neg = back > 0
        self.out_of_order += int(np.count_nonzero(neg))
        if neg.any():
            self.max_backwards_ns = max(self.max_backwards_ns, int(back.max()))
        state.last_ts = int(ts[-1])

    def _duplicates(self, c: PacketColumns, batch: RecordBatch, state: FileState) -> None:
        """editcap -D style duplicate frames; cheap fingerprint first, exact bytes to confirm."""
        n = len(c)
        fp = _fingerprints(c)
        tail = state.tail
        k_tail = len(tail)
        all_fp = np.concatenate([np.asarray([t[0] for t in tail], dtype=np.uint64), fp])
        all_ts = np.concatenate([np.asarray([t[1] for t in tail], dtype=np.int64), c.ts_ns])
        dup = np.zeros(n, dtype=bool)
        cand_pairs: list[tuple[int, int]] = []
        for k in range(1, DUP_FRAMES_BACK + 1):
            if all_fp.shape[0] <= k:
                break
            same = (all_fp[k:] == all_fp[:-k]) & (np.abs(all_ts[k:] - all_ts[:-k]) <= DUP_WINDOW_NS)
            idx = np.nonzero(same)[0] + k  # index in all_* of the later frame
            idx = idx[idx >= k_tail]
            cand_pairs.extend((int(i), int(i) - k) for i in idx)

        def raw(j: int) -> bytes:
            return tail[j][2] if j < k_tail else batch.packet_bytes(j - k_tail)

        for i, j in cand_pairs:
            if not dup[i - k_tail] and raw(i) == raw(j):
                dup[i - k_tail] = True
        nd = int(np.count_nonzero(dup))
        if nd:
            self.duplicates += nd
            room = 10 - len(self._dup_examples)
            if room > 0:
                self._dup_examples.extend((batch.file_index, f) for f in c.frame[dup][:room].tolist())
        keep = min(DUP_FRAMES_BACK, n)
        new_tail = [(int(fp[i]), int(c.ts_ns[i]), batch.packet_bytes(i)) for i in range(n - keep, n)]
        state.tail = (tail + new_tail)[-DUP_FRAMES_BACK:]

    def _timeline(self, ts: npt.NDArray[np.int64], wl: npt.NDArray[np.int64]) -> None:
        self.timeline.update([ts // self.ts_res_ns], [np.ones(ts.shape[0], np.int64), wl])
        while len(self.timeline) > TIME_BIN_CAP:
            self._coarsen(self._next_res(self.ts_res_ns))

    @staticmethod
    def _next_res(res: int) -> int:
        i = TIME_INTERVALS_NS.index(res)
        return TIME_INTERVALS_NS[min(i + 1, len(TIME_INTERVALS_NS) - 1)]

    def _coarsen(self, res: int) -> None:
        if res == self.ts_res_ns:
            return
        (bins,), vals = self.timeline.result()
        factor = res // self.ts_res_ns
        fresh = KeyedTable(1, (SUM, SUM), cap=1 << 62)
        fresh.update([(bins.astype(np.int64) // factor)], vals)
        self.timeline = fresh
        self.ts_res_ns = res

    # ------------------------------------------------------------------- merge
    def merge(self, other: TrafficStats) -> None:
        """Absorb ``other`` (a run over later or parallel input) into this state."""
        self.packets += other.packets
        self.wire_bytes += other.wire_bytes
        self.captured_bytes += other.captured_bytes
        firsts = [t for t in (self.first_ts, other.first_ts) if t is not None]
        lasts = [t for t in (self.last_ts, other.last_ts) if t is not None]
        self.first_ts = min(firsts, default=None)
        self.last_ts = max(lasts, default=None)
        for lt, k in other.link_types.items():
            self.link_types[lt] = self.link_types.get(lt, 0) + k
        for name, k in other.hidden.items():
            self.hidden[name] = self.hidden.get(name, 0) + k
        for attr in ("snaplen_truncated", "truncated_bytes", "caplen_exceeds_wirelen",
                     "out_of_order", "duplicates", "fragments"):
            setattr(self, attr, getattr(self, attr) + getattr(other, attr))
        self.max_backwards_ns = max(self.max_backwards_ns, other.max_backwards_ns)
        self._dup_examples = sorted(self._dup_examples + other._dup_examples)[:10]
        self.anomalies += other.anomalies
        for v in (4, 6):
            self.ip_packets[v] += other.ip_packets[v]
        for t in ("hierarchy", "src", "dst", "conversations"):
            getattr(self, t).merge(getattr(other, t))
        for key, arr in other.ports.items():
            self.ports[key] += arr
        self.tcp_flags += other.tcp_flags
        self.sizes += other.sizes
        res = max(self.ts_res_ns, other.ts_res_ns)
        self._coarsen(res)
        other._coarsen(res)
        self.timeline.merge(other.timeline)
        while len(self.timeline) > TIME_BIN_CAP:
            self._coarsen(self._next_res(self.ts_res_ns))
        self.checksums.merge(other.checksums)

    # ------------------------------------------------------------------ report
    def to_report(self, top_n: int = TOP_N) -> dict[str, Any]:
        return {
            "protocols": self._protocols(),
            "top_talkers": self._talkers(top_n),
            "conversations": self._conversations(top_n),
            "ports": self._ports(top_n),
            "tcp_flags": self._flags(),
            "packet_sizes": self._sizes(),
            "timeseries": self._timeseries(),
            "anomalies": {
                name: int(self.anomalies[i]) for i, name in enumerate(ANOMALY_CODES) if self.anomalies[i]
            },
        }

    def duration_s(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return (self.last_ts - self.first_ts) / 1e9

    def _protocols(self) -> list[dict[str, Any]]:
        (keys,), (frames, nbytes) = self.hierarchy.result()
        # Cumulative counts per path prefix, as tshark's io,phs prints them.
        acc: dict[str, list[int]] = {}
        for k, f, b in zip(keys.tolist(), frames.tolist(), nbytes.tolist(), strict=True):
            parts = _path_for(int(k)).split(":")
            for d in range(1, len(parts) + 1):
                p = ":".join(parts[:d])
                slot = acc.setdefault(p, [0, 0])
                slot[0] += f
                slot[1] += b
        total = max(self.packets, 1)

        def order(path: str) -> tuple[tuple[int, str], ...]:
            # Depth-first, heaviest child first at every level (then by name).
            parts = path.split(":")
            return tuple(
                (-acc[":".join(parts[: d + 1])][0], parts[d]) for d in range(len(parts))
            )

        return [
            {
                "path": p,
                "protocol": p.rsplit(":", 1)[-1],
                "depth": p.count(":"),
                "frames": v[0],
                "bytes": v[1],
                "frames_pct": round(100.0 * v[0] / total, 2),
            }
            for p, v in sorted(acc.items(), key=lambda kv: order(kv[0]))
        ]

    def _talkers(self, top_n: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for side, table in (("sources", self.src), ("destinations", self.dst)):
            keys, vals = table.result()
            for by, label in ((0, "by_packets"), (1, "by_bytes")):
                rows = [
                    {"address": ip_text(int(keys[0][i]), int(keys[1][i])),
                     "packets": int(vals[0][i]), "bytes": int(vals[1][i])}
                    for i in top(keys, vals, by, top_n)
                ]
                out.setdefault(label, {})[side] = rows
            out.setdefault("distinct", {})[side] = len(table)
        out["approximate"] = self.src.approximate or self.dst.approximate
        out["max_error_packets"] = max(self.src.max_dropped, self.dst.max_dropped)
        return out

    def _conversations(self, top_n: int) -> dict[str, Any]:
        keys, vals = self.conversations.result()
        total = [vals[0] + vals[2], vals[1] + vals[3]] if keys[0].shape[0] else [np.zeros(0, np.int64)] * 2
        rows = []
        for i in top(keys, [total[1], total[0]], 0, top_n):
            rows.append({
                "address_a": ip_text(int(keys[0][i]), int(keys[1][i])),
                "address_b": ip_text(int(keys[2][i]), int(keys[3][i])),
                "a_to_b_packets": int(vals[0][i]),
                "a_to_b_bytes": int(vals[1][i]),
                "b_to_a_packets": int(vals[2][i]),
                "b_to_a_bytes": int(vals[3][i]),
                "packets": int(total[0][i]),
                "bytes": int(total[1][i]),
                "first_ts": int(vals[4][i]) / 1e9,
                "last_ts": int(vals[5][i]) / 1e9,
                "duration_s": (int(vals[5][i]) - int(vals[4][i])) / 1e9,
            })
        return {
            "distinct": len(self.conversations),
            "approximate": self.conversations.approximate,
            "top_by_bytes": rows,
        }

    def _ports(self, top_n: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (proto, side), arr in self.ports.items():
            nz = np.nonzero(arr)[0]
            order = nz[np.lexsort((nz, -arr[nz]))][:top_n]
            out.setdefault(proto, {})[side] = [
                {"port": int(p), "packets": int(arr[p])} for p in order
            ]
            out[proto][f"distinct_{side}"] = int(nz.shape[0])
        return out

    def _flags(self) -> list[dict[str, Any]]:
        nz = np.nonzero(self.tcp_flags)[0]
        order = nz[np.lexsort((nz, -self.tcp_flags[nz]))]
        return [{"flags": tcp_flag_label(int(f)), "value": int(f), "packets": int(self.tcp_flags[f])}
                for f in order]

    def _sizes(self) -> list[dict[str, Any]]:
        rows = []
        for i, lo in enumerate(SIZE_BUCKETS):
            hi = SIZE_BUCKETS[i + 1] - 1 if i + 1 < len(SIZE_BUCKETS) else None
            rows.append({"min": lo, "max": hi, "packets": int(self.sizes[i])})
        return rows

    def _timeseries(self) -> dict[str, Any]:
        (bins,), (pk, by) = self.timeline.result()
        if bins.shape[0] == 0:
            return {"interval_s": 0.0, "start_ts": None, "packets": [], "bytes": []}
        b = bins.astype(np.int64)
        res = self.ts_res_ns
        lo_ns, hi_ns = int(b.min()) * res, int(b.max()) * res
        interval = next(
            (iv for iv in TIME_INTERVALS_NS
             if iv >= res and hi_ns // iv - lo_ns // iv + 1 <= MAX_TIME_BINS),
            TIME_INTERVALS_NS[-1],
        )
        coarse = b * res // interval
        first = int(coarse.min())
        idx = coarse - first
        size = int(idx.max()) + 1
        packets = np.bincount(idx, weights=pk, minlength=size).astype(np.int64)
        nbytes = np.bincount(idx, weights=by, minlength=size).astype(np.int64)
        return {
            "interval_s": interval / 1e9,
            "start_ts": first * interval / 1e9,
            "packets": packets.tolist(),
            "bytes": nbytes.tolist(),
        }
