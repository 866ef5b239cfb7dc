"""Flow table (netsift.flows) agreement with Zeek conn.log, Arkime sessions and Wireshark.

Four references from the shared corpus:

1. Zeek ``conn.log`` baselines (``zeek/INDEX.tsv``): conn_state, history,
   packets, IP bytes, sequence-space bytes and duration per connection.
2. Arkime session expectations (``arkime/tests/pcap/*.test``): packets per
   direction and Community ID.
3. tshark ``-z conv,tcp`` / ``-z conv,udp`` tables
   (``tshark-reference/stats``): frames and frame bytes per direction.
4. Wireshark TCP analysis (live ``tshark``): per-capture totals of each
   ``tcp.analysis.*`` counter.

Each comparison counts the rows that agree and puts every row that does not
into a named class of difference (``*_CLASSES`` below, each with its reason);
a difference that fits no class fails the test, and so does an agreement
count below what was achieved.  A representative subset runs by default; the
full sets run with ``CI=true`` or ``NETSIFT_FULL_CORPUS=1``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netsift.capture import CaptureReader, RecordBatch
from netsift.decode_fast import decode
from netsift.defrag import FragmentTracker
from netsift.flows import FlowConfig, FlowRecord, FlowTable

pytestmark = pytest.mark.corpus

FULL = os.environ.get("CI") == "true" or os.environ.get("NETSIFT_FULL_CORPUS") == "1"
TSHARK = shutil.which("tshark")


# --- running the flow table -------------------------------------------------------


def _raw_batch(datagrams: list[Any], file_index: int) -> RecordBatch:
    """A raw-IP (LINKTYPE_RAW) batch holding reassembled datagrams."""
    data = [d.data for d in datagrams]
    lens = np.array([len(x) for x in data], dtype=np.int64)
    off = np.zeros(len(data), dtype=np.int64)
    if len(data) > 1:
        off[1:] = np.cumsum(lens)[:-1]
    return RecordBatch(
        buf=np.frombuffer(b"".join(data), dtype=np.uint8).copy(),
        off=off,
        caplen=lens,
        wirelen=lens.copy(),
        ts_ns=np.array([d.ts_ns for d in datagrams], dtype=np.int64),
        link_type=np.full(len(data), 101, dtype=np.int32),
        iface=np.zeros(len(data), dtype=np.int32),
        first_frame=1,
        file_index=file_index,
    )


_PKT_COLS = (
    "ip_proto",
    "ip_src_hi",
    "ip_src_lo",
    "sport",
    "ip_dst_hi",
    "ip_dst_lo",
    "dport",
    "ts_ns",
)
#: path -> (proto, src_hi, src_lo, sport, dst_hi, dst_lo, dport, ts_ns, frame length) per IP packet
_PACKETS: dict[Path, list[tuple[int, ...]]] = {}


def frame_bytes(path: Path, rec: FlowRecord) -> tuple[int, int]:
    """Frame bytes per direction of a flow's packets (from the table run_flows(collect=True) kept)."""
    o = (rec.orig_hi, rec.orig_lo, rec.orig_p)
    r = (rec.resp_hi, rec.resp_lo, rec.resp_p)
    out = [0, 0]
    for p in _PACKETS[path]:
        if p[0] != rec.proto or not rec.start_ns <= p[7] <= rec.last_packet_ns:
            continue
        if (p[1:4], p[4:7]) == (o, r):
            out[0] += p[8]
        elif (p[1:4], p[4:7]) == (r, o):
            out[1] += p[8]
    return out[0], out[1]


def run_flows(
    path: Path, config: FlowConfig, collect: bool = False
) -> tuple[list[FlowRecord], dict[int, int]]:
    """Flows of a capture (reassembled IP datagrams included), and the frame length of every frame."""
    table = FlowTable(config)
    frags = FragmentTracker()
    frame_len: dict[int, int] = {}
    packets = _PACKETS.setdefault(path, []) if collect else None
    with CaptureReader(str(path)) as rd:
        for batch in rd.batches():
            cols = decode(batch)
            if packets is not None:
                ip = ((cols.ip_version == 4) | (cols.ip_version == 6)) & ~cols.is_fragment
                packets.extend(
                    zip(*(getattr(cols, n)[ip].tolist() for n in _PKT_COLS),
                        batch.wirelen[ip].tolist(), strict=True)
                )  # fmt: skip
            done = frags.update(cols, batch)
            table.update(cols, batch)
            frame_len.update(
                zip(
                    range(batch.first_frame, batch.first_frame + len(batch)),
                    batch.wirelen.tolist(),
                    strict=True,
                )
            )
            if done:
                rb = _raw_batch(done, batch.file_index)
                table.update_reassembled(
                    decode(rb), rb, [(d.file_index, d.frames[-1]) for d in done]
                )
    table.finish()
    return table.drain(), frame_len


def _parity(pass_: int, total: int) -> str:
    return f"{pass_}/{total} ({100.0 * pass_ / total:.1f}%)" if total else "0/0"


# --- 1. Zeek conn.log -------------------------------------------------------------------

ZEEK_FIELDS = ("conn_state", "history", "orig_pkts", "resp_pkts", "orig_ip_bytes",
               "resp_ip_bytes", "orig_bytes", "resp_bytes", "duration")  # fmt: skip
_ZEEK_ALIASES = {
    "orig_h": ("id.orig_h", "src", "src_ip", "id_orig_h"),
    "orig_p": ("id.orig_p", "src_port", "id_orig_p"),
    "resp_h": ("id.resp_h", "dst", "dst_ip", "id_resp_h"),
    "resp_p": ("id.resp_p", "dst_port", "id_resp_p"),
}
_ZEEK_TIMEOUTS = {
    "tcp_inactivity_timeout": "tcp_timeout_s",
    "udp_inactivity_timeout": "udp_timeout_s",
    "icmp_inactivity_timeout": "icmp_timeout_s",
    "unknown_ip_inactivity_timeout": "other_timeout_s",
    "tcp_attempt_delay": "tcp_attempt_s",
    "tcp_close_delay": "tcp_close_s",
}
#: Whole traces left out, with the reason.
ZEEK_TRACE_EXCLUSIONS: dict[str, str] = {
    r"/tunnels/|/erspan|/gre-|/vxlan|/teredo|/gtp|/ayiya|/geneve": (
        "tunnel or encapsulation netsift does not decapsulate (GRE/ERSPAN, VXLAN, Geneve, Teredo,"
        " GTP, AYIYA, IP-in-IP)"
    ),
    r"mpls|/pbb": "MPLS / 802.1ah PBB framing netsift does not decode",
    r"cisco-fabric-path": "Cisco FabricPath (EtherType 0x8903) copies Zeek decodes and netsift does not",
}
#: btests (baseline directory) whose script changes what Zeek sees; the reason is the class.
ZEEK_SCRIPT_CLASSES: dict[str, str] = {
    "core.pcap.dynamic-filter": "script installs BPF filters at run time",
    "scripts.base.frameworks.netcontrol.packetfilter": "script installs BPF filters at run time",
    "scripts.base.protocols.ftp.gridftp": (
        "script stops analysing the GridFTP data channel (skip_further_processing)"
    ),
    "scripts.base.frameworks.logging.field-name-map2": (
        "responder packets have bad IP checksums; Zeek without -C discards them"
    ),
    "core.local-flip": "script redefines likely_server_ports / Site::local_nets",
    "core.tcp.miss-end-data": (
        "content gap g is reported by Zeek's stream reassembler, which netsift does not run"
    ),
}
#: Per-row classes recognised from the Zeek row itself.
ZEEK_ROW_CLASSES = {
    "CX": "Zeek history has C (bad checksum) or X (analyzer partial), letters netsift does not produce",
    "late^": "an application analyzer flipped the roles after the first packet (^ not first)",
    "bcast": "limited-broadcast flow: Zeek keeps the sender as originator despite the server port",
}


def _zeek_rows(corpus: Path) -> list[dict[str, str]]:
    idx = corpus / "zeek" / "INDEX.tsv"
    lines = idx.read_text().splitlines()
    head = lines[0].split("\t")
    out = []
    for line in lines[1:]:
        row = dict(zip(head, line.split("\t"), strict=False))
        for base in row.get("baseline_files", "").split(";"):
            if base.endswith("/conn.log"):
                out.append({**row, "conn_log": base})
    return out


def _read_zeek_log(path: Path) -> list[dict[str, str]]:
    fields: list[str] | None = None
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("#fields\t"):
            fields = line.split("\t")[1:]
        elif line.startswith("#") or not line.strip():
            continue
        elif fields is None:
            fields = line.split("\t")  # zeek-cut output: a header line of names
        else:
            vals = line.split("\t")
            row = dict(zip(fields, vals, strict=False))
            for canon, names in _ZEEK_ALIASES.items():
                for n in names:
                    if n in row:
                        row[canon] = row.pop(n)
            rows.append(row)
    return rows


def _zeek_setup(row: dict[str, str]) -> tuple[FlowConfig | None, str, Callable[[FlowRecord], bool]]:
    """(config, exclusion reason or "", record filter) from the Zeek command line."""
    cmd = row["zeek_command(s)"].split(";;")[0]
    keep: Callable[[FlowRecord], bool] = lambda r: True  # noqa: E731
    if "|" in cmd or " -r - " in cmd + " ":
        return None, "Zeek read the trace from a stdin pipe", keep
    for pattern, reason in ZEEK_TRACE_EXCLUSIONS.items():
        if re.search(pattern, row["trace"].lower()):
            return None, reason, keep
    toks = shlex.split(cmd)
    bare = any(re.fullmatch(r"-[A-Za-z]*b[A-Za-z]*", t) for t in toks)
    kw: dict[str, Any] = {"vlan_in_key": False}
    if bare:
        kw["server_ports"] = frozenset()
    for t in toks:
        name, _, value = t.partition("=")
        if value and name in _ZEEK_TIMEOUTS:
            num = re.fullmatch(r"([\d.]+)\s*(sec|secs|min|mins)?", value.strip())
            assert num, t
            kw[_ZEEK_TIMEOUTS[name]] = float(num[1]) * (
                60 if (num[2] or "").startswith("min") else 1
            )
    if "-f" in toks:
        flt = toks[toks.index("-f") + 1].split()
        port = int(flt[-1])
        tcp_only = flt[0] == "tcp"
        keep = lambda r: (r.proto == 6 or not tcp_only) and port in (r.orig_p, r.resp_p)  # noqa: E731
    return FlowConfig(**kw), "", keep


def _zeek_proto(rec: FlowRecord) -> str:
    return {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}.get(rec.proto, "unknown_transport")


def _ours_zeek(rec: FlowRecord) -> dict[str, Any]:
    return {
        "conn_state": rec.conn_state,
        "history": rec.history,
        "orig_pkts": rec.orig_pkts,
        "resp_pkts": rec.resp_pkts,
        "orig_ip_bytes": rec.orig_ip_bytes,
        "resp_ip_bytes": rec.resp_ip_bytes,
        "orig_bytes": rec.orig_bytes,
        "resp_bytes": rec.resp_bytes,
        "duration": rec.duration_s,
    }


def _zeek_equal(field: str, zv: str, ov: Any, proto: str) -> bool | None:
    """Whether a Zeek value equals ours; None when Zeek's is unset or not comparable."""
    if zv in ("-", "(empty)", ""):
        if field == "duration":
            return ov == 0
        if field in ("orig_bytes", "resp_bytes"):
            return None
        if field == "history":
            return ov == ""
        return None
    if field == "duration":
        if "X" in zv:
            return None
        return abs(float(zv) - ov) <= 1e-6 + 1e-9 * abs(ov)
    if field in ("conn_state", "history"):
        return zv == ov
    return int(zv) == ov


#: btests where some connections are unreachable for netsift's decoder (unmatched rows only).
ZEEK_DECODE_CLASSES: dict[str, str] = {
    name: "link layer netsift does not decode to IP (PPP/PPPoE, 802.11, VN-Tag)"
    for name in ("core.ppp", "core.pppoe", "core.pppoe-over-qinq", "core.radiotap", "core.wlanmon",
                 "core.vntag", "core.vntag-in-vlan")
}  # fmt: skip


def _pair(zrows: list[dict[str, str]], recs: list[FlowRecord]) -> tuple[
    list[tuple[dict[str, str], FlowRecord]], list[dict[str, str]], list[dict[str, str]]
]:  # fmt: skip
    """(pairs, unmatched Zeek rows, tunnel rows) matched on the 5-tuple, in start order."""
    if zrows and "orig_h" not in zrows[0]:
        if len(zrows) == 1 and len(recs) == 1:
            return [(zrows[0], recs[0])], [], []
        return [], zrows, []
    ours: dict[tuple[Any, ...], list[FlowRecord]] = defaultdict(list)
    for r in sorted(recs, key=lambda r: r.start_ns):
        ours[(r.orig_h, r.orig_p, r.resp_h, r.resp_p, _zeek_proto(r))].append(r)
    zbykey: dict[tuple[Any, ...], list[dict[str, str]]] = defaultdict(list)
    for z in zrows:
        zbykey[(z["orig_h"], int(z["orig_p"]), z["resp_h"], int(z["resp_p"]), z["proto"])].append(z)
    pairs, unmatched, tunnel = [], [], []
    for key, zs in zbykey.items():
        if any(z.get("tunnel_parents", "-") not in ("-", "(empty)") for z in zs):
            tunnel.extend(zs)
            continue
        if "ts" in zs[0] and "X" not in zs[0]["ts"]:
            zs = sorted(zs, key=lambda z: float(z["ts"]))
        cand = ours.get(key, [])
        for i, z in enumerate(zs):
            if i < len(cand):
                pairs.append((z, cand[i]))
            else:
                unmatched.append(z)
    return pairs, unmatched, tunnel


def _row_class(name: str, z: dict[str, str]) -> str | None:
    if name in ZEEK_SCRIPT_CLASSES:
        return ZEEK_SCRIPT_CLASSES[name]
    hist = z.get("history", "-")
    if re.search("[CcXx]", hist):
        return ZEEK_ROW_CLASSES["CX"]
    if "^" in hist[1:]:
        return ZEEK_ROW_CLASSES["late^"]
    if z.get("resp_h") == "255.255.255.255" or z.get("orig_h") == "255.255.255.255":
        return ZEEK_ROW_CLASSES["bcast"]
    return None


def zeek_compare(corpus: Path, rows: list[dict[str, str]]) -> dict[str, Any]:
    """Match every baseline row to a flow; per-field agreement, classes, unexplained differences."""
    res: dict[str, Any] = {"equal": Counter(), "compared": Counter(), "classes": Counter(),
                           "unexplained": [], "rows": 0, "bare_ports_used": 0}  # fmt: skip
    for row in rows:
        name = row["conn_log"].split("/")[-2]
        zrows = _read_zeek_log(corpus / "zeek" / row["conn_log"])
        config, why, keep = _zeek_setup(row)
        if config is None:
            res["classes"][why] += len(zrows)
            continue
        configs = [config]
        if not config.server_ports:
            # a bare run still has the likely_server_ports of the analyzers its script loads
            configs.append(FlowConfig(vlan_in_key=False))
        best: tuple[Any, ...] | None = None
        for i, cfg in enumerate(configs):
            try:
                recs = [r for r in run_flows(corpus / "zeek" / row["trace"], cfg)[0] if keep(r)]
            except Exception as exc:
                best = (None, f"capture the reader rejects ({type(exc).__name__})")
                break
            pairs, unmatched, tunnel = _pair(zrows, recs)
            if best is None or len(pairs) > len(best[0]):
                best = (pairs, unmatched, tunnel, i)
        assert best is not None
        if best[0] is None:
            res["classes"][best[1]] += len(zrows)
            continue
        pairs, unmatched, tunnel, used = best
        res["bare_ports_used"] += used
        res["classes"]["inner flow of a tunnel netsift does not decapsulate"] += len(tunnel)
        for z in unmatched:
            cls = _row_class(name, z) or ZEEK_DECODE_CLASSES.get(name)
            if cls is None and "orig_h" not in z:
                cls = "zeek-cut projection without connection ids (several rows)"
            if cls is None:
                res["unexplained"].append((name, "unmatched", z, None))
            else:
                res["classes"][cls] += 1
        for z, rec in pairs:
            cls = _row_class(name, z)
            if cls is not None:
                res["classes"][cls] += 1
                continue
            res["rows"] += 1
            ov = _ours_zeek(rec)
            for f in ZEEK_FIELDS:
                if f not in z:
                    continue
                eq = _zeek_equal(f, z[f], ov[f], z.get("proto", ""))
                if eq is None:
                    continue
                res["compared"][f] += 1
                if eq:
                    res["equal"][f] += 1
                else:
                    res["unexplained"].append((name, f, z, rec))
    return res


def _summary(title: str, rows: list[tuple[str, int, int]], classes: Counter[str]) -> None:
    print(f"\n{title}")
    for name, eq, n in rows:
        print(f"  {name:<28} {_parity(eq, n)}")
    for cls, n in sorted(classes.items(), key=lambda kv: -kv[1]):
        if n:
            print(f"  excluded {n:>4}  {cls}")


#: Rows of the default subset (baseline directories); the full run takes every conn.log.
ZEEK_SUBSET = re.compile(
    r"core\.(tcp|history|pppoe|icmp|ipv6|vlan|q-in-q|udp)|ftp|http|ssh|dns|pop3|dhcp"
)


def test_zeek_conn_log(corpus_dir: Path) -> None:
    rows = _zeek_rows(corpus_dir)
    if not FULL:
        rows = [r for r in rows if ZEEK_SUBSET.search(r["conn_log"])]
    res = zeek_compare(corpus_dir, rows)
    _summary(
        f"Zeek conn.log: {res['rows']} matched rows",
        [(f, res["equal"][f], res["compared"][f]) for f in ZEEK_FIELDS],
        res["classes"],
    )
    assert not res["unexplained"], [
        (n, f, {k: z.get(k) for k in ("orig_h", "orig_p", "resp_h", "resp_p", f)}, repr(r))
        for n, f, z, r in res["unexplained"][:10]
    ]
    assert res["rows"] >= (415 if FULL else 100)
    for f in ("conn_state", "orig_pkts", "resp_pkts"):
        assert res["equal"][f] == res["compared"][f]


# --- 2. Arkime sessions ----------------------------------------------------------------

ARKIME_CLASSES: dict[str, str] = {
    r"gre|erspan|vxlan|geneve|gtp|mpls|pppoe|-4-6|-6-4|teredo|ipip|wireguard": (
        "tunnel/encapsulation: Arkime sessions are the inner flows, netsift does not decapsulate"
    ),
    r"80211|radiotap|wlan|sll|nflog|dlt": "link type netsift does not decode to IP",
}


def arkime_compare(corpus: Path, names: list[str] | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {"equal": Counter(), "compared": Counter(), "classes": Counter(),
                           "unexplained": [], "sessions": 0}  # fmt: skip
    tests = sorted((corpus / "arkime" / "tests" / "pcap").glob("*.test"))
    for test in tests:
        if names is not None and test.stem not in names:
            continue
        pcap = test.with_suffix(".pcap")
        sessions = [s["body"] for s in json.loads(test.read_text()).get("sessions3", [])]
        if not pcap.is_file() or not sessions:
            continue
        cls = next((c for pat, c in ARKIME_CLASSES.items() if re.search(pat, test.stem)), None)
        if cls:
            res["classes"][cls] += len(sessions)
            continue
        try:
            recs = run_flows(pcap, FlowConfig(vlan_in_key=False), collect=True)[0]
        except Exception as exc:
            res["classes"][f"capture the reader rejects ({type(exc).__name__})"] += len(sessions)
            continue
        by_cid: dict[str, list[FlowRecord]] = defaultdict(list)
        for r in recs:
            by_cid[r.community_id].append(r)
        for s in sessions:
            src, dst = s.get("source", {}), s.get("destination", {})
            cid = s.get("network", {}).get("community_id")
            if s.get("ipProtocol") not in (1, 6, 17, 58) or cid is None:
                res["classes"]["session without IP transport / Community ID"] += 1
                continue
            res["sessions"] += 1
            cand = [
                r
                for r in by_cid.get(cid, [])
                if abs(r.start_ns // 1_000_000 - s["firstPacket"]) <= 1
            ]
            res["compared"]["community_id"] += 1
            if not cand:
                res["unexplained"].append((test.stem, "community_id", s, None))
                continue
            res["equal"]["community_id"] += 1
            rec = cand[0]
            fwd = (rec.orig_h, rec.orig_p) == (src.get("ip"), src.get("port"))
            ours_p = (rec.orig_pkts, rec.resp_pkts) if fwd else (rec.resp_pkts, rec.orig_pkts)
            fb = frame_bytes(pcap, rec)
            ours_b = fb if fwd else (fb[1], fb[0])
            for f, zv, ov in (
                ("src_packets", src.get("packets"), ours_p[0]),
                ("dst_packets", dst.get("packets"), ours_p[1]),
                ("src_frame_bytes", src.get("bytes"), ours_b[0]),
                ("dst_frame_bytes", dst.get("bytes"), ours_b[1]),
                ("first_ms", s.get("firstPacket"), rec.start_ns // 1_000_000),
                ("last_ms", s.get("lastPacket"), rec.last_packet_ns // 1_000_000),
            ):
                res["compared"][f] += 1
                if zv == ov:
                    res["equal"][f] += 1
                else:
                    res["unexplained"].append((test.stem, f, {"ref": zv, "ours": ov}, rec))
    return res


#: Agreement reached on the whole Arkime set (sessions: 620 compared).  The remaining
#: differences are not yet sorted into classes (Arkime's own session splitting on
#: synthetic captures, ICMP frame bytes this harness does not attribute yet): the test
#: holds the level so a regression fails.
ARKIME_FLOOR = {"community_id": 603, "src_packets": 541, "dst_packets": 551,
                "src_frame_bytes": 532, "dst_frame_bytes": 565, "first_ms": 602, "last_ms": 582}  # fmt: skip


def test_arkime_sessions(corpus_dir: Path) -> None:
    res = arkime_compare(corpus_dir)
    _summary(
        f"Arkime sessions: {res['sessions']} compared",
        [(f, res["equal"][f], res["compared"][f]) for f in ARKIME_FLOOR],
        res["classes"],
    )
    for f, floor in ARKIME_FLOOR.items():
        assert res["equal"][f] >= floor, (f, res["equal"][f], floor)
