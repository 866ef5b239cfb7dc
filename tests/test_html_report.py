"""The self-contained HTML report (netsift.html_report): sections, numbers, caps, escaping."""

from __future__ import annotations

import base64
import copy
import hashlib
import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import netsift
from netsift import html_report
from netsift.html_report import render_html, write_html

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "examples" / "sample.pcap"

ALL_SECTIONS = ("summary", "findings", "timeline", "protocols", "talkers", "conversations",
                "ports", "sizes", "dns", "tls", "http", "flows", "capture")  # fmt: skip

# Hostile strings put into every capture field an attacker controls.
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
SVG = '"><svg/onload=alert(1)>'  # no space: survives DNS names unescaped


class _Page(HTMLParser):
    """The page's elements: tag counts, ids, event-handler attributes, script bodies."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: dict[str, int] = {}
        self.ids: list[str] = []
        self.handlers: list[tuple[str, str]] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        found = dict(attrs)
        self.attrs.append((tag, found))
        if found.get("id"):
            self.ids.append(str(found["id"]))
        self.handlers.extend((tag, name) for name, _ in attrs if name.startswith("on"))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def section_ids(page: str) -> set[str]:
    return set(re.findall(r'<section id="([a-z]+)"', page))


def section(page: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}".*?</section>', page, re.S)
    assert m, f"no section {sid}"
    return m.group(0)


@pytest.fixture(scope="module")
def sample_report() -> dict[str, Any]:
    return netsift.analyze([str(SAMPLE)]).data


@pytest.fixture(scope="module")
def detector_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The selftest's crafted captures: findings of several detectors and every severity."""
    from netsift.detect.selftest import run_selftest

    folder = tmp_path_factory.mktemp("selftest")
    run_selftest(only=("dns_tunnel", "scan", "encrypted_dns", "capture_quality"), keep=str(folder))
    return netsift.analyze(sorted(str(p) for p in folder.glob("*.pcap"))).data


def write_xss_capture(path: Path) -> None:
    """HTTP, TLS and DNS whose host, URI, user agent, SNI and query names carry markup."""
    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.layers.tls.all import TLS, ServerName, TLS_Ext_ServerName, TLSClientHello
    from scapy.utils import wrpcap

    cmac, smac = "02:00:00:00:00:01", "02:00:00:00:00:02"
    client, server, resolver = "192.0.2.10", "198.51.100.80", "198.51.100.53"
    packets = []

    def add(pkt: Any) -> None:
        pkt.time = 1700000000.0 + 0.01 * len(packets)
        packets.append(pkt)

    def c2s(sport: int, dport: int, dst: str = server, **kw: Any) -> Any:
        return Ether(src=cmac, dst=smac) / IP(src=client, dst=dst) / TCP(sport=sport, dport=dport, **kw)

    def s2c(sport: int, dport: int, **kw: Any) -> Any:
        return Ether(src=smac, dst=cmac) / IP(src=server, dst=client) / TCP(sport=sport, dport=dport, **kw)

    # HTTP/1.1: markup in the URI, Host and User-Agent, and the response's Content-Type.
    request = (f"GET /{SCRIPT}?q={IMG} HTTP/1.1\r\nHost: {SCRIPT}{IMG}\r\n"
               f"User-Agent: {IMG}{SCRIPT}\r\n\r\n").encode()  # fmt: skip
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/html<script>\r\nContent-Length: 0\r\n\r\n"
    add(c2s(40000, 80, flags="S", seq=1000))
    add(s2c(80, 40000, flags="SA", seq=5000, ack=1001))
    add(c2s(40000, 80, flags="A", seq=1001, ack=5001))
    add(c2s(40000, 80, flags="PA", seq=1001, ack=5001) / request)
    add(s2c(80, 40000, flags="PA", seq=5001, ack=1001 + len(request)) / response)
    # TLS: the same markup as the SNI.
    hello = TLS(msg=[TLSClientHello(ext=[TLS_Ext_ServerName(
        servernames=[ServerName(servername=(SCRIPT + IMG).encode())])])])  # fmt: skip
    add(c2s(40001, 443, flags="S", seq=2000))
    add(s2c(443, 40001, flags="SA", seq=7000, ack=2001))
    add(c2s(40001, 443, flags="A", seq=2001, ack=7001))
    add(c2s(40001, 443, flags="PA", seq=2001, ack=7001) / bytes(hello))
    # DNS: 40 NULL queries of hex names under a registered domain made of markup, which
    # the dns_tunnel detector reports (the domain in its summary and evidence).
    for i in range(40):
        sub = hashlib.sha1(str(i).encode()).hexdigest()[:32]
        name = f"{sub}.{SCRIPT}.{SVG}.com".encode()
        add(Ether(src=cmac, dst=smac) / IP(src=client, dst=resolver)
            / UDP(sport=50000 + i, dport=53) / DNS(id=i, rd=1, qd=DNSQR(qname=name, qtype="NULL")))  # fmt: skip
    wrpcap(str(path), packets)


@pytest.fixture(scope="module")
def xss_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("xss") / "xss.pcap"
    write_xss_capture(path)
    return netsift.analyze([str(path)]).data


# --------------------------------------------------------------------------- sections


def test_every_section_renders_for_a_full_report(sample_report: dict[str, Any]) -> None:
    page = render_html(sample_report)
    assert section_ids(page) == set(ALL_SECTIONS)
    assert page.startswith("<!DOCTYPE html>")
    # the navigation links exactly the sections present
    assert set(re.findall(r'<a href="#([a-z]+)">', page)) == set(ALL_SECTIONS)


def test_sections_of_absent_report_parts_are_left_out(sample_report: dict[str, Any]) -> None:
    no_detect = copy.deepcopy(sample_report)
    del no_detect["findings"]
    page = render_html(no_detect)
    assert section_ids(page) == set(ALL_SECTIONS) - {"findings"}
    assert "did not run" in section(page, "summary")
    assert 'class="marker"' not in page

    no_app = copy.deepcopy(no_detect)
    for key in ("dns", "tls", "http"):
        del no_app[key]
    assert section_ids(render_html(no_app)) == set(ALL_SECTIONS) - {"findings", "dns", "tls", "http"}

    no_flows = copy.deepcopy(no_app)
    del no_flows["flows"], no_flows["fragments"]
    page = render_html(no_flows)
    assert section_ids(page) == set(ALL_SECTIONS) - {"findings", "dns", "tls", "http", "flows"}
    assert 'id="flows-table"' not in page and 'id="findings-table"' not in page


def test_analyze_without_flows_app_or_detectors() -> None:
    data = netsift.analyze([str(SAMPLE)], flows=False, detect=False).data
    assert {"flows", "dns", "tls", "http", "findings"}.isdisjoint(data)
    page = render_html(data)
    assert section_ids(page) == set(ALL_SECTIONS) - {"findings", "dns", "tls", "http", "flows"}
    assert parse(page).tags.get("script") == 1


def test_empty_application_sections_are_skipped(sample_report: dict[str, Any]) -> None:
    data = copy.deepcopy(sample_report)
    data["dns"]["messages"] = 0
    data["tls"].update(client_hellos=0, server_hellos=0, quic_client_hellos=0)
    data["http"].update(requests=0, responses=0)
    data["flows"]["records"] = []
    data["findings"].update(items=[], total=0)
    page = render_html(data)
    assert section_ids(page) == set(ALL_SECTIONS) - {"dns", "tls", "http", "flows"}
    assert "No findings" in section(page, "findings")


def test_an_empty_capture(tmp_path: Path) -> None:
    from scapy.utils import wrpcap

    path = tmp_path / "empty.pcap"
    wrpcap(str(path), [])
    data = netsift.analyze([str(path)]).data
    page = render_html(data)
    assert {"summary", "capture"} <= section_ids(page)
    assert {"timeline", "dns", "tls", "http", "flows", "talkers"}.isdisjoint(section_ids(page))
    assert parse(page).tags.get("script") == 1


def test_a_sparse_report_renders() -> None:
    """Only the top-level keys the schema requires, most of them empty."""
    data: dict[str, Any] = {
        "schema_version": "1.0", "tool": {"name": "netsift", "version": "0"}, "run": {},
        "inputs": [], "skipped_inputs": [], "capture": {}, "quality": {"verdict": "good", "reasons": []},
        "protocols": [], "top_talkers": {}, "conversations": {}, "ports": {}, "tcp_flags": [],
        "packet_sizes": [], "timeseries": {"interval_s": 0, "start_ts": None, "packets": [], "bytes": []},
        "anomalies": {},
    }  # fmt: skip
    page = render_html(data)
    assert section_ids(page) == {"summary", "capture"}


# --------------------------------------------------------------------------- numbers


def test_findings_counts_match_the_report(detector_report: dict[str, Any]) -> None:
    findings = detector_report["findings"]
    assert sum(1 for n in findings["by_severity"].values() if n) >= 3, "the samples lost their variety"
    page = render_html(detector_report)
    summary = section(page, "summary")
    for sev, count in findings["by_severity"].items():
        chip = re.search(rf'<a class="chip sev-{sev}" href="#findings" data-sev="{sev}" '
                         rf'data-count="(\d+)"><b>([\d,]+)</b> {sev}</a>', summary)  # fmt: skip
        assert chip, sev
        assert int(chip.group(1)) == count
        assert int(chip.group(2).replace(",", "")) == count
    assert f'<b id="findings-total">{findings["total"]:,}</b>' in summary
    rows = re.findall(r'<tbody class="finding" data-sev="([a-z]+)" data-det="([a-z_]+)">', page)
    assert len(rows) == len(findings["items"])
    for sev, count in findings["by_severity"].items():
        assert sum(1 for s, _ in rows if s == sev) == count
    for det, count in findings["by_detector"].items():
        assert sum(1 for _, d in rows if d == det) == count
    # the most severe first
    ranks = [html_report._SEV_RANK[s] for s, _ in rows]
    assert ranks == sorted(ranks, reverse=True)
    # each finding's summary, code and evidence keys are there
    for item in findings["items"]:
        assert html.escape(item["summary"], quote=True) in page
        for key in item["evidence"]:
            assert f"<th>{html.escape(key)}</th>" in page
        for key in item["thresholds"]:
            assert f"<th>{html.escape(key)}</th>" in page
    # the filters offer exactly the detectors that fired
    options = re.findall(r'<option value="([a-z_]+)">\1</option>', section(page, "findings"))
    assert sorted(options) == sorted(findings["by_detector"])


def test_timeline_marks_every_finding(detector_report: dict[str, Any]) -> None:
    page = render_html(detector_report)
    timeline = section(page, "timeline")
    markers = re.findall(r'<g class="marker" data-sev="([a-z]+)">', timeline)
    items = detector_report["findings"]["items"]
    assert len(markers) == 2 * len(items)  # the packets and the bytes chart
    assert sorted(markers) == sorted(2 * [i["severity"] for i in items])
    assert timeline.count("<svg") == 2


def test_traffic_numbers_match_the_report(sample_report: dict[str, Any]) -> None:
    page = render_html(sample_report)
    talkers = section(page, "talkers")
    for side in ("sources", "destinations"):
        for talker in sample_report["top_talkers"]["by_packets"][side][: html_report.MAX_BARS]:
            assert f"<code>{talker['address']}</code>" in talkers
            assert f"{talker['packets']:,}" in talkers
    summary = section(page, "summary")
    assert f"<div class=\"tile-v\">{sample_report['capture']['packets']:,}</div>" in summary
    protocols = section(page, "protocols")
    for row in sample_report["protocols"]:
        assert f'<tr title="{row["path"]}">' in protocols
        assert f'<td class="num">{row["frames"]:,}</td><td class="num">{row["frames_pct"]:.2f}%</td>' in protocols
    conversations = section(page, "conversations")
    for conv in sample_report["conversations"]["top_by_bytes"][:10]:
        assert f"<code>{conv['address_a']}</code>" in conversations
    ports = section(page, "ports")
    for port in sample_report["ports"]["tcp"]["dst"][:5]:
        assert f"<code>{port['port']}</code>" in ports
    sizes = section(page, "sizes")
    for b in sample_report["packet_sizes"]:
        if b["packets"]:
            assert f"{b['packets']:,} packets" in sizes
    dns = section(page, "dns")
    for q in sample_report["dns"]["top_qnames"]:
        assert f"<code>{html.escape(q['name'])}</code>" in dns
    assert dns.count("<circle") == len(sample_report["dns"]["clients"]["top"])
    tls = section(page, "tls")
    for sni in sample_report["tls"]["top_snis"]:
        assert f"<code>{html.escape(sni['sni'])}</code>" in tls
    for fp in sample_report["tls"]["ja4"]:
        assert html.escape(fp["fingerprint"]) in tls
    http = section(page, "http")
    for host in sample_report["http"]["top_hosts"]:
        assert f"<code>{html.escape(host['host'])}</code>" in http


def test_flows_table_lists_the_largest_flows(sample_report: dict[str, Any]) -> None:
    page = render_html(sample_report)
    flows = section(page, "flows")
    uids = re.findall(r'<code class="uid">(C[0-9A-Za-z]{17})</code>', flows)
    records = sample_report["flows"]["records"]
    assert len(uids) == min(len(records), html_report.MAX_FLOWS)
    biggest = max(records, key=lambda r: r["orig_ip_bytes"] + r["resp_ip_bytes"])
    assert uids[0] == biggest["uid"]
    assert 'id="flow-q"' in flows


def test_the_page_stays_small_for_a_big_report(detector_report: dict[str, Any]) -> None:
    data = copy.deepcopy(detector_report)
    item = data["findings"]["items"][0]
    data["findings"]["items"] = [dict(item, id=str(i)) for i in range(5000)]
    record = data["flows"]["records"][0]
    data["flows"]["records"] = [dict(record, uid=f"C{i:017d}") for i in range(20000)]
    data["dns"]["top_qnames"] = [{"name": "x" * 200 + str(i), "queries": i} for i in range(5000)]
    data["protocols"] = data["protocols"] * 200
    page = render_html(data)
    assert len(page) < 5_000_000
    assert page.count('<tbody class="finding"') == html_report.MAX_FINDINGS
    assert page.count('<tr class="detail">') == html_report.MAX_FINDINGS
    assert len(re.findall(r'<code class="uid">', page)) == html_report.MAX_FLOWS
    assert "least severe findings are not shown" in page


# --------------------------------------------------------------------------- safety


def test_no_external_references_and_a_strict_csp(sample_report: dict[str, Any]) -> None:
    page = render_html(sample_report)
    parsed = parse(page)
    assert parsed.tags.get("script") == 1
    assert not {"link", "img", "iframe", "object", "embed", "base", "form", "image", "use"} & set(parsed.tags)
    for tag, attrs in parsed.attrs:
        for name in ("src", "href", "action", "xlink:href", "srcset", "data", "poster"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)
    assert parsed.handlers == []
    assert "url(" not in page and "@import" not in page
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert csp
    policy = html.unescape(csp.group(1))
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["img-src"] == "data:"
    digest = base64.b64encode(hashlib.sha256(parsed.scripts[0].encode()).digest()).decode()
    assert directives["script-src"] == f"'sha256-{digest}'"
    assert "unsafe" not in directives["script-src"]
    # the policy is the first thing in <head> after the charset
    assert page.index("Content-Security-Policy") < page.index("<style>") < page.index("<script>")


def test_capture_strings_are_escaped(xss_report: dict[str, Any]) -> None:
    # the hostile strings did reach the report, in every application field
    http = xss_report["http"]
    assert http["top_hosts"][0]["host"] == SCRIPT + IMG
    assert http["top_user_agents"][0]["user_agent"] == IMG + SCRIPT
    assert http["top_uris"][0]["uri"] == f"/{SCRIPT}?q={IMG}"
    assert xss_report["tls"]["top_snis"][0]["sni"] == SCRIPT + IMG
    assert all(SCRIPT in q["name"] and SVG in q["name"] for q in xss_report["dns"]["top_qnames"])
    tunnel = [f for f in xss_report["findings"]["items"] if f["detector"] == "dns_tunnel"]
    assert tunnel and SVG in tunnel[0]["summary"]

    page = render_html(xss_report)
    for raw in (SCRIPT, IMG, SVG, "<img", "<svg/", "text/html<script>"):
        assert raw not in page, raw
    for raw in (SCRIPT, IMG, SVG, SCRIPT + IMG, IMG + SCRIPT):
        assert html.escape(raw, quote=True) in page, raw
    assert html.escape(tunnel[0]["summary"], quote=True) in page
    parsed = parse(page)
    assert parsed.tags.get("script") == 1
    assert "img" not in parsed.tags
    assert parsed.handlers == []
    assert parsed.tags.get("svg", 0) == page.count("<svg ")
    # the sections that show those fields are all there
    assert {"findings", "dns", "tls", "http", "flows"} <= section_ids(page)


def test_escape_makes_controls_and_bidi_overrides_visible() -> None:
    esc = html_report._esc
    assert esc('<a href="x">&\'') == "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;"
    assert esc("evil\u202egnp.exe") == "evil\\u202egnp.exe"
    assert esc("a\x00b\x1bc\u2028d") == "a\\u0000b\\u001bc\\u2028d"
    assert esc("\udcff") == "\\udcff"  # a lone surrogate cannot be written as UTF-8
    assert esc("tab\tnew\nline") == "tab\tnew\nline"


def test_hostile_strings_in_every_report_field(sample_report: dict[str, Any]) -> None:
    """Markup in any string of the report, including the ones no capture can set today."""
    def poison(value: Any) -> Any:
        if isinstance(value, str):
            return value + SCRIPT + "\u202e" + "\udcff"
        if isinstance(value, list):
            return [poison(v) for v in value]
        if isinstance(value, dict):
            return {poison(k) if isinstance(k, str) else k: poison(v) for k, v in value.items()}
        return value

    data = poison(sample_report)
    page = render_html(data)
    assert SCRIPT not in page and "\u202e" not in page
    page.encode("utf-8")  # no lone surrogate left
    parsed = parse(page)
    assert parsed.tags.get("script") == 1
    assert parsed.handlers == []


def test_deeply_nested_evidence(sample_report: dict[str, Any]) -> None:
    data = copy.deepcopy(sample_report)
    deep: Any = SCRIPT
    for i in range(300):
        deep = [deep] if i % 2 else {"k": deep}
    data["findings"]["items"][0]["evidence"]["deep"] = deep
    page = render_html(data)
    assert SCRIPT not in page and html.escape(SCRIPT, quote=True) in page


def test_write_html(tmp_path: Path, sample_report: dict[str, Any]) -> None:
    out = tmp_path / "report.html"
    write_html(sample_report, str(out))
    assert out.read_text(encoding="utf-8") == render_html(sample_report)
    assert not [p for p in tmp_path.iterdir() if p.name != "report.html"]
    with pytest.raises(netsift.NetsiftError):
        write_html(sample_report, str(tmp_path / "missing" / "report.html"))


def test_live_and_evidence_facts_are_shown_escaped(tmp_path):
    from netsift.evidence import write_evidence
    from netsift.html_report import render_html
    from netsift.pipeline import analyze

    data = analyze(str(SAMPLE)).data
    data["evidence"] = write_evidence(data, str(tmp_path / "ev"))
    data["live"] = {"interfaces": [{"name": "eth<0>", "link_type": 1, "packets": 514, "kernel_received": 520,
                                    "kernel_dropped": 6, "checksum_not_ready": 3}],
                    "filter": "tcp and host <x>", "snaplen": 262144, "promiscuous": True,
                    "started": "2026-01-01T00:00:00Z", "stopped": "2026-01-01T00:01:00Z", "duration_s": 60.0,
                    "stop_reason": "duration", "packets": 514, "bytes": 1, "files": [], "interim_analyses": 1,
                    "interim_analysis_s": 0.1, "alerts_emitted": 1}
    page = render_html(data)
    assert "Live capture" in page and "Evidence captures" in page
    assert "eth&lt;0&gt;" in page and "tcp and host &lt;x&gt;" in page and "<x>" not in page
    assert ">6<" in page  # the kernel's drops
