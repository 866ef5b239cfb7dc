"""`netsift scan` and `netsift live` for real, between two network namespaces this module creates.

The scanner namespace scans the target namespace, where a real TCP server
listens on one port, one port is closed, one is silently dropped by nftables
and one is rejected with ICMP "administratively prohibited".  Captures run
inside the namespaces while the peer sends known traffic.  Nothing is sent
anywhere else: the namespaces hold only their veth ends and loopback.

Needs root (CI runs as root); skipped with the reason elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from netns import SCANNER_V4, SCANNER_V6, TARGET_V4, TARGET_V6, NetnsPair, skip_reason
from netsift.pipeline import analyze
from netsift.report import report_schema

REASON = skip_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")
PY = sys.executable
OPEN, CLOSED, DROPPED, REJECTED = 8080, 7070, 9090, 9191
SCOPE = ["--scope", "198.18.0.0/24", "--scope", "2001:db8:18::/64"]

SERVER = f"""
import socket, time
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", {OPEN}))
s.listen(64)
print("listening", flush=True)
time.sleep(600)
"""

NFT = (f"add table inet netsift_test; "
       f"add chain inet netsift_test input {{ type filter hook input priority 0; }}; "
       f"add rule inet netsift_test input tcp dport {DROPPED} drop; "
       f"add rule inet netsift_test input tcp dport {REJECTED} reject with icmpx type admin-prohibited")


@pytest.fixture(scope="module")
def pair():
    if shutil.which("nft") is None:
        pytest.skip("needs nftables' nft for the 'filtered' ports (apt-get install nftables; .ci/run installs it)")
    p = NetnsPair(f"{os.getpid() % 100000}").up()
    try:
        server = p.spawn(p.target, PY, "-c", SERVER, stdout=subprocess.PIPE)
        assert server.stdout is not None
        assert server.stdout.readline().strip() == b"listening"
        r = p.exec(p.target, "nft", NFT)
        assert r.returncode == 0, r.stderr
        yield p
    finally:
        p.down()


def _netsift(p: NetnsPair, ns: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return p.exec(ns, PY, "-m", "netsift", *args, timeout=timeout)


class _Capture:
    """`netsift live` running in a namespace, stopped with SIGTERM; its report read back."""

    def __init__(self, p: NetnsPair, ns: str, iface: str, tmp: Path, *extra: str) -> None:
        self.report = tmp / f"live-{ns}-{time.monotonic_ns()}.json"
        self.proc = p.spawn(ns, PY, "-m", "netsift", "live", "-i", iface, "--ndjson", "-o", str(self.report),
                            "--stats-interval", "0.5", *extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        first = json.loads(self.proc.stdout.readline())  # the sockets are open once this line is out
        assert first["event"]["action"] == "capture-started", first

    def stop(self) -> dict:
        time.sleep(0.5)  # let the last frames reach the socket
        os.kill(self.proc.pid, signal.SIGTERM)  # ip netns exec execs netsift: same pid
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err.decode()
        self.events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        report = json.loads(self.report.read_text())
        jsonschema.validate(report, report_schema())
        return report


def _ports(data: dict, host: str) -> dict[int, dict]:
    [h] = [h for h in data["hosts"] if h["host"] == host]
    return {r["port"]: r for r in h["ports"]}


def test_syn_scan_finds_open_closed_filtered_on_ipv4_and_ipv6(pair, tmp_path):
    cap = _Capture(pair, pair.target, pair.target_if, tmp_path, "-f", "tcp", "-w", str(tmp_path / "target.pcapng"))
    out = tmp_path / "scan.json"
    r = _netsift(pair, pair.scanner, "scan", TARGET_V4, TARGET_V6, "-p", f"{OPEN},{CLOSED},{DROPPED},{REJECTED}",
                 *SCOPE, "--timeout", "0.5", "--retries", "1", "--rate", "200", "-o", str(out), "--seed", "7")
    assert r.returncode == 0, r.stderr
    report = cap.stop()
    data = json.loads(out.read_text())
    for host in (TARGET_V4, TARGET_V6):
        ports = _ports(data, host)
        assert (ports[OPEN]["state"], ports[OPEN]["reason"]) == ("open", "syn-ack")
        assert (ports[CLOSED]["state"], ports[CLOSED]["reason"]) == ("closed", "reset")
        assert (ports[DROPPED]["state"], ports[DROPPED]["reason"]) == ("filtered", "no-response")
        assert ports[DROPPED]["tries"] == 2  # first probe + one retry
        assert (ports[REJECTED]["state"], ports[REJECTED]["reason"]) == ("filtered", "admin-prohibited")
        for port in (OPEN, CLOSED, REJECTED):
            assert ports[port]["rtt_ms"] is not None and ports[port]["rtt_ms"] < 1000
            assert ports[port]["reason_ttl"] == 64
    s = data["scan"]
    assert s["states"] == {"open": 2, "closed": 2, "filtered": 4, "unknown": 0}
    assert s["probes_sent"] == 8 + 2  # two dropped ports retried once
    assert s["rsts_sent"] == 2
    # the terminal table lists the same states
    assert "open" in r.stdout and "admin-prohibited" in r.stdout
    # what the target saw: the probes, and one RST from the scanner per open port
    # (the scanner's kernel may add its own RST: it has no socket for the SYN-ACK)
    rows = subprocess.run(
        ["tshark", "-r", str(tmp_path / "target.pcapng"), "-Y", f"tcp.flags.reset == 1 and tcp.dstport == {OPEN}",
         "-T", "fields", "-e", "ip.src", "-e", "ipv6.src"],
        capture_output=True, text=True, timeout=60,
    ).stdout.split() if shutil.which("tshark") else [SCANNER_V4, SCANNER_V6]
    assert SCANNER_V4 in rows and SCANNER_V6 in rows
    # no half-open connection is left on the server
    ss = pair.exec(pair.target, "ss", "-Htn", "state", "syn-recv")
    assert ss.stdout.strip() == ""
    # the passive view of the same traffic agrees: a capture of the scan is a scan
    assert report["live"]["stop_reason"] == "terminated"
    assert report["capture"]["packets"] == report["live"]["packets"] > 0


def test_out_of_scope_target_is_refused_and_nothing_is_sent(pair, tmp_path):
    cap = _Capture(pair, pair.target, pair.target_if, tmp_path, "-f", "tcp or icmp or udp")
    r = _netsift(pair, pair.scanner, "scan", TARGET_V4, "-p", "1-100", "--scope", f"{SCANNER_V4}/32")
    assert r.returncode == 8
    assert r.stderr.strip().splitlines() == [
        f"netsift: error: target {TARGET_V4} is outside the authorized scope ({SCANNER_V4}/32); nothing was sent"]
    r = _netsift(pair, pair.scanner, "scan", TARGET_V4, "-p", "80")  # no scope at all
    assert r.returncode == 8 and "no scope given" in r.stderr
    report = cap.stop()
    assert report["capture"]["packets"] == 0
    assert report["live"]["interfaces"][0]["kernel_received"] == 0


def test_dry_run_writes_the_probes_and_sends_nothing(pair, tmp_path):
    cap = _Capture(pair, pair.target, pair.target_if, tmp_path, "-f", "tcp")
    probes = tmp_path / "probes.pcapng"
    r = _netsift(pair, pair.scanner, "scan", TARGET_V4, TARGET_V6, "-p", "20-29", *SCOPE, "--dry-run", str(probes))
    assert r.returncode == 0, r.stderr
    assert cap.stop()["capture"]["packets"] == 0
    data = analyze(str(probes), detect=False).data
    assert data["capture"]["packets"] == 20
    assert {row["flags"]: row["packets"] for row in data["tcp_flags"]} == {"SYN": 20}


def _dns_and_tls_sender() -> str:
    """Code run in the target namespace: 25 DNS queries and a TLS ClientHello over a real connection."""
    return f"""
import socket, time
from scapy.all import IP, UDP, DNS, DNSQR, send
from scapy.layers.tls.all import TLS, TLSClientHello
from scapy.layers.tls.extensions import TLS_Ext_ServerName, ServerName, TLS_Ext_SupportedGroups
queries = [IP(dst="{SCANNER_V4}") / UDP(sport=20000 + i, dport=53) /
           DNS(id=i, rd=1, qd=DNSQR(qname=f"h{{i}}.live.example.test", qtype="A")) for i in range(25)]
send(queries, verbose=0, inter=0.002)
hello = bytes(TLS(msg=[TLSClientHello(ciphers=[0x1301, 0x1302, 0xc02f],
                                      ext=[TLS_Ext_ServerName(servernames=[ServerName(servername=b"tls.live.example.test")]),
                                           TLS_Ext_SupportedGroups(groups=[29, 23])])]))
c = socket.create_connection(("{SCANNER_V4}", 4443), timeout=5)
c.sendall(hello)
time.sleep(0.3)
c.close()
"""


def test_live_capture_reports_what_the_peer_sent(pair, tmp_path):
    listener = pair.spawn(pair.scanner, PY, "-c",
                          "import socket,time\ns=socket.create_server(('0.0.0.0',4443));print('ok',flush=True)\n"
                          "c,_=s.accept();c.recv(65536);time.sleep(1)", stdout=subprocess.PIPE)
    assert listener.stdout is not None and listener.stdout.readline().strip() == b"ok"
    spool = tmp_path / "live.pcapng"
    cap = _Capture(pair, pair.scanner, pair.scanner_if, tmp_path, "-f", "udp port 53 or tcp port 4443",
                   "-w", str(spool), "--alert-interval", "1")
    r = pair.exec(pair.target, PY, "-c", _dns_and_tls_sender())
    assert r.returncode == 0, r.stderr
    listener.wait(timeout=30)  # its FIN is on the wire too
    live = cap.stop()
    assert live["dns"]["queries"] == 25
    assert live["dns"]["responses"] == 0
    assert live["tls"]["client_hellos"] == 1
    assert [s["sni"] for s in live["tls"]["top_snis"]] == ["tls.live.example.test"]
    flows = live["flows"]["by_transport"]
    assert flows.get("udp") == 25 and flows.get("tcp") == 1
    itf = live["live"]["interfaces"][0]
    assert itf["kernel_dropped"] == 0 and itf["kernel_received"] == itf["packets"] == live["capture"]["packets"]
    # veth leaves TCP checksums to offload: the kernel says so, and the verdict reads it as offload
    assert live["quality"]["verdict"] == "good"
    assert [r["code"] for r in live["quality"]["reasons"]] == ["checksum_offload"]
    assert itf["checksum_not_ready"] > 0
    # rolling statistics came while it ran, the last one final, with the same packet count
    stats = [e for e in cap.events if e["event"]["kind"] == "metric"]
    assert stats and stats[-1]["final"] and stats[-1]["packets"] == live["capture"]["packets"]
    # the live report is the report `analyze` writes for the kept capture
    offline = analyze(str(spool)).data
    for key in ("capture", "protocols", "top_talkers", "dns", "tls", "flows", "findings"):
        a, b = json.loads(json.dumps(live[key])), json.loads(json.dumps(offline[key]))
        if key == "capture":
            for d in (a, b):
                d.pop("files", None)
        assert a == b, key


def test_live_rotates_files_and_loses_nothing(pair, tmp_path):
    base = tmp_path / "ring.pcapng"
    cap = _Capture(pair, pair.scanner, pair.scanner_if, tmp_path, "-f", "udp port 9999", "-w", str(base),
                   "--rotate-mb", "0.02", "--no-detect")
    code = (f"from scapy.all import IP, UDP, Raw, send\n"
            f"send([IP(dst='{SCANNER_V4}')/UDP(sport=1000+i, dport=9999)/Raw(bytes(400)) for i in range(300)],"
            f" verbose=0, inter=0.001)")
    assert pair.exec(pair.target, PY, "-c", code).returncode == 0
    report = cap.stop()
    files = report["live"]["files"]
    assert len(files) >= 5
    assert [Path(f).name for f in files] == [f"ring_{i:05d}.pcapng" for i in range(1, len(files) + 1)]
    assert report["capture"]["packets"] == 300
    assert sum(analyze(f, flows=False, detect=False).data["capture"]["packets"] for f in files) == 300


def test_live_without_privilege_says_which_capability_is_missing(tmp_path):
    if shutil.which("setpriv") is None:
        pytest.skip("needs util-linux's setpriv to drop root")
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                        PY, "-m", "netsift", "live", "-i", "lo", "-d", "1"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 7, r.stderr
    assert r.stderr.strip().splitlines() == [
        "netsift: error: capturing on lo needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode): run as "
        "root, or grant them to the interpreter (setcap cap_net_raw,cap_net_admin=eip <python>)"]
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                        PY, "-m", "netsift", "scan", "127.0.0.1", "-p", "80", "--scope", "127.0.0.1"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 7 and "needs CAP_NET_RAW" in r.stderr and "Traceback" not in r.stderr


def test_live_bad_interface_and_bad_filter_are_one_sentence(pair):
    r = _netsift(pair, pair.scanner, "live", "-i", "nosuch0", "-d", "1")
    assert r.returncode == 2
    assert r.stderr.startswith("netsift: error: no interface named 'nosuch0' (interfaces here: ")
    r = _netsift(pair, pair.scanner, "live", "-i", pair.scanner_if, "-f", "tcp prot 80", "-d", "1")
    assert r.returncode == 2 and "is not valid BPF" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_craft_sends_a_fuzzed_probe_set_inside_the_scope_only(pair, tmp_path):
    cap = _Capture(pair, pair.scanner, pair.scanner_if, tmp_path, "-f", "udp port 53", "-w",
                   str(tmp_path / "craft.pcapng"))
    layers = ["-l", f"IP dst={SCANNER_V4} ttl=60..64", "-l", "UDP sport=5300 dport=53",
              "-l", "DNS rd=1 qd=DNSQR(qname=craft.example.test,qtype=TXT)"]
    refused = _netsift(pair, pair.target, "craft", *layers, "--send", "--scope", f"{TARGET_V4}/32")
    assert refused.returncode == 8 and "outside" in refused.stderr
    sent = _netsift(pair, pair.target, "craft", *layers, "--send", "--scope", "198.18.0.0/24", "--rate", "500")
    assert sent.returncode == 0, sent.stderr
    report = cap.stop()
    assert report["capture"]["packets"] == 5  # the refused run sent nothing
    assert report["dns"]["queries"] == 5
    assert report["dns"]["top_qnames"] == [{"name": "craft.example.test", "queries": 5}]
    assert report["dns"]["by_qtype"] == {"TXT": 5}
    ttls = subprocess.run(["tshark", "-r", str(tmp_path / "craft.pcapng"), "-T", "fields", "-e", "ip.ttl"],
                          capture_output=True, text=True, timeout=60).stdout.split() if shutil.which("tshark") else []
    if ttls:
        assert sorted(map(int, ttls)) == [60, 61, 62, 63, 64]


def test_live_stops_at_count_and_on_ctrl_c_with_the_report_written(pair, tmp_path):
    send = (f"from scapy.all import IP, UDP, send\n"
            f"send([IP(dst='{SCANNER_V4}')/UDP(sport=7000+i, dport=7777) for i in range(30)], verbose=0, inter=0.002)")
    out = tmp_path / "count.json"
    proc = pair.spawn(pair.scanner, PY, "-m", "netsift", "live", "-i", pair.scanner_if, "-f", "udp port 7777",
                      "-c", "10", "--ndjson", "-o", str(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert json.loads(proc.stdout.readline())["event"]["action"] == "capture-started"
    assert pair.exec(pair.target, PY, "-c", send).returncode == 0
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    report = json.loads(out.read_text())
    assert report["capture"]["packets"] == 10 and report["live"]["stop_reason"] == "count"

    cap = _Capture(pair, pair.scanner, pair.scanner_if, tmp_path, "-f", "udp port 7777")
    assert pair.exec(pair.target, PY, "-c", send).returncode == 0
    time.sleep(0.5)
    os.kill(cap.proc.pid, signal.SIGINT)
    _out, err = cap.proc.communicate(timeout=60)
    assert cap.proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    report = json.loads(cap.report.read_text())
    assert report["capture"]["packets"] == 30 and report["live"]["stop_reason"] == "interrupted"
