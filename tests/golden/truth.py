"""Ground truth for the golden captures, kept by the scripts that build them.

Each ``<name>.pcap.py`` script builds packets with Scapy and hands every frame
to a :class:`Capture` together with what it *chose to build*: the protocol
path, the outer IP addresses, the transport ports and TCP flags, whether it
is a fragment, a SPAN copy, what a snaplen cut hid.  :meth:`Capture.write`
writes the capture file and ``<name>.expected.json``, whose facts are
aggregated from those declarations only: nothing here parses packet bytes
(re-dissecting would count the IP/UDP quoted by an ICMP error as traffic, and
would share its mistakes with the decoder under test).

Naming conventions (link-node names, link-type names, flag labels, size
buckets, quality rules) are netsift's documented ones: the module docstrings
of ``netsift.stats`` and ``netsift.quality``, and ``netsift.columns``.
Run ``python tests/golden/regen.py`` to rebuild every golden file.
"""

from __future__ import annotations

import ipaddress
import json
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# tcpdump.org LINKTYPE_* values used here -> the name netsift reports (columns.LINK_TYPES)
LINK_TYPE_NAMES = {
    0: "null",
    1: "ether",
    101: "raw",
    113: "linux-sll",
    127: "ieee-802-11-radiotap",
    276: "linux-sll2",
}
# First node of the protocol path for each decoded link type (stats._path_for:
# Wireshark's short protocol names; both Linux cooked versions dissect as "sll").
LINK_NODES = {0: "null", 1: "eth", 101: "raw", 113: "sll", 276: "sll"}
# RFC 9293 §3.1 control bits in bit order, then NS (RFC 3540); netsift joins them with ",".
TCP_FLAG_BITS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS")
# docs/statistics.md: the time-series interval is the smallest of these giving at most
# 600 intervals (1 ms, 10 ms, 100 ms, 1 s, 10 s, 1 min, 10 min, 1 h, 1 day, 10 days).
TIME_INTERVALS_NS = (10**6, 10**7, 10**8, 10**9, 10**10, 6 * 10**10, 6 * 10**11,
                     36 * 10**11, 864 * 10**11, 864 * 10**12)
MAX_TIME_BINS = 600
# Wireshark Statistics > Packet Lengths buckets (wire length), as netsift labels them.
SIZE_BUCKETS = (0, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120)
# snaplen classes netsift reports in quality.hidden_layers (stats._hidden_layers).
HIDDEN_LAYERS = (
    "network_headers", "transport_headers", "dns_messages", "tls_records",
    "http_messages", "other_payload",
)
HEADER_LAYERS = ("network_headers", "transport_headers")
# netsift.quality thresholds (documented in its module docstring).
DUP_DEGRADED_PCT = 1.0
OOO_DEGRADED_PCT = 0.1
LEVELS = ("good", "info", "degraded", "poor")


@dataclass
class Frame:
    """One record as built: bytes on the wire plus what the script put in them."""

    wire: bytes
    ts_ns: int
    link_type: int
    path: str  # protocol path below the link node, e.g. "vlan:ip:udp"
    src: str | None = None  # outer IP source/destination as built
    dst: str | None = None
    tcp: tuple[int, int, int] | None = None  # (sport, dport, flags) when the header is captured
    udp: tuple[int, int] | None = None  # (sport, dport) when the header is captured
    fragment: bool = False
    hidden: str | None = None  # what a snaplen cut hid ("none": cut, nothing hidden)
    anomalies: tuple[str, ...] = ()
    copy: bool = False  # a SPAN copy of a recent frame: counted as a duplicate
    repeat: bool = False  # same bytes as an earlier frame, but not a duplicate by the rules
    iface: int = 0
    data: bytes = b""  # captured bytes (filled by Capture.add)

    @property
    def wirelen(self) -> int:
        return len(self.wire)

    @property
    def full_path(self) -> str:
        # a link type netsift does not decode is one node named after the link type
        node = LINK_NODES.get(self.link_type) or LINK_TYPE_NAMES[self.link_type]
        return ":".join(p for p in (node, self.path) if p)


@dataclass
class Interface:
    link_type: int
    snaplen: int = 262144
    name: str | None = None
    tsresol: int = 6  # decimal exponent (pcapng if_tsresol)
    received: int | None = None  # ISB counters, written after the packets
    dropped: int | None = None


@dataclass
class Capture:
    """Frames of one golden capture and the facts they imply."""

    name: str  # file name, e.g. "mixed_ether.pcap"
    about: str
    interfaces: list[Interface]
    start_ns: int = 1_700_000_000_000_000_000
    step_ns: int = 1_000_000
    byte_order: str = "<"  # of a classic pcap file: "<" little-endian, ">" big-endian writer
    frames: list[Frame] = field(default_factory=list)
    extra_facts: dict[str, Any] = field(default_factory=dict)

    def add(self, pkt: Any, path: str, *, ts_ns: int | None = None, iface: int = 0,
            **declared: Any) -> Frame:
        """Append a frame built from ``pkt`` (a Scapy packet or bytes); ``ts_ns`` defaults
        to one ``step_ns`` after the previous frame.  The interface's snaplen cuts it."""
        if ts_ns is None:
            ts_ns = self.frames[-1].ts_ns + self.step_ns if self.frames else self.start_ns
        itf = self.interfaces[iface]
        f = Frame(wire=bytes(pkt), ts_ns=ts_ns, link_type=itf.link_type, path=path,
                  iface=iface, **declared)
        f.data = f.wire[: itf.snaplen]
        if len(f.data) < f.wirelen and f.hidden is None:
            raise ValueError(f"{self.name}: frame {len(self.frames) + 1} is cut by snaplen; "
                             "declare what the cut hid (hidden=...)")
        if f.hidden is not None and f.hidden != "none" and f.hidden not in HIDDEN_LAYERS:
            raise ValueError(f"unknown hidden layer {f.hidden!r}")
        self.frames.append(f)
        return f

    # ------------------------------------------------------------------ checks
    def _check_construction(self) -> None:
        """Only declared copies/repeats may repeat bytes (guards against accidental twins)."""
        seen: set[bytes] = set()
        for i, f in enumerate(self.frames, 1):
            twin = f.data in seen
            if twin != (f.copy or f.repeat):
                what = "repeats an earlier frame" if twin else "is declared a copy but is new"
                raise ValueError(f"{self.name}: frame {i} {what}")
            seen.add(f.data)

    # ------------------------------------------------------------------- facts
    def facts(self) -> dict[str, Any]:
        self._check_construction()
        fr = self.frames
        n = len(fr)
        ip = [f for f in fr if f.src is not None]
        ts = [f.ts_ns for f in fr]
        facts: dict[str, Any] = {
            "capture.packets": n,
            "capture.bytes": sum(f.wirelen for f in fr),
            "capture.captured_bytes": sum(len(f.data) for f in fr),
            "capture.first_ts": min(ts) / 1e9,
            "capture.last_ts": max(ts) / 1e9,
            "capture.snaplen_truncated": sum(len(f.data) < f.wirelen for f in fr),
            "capture.unsupported_link_type_packets":
                sum(f.link_type not in LINK_NODES for f in fr),
            "capture.ipv4_packets": sum(_version(f.src) == 4 for f in ip),
            "capture.ipv6_packets": sum(_version(f.src) == 6 for f in ip),
            "capture.ip_fragments": sum(f.fragment for f in fr),
        }
        links: dict[str, dict[str, int]] = {}
        for f in fr:
            row = links.setdefault(LINK_TYPE_NAMES[f.link_type],
                                   {"link_type": f.link_type, "packets": 0})
            row["packets"] += 1
        facts["link_types"] = links
        facts["protocols"] = _protocols(fr)
        for side in ("sources", "destinations"):
            table: dict[str, dict[str, int]] = {}
            for f in ip:
                addr = _text(f.src if side == "sources" else f.dst)
                row = table.setdefault(addr, {"packets": 0, "bytes": 0})
                row["packets"] += 1
                row["bytes"] += f.wirelen
            facts[f"talkers.{side}"] = table
            top = _unique_top(table)
            if top is not None:
                facts[f"talkers.top_{side[:-1]}"] = top
        facts["conversations"] = _conversations(ip)
        for proto in ("tcp", "udp"):
            for side in ("src", "dst"):
                counts: dict[str, int] = {}
                for f in fr:
                    ports = f.tcp if proto == "tcp" else f.udp
                    if ports is not None:
                        port = str(ports[0] if side == "src" else ports[1])
                        counts[port] = counts.get(port, 0) + 1
                facts[f"ports.{proto}.{side}"] = counts
        flags: dict[str, int] = {}
        for f in fr:
            if f.tcp is not None:
                label = _flag_label(f.tcp[2])
                flags[label] = flags.get(label, 0) + 1
        facts["tcp_flags"] = flags
        facts["packet_sizes"] = _sizes(fr)
        facts["timeseries.totals"] = {"packets": n, "bytes": facts["capture.bytes"]}
        facts.update(_timeseries(fr))
        anomalies: dict[str, int] = {}
        for f in fr:
            for a in f.anomalies:
                anomalies[a] = anomalies.get(a, 0) + 1
        facts["anomalies"] = anomalies
        facts.update(self._quality())
        facts.update({
            "inputs.0.format": "pcapng" if self.name.endswith(".pcapng") else "pcap",
            "inputs.0.status": "ok",
            "inputs.0.packets": n,
            "inputs.0.bytes": facts["capture.bytes"],
            "inputs.0.snaplen_truncated": facts["capture.snaplen_truncated"],
        })
        facts["interfaces"] = [
            {"link_type": i.link_type, "link_type_name": LINK_TYPE_NAMES[i.link_type],
             "snaplen": i.snaplen, "received": i.received, "dropped_by_interface": i.dropped}
            for i in self.interfaces
        ]
        facts.update(self.extra_facts)
        return facts

    def _quality(self) -> dict[str, Any]:
        """The verdict by the rules listed in netsift.quality's docstring."""
        fr = self.frames
        n = len(fr)
        hidden: dict[str, int] = {}
        for f in fr:
            if f.hidden not in (None, "none"):
                hidden[f.hidden] = hidden.get(f.hidden, 0) + 1
        cut = [f for f in fr if len(f.data) < f.wirelen]
        dup_frames = [i for i, f in enumerate(fr, 1) if f.copy]
        ooo = [fr[i - 1].ts_ns - fr[i].ts_ns for i in range(1, n) if fr[i].ts_ns < fr[i - 1].ts_ns]
        unsupported = sum(f.link_type not in LINK_NODES for f in fr)
        drops = sum(i.dropped or 0 for i in self.interfaces)
        reasons: dict[str, dict[str, Any]] = {}
        if cut:
            header = sum(hidden.get(k, 0) for k in HEADER_LAYERS)
            if header:
                reasons["snaplen_hides_headers"] = {
                    "level": "poor", "evidence": {"packets": header}}
            reasons["snaplen_truncated"] = {"level": "degraded", "evidence": {
                "packets": len(cut),
                "bytes_hidden": sum(f.wirelen - len(f.data) for f in cut),
                "hidden_layers": hidden,
            }}
        if dup_frames:
            pct = 100.0 * len(dup_frames) / n
            reasons["duplicates"] = {
                "level": "degraded" if pct > DUP_DEGRADED_PCT else "info",
                "evidence": {"packets": len(dup_frames), "example_frames": dup_frames[:10]}}
        if ooo:
            pct = 100.0 * len(ooo) / n
            reasons["out_of_order_timestamps"] = {
                "level": "degraded" if pct > OOO_DEGRADED_PCT else "info",
                "evidence": {"packets": len(ooo), "max_backwards_s": max(ooo) / 1e9}}
        if unsupported:
            reasons["unsupported_link_type"] = {
                "level": "degraded", "evidence": {"packets": unsupported}}
        if drops:
            reasons["capture_drops"] = {"level": "degraded", "evidence": {"packets": drops}}
        level = max((r["level"] for r in reasons.values()), key=LEVELS.index, default="good")
        return {
            "quality.verdict": "good" if level == "info" else level,
            "quality.reasons": reasons,
            "quality.hidden_layers": hidden,
            "quality.snaplen_truncated": len(cut),
            "quality.duplicates": len(dup_frames),
            "quality.out_of_order": len(ooo),
        }

    # ------------------------------------------------------------------- files
    def write(self, out_dir: Path) -> None:
        path = out_dir / self.name
        if self.name.endswith(".pcapng"):
            _write_pcapng(path, self.interfaces, self.frames)
        else:
            if len(self.interfaces) != 1:
                raise ValueError(f"{self.name}: a classic pcap file has one link type")
            _write_pcap(path, self.interfaces[0], self.frames, self.byte_order)
        stem = self.name.rsplit(".", 1)[0]
        doc = {
            "capture": self.name,
            "generated_by": f"{self.name}.py",
            "about": self.about,
            "facts": self.facts(),
        }
        (out_dir / f"{stem}.expected.json").write_text(_dumps(doc) + "\n")


def _dumps(value: Any, indent: str = "") -> str:
    """JSON that diffs well: containers of containers one item per line, flat ones on one."""
    nested = isinstance(value, (dict, list)) and any(
        isinstance(v, (dict, list)) for v in (value.values() if isinstance(value, dict) else value))
    if not nested and indent:
        return json.dumps(value)
    inner = indent + " "
    if isinstance(value, dict):
        rows = [f"{inner}{json.dumps(k)}: {_dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(rows) + "\n" + indent + "}"
    return "[\n" + ",\n".join(inner + _dumps(v, inner) for v in value) + "\n" + indent + "]"


def output_dir(script: str) -> Path:
    """Where a script writes: its own folder, or the directory given as its argument."""
    return Path(sys.argv[1]) if len(sys.argv) > 1 else Path(script).resolve().parent


# ---------------------------------------------------------------- aggregation
def _version(addr: str | None) -> int:
    return ipaddress.ip_address(addr or "").version


def _text(addr: str | None) -> str:
    return str(ipaddress.ip_address(addr or ""))


def _order_key(addr: str) -> int:
    """netsift stores IPv4 as IPv4-mapped IPv6 and orders conversation ends by that value."""
    a = ipaddress.ip_address(addr)
    return (0xFFFF << 32) | int(a) if a.version == 4 else int(a)


def _protocols(frames: list[Frame]) -> dict[str, dict[str, int]]:
    """tshark io,phs style: every path prefix counts the frames below it."""
    out: dict[str, dict[str, int]] = {}
    for f in frames:
        parts = f.full_path.split(":")
        for d in range(1, len(parts) + 1):
            row = out.setdefault(":".join(parts[:d]), {"frames": 0, "bytes": 0})
            row["frames"] += 1
            row["bytes"] += f.wirelen
    return dict(sorted(out.items()))


def _conversations(frames: list[Frame]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for f in frames:
        s, d = _text(f.src), _text(f.dst)
        a, b = sorted((s, d), key=_order_key)
        row = out.setdefault(f"{a} <-> {b}", {
            "a_to_b_packets": 0, "a_to_b_bytes": 0, "b_to_a_packets": 0, "b_to_a_bytes": 0})
        way = "a_to_b" if s == a else "b_to_a"
        row[f"{way}_packets"] += 1
        row[f"{way}_bytes"] += f.wirelen
    return out


def _unique_top(table: dict[str, dict[str, int]]) -> str | None:
    ranked = sorted(table.items(), key=lambda kv: -kv[1]["packets"])
    if not ranked or (len(ranked) > 1 and ranked[0][1]["packets"] == ranked[1][1]["packets"]):
        return None
    return ranked[0][0]


def _timeseries(frames: list[Frame]) -> dict[str, Any]:
    first, last = min(f.ts_ns for f in frames), max(f.ts_ns for f in frames)
    iv = next(i for i in TIME_INTERVALS_NS if last // i - first // i + 1 <= MAX_TIME_BINS)
    packets = [0] * (last // iv - first // iv + 1)
    nbytes = [0] * len(packets)
    for f in frames:
        packets[f.ts_ns // iv - first // iv] += 1
        nbytes[f.ts_ns // iv - first // iv] += f.wirelen
    return {
        "timeseries.interval_s": iv / 1e9,
        "timeseries.start_ts": first // iv * iv / 1e9,
        "timeseries.packets": packets,
        "timeseries.bytes": nbytes,
    }


def _flag_label(flags: int) -> str:
    names = [n for i, n in enumerate(TCP_FLAG_BITS) if flags & (1 << i)]
    return ",".join(names) if names else "none"


def _sizes(frames: list[Frame]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in frames:
        i = max(k for k, lo in enumerate(SIZE_BUCKETS) if f.wirelen >= lo)
        hi = f"{SIZE_BUCKETS[i + 1] - 1}" if i + 1 < len(SIZE_BUCKETS) else ""
        label = f"{SIZE_BUCKETS[i]}-{hi}"
        out[label] = out.get(label, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: int(kv[0].split("-")[0])))


# -------------------------------------------------------------------- writers
def _write_pcap(path: Path, itf: Interface, frames: list[Frame], byte_order: str) -> None:
    """Classic pcap through Scapy's writer; records carry caplen < wirelen when cut.

    (Setting ``pkt.wirelen`` alone is not enough: Scapy writes all the bytes it
    is given as the captured part, so the bytes are cut here first.)"""
    from scapy.utils import PcapWriter

    with PcapWriter(str(path), linktype=itf.link_type, snaplen=itf.snaplen,
                    endianness=byte_order) as w:
        w.linktype = itf.link_type  # Scapy ignores a falsy linktype (LINKTYPE_NULL is 0)
        w.write_header(None)
        for f in frames:
            sec, frac = divmod(f.ts_ns, 1_000_000_000)
            if frac % 1000:
                raise ValueError("classic pcap here is microsecond resolution")
            w.write_packet(f.data, sec=sec, usec=frac // 1000, wirelen=f.wirelen)


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _write_pcapng(path: Path, interfaces: list[Interface], frames: list[Frame]) -> None:
    """A tiny little-endian pcapng writer (draft-ietf-opsawg-pcapng): SHB, one IDB per
    interface (if_name, if_tsresol), EPBs, then an ISB per interface with counters.
    Scapy's PcapNgWriter converts timestamps through float and names interfaces by
    the packet class; golden files need exact timestamps and chosen link types."""
    out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    for itf in interfaces:
        opts = b""
        if itf.name:
            opts += _option(2, itf.name.encode())
        opts += _option(9, bytes([itf.tsresol])) + _option(0, b"")
        out.append(_block(1, struct.pack("<HHI", itf.link_type, 0, itf.snaplen) + opts))
    for f in frames:
        units = f.ts_ns // 10 ** (9 - interfaces[f.iface].tsresol)
        if units * 10 ** (9 - interfaces[f.iface].tsresol) != f.ts_ns:
            raise ValueError("timestamp finer than the interface resolution")
        out.append(_block(6, struct.pack("<5I", f.iface, units >> 32, units & 0xFFFFFFFF,
                                         len(f.data), f.wirelen) + f.data))
    last = max(f.ts_ns for f in frames)
    for i, itf in enumerate(interfaces):
        if itf.received is None and itf.dropped is None:
            continue
        units = last // 10 ** (9 - itf.tsresol)
        opts = b""
        if itf.received is not None:
            opts += _option(4, struct.pack("<Q", itf.received))
        if itf.dropped is not None:
            opts += _option(5, struct.pack("<Q", itf.dropped))
        out.append(_block(5, struct.pack("<3I", i, units >> 32, units & 0xFFFFFFFF)
                          + opts + _option(0, b"")))
    path.write_bytes(b"".join(out))
