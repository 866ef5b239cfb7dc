"""Readers of the corpus's application-layer references, for test_applayer_conformance.py.

Each reader turns one upstream tool's output into plain tuples keyed the way the
pipeline's flow records can be looked up: by transport and the two endpoints.
The references are parsed with the standard library only (the corpus YAML uses a
small subset, read here line by line).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netsift.cli import cli

TSHARK = shutil.which("tshark")

#: (transport, endpoint, endpoint) with endpoints as (ip_address, port); see :func:`endpoint`.
Endpoint = tuple[Any, int]


def full_run() -> bool:
    """Every capture (CI, or ``NETSIFT_FULL_CORPUS=1``) instead of the default sample."""
    return os.environ.get("CI") == "true" or os.environ.get("NETSIFT_FULL_CORPUS") == "1"


def sample(items: list[Any], step: int) -> list[Any]:
    """Every item on a full run, else every ``step``-th (the first included)."""
    return list(items) if full_run() else list(items)[::step]


def endpoint(host: str, port: int | str) -> Endpoint:
    """(address, port); an address that does not parse is kept as its text."""
    try:
        return (ipaddress.ip_address(host.strip("[]")), int(port))
    except ValueError:
        return (host.strip("[]"), int(port))


def pair(transport: str, a: Endpoint, b: Endpoint) -> tuple[str, frozenset[Endpoint]]:
    """An undirected flow key (nDPI prints flows in its own order)."""
    return (transport, frozenset((a, b)))


# --------------------------------------------------------------------------- the pipeline


@dataclass(frozen=True)
class Flow:
    transport: str
    orig: Endpoint
    resp: Endpoint
    record: dict[str, Any]

    @property
    def directed(self) -> tuple[str, Endpoint, Endpoint]:
        return (self.transport, self.orig, self.resp)

    @property
    def undirected(self) -> tuple[str, frozenset[Endpoint]]:
        return pair(self.transport, self.orig, self.resp)


def pipeline_flows(*paths: Path) -> list[Flow]:
    """Every flow record of ``netsift.pipeline.analyze`` over the captures, in report order."""
    from netsift.pipeline import analyze

    report = analyze([str(p) for p in paths], report_flows=10**6)
    out = []
    for rec in report.data["flows"]["records"]:
        if rec.get("orig_p") is None or rec.get("resp_p") is None:
            continue
        out.append(Flow(rec["transport"], endpoint(rec["orig_h"], rec["orig_p"]),
                        endpoint(rec["resp_h"], rec["resp_p"]), rec))  # fmt: skip
    return out


def netsift_packets(path: Path, fields: list[str], display_filter: str) -> list[dict[str, str]]:
    """``netsift packets`` run in-process; one dict per row (CSV cells, absent = '')."""
    import contextlib

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["packets", str(path), "-e", ",".join(fields), "--filter", display_filter],
                        standalone_mode=False)  # fmt: skip
    assert code in (None, 0), (path, code)
    return list(csv.DictReader(io.StringIO(buf.getvalue())))


def tshark_fields(path: Path, fields: list[str], display_filter: str,
                  *prefs: str) -> list[dict[str, str]]:  # fmt: skip
    """``tshark -T fields -E occurrence=f`` with TCP desegmentation on, one dict per row."""
    assert TSHARK is not None
    cmd = [TSHARK, "-r", str(path), "-n", "-o", "tcp.desegment_tcp_streams:TRUE",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f", "-Y", display_filter]  # fmt: skip
    for p in prefs:
        cmd += ["-o", p]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    return [dict(zip(fields, line.split("\t"), strict=False)) for line in out.splitlines()]


# --------------------------------------------------------------------------- FoxIO JA4


@dataclass(frozen=True)
class Ja4Expect:
    source: str  # "python" or "rust"
    transport: str
    client: Endpoint
    server: Endpoint
    ja4: str
    ja4_r: str | None


def foxio_python(path: Path) -> list[Ja4Expect]:
    """``expected/python/<pcap>.json``: JA4.n / JA4_r.n per stream (TLS over TCP only)."""
    out = []
    for rec in json.loads(path.read_text()):
        for key in sorted((k for k in rec if k.startswith("JA4.")), key=lambda k: int(k[4:])):
            n = key[4:]
            out.append(Ja4Expect("python", "tcp", endpoint(rec["src"], rec["srcport"]),
                                 endpoint(rec["dst"], rec["dstport"]), rec[key],
                                 rec.get(f"JA4_r.{n}")))  # fmt: skip
    return out


def foxio_rust(path: Path) -> list[Ja4Expect]:
    """``expected/rust-insta/*.snap``: a YAML list of streams; ``ja4:`` lines (TCP and QUIC)."""
    out = []
    cur: dict[str, str] = {}

    def flush() -> None:
        if "ja4" in cur and "src" in cur:
            out.append(Ja4Expect("rust", cur["transport"], endpoint(cur["src"], cur["src_port"]),
                                 endpoint(cur["dst"], cur["dst_port"]), cur["ja4"], None))  # fmt: skip

    for line in path.read_text().splitlines():
        m = re.match(r"^(- |  )(\w+): (.*)$", line)
        if not m:
            continue
        if m.group(1) == "- ":
            flush()
            cur = {}
        cur[m.group(2)] = m.group(3).strip()
    flush()
    return out


# --------------------------------------------------------------------------- nDPI

_NDPI_FLOW = re.compile(
    r"^\s*\d+\s+(TCP|UDP)\s+(\[[^\]]*\]|[^\s\[]+):(\d+)\s+<?->\s+"
    r"(\[[^\]]*\]|[^\s\[]+):(\d+)\s+\[.*?\[JA4: ([^\]]+)\]"
)


def ndpi_ja4(result: Path) -> Iterator[tuple[str, Endpoint, Endpoint, str]]:
    """(transport, endpoint, endpoint, JA4) for each flow line of ``result/<pcap>.out``."""
    for line in result.read_text(errors="replace").splitlines():
        m = _NDPI_FLOW.match(line)
        if m:
            yield (m.group(1).lower(), endpoint(m.group(2), m.group(3)),
                   endpoint(m.group(4), m.group(5)), m.group(6))  # fmt: skip


# --------------------------------------------------------------------------- suricata-verify


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(x) for x in re.findall(r'"[^"]*"|\'[^\']*\'|[^,\s][^,]*', text[1:-1])]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def suricata_checks(test_yaml: Path) -> tuple[str | None, list[dict[str, Any]]]:
    """(pcap path relative to the test directory, [{"count": n, "match": {...}, ...}, ...]).

    ``test.yaml`` is read line by line: the top-level ``pcap:`` and, under
    ``checks:``, each ``- filter:`` with its ``count:`` and ``match:`` mapping
    (dotted keys, scalar or flow-list values) and its own ``requires:`` mapping
    (``{"count": n, "match": {...}, "requires": {...}}``).  Other check kinds are
    ignored.
    """
    pcap: str | None = None
    checks: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    in_match = in_requires = False
    match_indent = 0
    for raw in test_yaml.read_text(errors="replace").splitlines():
        line = raw.split(" #")[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        m = re.match(r"^pcap:\s*(.*)$", line)
        if m:
            value = _scalar(m.group(1))
            pcap = value if isinstance(value, str) and value not in ("false", "") else None
            continue
        if re.match(r"^\s*- filter:\s*$", line):
            cur = {"count": None, "match": {}, "requires": {}}
            checks.append(cur)
            in_match = in_requires = False
            continue
        if re.match(r"^\s*- \w", line) and indent <= 2:
            cur = None
            continue
        if cur is None:
            continue
        if (in_match or in_requires) and indent > match_indent:
            k, _, v = line.strip().partition(":")
            cur["match" if in_match else "requires"][k.strip().strip("\"'")] = _scalar(v)
            continue
        in_match = in_requires = False
        m = re.match(r"^\s*count:\s*(\d+)", line)
        if m:
            cur["count"] = int(m.group(1))
        elif re.match(r"^\s*match:\s*$", line):
            in_match, match_indent = True, indent
        elif indent > 0 and re.match(r"^\s*requires:\s*$", line):
            in_requires, match_indent = True, indent
    return pcap, checks


# --------------------------------------------------------------------------- Zeek


def zeek_log(path: Path) -> list[dict[str, str]]:
    """A Zeek TSV log (``#fields`` header) as dicts; '-' and '(empty)' become ''."""
    fields: list[str] = []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif line and not line.startswith("#") and fields:
            values = ["" if v in ("-", "(empty)") else v for v in line.split("\t")]
            rows.append(dict(zip(fields, values, strict=False)))
    return rows


def same_endpoint(want: Endpoint, got: Endpoint) -> bool:
    """Equal endpoints; a reference address that did not parse (nDPI abbreviates some
    IPv6 addresses into invalid text) is compared by port only."""
    return want[1] == got[1] and (isinstance(want[0], str) or want[0] == got[0])


def find_flows(flows: list[Flow], transport: str, a: Endpoint, b: Endpoint) -> list[Flow]:
    """The flows between the two endpoints, in either direction."""
    return [
        f for f in flows if f.transport == transport and (
            (same_endpoint(a, f.orig) and same_endpoint(b, f.resp))
            or (same_endpoint(b, f.orig) and same_endpoint(a, f.resp)))
    ]  # fmt: skip


@dataclass(frozen=True)
class EveExpect:
    """One field of one suricata-verify ``eve`` check, as netsift's flow summary names it.

    ``field`` is ``query``, ``qtype``, ``rcode`` or ``answer`` (DNS) or ``sni`` or
    ``version`` (TLS); ``src``/``dst`` are the event's endpoints when the check gives
    them (either may be None), ``transport`` its ``proto``.
    """

    test: str
    pcap: str
    field: str
    value: str
    transport: str | None
    src: tuple[Any, int | None] | None
    dst: tuple[Any, int | None] | None
    pcap_cnt: int | None
    #: an answer's RR type, when the check gives it
    rrtype: str | None = None
    #: the check (or its test) ``requires`` an ``lt-version``: older Suricata behaviour
    superseded: bool = False


def _eve_endpoint(match: dict[str, Any], side: str) -> tuple[Any, int | None] | None:
    ip, port = match.get(f"{side}_ip"), match.get(f"{side}_port")
    if ip is None and port is None:
        return None
    host: Any = None
    if ip is not None:
        try:
            host = ipaddress.ip_address(str(ip))
        except ValueError:
            host = str(ip)
    return (host, int(port) if isinstance(port, int) else None)


_ANSWER_RDATA = re.compile(r"^dns\.answers\[(\d+)\]\.rdata$")


def eve_expectations(test: str, pcap: str, test_yaml: Path, requires: str = "") -> list[EveExpect]:
    """The DNS and TLS field expectations of a ``test.yaml`` (``count`` >= 1 checks only).

    Eve DNS comes in three layouts, all read: v1 (one event per query and per
    answer RR: ``dns.type`` query/answer, ``dns.rrname``, ``dns.rrtype``,
    ``dns.rdata``), v2 (``dns.type`` query/answer, answers under ``dns.answers[]``)
    and v3 (``dns.type`` request/response, ``dns.queries[]``, ``dns.answers[]``).
    ``requires`` is the test's requirement text (``suricata-verify/INDEX.tsv``).
    """
    out = []
    for check in suricata_checks(test_yaml)[1]:
        match, count = check["match"], check["count"]
        event = match.get("event_type")
        if event not in ("dns", "tls") or count == 0:
            continue
        transport = str(match["proto"]).lower() if "proto" in match else None
        ends = (_eve_endpoint(match, "src"), _eve_endpoint(match, "dest"))
        cnt = match.get("pcap_cnt") if isinstance(match.get("pcap_cnt"), int) else None
        superseded = "lt-version" in requires or "lt-version" in check["requires"]
        fields: list[tuple[str, Any, Any]] = []
        if event == "tls":
            fields += [(f, match[f"tls.{f}"], None) for f in ("sni", "version") if f"tls.{f}" in match]
        else:
            kind = str(match.get("dns.type", ""))
            is_answer_rr = kind == "answer" and "dns.answers[0].rrname" not in match and (
                "dns.rdata" in match or "dns.queries[0].rrname" not in match)
            for key, value in match.items():
                m = _ANSWER_RDATA.match(key)
                if key == "dns.queries[0].rrname" or (key == "dns.rrname" and not is_answer_rr):
                    fields.append(("query", value, None))
                elif key == "dns.queries[0].rrtype" or (key == "dns.rrtype" and not is_answer_rr):
                    fields.append(("qtype", value, None))
                elif key == "dns.rcode" and (kind in ("answer", "response")
                                             or str(match.get("dns.qr")) in ("True", "true")):  # fmt: skip
                    fields.append(("rcode", value, None))
                elif m:
                    fields.append(("answer", value, match.get(f"dns.answers[{m.group(1)}].rrtype")))
                elif key == "dns.rdata" and is_answer_rr:
                    fields.append(("answer", value, match.get("dns.rrtype")))
        for field, value, rrtype in fields:
            out.append(EveExpect(test, pcap, field, str(value), transport, *ends, cnt,
                                 None if rrtype is None else str(rrtype), superseded))  # fmt: skip
    return out
