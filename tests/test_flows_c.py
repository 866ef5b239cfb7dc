"""Differential test: the C flow table (``netsift._flows``) must equal ``flows.FlowTable``.

Both engines get the same decoded batches (and the same reassembled IP
datagrams, as the pipeline feeds them) and must produce identical finished
flows, in the same order, field for field (:data:`netsift.flows.RAW_FIELDS`
plus ``conn_state``), and identical ``skipped``/``expired``/``flows_created``/
``peak_flows``/``live`` counters after every batch.

Inputs:

- the shared capture corpus: every capture of ``zeek/INDEX.tsv``, Arkime's
  ``tests/pcap/*.pcap``, the StopDDoS captures and a deterministic sample of
  the suricata-verify and nDPI captures; ``CI=true`` or
  ``NETSIFT_FULL_CORPUS=1`` adds every suricata-verify, nDPI, tcpdump,
  PcapPlusPlus and chrissanders capture;
- captures built with Scapy: each expiry rule (idle split, attempt timeout,
  close delay, port reuse, active timeout, the live-flow cap), ICMP and VLAN
  keys, and hostile values (sequence numbers around 2**32, every flag
  combination, zero-length and truncated transport headers), plus seeded
  random TCP/UDP/ICMP traffic on a few endpoints with small timeouts.
"""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter

from netsift.capture import CaptureReader
from netsift.decode_fast import decode
from netsift.defrag import FragmentTracker
from netsift.flows import RAW_FIELDS, FlowConfig, FlowOut, FlowRecord, FlowTable, flow_id
from netsift.pipeline import _datagram_batch

_flows = pytest.importorskip("netsift._flows")

from netsift.flows_fast import AVAILABLE, CFlowTable, make_flow_table  # noqa: E402

CORPUS = Path(
    os.environ.get("NETSIFT_CORPUS")
    or Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
)
#: Default run: every Nth suricata-verify / nDPI capture (all of them in the full run).
SAMPLE_STEP = 4
FULL_ONLY_SOURCES = ("tcpdump/", "pcapplusplus/", "chrissanders-packets/")


def full_run() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("NETSIFT_FULL_CORPUS") == "1"


# --- running both engines ---------------------------------------------------------------
def rows(records: list[FlowRecord]) -> list[tuple[Any, ...]]:
    return [(*(getattr(r, f) for f in RAW_FIELDS), r.conn_state, r.seed) for r in records]


def counters(table: Any) -> tuple[Any, ...]:
    return (
        dict(table.skipped),
        dict(table.expired),
        table.flows_created,
        table.peak_flows,
        table.live,
    )


def first_difference(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> str:
    names = (*RAW_FIELDS, "conn_state", "seed")
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            diff = {n: (u, v) for n, u, v in zip(names, x, y, strict=False) if u != v}
            return f"flow #{i} differs (python, c): {diff}; python flow: {dict(zip(names, x, strict=False))}"
    return f"{len(a)} python flows, {len(b)} C flows"


def compare(
    path: Path | str, config: FlowConfig | None = None, chunk_bytes: int | None = None
) -> int:
    """Run both engines over a capture (fragments reassembled); assert equality; return flows."""
    py, c = FlowTable(config), CFlowTable(config)
    frags = FragmentTracker()
    out_py: list[FlowRecord] = []
    out_c: list[FlowRecord] = []
    ids: set[int] = set()
    kw = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    with CaptureReader(str(path), **kw) as rd:
        for batch in rd.batches():
            cols = decode(batch)
            done = frags.update(cols, batch)
            joined = []
            for table, out in ((py, out_py), (c, out_c)):
                fo = FlowOut(len(cols))
                table.update(cols, batch, out=fo)
                joined.append((fo.fid, fo.seen))
                if done:
                    b = _datagram_batch(done)
                    dcols = decode(b)
                    fo = FlowOut(len(dcols))
                    table.update_reassembled(
                        dcols, b, [(d.file_index, d.frames[-1]) for d in done], out=fo
                    )
                    joined.append((fo.fid, fo.seen))
                out += table.drain()
            assert counters(c) == counters(py), f"{path}: counters differ after a batch"
            half = len(joined) // 2
            for (fp, sp), (fc, sc) in zip(joined[:half], joined[half:], strict=True):
                assert np.array_equal(fp, fc) and np.array_equal(sp, sc), f"{path}: FlowOut differs"
                ids.update((fp[fp >= 0] >> 1).tolist())
    for table, out in ((py, out_py), (c, out_c)):
        table.finish()
        out += table.drain()
    a, b = rows(out_py), rows(out_c)
    assert a == b, f"{path}: {first_difference(a, b)}"
    assert counters(c) == counters(py)
    assert c.live == 0
    # every packet's flow id names a record, and every record was joined by some packet
    assert ids == {flow_id(r.first_file, r.first_frame) for r in out_py}
    return len(a)


# --- corpus ---------------------------------------------------------------------------------
def corpus_captures() -> list[str]:
    files = CORPUS / "FILES.tsv"
    if not files.is_file():
        return []
    with files.open(newline="", encoding="utf-8") as fh:
        listed = {
            row["path"]: row
            for row in csv.DictReader(fh, delimiter="\t")
            if row["role"] == "capture" and row["capture_format"] in ("pcap", "pcapng")
        }
    chosen: set[str] = set()
    zeek_index = CORPUS / "zeek" / "INDEX.tsv"
    if zeek_index.is_file():
        with zeek_index.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                path = "zeek/" + row["trace"]
                if path in listed:
                    chosen.add(path)
    for path in listed:
        if (path.startswith("arkime/tests/pcap/") and path.endswith(".pcap")) or path.startswith(
            "stopddos-packet-captures/"
        ):
            chosen.add(path)
    for source in ("suricata-verify/", "ndpi/"):
        group = sorted(p for p in listed if p.startswith(source))
        chosen.update(group if full_run() else group[::SAMPLE_STEP])
    if full_run():
        chosen.update(p for p in listed if p.startswith(FULL_ONLY_SOURCES))
    return sorted(chosen)


@pytest.mark.corpus
@pytest.mark.parametrize("rel", corpus_captures() or ["(no corpus)"])
def test_corpus_capture(corpus_dir: Path, rel: str) -> None:
    if rel == "(no corpus)":
        pytest.skip("capture corpus not found")
    compare(corpus_dir / rel)


@pytest.mark.corpus
def test_corpus_small_limits(corpus_dir: Path) -> None:
    """A few busy captures with tiny timeouts and a small cap: every expiry path fires."""
    config = FlowConfig(
        tcp_timeout_s=2, udp_timeout_s=1, icmp_timeout_s=1, other_timeout_s=1, tcp_attempt_s=0.5,
        tcp_close_s=0.5, active_timeout_s=3, max_flows=20,
    )  # fmt: skip
    picked = [p for p in corpus_captures() if p.startswith(("stopddos", "arkime"))][::7]
    assert picked
    for rel in picked:
        compare(corpus_dir / rel, config, chunk_bytes=4096)


# --- generated captures -----------------------------------------------------------------------
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
A4, B4, C4 = "10.0.0.1", "10.0.0.2", "10.0.0.3"
A6, B6 = "2001:db8::1", "2001:db8::2"


def eth(src: str = MAC_A, dst: str = MAC_B) -> Ether:
    return Ether(src=src, dst=dst)


def write(
    tmp_path: Path, packets: list[tuple[float, Packet | bytes]], name: str = "gen.pcap"
) -> Path:
    path = tmp_path / name
    with PcapWriter(str(path), linktype=1, sync=True, nano=True) as w:
        for ts, pkt in packets:
            if isinstance(pkt, bytes):
                pkt = Ether(pkt)
            pkt.time = ts
            w.write(pkt)
    return path


def tcp(ts: float, src: str, dst: str, sp: int, dp: int, flags: str | int, seq: int = 0,
        ack: int = 0, data: bytes = b"", win: int = 8192) -> tuple[float, Packet]:  # fmt: skip
    pkt = (
        eth()
        / IP(src=src, dst=dst)
        / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack, window=win)
    )
    return ts, (pkt / Raw(data) if data else pkt)


def udp(
    ts: float, src: str, dst: str, sp: int, dp: int, data: bytes = b"x"
) -> tuple[float, Packet]:
    return ts, eth() / IP(src=src, dst=dst) / UDP(sport=sp, dport=dp) / Raw(data)


def handshake(t: float, sp: int, isn: int = 1000, risn: int = 5000) -> list[tuple[float, Packet]]:
    return [
        tcp(t, A4, B4, sp, 80, "S", isn),
        tcp(t + 0.01, B4, A4, 80, sp, "SA", risn, isn + 1),
        tcp(t + 0.02, A4, B4, sp, 80, "A", isn + 1, risn + 1),
        tcp(t + 0.03, A4, B4, sp, 80, "PA", isn + 1, risn + 1, b"GET / HTTP/1.0\r\n\r\n"),
        tcp(t + 0.04, B4, A4, 80, sp, "PA", risn + 1, isn + 19, b"HTTP/1.0 200 OK\r\n\r\n"),
    ]


def close(t: float, sp: int, isn: int = 1000, risn: int = 5000) -> list[tuple[float, Packet]]:
    return [
        tcp(t, A4, B4, sp, 80, "FA", isn + 19, risn + 20),
        tcp(t + 0.01, B4, A4, 80, sp, "FA", risn + 20, isn + 20),
        tcp(t + 0.02, A4, B4, sp, 80, "A", isn + 20, risn + 21),
    ]


SMALL = FlowConfig(
    tcp_timeout_s=30, udp_timeout_s=10, icmp_timeout_s=10, other_timeout_s=10, tcp_attempt_s=5,
    tcp_close_s=5,
)  # fmt: skip


def by_reason(path: Path, config: FlowConfig | None) -> dict[str, int]:
    table = CFlowTable(config)
    with CaptureReader(str(path)) as rd:
        for batch in rd.batches():
            table.update(decode(batch), batch)
    table.finish()
    return {k: v for k, v in table.expired.items() if v}


def test_idle_split(tmp_path: Path) -> None:
    pkts = [udp(0, A4, B4, 5000, 53), udp(1, B4, A4, 53, 5000), udp(20, A4, B4, 5000, 53)]
    pkts += [udp(20 + 11 * k, A4, C4, 6000, 7000) for k in range(4)]
    pkts += [*handshake(100, 40000), tcp(200, A4, B4, 40000, 80, "A", 1019, 5021)]
    path = write(tmp_path, pkts)
    assert compare(path, SMALL) >= 8
    assert by_reason(path, SMALL)["idle_timeout"] >= 5


def test_attempt_timeout(tmp_path: Path) -> None:
    pkts = [tcp(0, A4, B4, 40001, 80, "S", 77), tcp(3, A4, B4, 40001, 80, "S", 77)]
    pkts += [tcp(9, A4, B4, 40001, 80, "S", 77), tcp(9.5, C4, B4, 40002, 81, "S", 1)]
    pkts += [udp(20, A4, B4, 1, 2)]  # the sweep after this batch ends the second attempt
    path = write(tmp_path, pkts)
    compare(path, SMALL)
    assert by_reason(path, SMALL).get("attempt_timeout", 0) >= 2


def test_close_delay_and_linger(tmp_path: Path) -> None:
    pkts = handshake(0, 40010) + close(1, 40010)
    pkts += [tcp(7, A4, B4, 40010, 80, "A", 1020, 5021)]  # after tcp_close_s: a new flow
    pkts += [*handshake(10, 40011), tcp(11, B4, A4, 80, 40011, "R", 5020)]  # reset, linger
    pkts += [*handshake(20, 40012), tcp(21, A4, B4, 40012, 80, "FA", 1019, 5020)]  # half closed
    pkts += [tcp(40, A4, C4, 1, 2, "A", 5, 5)]
    path = write(tmp_path, pkts)
    compare(path, SMALL)
    compare(path, SMALL, chunk_bytes=200)
    assert by_reason(path, SMALL).get("closed", 0) >= 2


def test_port_reuse(tmp_path: Path) -> None:
    pkts = handshake(0, 40020) + close(1, 40020)
    pkts += handshake(2, 40020, isn=900_000, risn=77)  # new ISN within tcp_close_s
    pkts += [tcp(3, A4, B4, 40020, 80, "S", 900_000)]  # a retransmitted SYN: not reuse
    pkts += [tcp(3.5, A4, B4, 40020, 80, "S", 123_456)]  # active reuse (new ISN, not closed)
    pkts += [tcp(3.6, B4, A4, 80, 40021, "SA", 1, 2)]  # a SYN-ACK first (half connection)
    pkts += [tcp(3.7, B4, A4, 80, 40021, "SA", 50, 2)]
    path = write(tmp_path, pkts)
    compare(path, SMALL)
    assert by_reason(path, SMALL).get("port_reuse", 0) >= 2


def test_active_timeout(tmp_path: Path) -> None:
    config = FlowConfig(active_timeout_s=2)
    pkts = [udp(0.5 * k, A4, B4, 5353, 5353) for k in range(20)]
    pkts += handshake(0, 40030) + [
        tcp(0.1 + 0.5 * k, A4, B4, 40030, 80, "A", 1019, 5021) for k in range(12)
    ]
    path = write(tmp_path, pkts)
    compare(path, config)
    compare(path, config, chunk_bytes=300)
    assert by_reason(path, config)["active_timeout"] >= 4


def test_max_flows_cap(tmp_path: Path) -> None:
    rnd = random.Random(7)
    pkts: list[tuple[float, Packet]] = []
    for k in range(1000):
        t = k * 0.001
        kind = rnd.randrange(3)
        if kind == 0:
            pkts.append(udp(t, A4, B4, 10000 + k, 53))
        elif kind == 1:
            pkts.append(tcp(t, A4, B4, 20000 + k, 443, "S", k))  # attempts: the short class
        else:
            pkts += handshake(t, 30000 + k)[:3]
        if k % 10 == 0 and k:  # touch an old flow again
            pkts.append(udp(t, B4, A4, 53, 10000 + rnd.randrange(k)))
    path = write(tmp_path, pkts)
    config = FlowConfig(max_flows=50)
    assert compare(path, config) >= 1000
    assert compare(path, config, chunk_bytes=1500) >= 1000
    assert by_reason(path, config)["evicted"] > 900
    assert compare(path, FlowConfig(max_flows=1)) >= 1000


def test_icmp_and_vlan_keys(tmp_path: Path) -> None:
    pkts: list[tuple[float, Packet]] = []
    for ident in (1, 2):
        for seq in range(3):
            t = ident + seq * 0.1
            pkts.append((t, eth() / IP(src=A4, dst=B4) / ICMP(type=8, id=ident, seq=seq)))
            pkts.append((t + 0.01, eth() / IP(src=B4, dst=A4) / ICMP(type=0, id=ident, seq=seq)))
    pkts.append((4, eth() / IP(src=B4, dst=C4) / ICMP(type=0, id=9)))  # a reply first: flipped
    for typ, code in ((3, 3), (11, 0), (5, 1), (13, 0), (14, 0), (15, 0), (16, 0), (17, 0), (18, 0), (10, 0), (9, 0), (42, 7)):  # fmt: skip
        pkts.append((5, eth() / IP(src=A4, dst=C4) / ICMP(type=typ, code=code)))
    pkts.append((6, eth() / IPv6(src=A6, dst=B6) / ICMPv6EchoRequest(id=5)))
    pkts.append((6.1, eth() / IPv6(src=B6, dst=A6) / ICMPv6EchoReply(id=5)))
    pkts.append((6.2, eth() / IPv6(src=B6, dst=A6) / ICMPv6EchoReply(id=6)))
    for vlan in (10, 20):
        pkts.append((7, eth() / Dot1Q(vlan=vlan) / IP(src=A4, dst=B4) / UDP(sport=1, dport=2)))
        pkts.append((7.1, eth() / Dot1Q(vlan=vlan) / Dot1Q(vlan=vlan + 1) / IP(src=B4, dst=A4) / UDP(sport=2, dport=1)))  # fmt: skip
    pkts.append((8, eth() / IP(src=A4, dst=B4, proto=50) / Raw(b"esp-payload")))
    pkts.append((8.1, eth() / IP(src=B4, dst=A4, proto=47) / Raw(b"gre")))
    pkts.append((9, eth() / ARP()))
    path = write(tmp_path, pkts)
    assert compare(path) >= 20
    assert compare(path, FlowConfig(vlan_in_key=False)) >= 18
    assert compare(path, FlowConfig(server_ports=frozenset())) >= 20


def test_hostile_values(tmp_path: Path) -> None:
    top = 2**32
    pkts: list[tuple[float, Packet | bytes]] = []
    # sequence and acknowledgement numbers wrapping around 2**32
    isn, risn = top - 30, top - 5
    pkts += [
        tcp(0, A4, B4, 41000, 80, "S", isn),
        tcp(0.01, B4, A4, 80, 41000, "SA", risn, isn + 1),
        tcp(0.02, A4, B4, 41000, 80, "A", isn + 1, (risn + 1) % top),
    ]
    seq, rseq = isn + 1, (risn + 1) % top
    for k in range(40):
        data = bytes(100)
        pkts.append(tcp(0.03 + k * 0.01, A4, B4, 41000, 80, "PA", seq % top, rseq, data))
        pkts.append(
            tcp(0.035 + k * 0.01, B4, A4, 80, 41000, "PA", rseq, (seq + 100) % top, bytes(7))
        )
        if k % 7 == 3:  # a retransmission and a duplicate ACK
            pkts.append(tcp(0.036 + k * 0.01, A4, B4, 41000, 80, "PA", seq % top, rseq, data))
            pkts.append(tcp(0.037 + k * 0.01, B4, A4, 80, 41000, "A", rseq, (seq + 100) % top))
        seq += 100
        rseq = (rseq + 7) % top
    pkts.append(tcp(1, A4, B4, 41000, 80, "A", seq % top, 0))  # a zero ACK far ahead
    pkts.append(tcp(1.01, A4, B4, 41000, 80, "A", (seq + 5_000_000) % top, rseq, win=0))
    # every flag combination, on fresh and on established connections
    for flags in range(512):
        pkts.append(tcp(2 + flags * 0.001, C4, B4, 42000 + flags % 7, 443, flags, flags * 1000, flags, b"x" * (flags % 3)))  # fmt: skip
        pkts.append(tcp(2 + flags * 0.001, A4, B4, 41000, 80, flags, (seq + flags) % top, rseq, win=flags % 2))  # fmt: skip
    # zero-length and truncated transport headers, a fragment, garbage ethertype
    ip_tcp = bytes(eth() / IP(src=A4, dst=B4) / TCP(sport=1, dport=2))
    ip_udp = bytes(eth() / IP(src=A4, dst=B4) / UDP(sport=1, dport=2))
    ip_icmp = bytes(eth() / IP(src=A4, dst=B4) / ICMP(type=8, id=0x1234))
    for raw in (ip_tcp, ip_udp, ip_icmp):
        for cut in (34, 35, 38, 41, 42, 45, 53):
            pkts.append((3, raw[:cut]))
    pkts.append((3.1, eth() / IP(src=A4, dst=B4, proto=6) / Raw(b"")))
    pkts.append(
        (
            3.2,
            eth() / IP(src=A4, dst=B4, flags="MF", frag=0) / UDP(sport=9, dport=9) / Raw(bytes(40)),
        )
    )
    pkts.append((3.3, eth() / IP(src=A4, dst=B4, frag=6) / Raw(bytes(16))))
    pkts.append(
        (
            3.4,
            eth() / IP(src=A4, dst=B4, flags="MF", id=7) / UDP(sport=9, dport=10) / Raw(bytes(32)),
        )
    )
    pkts.append(
        (3.5, eth() / IP(src=A4, dst=B4, frag=5, id=7, proto=17) / Raw(bytes(8)))
    )  # completes it
    pkts.append(
        (3.6, eth() / IP(src=A4, dst=B4) / TCP(sport=3, dport=4, dataofs=15) / Raw(bytes(4)))
    )
    pkts.append(
        (
            3.7,
            bytes(eth(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")) + b"\x88\xb5" + bytes(30),
        )
    )
    path = write(tmp_path, pkts)
    assert compare(path) >= 10
    assert compare(path, SMALL, chunk_bytes=500) >= 10
    skipped = CFlowTable()
    with CaptureReader(str(path)) as rd:
        for batch in rd.batches():
            skipped.update(decode(batch), batch)
    assert all(skipped.skipped.values())


@pytest.mark.parametrize("seed", range(6))
def test_random_traffic(tmp_path: Path, seed: int) -> None:
    """Random packets on a few endpoints: every state transition and timer races another."""
    rnd = random.Random(seed)
    hosts = [A4, B4, C4]
    ports = [80, 443, 1234, 40000]
    t = 0.0
    pkts: list[tuple[float, Packet]] = []
    seqs: dict[tuple[str, int], int] = {}
    for _ in range(1500):
        t += rnd.choice((0.0, 0.0005, 0.002, 0.01, 0.5, 3.0, 6.0)) if rnd.random() < 0.3 else 0.001
        ts = t if rnd.random() > 0.02 else max(0.0, t - 1)  # a few timestamps out of order
        s, d = rnd.sample(hosts, 2)
        sp, dp = rnd.choice(ports), rnd.choice(ports)
        kind = rnd.random()
        if kind < 0.8:
            key = (s, sp)
            base = seqs.setdefault(key, rnd.choice((0, 1000, 2**31 - 50, 2**32 - 50)))
            step = rnd.choice((0, 0, 1, 10, 100, -100, 2**31))
            seqs[key] = (base + step) % 2**32
            flags = rnd.choice((0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, 0x03, 0x06, 0x05, rnd.randrange(256)))  # fmt: skip
            ack = rnd.choice((0, seqs.get((d, dp), 0), (seqs.get((d, dp), 0) + rnd.choice((1, 10, 10**6))) % 2**32))  # fmt: skip
            data = bytes(rnd.choice((0, 0, 1, 10, 100)))
            pkts.append(
                tcp(ts, s, d, sp, dp, flags, seqs[key], ack, data, win=rnd.choice((0, 512, 8192)))
            )
        elif kind < 0.9:
            pkts.append(udp(ts, s, d, sp, dp, bytes(rnd.randrange(3))))
        else:
            typ = rnd.choice((0, 8, 3, 13, 14))
            pkts.append((ts, eth() / IP(src=s, dst=d) / ICMP(type=typ, id=rnd.randrange(3))))
    path = write(tmp_path, pkts)
    config = FlowConfig(
        tcp_timeout_s=8, udp_timeout_s=4, icmp_timeout_s=4, other_timeout_s=4, tcp_attempt_s=2,
        tcp_close_s=1, active_timeout_s=rnd.choice((0, 5)), max_flows=rnd.choice((3, 10, 1000)),
    )  # fmt: skip
    compare(path, config, chunk_bytes=rnd.choice((300, 2000, 1 << 20)))
    compare(path)


# --- the wrapper ------------------------------------------------------------------------------
def test_surface_and_factory() -> None:
    assert AVAILABLE
    public = {n for n in dir(FlowTable) if not n.startswith("_")}
    table = CFlowTable()
    for name in public | {"config", "skipped", "expired", "flows_created", "peak_flows", "live"}:
        assert hasattr(table, name), name
    assert table.skipped == FlowTable().skipped
    assert table.expired == FlowTable().expired
    assert isinstance(make_flow_table(), CFlowTable)
    assert isinstance(make_flow_table(engine="c"), CFlowTable)
    assert type(make_flow_table(engine="python")) is FlowTable
    assert make_flow_table(SMALL).config is SMALL
    with pytest.raises(ValueError):
        make_flow_table(engine="rust")


def test_empty_batch_and_bad_input() -> None:
    from netsift.capture import RecordBatch
    from netsift.columns import PacketColumns

    table = CFlowTable()
    empty = RecordBatch(
        buf=np.zeros(0, np.uint8), off=np.zeros(0, np.int64), caplen=np.zeros(0, np.int64),
        wirelen=np.zeros(0, np.int64), ts_ns=np.zeros(0, np.int64),
        link_type=np.zeros(0, np.int32), iface=np.zeros(0, np.int32), first_frame=1,
    )  # fmt: skip
    table.update(PacketColumns.empty(0), empty)
    table.update_reassembled(PacketColumns.empty(0), empty, [])
    assert table.live == 0
    # an ICMP echo whose identifier lies past the record's captured bytes reads as id 0
    cols = PacketColumns.empty(1)
    cols.ip_version[:] = 4
    cols.ip_proto[:] = 1
    cols.l4_off[:] = 0
    cols.icmp_type[:] = 8
    one = RecordBatch(
        buf=np.zeros(3, np.uint8), off=np.zeros(1, np.int64), caplen=np.full(1, 3, np.int64),
        wirelen=np.full(1, 3, np.int64), ts_ns=np.zeros(1, np.int64),
        link_type=np.ones(1, np.int32), iface=np.zeros(1, np.int32), first_frame=1,
    )  # fmt: skip
    table.update(cols, one)
    table.finish()
    (rec,) = table.drain()
    assert rec.icmp_id == 0
    bad = PacketColumns.empty(2)
    with pytest.raises(ValueError):
        table.update(bad, one)  # columns and batch differ in length


# --- hostile columns (Hypothesis) ------------------------------------------------------------
# The decoder never produces these combinations; the engines must still agree and never
# read outside the buffer (an ICMP identifier is read only from a record's captured bytes).
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from netsift.capture import RecordBatch  # noqa: E402
from netsift.columns import PacketColumns  # noqa: E402

_V4 = 0xFFFF_0000_0000


@st.composite
def hostile_batch(draw: Any) -> tuple[PacketColumns, RecordBatch]:
    n = draw(st.integers(1, 40))
    cols = PacketColumns.empty(n)
    hosts = [(0, _V4 | 0x0A000001), (0, _V4 | 0x0A000002), (0x20010DB8 << 32, 1), (0, _V4)]
    ts = 1_700_000_000_000_000_000
    buf_len = draw(st.integers(0, 64))
    for i in range(n):
        cols.frame[i] = i + 1
        ts += draw(
            st.sampled_from([0, 1, 1_000_000, 4_000_000_000, 70_000_000_000, -5_000_000_000])
        )
        cols.ts_ns[i] = ts
        cols.ip_version[i] = draw(st.sampled_from([0, 4, 6, 4, 4]))
        cols.is_fragment[i] = draw(st.booleans()) and draw(st.booleans())
        s, d = draw(st.sampled_from(hosts)), draw(st.sampled_from(hosts))
        cols.ip_src_hi[i], cols.ip_src_lo[i] = s
        cols.ip_dst_hi[i], cols.ip_dst_lo[i] = d
        cols.ip_proto[i] = draw(st.sampled_from([6, 6, 17, 1, 58, 47, 132]))
        cols.ip_len[i] = draw(st.integers(0, 70000))
        cols.l4_off[i] = draw(st.sampled_from([-1, 0, 14, 34, 60, 1000]))
        cols.sport[i] = draw(st.sampled_from([0, 53, 80, 443, 40000, 65535]))
        cols.dport[i] = draw(st.sampled_from([0, 53, 80, 443, 40000, 65535]))
        cols.tcp_flags[i] = draw(st.integers(0, 0x1FF))
        cols.tcp_seq[i] = draw(st.sampled_from([0, 1, 2, 1000, 1001, 2**32 - 1, 2**32 - 2, 2**31]))
        cols.tcp_ack[i] = draw(st.sampled_from([0, 1, 1001, 2**32 - 1, 2**31 + 5]))
        cols.tcp_window[i] = draw(st.sampled_from([0, 1, 65535]))
        cols.icmp_type[i] = draw(st.sampled_from([0, 3, 8, 13, 14, 128, 129, 255]))
        cols.icmp_code[i] = draw(st.integers(0, 255))
        cols.payload_len[i] = draw(st.sampled_from([0, 1, 2, 100, 1460, 70000]))
        cols.vlan_depth[i] = draw(st.sampled_from([0, 0, 1, 2]))
        cols.vlan_outer[i] = draw(st.sampled_from([0, 7, 4095]))
        cols.vlan_inner[i] = draw(st.sampled_from([0, 9]))
    off = np.array([draw(st.integers(-5, buf_len + 5)) for _ in range(n)], dtype=np.int64)
    caplen = np.array([draw(st.integers(-1, buf_len + 5)) for _ in range(n)], dtype=np.int64)
    batch = RecordBatch(
        buf=np.frombuffer(bytes(draw(st.binary(min_size=buf_len, max_size=buf_len))), dtype=np.uint8),
        off=off, caplen=caplen, wirelen=caplen.copy(), ts_ns=cols.ts_ns.copy(),
        link_type=np.ones(n, dtype=np.int32), iface=np.zeros(n, dtype=np.int32), first_frame=1,
    )  # fmt: skip
    return cols, batch


@settings(max_examples=300 if full_run() else 60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(st.lists(hostile_batch(), min_size=1, max_size=3), st.sampled_from([1, 3, 1000]))
def test_engines_agree_on_hostile_columns(batches: list[Any], cap: int) -> None:
    config = FlowConfig(max_flows=cap, tcp_timeout_s=30, udp_timeout_s=10, icmp_timeout_s=10,
                        other_timeout_s=10, active_timeout_s=60)  # fmt: skip
    py, c = FlowTable(config), CFlowTable(config)
    out_py: list[FlowRecord] = []
    out_c: list[FlowRecord] = []
    for cols, batch in batches:
        fp, fc = FlowOut(len(cols)), FlowOut(len(cols))
        py.update(cols, batch, out=fp)
        c.update(cols, batch, out=fc)
        assert np.array_equal(fp.fid, fc.fid) and np.array_equal(fp.seen, fc.seen)
        out_py += py.drain()
        out_c += c.drain()
        assert counters(py) == counters(c)
    py.finish()
    c.finish()
    out_py += py.drain()
    out_c += c.drain()
    a, b = rows(out_py), rows(out_c)
    assert a == b, first_difference(a, b)
    assert counters(py) == counters(c)
