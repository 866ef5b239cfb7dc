"""Terminal rendering: the analyze summary and the progress bar (both via rich)."""

from __future__ import annotations

import os
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

_VERDICT_STYLE = {"good": "green", "degraded": "yellow", "poor": "bold red"}


def console(stream: IO[str], force_plain: bool = False) -> Console:
    """A console on ``stream``; NO_COLOR (https://no-color.org) and pipes turn colour off."""
    no_color = force_plain or "NO_COLOR" in os.environ
    return Console(file=stream, no_color=no_color, highlight=False, soft_wrap=False,
                   width=None if stream.isatty() else 110)


def _human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23 M' + unit (SI prefixes, three significant digits)."""
    if 0 < abs(n) < 0.001:
        return f"< 0.001 {unit}"
    for suffix in ("", "k", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.3g} {suffix}{unit}"
        n /= 1000
    return f"{n:.3g} P{unit}"


def _duration(seconds: float) -> str:
    """'299.018 s (4 min 59 s)'; long spans in days."""
    text = f"{seconds:,.3f} s"
    if seconds >= 60:
        s = int(seconds)
        days, s = divmod(s, 86400)
        hours, s = divmod(s, 3600)
        minutes, s = divmod(s, 60)
        parts = [f"{days:,} d"] if days else []
        parts += [f"{hours} h"] if hours else []
        parts += [f"{minutes} min"] if minutes and not days else []
        parts += [f"{s} s"] if s and not days and not hours else []
        text += f" ({' '.join(parts)})"
    return text


def render_summary(con: Console, data: dict[str, Any]) -> None:
    cap = data["capture"]
    q = data["quality"]
    files = ", ".join(os.path.basename(i["path"]) for i in data["inputs"][:3])
    if len(data["inputs"]) > 3:
        files += f" (+{len(data['inputs']) - 3} more)"
    t = Table(title="Capture", box=box.SIMPLE, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("files", files)
    t.add_row("packets", f"{cap['packets']:,}")
    t.add_row("bytes", f"{cap['bytes']:,}")
    t.add_row("first / last", f"{cap['first_time'] or '-'}  →  {cap['last_time'] or '-'}")
    t.add_row("duration", _duration(cap["duration_s"]))
    if cap["avg_bits_per_s"]:
        t.add_row("average rate", f"{_human(cap['avg_packets_per_s'], 'pkt/s')}, "
                  f"{_human(cap['avg_bits_per_s'], 'bit/s')}")
    t.add_row("link types", ", ".join(f"{r['name']} ({r['packets']:,})" for r in cap["link_types"]))
    style = _VERDICT_STYLE.get(q["verdict"], "")
    t.add_row("quality", f"[{style}]{q['verdict']}[/]")
    con.print(t)
    for r in q["reasons"]:
        con.print(f"  [{_VERDICT_STYLE.get(r['level'], 'dim')}]•[/] {r['message']}", markup=True,
                  highlight=False)

    protos = [p for p in data["protocols"] if p["depth"] <= 3]
    if protos:
        pt = Table(title="Protocols", box=box.SIMPLE, title_justify="left")
        pt.add_column("protocol")
        pt.add_column("frames", justify="right")
        pt.add_column("%", justify="right")
        pt.add_column("bytes", justify="right")
        for p in protos[:25]:
            pt.add_row("  " * p["depth"] + p["protocol"], f"{p['frames']:,}", f"{p['frames_pct']:.1f}",
                       f"{p['bytes']:,}")
        con.print(pt)

    talkers = data["top_talkers"]["by_bytes"]
    if talkers.get("sources"):
        tt = Table(title="Top talkers (by bytes)", box=box.SIMPLE, title_justify="left")
        tt.add_column("source")
        tt.add_column("packets", justify="right")
        tt.add_column("bytes", justify="right")
        tt.add_column("destination")
        tt.add_column("packets", justify="right")
        tt.add_column("bytes", justify="right")
        srcs, dsts = talkers["sources"][:5], talkers["destinations"][:5]
        for i in range(max(len(srcs), len(dsts))):
            s = srcs[i] if i < len(srcs) else None
            d = dsts[i] if i < len(dsts) else None
            tt.add_row(
                s["address"] if s else "", f"{s['packets']:,}" if s else "", f"{s['bytes']:,}" if s else "",
                d["address"] if d else "", f"{d['packets']:,}" if d else "", f"{d['bytes']:,}" if d else "",
            )
        con.print(tt)

    conv = data["conversations"]["top_by_bytes"][:5]
    if conv:
        ct = Table(title="Top conversations", box=box.SIMPLE, title_justify="left")
        for col in ("A", "B", "A→B pkts", "B→A pkts", "bytes", "duration s"):
            ct.add_column(col, justify="right" if col not in ("A", "B") else "left")
        for r in conv:
            ct.add_row(r["address_a"], r["address_b"], f"{r['a_to_b_packets']:,}",
                       f"{r['b_to_a_packets']:,}", f"{r['bytes']:,}", f"{r['duration_s']:.3f}")
        con.print(ct)

    ports = data["ports"]
    lines = []
    for proto in ("tcp", "udp"):
        top = ports.get(proto, {}).get("dst", [])[:8]
        if top:
            lines.append(f"  {proto} dst: " + ", ".join(f"{r['port']} ({r['packets']:,})" for r in top))
    if lines:
        con.print("[bold]Top destination ports[/]")
        for line in lines:
            con.print(line, highlight=False)
    flows = data.get("flows")
    if flows:
        _render_flows(con, flows, data.get("fragments"))
    _render_app(con, data)
    if "findings" in data:
        _render_findings(con, data["findings"])
    if data["anomalies"]:
        con.print("[bold]Decoder anomalies[/]: " + ", ".join(
            f"{k} {v:,}" for k, v in sorted(data["anomalies"].items(), key=lambda kv: -kv[1])))


def _endpoint(host: str, port: int) -> str:
    """``1.2.3.4:80`` / ``[2001:db8::1]:80`` (RFC 3986 brackets, so the port is not read as part of the address)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _render_flows(con: Console, flows: dict[str, Any], frags: dict[str, Any] | None) -> None:
    by_t = ", ".join(f"{k} {v:,}" for k, v in flows["by_transport"].items())
    con.print(f"[bold]Flows[/]: {flows['total']:,} ({by_t}); peak live {flows['peak_live']:,}"
              + (f", [yellow]{flows['evicted']:,} evicted at the cap[/]" if flows["evicted"] else ""))
    tcp_states = flows["by_conn_state"].get("tcp")
    if tcp_states:
        con.print("  tcp states: " + ", ".join(f"{k} {v:,}" for k, v in tcp_states.items()), highlight=False)
    ta = {k: v for k, v in flows["tcp_analysis"].items() if v}
    if ta:
        con.print("  tcp analysis: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in ta.items()),
                  highlight=False)
    records = {r["uid"]: r for r in flows["records"]}
    top = [records[u] for u in flows["top_by_bytes"][:8] if u in records]
    if top:
        ft = Table(title="Top flows (by bytes)", box=box.SIMPLE, title_justify="left")
        for col in ("proto", "originator", "responder", "state", "history", "pkts →/←", "bytes", "duration s"):
            ft.add_column(col, justify="right" if col in ("pkts →/←", "bytes", "duration s") else "left")
        for r in top:
            ft.add_row(r["transport"], _endpoint(r["orig_h"], r["orig_p"]), _endpoint(r["resp_h"], r["resp_p"]),
                       r["conn_state"], r["history"] or "-", f"{r['orig_pkts']:,}/{r['resp_pkts']:,}",
                       f"{r['orig_ip_bytes'] + r['resp_ip_bytes']:,}", f"{r['duration_s']:.3f}")
        con.print(ft, markup=False)
    if frags:
        facts = {k: v for k, v in frags["facts"].items() if v}
        c = frags["counters"]
        line = (f"[bold]IP fragments[/]: {c.get('fragments', 0):,} fragments, "
                f"{c.get('datagrams_reassembled', 0):,} datagrams reassembled")
        if facts:
            line += "; [yellow]" + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in facts.items()) + "[/]"
        if c.get("fragments", 0) or facts:
            con.print(line, highlight=False)


def _counts(d: dict[str, int], n: int = 6) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in list(d.items())[:n])


def _render_app(con: Console, data: dict[str, Any]) -> None:
    dns, tls, http = data.get("dns"), data.get("tls"), data.get("http")
    if dns and dns["messages"]:
        line = (f"[bold]DNS[/]: {dns['queries']:,} queries, {dns['responses']:,} responses"
                f" ({dns['unanswered_queries']:,} queries unanswered)")
        if dns["rtt"]:
            line += f"; median RTT {dns['rtt']['median_ms']:.1f} ms"
        con.print(line, highlight=False)
        con.print(f"  types: {_counts(dns['by_qtype'])}; rcodes: {_counts(dns['by_rcode'])}", highlight=False)
        nl = dns["query_name_length"]
        if nl:
            con.print(f"  query name length: mean {nl['mean']:.1f}, p95 {nl['p95']}, max {nl['max']}",
                      highlight=False)
        doms = dns["top_registered_domains"][:6]
        if doms:
            con.print("  top domains: " + ", ".join(f"{d['domain']} ({d['queries']:,})" for d in doms),
                      highlight=False, markup=False)
    if tls and (tls["client_hellos"] or tls["quic_client_hellos"] or tls["server_hellos"]):
        con.print(f"[bold]TLS[/]: {tls['client_hellos']:,} client hellos, {tls['server_hellos']:,} server hellos,"
                  f" {tls['quic_client_hellos']:,} QUIC; {tls['client_hellos_without_sni']:,} without SNI",
                  highlight=False)
        if tls["negotiated_versions"]:
            con.print(f"  versions: {_counts(tls['negotiated_versions'])}", highlight=False)
        snis = tls["top_snis"][:6]
        if snis:
            con.print("  top SNI: " + ", ".join(f"{s['sni']} ({s['hellos']:,})" for s in snis),
                      highlight=False, markup=False)
        for row in tls["ja4"][:5]:
            ex = ", ".join(row["example_snis"][:2])
            con.print(f"  JA4 {row['fingerprint']}: {row['hellos']:,} hellos from {row['clients']:,} clients"
                      + (f" ({ex})" if ex else ""), highlight=False, markup=False)
    if http and (http["requests"] or http["responses"]):
        con.print(f"[bold]HTTP[/]: {http['requests']:,} requests, {http['responses']:,} responses;"
                  f" methods {_counts(http['methods'])}; status {_counts(http['status_codes'])}",
                  highlight=False)
        hosts = http["top_hosts"][:6]
        if hosts:
            con.print("  top hosts: " + ", ".join(f"{h['host']} ({h['requests']:,})" for h in hosts),
                      highlight=False, markup=False)


_SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan",
                   "info": "dim"}  # fmt: skip


def _render_findings(con: Console, f: dict[str, Any]) -> None:
    """Findings by severity, then one line per finding (the most severe first)."""
    counts = ", ".join(f"[{_SEVERITY_STYLE[k]}]{v} {k}[/]" for k, v in f["by_severity"].items() if v)
    con.print(f"[bold]Findings[/]: {f['total']:,}" + (f" ({counts})" if counts else ""), highlight=False)
    if not f["inputs_seen"]["flows"]:
        con.print("  [dim]flows were off (--no-flows): the flow and DNS detectors saw nothing[/]")
    elif not f["inputs_seen"]["app"]:
        con.print("  [dim]the application layer was off (--no-app): the DNS detectors saw nothing[/]")
    items = f["items"]
    if not items:
        return
    t = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    t.add_column("severity")
    t.add_column("code")
    t.add_column("summary", overflow="fold")
    for item in items[:25]:
        sev = item["severity"]
        t.add_row(f"[{_SEVERITY_STYLE[sev]}]{sev}[/]", item["code"], escape(item["summary"]))
    con.print(t)
    if len(items) > 25:
        con.print(f"  ... and {len(items) - 25:,} more in the JSON report (-o) or the alerts (--alerts)")


def render_selftest(con: Console, results: list[Any]) -> None:
    """``netsift selftest``'s table: one row per sample."""
    t = Table(title="netsift selftest", box=box.SIMPLE, title_justify="left")
    for col in ("detector", "sample", "kind", "result", "detail"):
        t.add_column(col, overflow="fold")
    for r in results:
        ok = "[green]pass[/]" if r.passed else "[bold red]FAIL[/]"
        t.add_row(r.detector, r.sample.name, "positive" if r.sample.expect else "negative", ok,
                  escape(r.detail))
    con.print(t)
    failed = sum(not r.passed for r in results)
    if not results:
        con.print("[bold red]no samples: no detector is registered[/]")
    elif failed:
        con.print(f"[bold red]{failed} of {len(results)} checks failed[/]")
    else:
        con.print(f"[green]all {len(results)} checks passed[/]")


def progress_bar(stream: IO[str]) -> Progress:
    """Bytes and packets per second, on stderr; callers only create it for a terminal."""
    return Progress(
        TextColumn("[bold]reading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[packets]:,} pkts  {task.fields[rate]}"),
        TimeRemainingColumn(),
        console=Console(file=stream),
        transient=True,
    )
