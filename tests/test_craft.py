"""netsift craft: specs from --layer strings, TOML and JSON; fuzzing; captures; the scope fence.

No test here sends a packet: every --send test replaces Scapy's send/sendp
with a recorder (and a missing recorder would fail loudly rather than send,
since the destinations used are outside any scope or the functions are patched).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess

import pytest

import netsift
from netsift import craft as C
from netsift.cli import main
from netsift.errors import ScopeError, UsageError
from netsift.scope import load_scope

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "probes.toml")


def _values(spec: C.CraftSpec, layer: int, name: str) -> list[object]:
    for fs in spec.packets[0].layers[layer].fields:
        if fs.name == name:
            return list(fs.values)
    raise AssertionError(name)


def _read_pcap(path: str) -> tuple[int, list[tuple[int, int, bytes]]]:
    """(link type, [(sec, usec, data)]) of a classic little/native-endian pcap."""
    with open(path, "rb") as f:
        raw = f.read()
    magic, _, _, _, _, _, linktype = struct.unpack("=IHHiIII", raw[:24])
    assert magic == 0xA1B2C3D4
    out = []
    off = 24
    while off < len(raw):
        sec, usec, caplen, _ = struct.unpack("=IIII", raw[off:off + 16])
        out.append((sec, usec, raw[off + 16:off + 16 + caplen]))
        off += 16 + caplen
    return linktype, out


# --- --layer strings --------------------------------------------------------------


def test_layer_strings_map_onto_scapy_fields() -> None:
    spec = C.spec_from_layers(["IP dst=10.0.0.2 ttl=5 tos=0x10", "TCP dport=80 flags=S"])
    (pkt,) = C.build_packets(spec)
    assert pkt.summary().startswith("IP / TCP")
    assert pkt["IP"].dst == "10.0.0.2" and pkt["IP"].ttl == 5 and pkt["IP"].tos == 0x10
    assert pkt["TCP"].dport == 80 and str(pkt["TCP"].flags) == "S"
    assert pkt["IP"].proto == 6  # Scapy's binding of the stack still applies


def test_enum_names_flags_and_bytes() -> None:
    spec = C.spec_from_layers(["IP dst=10.0.0.2 flags=DF", "ICMP type=echo-request",
                               r"Raw load='GET / HTTP/1.0\r\n\x00,a'"])
    (pkt,) = C.build_packets(spec)
    assert pkt["ICMP"].type == 8
    assert bytes(pkt["Raw"]) == b"GET / HTTP/1.0\r\n\x00,a"
    (pkt,) = C.build_packets(C.spec_from_layers(["IP dst=10.0.0.2", "Raw load='hex:de:ad be ef'"]))
    assert bytes(pkt["Raw"]) == b"\xde\xad\xbe\xef"


def test_text_fields_keep_commas_and_quotes_force_one_value() -> None:
    # a text field takes its value whole, commas included: no fuzz list
    spec = C.spec_from_layers(["IP dst=10.0.0.2", "Raw load=a,b,c"])
    assert spec.size() == 1
    assert bytes(C.build_packets(spec)[0]["Raw"]) == b"a,b,c"
    # a quoted numeric value is one value, so a comma in it is a bad value
    with pytest.raises(UsageError, match=r"TCP\.dport"):
        C.spec_from_layers(["TCP dport='22,80'"])


def test_decode_bytes() -> None:
    assert C.decode_bytes(r"a\tb\\c\"") == b'a\tb\\c"'
    assert C.decode_bytes("é") == b"\xe9"
    assert C.decode_bytes("hex:0001ff") == b"\x00\x01\xff"
    for bad in (r"\q", "\\", r"\x4", "hex:zz"):
        with pytest.raises(ValueError):
            C.decode_bytes(bad)


def test_tcp_options_text() -> None:
    spec = C.spec_from_layers(["IP dst=10.0.0.2", "TCP flags=S options=MSS:1460,SAckOK,WScale:7,NOP,Timestamp:1:0"])
    (pkt,) = C.build_packets(spec)
    assert pkt["TCP"].options == [("MSS", 1460), ("SAckOK", b""), ("WScale", 7), ("NOP", None),
                                  ("Timestamp", (1, 0))]


def test_ether_destination_is_never_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    import scapy.layers.l2 as l2

    def no_arp(*_a: object, **_k: object) -> None:
        raise AssertionError("craft must not resolve MAC addresses (that sends ARP)")

    monkeypatch.setattr(l2, "getmacbyip", no_arp)
    (pkt,) = C.build_packets(C.spec_from_layers(["Ether", "IP dst=10.0.0.2", "ICMP"]))
    assert pkt.dst == C.BROADCAST_MAC
    (pkt,) = C.build_packets(C.spec_from_layers(["Ether dst=02:00:00:00:00:02", "ARP pdst=10.0.0.2"]))
    assert pkt.dst == "02:00:00:00:00:02" and pkt["ARP"].pdst == "10.0.0.2"


# --- errors name the offender -------------------------------------------------------


@pytest.mark.parametrize(("layers", "words"), [
    (["IPP dst=10.0.0.2"], ["unknown layer 'IPP'", "IP"]),
    (["tcp dport=80"], ["unknown layer 'tcp'", "TCP"]),
    (["IP dts=10.0.0.2"], ["IP has no field 'dts'", "dst", "ttl"]),
    (["IP ttl=300"], ["300", "IP.ttl"]),
    (["IP ttl=abc"], ["'abc'", "IP.ttl"]),
    (["IP version=99"], ["99", "IP.version", "4-bit"]),
    (["TCP flags=Q"], ["'Q'", "TCP.flags", "FSRPAUECN"]),
    (["ICMP type=echo-requst"], ["'echo-requst'", "ICMP.type", "echo-request"]),
    (["IP dst=example.com"], ["'example.com'", "IP.dst"]),
    (["IP dst=::1"], ["'::1'", "IP.dst", "IPv4"]),
    (["IPv6 dst=10.0.0.2"], ["IPv6.dst", "IPv6 address"]),
    (["IP ttl=5..1"], ["IP.ttl", "backwards"]),
    ([r"Raw load=\q"], ["Raw.load", "escape"]),
    (["DNS qd=DNSQR(qnme=x)"], ["DNSQR has no field 'qnme'", "qname"]),
    (["DNS qd=NOPE(qname=x)"], ["unknown layer 'NOPE'"]),
    (["IP ttl"], ["FIELD=VALUE", "'ttl'"]),
    (["IP ttl='5"], ["unclosed quote"]),
    (["IP ttl=5 ttl=6"], ["IP.ttl is set twice"]),
])
def test_errors_name_the_offender(layers: list[str], words: list[str]) -> None:
    with pytest.raises(UsageError) as info:
        C.spec_from_layers(layers)
    for w in words:
        assert w in str(info.value)
    assert "\n" not in str(info.value)


def test_no_eval_anywhere() -> None:
    evil = "__import__('os').system('touch craft-eval-ran')"
    with pytest.raises(UsageError, match=r"IP\.ttl"):
        C.spec_from_layers([f'IP ttl="{evil}"'])
    with pytest.raises(UsageError, match=r"IP\.ttl"):
        C.spec_from_data({"layer": [{"name": "IP", "ttl": evil}]})
    with pytest.raises(UsageError):
        C.spec_from_layers(["DNS qd=" + evil])
    assert not os.path.exists("craft-eval-ran")


# --- fuzzing --------------------------------------------------------------------


def test_fuzz_product_count_and_order() -> None:
    spec = C.spec_from_layers(["IP dst=10.0.0.2 ttl=1..30", "TCP dport=22,80,443 flags=S"])
    assert spec.size() == 90
    assert spec.fuzzed() == ["IP.ttl ×30", "TCP.dport ×3"]
    pkts = C.build_packets(spec)
    got = [(p["IP"].ttl, p["TCP"].dport) for p in pkts]
    assert got == [(t, d) for t in range(1, 31) for d in (22, 80, 443)]


def test_fuzz_steps_hex_mixed_lists_and_cidr() -> None:
    spec = C.spec_from_layers(["IP dst=10.0.0.0/30 ttl=1..9/4", "UDP dport=0x10..0x11,53"])
    assert _values(spec, 0, "ttl") == [1, 5, 9]
    assert _values(spec, 0, "dst") == ["10.0.0.1", "10.0.0.2"]
    assert _values(spec, 1, "dport") == [16, 17, 53]
    assert spec.size() == 2 * 3 * 3
    flags = C.spec_from_layers(["TCP flags=S,SA,R"])
    assert [str(p.flags) for p in C.build_packets(flags)] == ["S", "SA", "R"]


def test_fuzz_cap() -> None:
    spec = C.spec_from_layers(["IP dst=10.0.0.2 ttl=1..255", "TCP dport=1..1000"])
    with pytest.raises(UsageError, match=r"255000 packets.*--max-packets 100000"):
        C.check_size(spec)
    assert C.check_size(spec, max_packets=255_000) == 255_000
    with pytest.raises(UsageError, match="--max-packets"):
        C.spec_from_layers(["IP dst=10.0.0.0/8"])
    spec = C.spec_from_layers(["IP dst=10.0.0.2 ttl=1..3"], count=4)
    assert spec.size() == 12
    assert [p.ttl for p in C.build_packets(spec)] == [1, 2, 3] * 4


def test_nested_fuzz_on_the_cli_uses_bars() -> None:
    spec = C.spec_from_layers(["IP dst=10.0.0.53", "UDP",
                               "DNS qd=DNSQR(qname=example.com,qtype=A|TXT),DNSQR(qname='a,b.org')"])
    pkts = C.build_packets(spec)
    assert len(pkts) == 2
    assert [p["DNS"].qd[0].qtype for p in pkts] == [1, 16]
    assert pkts[0]["DNS"].qd[1].qname == b"a,b.org."


# --- spec files -----------------------------------------------------------------


TOML_SPEC = """
count = 2
interval = 0.5

[[layer]]
name = "IP"
dst = "10.0.0.2"
ttl = {range = [1, 30]}

[[layer]]
name = "TCP"
dport = [22, 80, 443]
flags = "S"
"""


def test_toml_spec(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.toml"
    path.write_text(TOML_SPEC)
    spec = C.load_spec(str(path))
    assert spec.count == 2 and spec.interval == 0.5
    assert spec.size() == 30 * 3 * 2
    assert _values(spec, 0, "ttl") == list(range(1, 31))
    assert _values(spec, 1, "dport") == [22, 80, 443]


def test_json_spec_and_nested_tables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = {"layer": [{"name": "IP", "dst": "10.0.0.53"}, {"name": "UDP"},
                      {"name": "DNS", "rd": True,
                       "qd": [{"layer": "DNSQR", "qname": "example.com", "qtype": "TXT"},
                              {"layer": "DNSQR", "qname": "example.org", "qtype": ["A", "AAAA"]}]}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    spec = C.load_spec(str(path))
    pkts = C.build_packets(spec)
    assert len(pkts) == 2
    assert [q.qtype for q in pkts[1]["DNS"].qd] == [16, 28]
    assert pkts[0]["DNS"].rd == 1


def test_spec_strings_are_single_values() -> None:
    spec = C.spec_from_data({"layer": [{"name": "IP", "dst": "10.0.0.2", "ttl": "0x20"},
                                       {"name": "Raw", "load": "1..3,4"}]})
    assert spec.size() == 1
    assert _values(spec, 0, "ttl") == [32]
    spec = C.spec_from_data({"layer": [{"name": "IP", "ttl": {"range": [1, 10], "step": 3}}]})
    assert _values(spec, 0, "ttl") == [1, 4, 7, 10]


@pytest.mark.parametrize(("data", "words"), [
    ({"layer": [{"name": "IP"}], "cuont": 2}, ["unknown key 'cuont'", "count"]),
    ({"layer": [{"name": "IP"}], "packet": []}, ["either"]),
    ({}, ["either"]),
    ({"layer": [{"dst": "10.0.0.2"}]}, ["name"]),
    ({"layer": [{"name": "IP", "ttl": 1.5}]}, ["IP.ttl", "1.5"]),
    ({"layer": [{"name": "IP", "ttl": {"rnage": [1, 2]}}]}, ["IP.ttl", "range"]),
    ({"layer": [{"name": "IP", "dst": {"range": [1, 2]}}]}, ["IP.dst", "numeric"]),
    ({"layer": [{"name": "IP"}], "count": 0}, ["count"]),
    ({"layer": [{"name": "IP"}], "interval": "fast"}, ["interval"]),
    ({"layer": [{"name": "DNS", "qd": {"name": "DNSQR"}}]}, ["layer"]),
    ({"packet": [{"layer": [{"name": "IP"}], "extra": 1}]}, ["unknown key 'extra'"]),
])
def test_spec_errors(data: dict[str, object], words: list[str]) -> None:
    with pytest.raises(UsageError) as info:
        C.spec_from_data(data, source="t.toml")
    for w in words:
        assert w in str(info.value)


def test_bad_spec_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.toml"
    bad.write_text("[[layer]\nname=")
    with pytest.raises(UsageError, match="not valid TOML"):
        C.load_spec(str(bad))
    with pytest.raises(UsageError, match=r"\.toml or \.json"):
        C.load_spec(str(tmp_path / "spec.yaml"))
    with pytest.raises(UsageError, match="no such spec file"):
        C.load_spec(str(tmp_path / "missing.json"))


def test_example_spec_builds() -> None:
    spec = C.load_spec(EXAMPLE)
    assert spec.size() == 8 * 3 + 2 + 1
    assert len(C.build_packets(spec)) == spec.size()


# --- captures ---------------------------------------------------------------------


def test_pcap_output_read_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "probes.pcap")
    spec = C.spec_from_layers(["IP dst=10.0.0.2 ttl=1..3", "TCP dport=22,80 flags=S"])
    n = C.write_capture(C.iter_packets(spec), out, start_ns=1_700_000_000_000_000_000)
    assert n == 6
    linktype, records = _read_pcap(out)
    assert linktype == C.LINKTYPE_RAW
    assert [(s, u) for s, u, _ in records] == [(1_700_000_000, i) for i in range(6)]
    report = netsift.analyze(out).data
    assert report["capture"]["packets"] == 6
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_pcapng_output_and_dns_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "dns.pcapng")
    spec = C.spec_from_layers(["IP dst=10.0.0.53", "UDP",
                               "DNS rd=1 qd=DNSQR(qname=example.com,qtype=TXT),DNSQR(qname=example.org)"])
    assert C.write_capture(C.iter_packets(spec), out) == 1
    with open(out, "rb") as f:
        assert f.read(4) == b"\x0a\x0d\x0d\x0a"
    dns = netsift.analyze(out).data["dns"]
    assert dns["queries"] == 1
    assert dns["by_qtype"].get("TXT") == 1
    assert "example.com" in [q["name"] for q in dns["top_qnames"]]
    # qdcount on the wire counts both questions
    (pkt,) = C.build_packets(spec)
    wire = bytes(pkt)
    assert struct.unpack("!H", wire[20 + 8 + 4:20 + 8 + 6])[0] == 2


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_both_formats(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = C.spec_from_layers(["IP dst=10.0.0.53", "UDP",
                               "DNS rd=1 qd=DNSQR(qname=example.com,qtype=TXT)"])
    for name in ("q.pcap", "q.pcapng"):
        out = str(tmp_path / name)
        C.write_capture(C.iter_packets(spec), out)
        res = subprocess.run(["tshark", "-r", out, "-T", "fields", "-e", "dns.qry.name",
                              "-e", "dns.qry.type", "-e", "dns.count.queries"],
                             capture_output=True, text=True, timeout=60, check=False)
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["example.com", "16", "1"]


MIXED = {"packet": [{"layer": [{"name": "Ether"}, {"name": "ARP", "pdst": "10.0.0.2"}]},
                    {"layer": [{"name": "IP", "dst": "10.0.0.2"}, {"name": "ICMP"}]}]}


def test_mixed_link_types_refused_for_pcap_written_to_pcapng(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = C.spec_from_data(MIXED)
    with pytest.raises(UsageError, match=r"\.pcapng"):
        C.check_link_types(spec, str(tmp_path / "m.pcap"))
    with pytest.raises(UsageError, match=r"\.pcapng"):
        C.write_capture(C.iter_packets(spec), str(tmp_path / "m.pcap"))
    assert os.listdir(tmp_path) == []
    out = str(tmp_path / "m.pcapng")
    assert C.write_capture(C.iter_packets(spec), out) == 2
    report = netsift.analyze(out).data
    assert report["capture"]["packets"] == 2


# --- the CLI ------------------------------------------------------------------------


def test_cli_writes_default_file(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    assert main(["craft", "-l", "IP dst=10.0.0.2 ttl=1..30", "-l", "UDP dport=33434",
                 "--time", "2024-01-01T00:00:00"]) == 0
    err = capsys.readouterr().err
    assert "built 30 packets" in err and "wrote probes.pcap" in err
    _, records = _read_pcap("probes.pcap")
    assert len(records) == 30 and records[0][0] == 1_704_067_200
    assert main(["craft", "-q", "-l", "IP dst=10.0.0.2", "-w", "one.pcapng"]) == 0
    assert capsys.readouterr().err == ""
    assert os.path.getsize("one.pcapng") > 0


def test_cli_spec_file_and_show(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "ex.pcapng")
    assert main(["craft", "--spec", EXAMPLE, "-w", out, "--show", "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 27 and lines[0].startswith("IP / TCP")


@pytest.mark.parametrize(("argv", "code", "words"), [
    (["craft"], 2, "nothing to build"),
    (["craft", "-l", "IP", "--spec", "x.toml"], 2, "not both"),
    (["craft", "-l", "IPP"], 2, "unknown layer 'IPP'"),
    (["craft", "-l", "IP ttl=1..255", "-l", "TCP dport=1..1000"], 2, "--max-packets"),
    (["craft", "-l", "IP", "--scope", "10.0.0.0/24"], 2, "only apply with --send"),
    (["craft", "-l", "IP dst=10.0.0.2", "-w", "/nonexistent-dir/x.pcap"], 6, "does not exist"),
    (["craft", "-l", "IP", "--time", "yesterday"], 2, "--time"),
    (["craft", "-l", "IP", "--rate", "20000"], 2, ""),
])
def test_cli_exit_codes(argv: list[str], code: int, words: str, capsys, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    assert main(argv) == code
    err = capsys.readouterr().err
    assert words in err
    assert "Traceback" not in err


def test_cli_mixed_link_types(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "m.json"
    spec.write_text(json.dumps(MIXED))
    assert main(["craft", "--spec", str(spec), "-w", str(tmp_path / "m.pcap")]) == 2
    assert ".pcapng" in capsys.readouterr().err
    assert main(["craft", "--spec", str(spec), "-w", str(tmp_path / "m.pcapng")]) == 0


def test_cli_fields(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["craft", "--fields", "TCP"]) == 0
    out = capsys.readouterr().out
    assert "dport" in out and "flags" in out


# --- sending (Scapy's send/sendp are always replaced here) ---------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[object], dict[str, object]]] = []

    def patch(self, monkeypatch: pytest.MonkeyPatch) -> Recorder:
        import scapy.sendrecv as sr

        def fake(kind: str):  # type: ignore[no-untyped-def]
            def send(pkts, **kwargs):  # type: ignore[no-untyped-def]
                pkts = list(pkts)
                self.calls.append((kind, pkts, kwargs))
                for p in pkts:
                    p.sent_time = 1_700_000_000.0
                return pkts
            return send

        monkeypatch.setattr(sr, "send", fake("send"))
        monkeypatch.setattr(sr, "sendp", fake("sendp"))
        return self


def test_scope_refusal_before_any_packet(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder().patch(monkeypatch)
    # 10.0.0.1 is inside, 10.0.1.1 (the last of the set) is not: nothing may be sent
    code = main(["craft", "-l", "IP dst=10.0.0.1,10.0.1.1", "-l", "ICMP", "--send",
                 "--scope", "10.0.0.0/24"])
    assert code == 8
    assert "10.0.1.1 is outside" in capsys.readouterr().err
    assert rec.calls == []
    assert main(["craft", "-l", "IP dst=10.0.0.1", "--send"]) == 8  # no scope at all
    assert main(["craft", "-l", "Ether", "-l", "Raw load=x", "--send", "-i", "lo",
                 "--scope", "10.0.0.0/24"]) == 8  # no destination to check
    assert rec.calls == []


def test_check_scope_library() -> None:
    spec = C.spec_from_layers(["IPv6 dst=2001:db8::1,2001:db9::1", "ICMPv6EchoRequest"])
    with pytest.raises(ScopeError, match="2001:db9::1"):
        C.check_scope(C.iter_packets(spec), load_scope(["2001:db8::/32"]))
    arp = C.spec_from_layers(["Ether", "ARP pdst=10.0.0.9"])
    assert C.destinations(C.build_packets(arp)[0]) == ["10.0.0.9"]
    assert C.check_scope(C.iter_packets(arp), load_scope(["10.0.0.0/24"])) == 1


def test_send_in_scope_paced_and_written(monkeypatch, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder().patch(monkeypatch)
    out = str(tmp_path / "sent.pcap")
    assert main(["craft", "-l", "IP dst=10.0.0.1 ttl=1..3", "-l", "UDP dport=33434", "--send",
                 "--scope", "10.0.0.0/24", "--rate", "50", "-w", out]) == 0
    assert len(rec.calls) == 1
    kind, pkts, kwargs = rec.calls[0]
    assert kind == "send" and len(pkts) == 3 and kwargs["inter"] == pytest.approx(0.02)
    assert "sent 3 of 3 packets" in capsys.readouterr().err
    _, records = _read_pcap(out)
    assert len(records) == 3 and records[0][0] == 1_700_000_000


def test_send_layer2_needs_iface_and_uses_sendp(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder().patch(monkeypatch)
    argv = ["craft", "-l", "Ether dst=02:00:00:00:00:02", "-l", "ARP pdst=10.0.0.2", "--send",
            "--scope", "10.0.0.0/24"]
    assert main(argv) == 2
    assert rec.calls == []
    assert main([*argv, "-i", "lo"]) == 0
    assert [c[0] for c in rec.calls] == ["sendp"] and rec.calls[0][2]["iface"] == "lo"
    assert main([*argv, "-i", "no-such-if0"]) == 2


def test_send_without_privilege(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import scapy.sendrecv as sr

    def denied(*_a: object, **_k: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(sr, "send", denied)
    monkeypatch.setattr(sr, "sendp", denied)
    assert main(["craft", "-l", "IP dst=10.0.0.1", "--send", "--scope", "10.0.0.1"]) == 7
    assert "CAP_NET_RAW" in capsys.readouterr().err
