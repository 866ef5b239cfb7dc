"""Differential test: the ``fast`` and ``scapy`` decoders must fill identical columns.

Two sources of input:

- the shared capture corpus (``../shared/corpus`` beside the repository, or
  ``$NETSIFT_CORPUS``), every capture whose link type we decode.  By default a
  deterministic sample keeps the run short; ``CI=true`` or
  ``NETSIFT_FULL_CORPUS=1`` compares every file;
- packets built with Scapy by Hypothesis strategies (VLAN stacks, IPv4 options,
  IPv6 extension headers, fragments, ICMP errors quoting a datagram, Ethernet
  padding), plus hostile variants: cut by a snaplen (caplen < wirelen), bytes
  corrupted, and random garbage.  They go through a real pcap file and
  :class:`~netsift.capture.CaptureReader`, like a capture would.

Columns are compared with ``np.array_equal``, no tolerance: a mismatch names
the capture, the column, the first frames that differ and both values.
"""

from __future__ import annotations

import csv
import ipaddress
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_Router_Alert, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NS,
    ICMPv6PacketTooBig,
    ICMPv6TimeExceeded,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Jumbo,
    RouterAlert,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter

from netsift import decode_fast, decode_scapy
from netsift.capture import CaptureReader, RecordBatch
from netsift.columns import LINK_TYPES, PacketColumns

# --- corpus ---------------------------------------------------------------------------
#: FILES.tsv ``encapsulation`` values (Wireshark's names) for link types we decode.
#: Wireshark says "rawip" for LINKTYPE_RAW and "per-packet" for a pcapng whose
#: interfaces differ (those mix decoded and counted-only link types: both
#: engines must agree on them too).
DECODED_ENCAPSULATIONS = {name for _code, name in LINK_TYPES.values()} | {"rawip", "per-packet"}
READABLE_FORMATS = {"pcap", "pcapng", "nsecpcap"}
#: Default run: about this many files, every Nth of each encapsulation ...
SAMPLE_FILES = 150
#: ... but at least this many of each, so rare link types are always exercised ...
SAMPLE_MIN_PER_ENCAPSULATION = 6
#: ... and none bigger than this (FILES.tsv packet count): those wait for the full run.
SAMPLE_MAX_PACKETS = 20_000


def corpus_dir() -> Path:
    """``$NETSIFT_CORPUS``, else ``shared/corpus`` next to the repository."""
    env = os.environ.get("NETSIFT_CORPUS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def full_run() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("NETSIFT_FULL_CORPUS") == "1"


def corpus_captures() -> list[tuple[str, int]]:
    """(relative path, packets) of the decodable captures listed in FILES.tsv, sorted by path."""
    index = corpus_dir() / "FILES.tsv"
    with index.open(newline="", encoding="utf-8") as fh:
        rows = [
            row
            for row in csv.DictReader(fh, delimiter="\t")
            if row["role"] == "capture"
            and row["encapsulation"] in DECODED_ENCAPSULATIONS
            and row["capture_format"] in READABLE_FORMATS
        ]
    if full_run():
        return sorted((row["path"], int(row["packets"] or 0)) for row in rows)
    groups: dict[str, list[dict[str, str]]] = {}
    for row in sorted(rows, key=lambda r: r["path"]):
        if int(row["packets"] or 0) <= SAMPLE_MAX_PACKETS:
            groups.setdefault(row["encapsulation"], []).append(row)
    chosen: list[tuple[str, int]] = []
    for group in groups.values():
        quota = max(SAMPLE_MIN_PER_ENCAPSULATION, round(SAMPLE_FILES * len(group) / len(rows)))
        step = max(1, len(group) // quota)
        chosen += [(row["path"], int(row["packets"] or 0)) for row in group[::step]]
    return sorted(chosen)


def corpus_params() -> list[Any]:
    root = corpus_dir()
    if not (root / "FILES.tsv").is_file():
        reason = f"capture corpus not found: no FILES.tsv in {root} (set NETSIFT_CORPUS)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-corpus")]
    return [pytest.param(path, id=path) for path, _packets in corpus_captures()]


# --- comparison -------------------------------------------------------------------------
def mismatches(fast: PacketColumns, ref: PacketColumns, shown: int = 5) -> list[str]:
    """One line per differing column: the first differing frames and both values."""
    lines = []
    for name, fast_col in fast.as_dict().items():
        ref_col = getattr(ref, name)
        if fast_col.dtype == ref_col.dtype and np.array_equal(fast_col, ref_col):
            continue
        if fast_col.shape != ref_col.shape or fast_col.dtype != ref_col.dtype:
            lines.append(
                f"  {name}: fast {fast_col.dtype}{fast_col.shape}"
                f" vs scapy {ref_col.dtype}{ref_col.shape}"
            )
            continue
        rows = np.nonzero(fast_col != ref_col)[0]
        frames = fast.frame[rows[:shown]].tolist()
        fast_vals = fast_col[rows[:shown]].tolist()
        ref_vals = ref_col[rows[:shown]].tolist()
        lines.append(
            f"  {name}: {rows.shape[0]} frame(s) differ, first {frames}: "
            f"fast={fast_vals} scapy={ref_vals}"
        )
    return lines


def compare_capture(path: Path) -> int:
    """Decode every batch of ``path`` with both engines; fail on any difference. Returns packets."""
    packets = 0
    with CaptureReader(str(path)) as reader:
        for batch in reader.batches():
            fast = decode_fast.decode(batch)
            ref = decode_scapy.decode(batch)
            diff = mismatches(fast, ref)
            assert not diff, f"{path}: engines disagree\n" + "\n".join(diff)
            packets += len(batch)
    return packets


@pytest.mark.corpus
@pytest.mark.parametrize("capture", corpus_params())
def test_corpus_capture_decodes_identically(capture: str) -> None:
    compare_capture(corpus_dir() / capture)


# --- generated packets -------------------------------------------------------------------
#: Hypothesis examples per test: more in CI / full runs.
EXAMPLES = 1500 if full_run() else 200
GENERATED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP = 0, 1, 101, 108
LINKTYPE_RAW_BSD, LINKTYPE_RAW_OPENBSD = 12, 14
LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2 = 113, 228, 229, 276
ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD
#: BSD address families written in a NULL/LOOP header: AF_INET, then AF_INET6
#: as NetBSD/OpenBSD, FreeBSD and Darwin number it
BSD_AF_INET6 = (24, 28, 30)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
payloads = st.binary(max_size=48)
ipv4_addresses = u32.map(lambda v: str(ipaddress.IPv4Address(v)))
ipv6_addresses = st.integers(0, (1 << 128) - 1).map(lambda v: str(ipaddress.IPv6Address(v)))
macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


@st.composite
def tcp_segments(draw: st.DrawFn) -> Packet:
    options = draw(
        st.sampled_from(
            [
                [],
                [("MSS", 1460)],
                [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))],
                [("MSS", 1400), ("SAckOK", b""), ("WScale", 7)],
            ]
        )
    )
    seg = TCP(
        sport=draw(u16),
        dport=draw(u16),
        seq=draw(u32),
        ack=draw(u32),
        flags=draw(st.integers(0, 0x1FF)),
        window=draw(u16),
        options=options,
    )
    if draw(st.booleans()):  # hostile data offset
        seg.dataofs = draw(st.integers(0, 15))
    return seg / Raw(draw(payloads))


@st.composite
def udp_datagrams(draw: st.DrawFn) -> Packet:
    dgram = UDP(sport=draw(u16), dport=draw(u16))
    if draw(st.integers(0, 3)) == 0:  # hostile length
        dgram.len = draw(u16)
    return dgram / Raw(draw(payloads))


@st.composite
def quoted_ipv4(draw: st.DrawFn) -> Packet:
    """The start of the datagram an ICMP error quotes (RFC 792: header + 64 bits)."""
    inner = (
        IP(src=draw(ipv4_addresses), dst=draw(ipv4_addresses))
        / UDP(sport=draw(u16), dport=draw(u16))
        / Raw(draw(payloads))
    )
    keep = draw(st.sampled_from([28, None]))
    return Raw(bytes(inner)[:keep])


@st.composite
def icmp_messages(draw: st.DrawFn) -> Packet:
    kind = draw(st.sampled_from(["echo", "error", "other"]))
    if kind == "echo":
        return ICMP(type=draw(st.sampled_from([0, 8])), id=draw(u16), seq=draw(u16)) / Raw(
            draw(payloads)
        )
    if kind == "error":
        return ICMP(type=draw(st.sampled_from([3, 4, 5, 11, 12])), code=draw(u8)) / draw(
            quoted_ipv4()
        )
    return ICMP(type=draw(u8), code=draw(u8)) / Raw(draw(payloads))


@st.composite
def icmpv6_messages(draw: st.DrawFn) -> Packet:
    kind = draw(st.sampled_from(["echo", "error", "nd", "other"]))
    if kind == "echo":
        cls = draw(st.sampled_from([ICMPv6EchoRequest, ICMPv6EchoReply]))
        return cls(id=draw(u16), seq=draw(u16), data=draw(payloads))
    if kind == "error":
        cls = draw(st.sampled_from([ICMPv6DestUnreach, ICMPv6PacketTooBig, ICMPv6TimeExceeded]))
        inner = IPv6(src=draw(ipv6_addresses), dst=draw(ipv6_addresses)) / UDP(
            sport=draw(u16), dport=draw(u16)
        )
        return cls() / inner
    if kind == "nd":
        return ICMPv6ND_NS(tgt=draw(ipv6_addresses))
    return Raw(bytes([draw(u8), draw(u8), 0, 0]) + draw(payloads))


def transports(v6: bool) -> st.SearchStrategy[tuple[int, Packet]]:
    """(IP protocol number, transport packet)."""
    icmp = icmpv6_messages().map(lambda p: (58, p)) if v6 else icmp_messages().map(lambda p: (1, p))
    # ICMP over IPv6 and ICMPv6 over IPv4 are wrong, and decoded by protocol number all the same.
    odd_icmp = (
        icmp_messages().map(lambda p: (1, p)) if v6 else icmpv6_messages().map(lambda p: (58, p))
    )
    return st.one_of(
        tcp_segments().map(lambda p: (6, p)),
        udp_datagrams().map(lambda p: (17, p)),
        icmp,
        st.tuples(st.sampled_from([4, 41, 47, 50, 59, 132]), payloads.map(Raw)),  # not decoded
        odd_icmp,
    )


@st.composite
def ipv4_packets(draw: st.DrawFn) -> Packet:
    proto, l4 = draw(transports(v6=False))
    fragment = draw(st.sampled_from(["none", "first", "later"]))
    options = draw(
        st.sampled_from(
            [
                [],
                [IPOption_NOP()] * 4,
                [IPOption_Router_Alert()],
                [IPOption_RR(routers=["1.2.3.4"])],
            ]
        )
    )
    ip = IP(
        src=draw(ipv4_addresses),
        dst=draw(ipv4_addresses),
        ttl=draw(u8),
        id=draw(u16),
        tos=draw(u8),
        proto=proto,
        options=options,
    )
    if fragment == "first":
        ip.flags = "MF"
    elif fragment == "later":  # a non-first fragment: the bytes are the middle of a datagram
        ip.flags = draw(st.sampled_from([0, 1, 2]))
        ip.frag = draw(st.integers(1, 0x1FFF))
        l4 = Raw(bytes(l4)[: draw(st.integers(0, 40))])
    else:
        ip.flags = draw(st.sampled_from([0, 2]))
    if draw(st.integers(0, 4)) == 0:  # hostile lengths
        ip.len = draw(u16)
        ip.ihl = draw(st.one_of(st.none(), st.integers(0, 15)))
    return ip / l4


@st.composite
def ipv6_extension_headers(draw: st.DrawFn, nh: int) -> tuple[int, list[Packet]]:
    """A chain of extension headers ending in protocol ``nh``: (first next header, headers)."""
    numbers = {
        "hbh": 0,
        "dst": 60,
        "rt": 43,
        "frag": 44,
        "ah": 51,
        "mh": 135,
        "hip": 139,
        "shim6": 140,
    }
    kinds = draw(
        st.lists(st.sampled_from(sorted(numbers)), max_size=draw(st.sampled_from([3, 10])))
    )
    headers: list[Packet] = []
    for index, kind in enumerate(kinds):
        nxt = numbers[kinds[index + 1]] if index + 1 < len(kinds) else nh
        if kind == "hbh":
            opts = draw(st.sampled_from([[], [RouterAlert()], [Jumbo(jumboplen=70_000)]]))
            headers.append(IPv6ExtHdrHopByHop(nh=nxt, options=opts))
        elif kind == "dst":
            headers.append(IPv6ExtHdrDestOpt(nh=nxt))
        elif kind == "rt":
            headers.append(
                IPv6ExtHdrRouting(nh=nxt, addresses=draw(st.lists(ipv6_addresses, max_size=2)))
            )
        elif kind == "frag":
            offset = draw(st.sampled_from([0, 0, 1, 185, 0x1FFF]))
            headers.append(
                IPv6ExtHdrFragment(nh=nxt, offset=offset, m=draw(st.integers(0, 1)), id=draw(u32))
            )
        elif kind in ("mh", "hip", "shim6"):  # RFC 8200 §4.8 generic layout, built as bytes
            units = draw(st.integers(0, 3))
            body = draw(st.binary(min_size=8 * units + 6, max_size=8 * units + 6))
            headers.append(Raw(bytes([nxt, units]) + body))
        else:
            icv = b"\0" * draw(st.sampled_from([4, 12]))
            headers.append(
                AH(
                    nh=nxt,
                    payloadlen=(12 + len(icv)) // 4 - 2,
                    spi=draw(u32),
                    seq=draw(u32),
                    icv=icv,
                )
            )
    first = numbers[kinds[0]] if kinds else nh
    return first, headers


@st.composite
def ipv6_packets(draw: st.DrawFn) -> Packet:
    proto, l4 = draw(transports(v6=True))
    first, headers = draw(ipv6_extension_headers(proto))
    ip6 = IPv6(
        src=draw(ipv6_addresses),
        dst=draw(ipv6_addresses),
        hlim=draw(u8),
        tc=draw(u8),
        fl=draw(st.integers(0, 0xFFFFF)),
        nh=first,
    )
    if any(isinstance(h, IPv6ExtHdrFragment) and h.offset for h in headers):
        l4 = Raw(bytes(l4)[: draw(st.integers(0, 40))])
    if draw(st.integers(0, 4)) == 0:  # hostile payload length, or 0 (TSO / jumbogram)
        ip6.plen = draw(st.sampled_from([0, 0, 1, 8, 0xFFFF]))
    packet: Packet = ip6
    for header in headers:
        packet = packet / header
    return packet / l4


#: (EtherType, network-layer bytes) for the link-layer builders below
network_layers = st.one_of(
    ipv4_packets().map(lambda p: (ETHERTYPE_IPV4, bytes(p))),
    ipv6_packets().map(lambda p: (ETHERTYPE_IPV6, bytes(p))),
    st.tuples(st.sampled_from([0x0806, 0x88CC, 0x8847, 0x0800, 0x86DD, 60]), payloads),
)
ip_layers = st.one_of(
    ipv4_packets().map(lambda p: (ETHERTYPE_IPV4, bytes(p))),
    ipv6_packets().map(lambda p: (ETHERTYPE_IPV6, bytes(p))),
)


@st.composite
def ethernet_frames(draw: st.DrawFn) -> bytes:
    eth_type, l3 = draw(network_layers)
    tpids = draw(
        st.lists(
            st.sampled_from([0x8100, 0x88A8, 0x9100, 0x9200]),
            max_size=draw(st.sampled_from([2, 10])),
        )
    )
    types = [*tpids, eth_type]
    frame: Packet = Ether(dst=draw(macs), src=draw(macs), type=types[0])
    for tpid, nxt in zip(tpids, types[1:], strict=True):
        tag = Dot1AD if tpid == 0x88A8 else Dot1Q
        frame = frame / tag(prio=draw(st.integers(0, 7)), vlan=draw(st.integers(0, 4095)), type=nxt)
    data = bytes(frame) + l3
    padding = draw(st.sampled_from(["none", "zeros", "random"]))
    if padding == "zeros" and len(data) < 60:  # the 802.3 minimum frame, without FCS
        data += b"\0" * (60 - len(data))
    elif padding == "random":
        data += draw(st.binary(max_size=24))
    return data


@st.composite
def sll_frames(draw: st.DrawFn) -> bytes:
    eth_type, l3 = draw(network_layers)
    header = CookedLinux(
        pkttype=draw(st.integers(0, 4)),
        lladdrtype=1,
        lladdrlen=6,
        src=draw(st.binary(min_size=8, max_size=8)),
        proto=eth_type,
    )
    return bytes(header) + l3


@st.composite
def sll2_frames(draw: st.DrawFn) -> bytes:
    eth_type, l3 = draw(network_layers)
    header = CookedLinuxV2(
        proto=eth_type,
        ifindex=draw(u32),
        lladdrtype=1,
        pkttype=draw(st.integers(0, 4)),
        lladdrlen=6,
        src=draw(st.binary(min_size=8, max_size=8)),
    )
    return bytes(header) + l3


@st.composite
def loopback_frames(draw: st.DrawFn, network_order: bool) -> bytes:
    eth_type, l3 = draw(ip_layers)
    family = 2 if eth_type == ETHERTYPE_IPV4 else draw(st.sampled_from(BSD_AF_INET6))
    family = draw(st.sampled_from([family, family, draw(u32)]))
    order = "big" if network_order or draw(st.booleans()) else "little"
    return family.to_bytes(4, order) + l3


#: link type -> strategy for one record's bytes (as captured in full)
FRAMES: dict[int, st.SearchStrategy[bytes]] = {
    LINKTYPE_ETHERNET: ethernet_frames(),
    LINKTYPE_RAW: ip_layers.map(lambda t: t[1]),
    LINKTYPE_RAW_BSD: ip_layers.map(lambda t: t[1]),
    LINKTYPE_RAW_OPENBSD: ip_layers.map(lambda t: t[1]),
    LINKTYPE_LINUX_SLL: sll_frames(),
    LINKTYPE_LINUX_SLL2: sll2_frames(),
    LINKTYPE_NULL: loopback_frames(network_order=False),
    LINKTYPE_LOOP: loopback_frames(network_order=True),
    LINKTYPE_IPV4: ipv4_packets().map(bytes),
    LINKTYPE_IPV6: ipv6_packets().map(bytes),
}


@st.composite
def hostile(draw: st.DrawFn, frames: st.SearchStrategy[bytes]) -> tuple[bytes, int]:
    """One record: (captured bytes, wire length), perhaps cut by a snaplen or corrupted."""
    data = draw(frames)
    wirelen = len(data)
    damage = draw(st.sampled_from(["none", "none", "snaplen", "corrupt", "both", "wirelen"]))
    if damage in ("corrupt", "both") and data:
        buf = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            buf[draw(st.integers(0, len(buf) - 1))] = draw(u8)
        data = bytes(buf)
    if damage in ("snaplen", "both"):
        data = data[: draw(st.integers(0, len(data)))]
    if damage == "wirelen":  # a record header that lies either way
        wirelen = draw(st.integers(0, len(data) + 64))
    return data, wirelen


def garbage_records() -> st.SearchStrategy[tuple[bytes, int]]:
    return st.binary(max_size=120).flatmap(
        lambda b: st.tuples(st.just(b), st.integers(len(b), len(b) + 64) | st.integers(0, len(b)))
    )


@pytest.fixture(scope="module")
def pcap_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("differential") / "generated.pcap"


def write_pcap(path: Path, link_type: int, records: list[tuple[bytes, int]]) -> None:
    """A pcap of ``records`` (captured bytes, wire length): caplen < wirelen is a snaplen cut."""
    with PcapWriter(str(path), linktype=link_type, sync=False) as writer:
        writer.linktype = link_type  # Scapy ignores a falsy ``linktype=`` (LINKTYPE_NULL is 0)
        writer.write_header(None)
        for i, (data, wirelen) in enumerate(records):
            writer.write_packet(data, sec=1_700_000_000 + i, usec=i, wirelen=wirelen)


def check_generated(path: Path, link_type: int, records: list[tuple[bytes, int]]) -> None:
    write_pcap(path, link_type, records)
    packets = 0
    with CaptureReader(str(path)) as reader:
        for batch in reader.batches():
            fast = decode_fast.decode(batch)
            ref = decode_scapy.decode(batch)
            diff = mismatches(fast, ref)
            detail = "\n".join(
                f"  frame {n}: linktype {link_type} wirelen {w} bytes {d.hex()}"
                for n, (d, w) in enumerate(records, start=1)
            )
            assert not diff, (
                "generated capture: engines disagree\n" + "\n".join(diff) + "\n" + detail
            )
            packets += len(batch)
        assert not reader.warnings, reader.warnings
    assert packets == len(records)


def captures_of(
    records: Callable[[st.SearchStrategy[bytes]], st.SearchStrategy[tuple[bytes, int]]],
) -> st.SearchStrategy[tuple[int, list[tuple[bytes, int]]]]:
    """(link type, records) for one generated capture file."""
    return st.sampled_from(sorted(FRAMES)).flatmap(
        lambda lt: st.tuples(st.just(lt), st.lists(records(FRAMES[lt]), min_size=1, max_size=6))
    )


def intact(frames: st.SearchStrategy[bytes]) -> st.SearchStrategy[tuple[bytes, int]]:
    return frames.map(lambda b: (b, len(b)))


@GENERATED
@given(capture=captures_of(intact))
def test_generated_packets_decode_identically(
    pcap_path: Path, capture: tuple[int, list[tuple[bytes, int]]]
) -> None:
    check_generated(pcap_path, *capture)


@GENERATED
@given(capture=captures_of(hostile))
def test_cut_and_corrupted_packets_decode_identically(
    pcap_path: Path, capture: tuple[int, list[tuple[bytes, int]]]
) -> None:
    check_generated(pcap_path, *capture)


@GENERATED
@given(
    link_type=st.sampled_from([*sorted(FRAMES), 9, 105]),  # and two we only count
    records=st.lists(garbage_records(), min_size=1, max_size=6),
)
def test_garbage_decodes_identically(
    pcap_path: Path, link_type: int, records: list[tuple[bytes, int]]
) -> None:
    check_generated(pcap_path, link_type, records)


def test_generators_cover_every_decoded_link_type() -> None:
    assert set(FRAMES) == set(LINK_TYPES)


def test_empty_batch_decodes_identically(pcap_path: Path) -> None:
    write_pcap(pcap_path, LINKTYPE_ETHERNET, [])
    with CaptureReader(str(pcap_path)) as reader:
        assert list(reader.batches()) == []
    empty = RecordBatch(
        buf=np.zeros(0, np.uint8),
        off=np.zeros(0, np.int64),
        caplen=np.zeros(0, np.int64),
        wirelen=np.zeros(0, np.int64),
        ts_ns=np.zeros(0, np.int64),
        link_type=np.zeros(0, np.int32),
        iface=np.zeros(0, np.int32),
        first_frame=1,
    )
    assert not mismatches(decode_fast.decode(empty), decode_scapy.decode(empty))


def test_scapy_is_imported_only_when_the_reference_decodes() -> None:
    code = (
        "import sys, netsift, netsift.decode_scapy;"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'scapy');"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
