"""The ``netsift live`` command: capture from interfaces, show rolling statistics and alerts, report."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .errors import EXIT_CODES_HELP
from .live import DEFAULT_SNAPLEN


@click.command(context_settings={"max_content_width": 100}, epilog=EXIT_CODES_HELP)
@click.option("-i", "--iface", "interfaces", multiple=True, required=True, metavar="IFACE",
              help="Interface to capture on (repeatable: several interfaces into one capture).")
@click.option("-f", "--filter", "bpf", metavar="BPF", help="Capture filter (tcpdump syntax), applied in the kernel.")
@click.option("-c", "--count", type=click.IntRange(0), default=0, help="Stop after this many packets (0: no limit).")
@click.option("-d", "--duration", type=click.FloatRange(0), default=0.0, metavar="SECONDS",
              help="Stop after this many seconds (0: no limit). Ctrl-C or SIGTERM also stop cleanly.")
@click.option("-w", "--write", "write_path", metavar="FILE.pcapng", type=click.Path(dir_okay=False),
              help="Keep every packet in this pcapng file as it arrives (else a temporary file is used "
                   "and removed).")
@click.option("--rotate-mb", type=click.FloatRange(0), default=0.0, metavar="MB",
              help="With -w: start a new file (FILE_00001.pcapng, FILE_00002.pcapng, ...) every MB megabytes.")
@click.option("--snaplen", type=int, default=DEFAULT_SNAPLEN, show_default=True,
              help="Bytes kept of each packet.")
@click.option("--no-promisc", is_flag=True, help="Do not put the interfaces in promiscuous mode.")
@click.option("--buffer-mb", type=float, default=16.0, show_default=True, metavar="MB",
              help="Kernel receive buffer per interface: absorbs bursts while netsift catches up.")
@click.option("-o", "--output", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write the JSON report on exit (the same report `analyze` writes, plus a `live` section).")
@click.option("--alerts", "alerts_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write the final findings as ECS NDJSON alerts on exit.")
@click.option("--flows", "flows_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write every flow on exit (.ndjson, .csv or .parquet).")
@click.option("--config", "config_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="Detector configuration (TOML; `netsift config --defaults`).")
@click.option("--no-detect", is_flag=True, help="No detectors (no alerts while running, no findings).")
@click.option("--html", "html_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write the self-contained HTML report on exit.")
@click.option("--evidence-dir", metavar="DIR", type=click.Path(file_okay=False),
              help="Write each final finding's evidence packets and JSON stub to DIR (needs -w to keep the capture).")
@click.option("--fail-on", metavar="SEVERITY", help="Exit 10 if a final finding reaches this severity.")
@click.option("--stats-interval", type=click.FloatRange(0.2), default=2.0, show_default=True, metavar="SECONDS",
              help="Seconds between rolling statistics.")
@click.option("--alert-interval", type=click.FloatRange(1), default=10.0, show_default=True, metavar="SECONDS",
              help="Seconds between looks for new findings in the traffic so far (stretched so that "
                   "they never take more than a fifth of the time).")
@click.option("--ndjson", is_flag=True,
              help="Print rolling statistics and alerts as NDJSON lines (the default when stdout is not a terminal).")
@click.option("--top", "top_n", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Rows in the rolling top lists and the report's top lists.")
@click.option("--json", "as_json", is_flag=True, help="Print only the final JSON report on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing while running and no summary.")
def live(interfaces: tuple[str, ...], bpf: str | None, count: int, duration: float, write_path: str | None,
         rotate_mb: float, snaplen: int, no_promisc: bool, buffer_mb: float, output: str | None, alerts_path: str | None,
         flows_path: str | None, config_path: str | None, no_detect: bool, html_path: str | None,
         evidence_dir: str | None, fail_on: str | None,
         stats_interval: float, alert_interval: float, ndjson: bool, top_n: int, as_json: bool,
         quiet: bool) -> None:
    """Capture live traffic, show rolling statistics and alerts, and report on exit.

    Sniffs the interfaces (Scapy sockets, the BPF filter in the kernel) until
    --count packets, --duration seconds, Ctrl-C or SIGTERM. Every packet is
    kept in a pcapng file (-w, rotated with --rotate-mb; a temporary file
    otherwise) so nothing is lost, and on exit that capture is analysed: the
    report is what `netsift analyze` writes for it, plus a `live` section
    with the interfaces, the filter and the kernel's drop counts. While it
    runs it shows a rolling table on a terminal, or NDJSON lines
    when stdout is piped or with --ndjson: one ECS-shaped object per line, event.kind
    "event" (capture started), "metric" (rolling statistics) or "alert"
    (a new finding, as --alerts writes it). Needs CAP_NET_RAW (root).

    \b
    Examples:
      netsift live -i eth0 -d 60 -o report.json
      netsift live -i eth0 -f 'udp port 53 or tcp port 443' -w dns-tls.pcapng
      netsift live -i eth0 -i eth1 -w ring.pcapng --rotate-mb 100 --alerts alerts.ndjson
      netsift live -i eth0 --ndjson | jq -c 'select(.event.kind == "alert") | .message'
    """
    from .cli import emit_report
    from .detect import Severity
    from .live import LiveOptions, live_section, run_live
    from .pipeline import analyze
    from .quality import apply_checksum_not_ready

    if no_detect and (alerts_path or fail_on or config_path or evidence_dir):
        raise click.UsageError("--no-detect contradicts --alerts, --fail-on, --config and --evidence-dir")
    if evidence_dir and not write_path:
        raise click.UsageError("--evidence-dir needs -w FILE: the evidence is cut from the kept capture")
    threshold = Severity.parse(fail_on) if fail_on is not None else None
    if config_path:
        from .detect import Detectors

        Detectors.from_file(config_path)  # a bad config is an error before capturing, not after
    opts = LiveOptions(interfaces=list(interfaces), bpf=bpf, count=count, duration=duration,
                       write=write_path, rotate_mb=rotate_mb, snaplen=snaplen, promisc=not no_promisc,
                       buffer_mb=buffer_mb,
                       stats_interval=stats_interval, alert_interval=alert_interval, detect=not no_detect,
                       config_path=config_path, top_n=top_n)
    stream = ndjson or (not sys.stdout.isatty() and not as_json and not quiet)
    view = None if (quiet or as_json or stream) else _TerminalView(top_n)

    def warn(message: str) -> None:
        click.echo(f"netsift: warning: {message}", err=True)

    on_stats: Any = None
    on_alert: Any = None
    if stream:
        from .detect.finding import ecs_alert

        on_stats = _line

        def on_alert(f: dict[str, Any]) -> None:
            _line(ecs_alert(f))
    elif view is not None:
        on_stats = view.stats
        on_alert = view.alert
    if view is not None:
        view.start(interfaces)
    try:
        files, spool, state, itfs = run_live(opts, on_stats=on_stats, on_alert=on_alert, warn=warn,
                                             on_start=_line if stream else None)
    finally:
        if view is not None:
            view.stop()
    try:
        report = analyze(files, top_n=max(top_n, 20), warn=warn, flows_path=flows_path,
                         detect=not no_detect, config_path=config_path)
        report.data["live"] = live_section(opts, spool, state, itfs)
        apply_checksum_not_ready(report.data["quality"], sum(i.checksum_not_ready for i in itfs))
        if state.stop_reason == "interrupted":
            click.echo("netsift: capture stopped by Ctrl-C; reporting what was captured", err=True)
        emit_report(report, output=output, alerts_path=alerts_path, as_json=as_json,
                    quiet=quiet or stream, flows_path=flows_path, threshold=threshold,
                    summary=view is not None, html_path=html_path, evidence_dir=evidence_dir, warn=warn)
        if stream and output:
            click.echo(f"netsift: report written to {output}", err=True)
        if write_path and not (quiet or as_json):
            click.echo(f"{state.packets:,} packets written to {', '.join(files)}", err=True)
    finally:
        spool.cleanup()


def _line(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class _TerminalView:
    """A rich Live table: packets, rates, drops, protocols, talkers; alerts printed above it."""

    def __init__(self, top_n: int) -> None:
        from .terminal import console

        self.console = console(sys.stdout)
        self.top_n = min(top_n, 8)
        self.live: Any = None
        self.alerts = 0

    def start(self, interfaces: tuple[str, ...]) -> None:
        from rich.live import Live

        self.live = Live(self._render(None, interfaces), console=self.console, refresh_per_second=4,
                         transient=False)
        self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()

    def stats(self, ev: dict[str, Any]) -> None:
        if self.live is not None:
            self.live.update(self._render(ev, ()))

    def alert(self, f: dict[str, Any]) -> None:
        from rich.markup import escape

        from .terminal import _SEVERITY_STYLE

        self.alerts += 1
        style = _SEVERITY_STYLE.get(f["severity"], "")
        self.console.print(f"[{style}]{f['severity'].upper():8}[/] {escape(f['detector'])}/{escape(f['code'])}: "
                           f"{escape(f['summary'])}")

    def _render(self, ev: dict[str, Any] | None, interfaces: tuple[str, ...]) -> Any:
        from rich.markup import escape
        from rich.table import Table

        t = Table(show_edge=False, show_header=False, title="netsift live", title_justify="left")
        t.add_column("")
        t.add_column("", overflow="fold")
        if ev is None:
            t.add_row("capturing on", escape(", ".join(interfaces)))
            t.add_row("packets", "0")
            return t
        t.add_row("elapsed", f"{ev['elapsed_s']:.0f} s")
        t.add_row("packets", f"{ev['packets']:,} ({ev['packets_per_s'] or 0:,.0f}/s)")
        t.add_row("bytes", f"{ev['bytes']:,} ({(ev['bits_per_s'] or 0) / 1e6:,.2f} Mbit/s)")
        for itf in ev["interfaces"]:
            t.add_row(escape(itf["name"]), f"{itf['packets']:,} packets, kernel dropped {itf['kernel_dropped']:,}")
        protos = ", ".join(f"{escape(str(p['path']))} {p['frames']:,}"
                           for p in ev["protocols"][: self.top_n])
        t.add_row("protocols", protos or "-")
        talkers = ", ".join(f"{escape(str(x['address']))} {x['bytes']:,} B"
                            for x in ev["top_talkers"][: self.top_n])
        t.add_row("top talkers", talkers or "-")
        t.add_row("alerts", f"{ev['alerts']:,}")
        return t
