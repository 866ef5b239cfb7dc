"""The ``netsift`` command line and its one error boundary (:func:`main`).

Every failure a user can cause ends here as one sentence on stderr and an
:class:`~netsift.errors.ExitCode`; tracebacks are for bugs only.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import click

from . import __version__
from .errors import EXIT_CODES_HELP, ExitCode, NetsiftError, OutputError
from .pipeline import ENGINES, FLOW_ENGINES


class _Commands(click.Group):
    """The command group; the commands that capture or send (live, craft, scan) live in
    their own modules, imported only when one of them runs or help lists them (they pull
    in Scapy's socket layer and craft's tables, about 50 ms every other command skips)."""

    lazy: ClassVar[dict[str, str]] = {"live": "cli_live", "craft": "cli_craft", "scan": "cli_scan"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = self.lazy.get(name)
        if module is None:
            return super().get_command(ctx, name)
        command: click.Command = getattr(importlib.import_module(f"{__package__}.{module}"), name)
        return command


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="netsift")
def cli() -> None:
    """netsift: what is inside network traffic.

    \b
    Examples:
      netsift analyze capture.pcapng -o report.json
      netsift analyze 'captures/*.pcap.gz' --quiet -o report.json
      netsift analyze capture.pcap --flows flows.ndjson
      netsift analyze capture.pcap --alerts alerts.ndjson --fail-on high
      netsift packets capture.pcap --fields ip.src,ip.dst,tcp.dstport --filter 'tcp.port == 443'
      netsift analyze capture.pcap --html report.html --evidence-dir evidence/
      netsift live -i eth0 -d 60 -w capture.pcapng -o report.json
      netsift craft -l 'IP dst=192.0.2.10 ttl=1..30' -l 'UDP dport=33434' -w probes.pcapng
      netsift scan 192.0.2.10 -p 22,80,443 --scope 192.0.2.0/24
      netsift selftest
      netsift config --defaults > netsift.toml
      netsift schema > report.schema.json
    """


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, writable=False),
              help="Write the JSON report to this file (atomically).")
@click.option("--engine", type=click.Choice(ENGINES), default="fast", show_default=True,
              help="Decoder: 'fast' (vectorized) or 'scapy' (the slow reference).")
@click.option("--top", "top_n", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="Rows in each top-N table.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout instead of the summary.")
@click.option("-q", "--quiet", is_flag=True, help="No summary and no progress bar (warnings still go to stderr).")
@click.option("--no-progress", is_flag=True, help="Never show the progress bar.")
@click.option("--flows", "flows_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write every flow to FILE: .ndjson/.jsonl/.json (ECS), .csv, or .parquet (needs the "
                   "parquet extra).")
@click.option("--no-flows", is_flag=True,
              help="Skip sessionizing (no flows, fragments, dns, tls or http sections).")
@click.option("--no-app", is_flag=True,
              help="Skip the application layer (no dns, tls or http sections; flow services by port).")
@click.option("--flow-engine", type=click.Choice(FLOW_ENGINES), default="auto", show_default=True,
              help="Flow table: 'c' (built at install), 'python' (the reference), 'auto' = c when built.")
@click.option("--max-flows", type=click.IntRange(1), default=250_000, show_default=True,
              help="Live flows held at once; beyond it the least recently active is evicted (counted).")
@click.option("--tcp-timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              metavar="SECONDS", help="TCP idle timeout (Zeek's tcp_inactivity_timeout).")
@click.option("--udp-timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              metavar="SECONDS", help="UDP idle timeout (Zeek's udp_inactivity_timeout).")
@click.option("--icmp-timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              metavar="SECONDS", help="ICMP and other-protocol idle timeout.")
@click.option("--active-timeout", type=click.FloatRange(min=0), default=0.0, show_default=True,
              metavar="SECONDS", help="Split flows longer than this; 0 = never (as Zeek).")
@click.option("--no-vlan-key", is_flag=True, help="Leave VLAN ids out of the flow key (as Zeek does).")
@click.option("--report-flows", type=click.IntRange(0), default=1000, show_default=True,
              help="Flow records kept in the JSON report (the largest by bytes).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Detector thresholds and allowlists (TOML; `netsift config --defaults` prints every key).")
@click.option("--no-detect", is_flag=True, help="Skip the detectors (no findings section).")
@click.option("--alerts", "alerts_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write every finding to FILE as NDJSON alerts with ECS field names (atomically).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write a self-contained HTML report (charts, findings, flows; works offline).")
@click.option("--evidence-dir", "evidence_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write each finding's evidence packets (pcapng, source frame in each packet's comment) "
                   "and a JSON stub of it to DIR, with an index.json.")
@click.option("--fail-on", "fail_on", metavar="SEVERITY",
              help="Exit with code 10 when a finding is at least this severe: info, low, medium, high, "
                   "critical.")
@click.option("-j", "--jobs", type=click.IntRange(1, 1024), default=None, metavar="N",
              help="Worker processes [default: the number of cores, at most 4; inputs under 4 MiB are "
                   "read in one process]. Work is split by flow; the report is the same for every N.")
@click.option("--dask-scheduler", "dask_scheduler", metavar="ADDRESS",
              help="Run the workers on a Dask cluster (tcp://host:8786; needs the dask extra). The "
                   "captures must be readable at the same paths on every worker (and with --flows, "
                   "the export's directory writable); --jobs defaults to the cluster's threads.")
def analyze(captures: tuple[str, ...], output: str | None, engine: str, top_n: int,
            as_json: bool, quiet: bool, no_progress: bool, flows_path: str | None, no_flows: bool, no_app: bool,
            flow_engine: str, max_flows: int, tcp_timeout: float, udp_timeout: float,
            icmp_timeout: float, active_timeout: float, no_vlan_key: bool, report_flows: int,
            config_path: str | None, no_detect: bool, alerts_path: str | None, html_path: str | None,
            evidence_dir: str | None, fail_on: str | None, jobs: int | None,
            dask_scheduler: str | None) -> None:
    """Read captures, build flows, read DNS/TLS/HTTP, run the detectors and report.

    CAPTURE may be a pcap or pcapng file (optionally gzip-compressed), a glob
    or a directory (searched recursively). Packets are sessionized into
    bidirectional flows with Zeek's conn_state and history and Wireshark's
    TCP analysis; IP fragments are reassembled; DNS, TLS, QUIC and HTTP are
    read from the flows; the detectors (docs/detectors/) report findings with
    their evidence. Prints a summary; -o writes the JSON report whose schema
    `netsift schema` prints; --flows writes every flow; --alerts writes the
    findings as NDJSON alerts with ECS field names.

    \b
    Examples:
      netsift analyze capture.pcapng -o report.json
      netsift analyze day1/ day2/*.pcap.gz --top 50 -o week.json
      netsift analyze capture.pcap --json | jq .quality
      netsift analyze capture.pcap --json | jq '.tls.ja4[:5], .dns.top_registered_domains'
      netsift analyze capture.pcap --flows flows.ndjson -q
      netsift analyze capture.pcap --flows flows.csv --tcp-timeout 3600 --no-vlan-key
      netsift analyze capture.pcap --alerts alerts.ndjson --fail-on high -q
      netsift analyze capture.pcap --config netsift.toml --json | jq '.findings.items[]'
      netsift analyze capture.pcap --html report.html --evidence-dir evidence/
      netsift analyze week/ --jobs 8 -o week.json
      netsift analyze /shared/pcaps/ --dask-scheduler tcp://scheduler:8786 -o report.json
    """
    from .detect import Severity
    from .flows import FlowConfig
    from .pipeline import analyze as run

    if flows_path and no_flows:
        raise click.UsageError("--flows and --no-flows contradict each other")
    if no_detect and (alerts_path or fail_on or config_path or evidence_dir):
        raise click.UsageError("--no-detect contradicts --alerts, --fail-on, --config and --evidence-dir")
    threshold = Severity.parse(fail_on) if fail_on is not None else None
    try:
        flow_config = FlowConfig(
            tcp_timeout_s=tcp_timeout, udp_timeout_s=udp_timeout, icmp_timeout_s=icmp_timeout,
            other_timeout_s=icmp_timeout, active_timeout_s=active_timeout, max_flows=max_flows,
            vlan_in_key=not no_vlan_key,
        )
    except ValueError as exc:  # NaN, infinity, absurd values the option types let through
        message = str(exc)
        for field_name, option in (("tcp_timeout_s", "--tcp-timeout"), ("udp_timeout_s", "--udp-timeout"),
                                   ("icmp_timeout_s", "--icmp-timeout"), ("other_timeout_s", "--icmp-timeout"),
                                   ("active_timeout_s", "--active-timeout")):  # fmt: skip
            message = message.replace(field_name, option)
        raise click.UsageError(message) from None
    flow_args: dict[str, Any] = {"flows": not no_flows, "flow_config": flow_config,
                                 "flow_engine": flow_engine, "flows_path": flows_path,
                                 "report_flows": report_flows, "app": not no_app,
                                 "detect": not no_detect, "config_path": config_path}

    err = sys.stderr
    # SIGTERM (a service manager, a timeout) ends the run like Ctrl-C: the report
    # of what was read is still written, marked partial.
    with contextlib.suppress(ValueError):  # not in the main thread (embedded use)
        signal.signal(signal.SIGTERM, _interrupt)

    def warn(message: str) -> None:
        click.echo(f"netsift: warning: {message}", err=True)

    show_progress = not (quiet or no_progress or as_json) and err.isatty()
    if show_progress:
        from .terminal import progress_bar

        bar = progress_bar(err)
        task = bar.add_task("read", total=None, packets=0, rate="")
        started = time.monotonic()

        def progress(done: int, total: int, packets: int) -> None:
            el = time.monotonic() - started
            bar.update(task, completed=done, total=total, packets=packets,
                       rate=f"{packets / el:,.0f} pkt/s" if el > 0 else "")

    split = _split_run(captures, jobs, dask_scheduler)
    if split is not None or dask_scheduler is not None:
        from .parallel import analyze_split
        from .pipeline import RunOptions

        opts = RunOptions(engine=engine, top_n=top_n, **flow_args)

        def run_split(paths: Any, progress: Any = None, warn: Any = None, **_: Any) -> Any:
            return analyze_split(paths, opts, jobs=split, scheduler=dask_scheduler, progress=progress,
                                 warn=warn)  # fmt: skip

        runner: Any = run_split
    else:
        runner = run
    if show_progress:
        with bar:
            report = runner(captures, engine=engine, top_n=top_n, progress=progress, warn=warn, **flow_args)
    else:
        report = runner(captures, engine=engine, top_n=top_n, warn=warn, **flow_args)
    emit_report(report, output=output, alerts_path=alerts_path, as_json=as_json, quiet=quiet,
                flows_path=flows_path, threshold=threshold, html_path=html_path, evidence_dir=evidence_dir,
                warn=warn)


#: below this much input, a run is not split (starting workers would cost more than it saves)
SPLIT_MIN_BYTES = 4 << 20


def _split_run(captures: tuple[str, ...], jobs: int | None, scheduler: str | None) -> int | None:
    """How many workers to split the run over (None: run in this process)."""
    if scheduler is not None:
        return jobs
    if jobs == 1:
        return None
    if jobs is None:
        from .parallel import default_jobs

        jobs = default_jobs()
        if jobs > 1 and _input_bytes(captures) < SPLIT_MIN_BYTES:
            return None
    return jobs if jobs > 1 else None


def _input_bytes(captures: tuple[str, ...]) -> int:
    """The size of the inputs (0 when they cannot be listed: the run reports why)."""
    from .errors import NetsiftError
    from .pipeline import expand_inputs

    try:
        return sum(os.path.getsize(f) for f in expand_inputs(captures).files)
    except (NetsiftError, OSError):
        return 0


def emit_report(report: Any, output: str | None, alerts_path: str | None, as_json: bool, quiet: bool,
                flows_path: str | None, threshold: Any, summary: bool = True, html_path: str | None = None,
                evidence_dir: str | None = None, warn: Any = None) -> None:
    """Write the report's outputs and print its summary (shared by ``analyze`` and ``live``).

    Raises KeyboardInterrupt for a partial (interrupted) run once everything is
    written, and exit code 10 when a finding reaches ``threshold``.
    """
    from .detect import Severity

    evidence = None
    if evidence_dir:
        from .evidence import write_evidence

        evidence = write_evidence(report.data, evidence_dir, warn=warn)
        report.data["evidence"] = evidence
    if output:
        report.write_json(output)
    if html_path:
        from .html_report import write_html

        write_html(report.data, html_path)
    findings = report.data.get("findings", {}).get("items", [])
    if alerts_path:
        from .detect.finding import ecs_alert
        from .report import write_atomic

        write_atomic(alerts_path, "".join(json.dumps(ecs_alert(f), ensure_ascii=False) + "\n" for f in findings))
    if as_json:
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.write(report.to_json())
    elif not quiet:
        if summary:
            from .terminal import console, render_summary

            render_summary(console(sys.stdout), report.data)
        if output:
            click.echo(f"report written to {output}")
        if flows_path and "flows" in report.data:
            click.echo(f"{report.data['flows']['export']['records']:,} flows written to {flows_path}")
        if alerts_path:
            click.echo(f"{len(findings):,} alerts written to {alerts_path}")
        if html_path:
            click.echo(f"HTML report written to {html_path}")
        if evidence is not None:
            click.echo(f"{evidence['pcaps']:,} evidence captures and {evidence['findings']:,} finding stubs "
                       f"written to {evidence_dir}")
    if report.data["run"]["partial"]:
        raise KeyboardInterrupt
    if threshold is not None and any(Severity[f["severity"].upper()] >= threshold for f in findings):
        raise click.exceptions.Exit(ExitCode.FINDINGS)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


PACKETS_FILTER_HELP = (
    "Keep only packets matching EXPR (a subset of Wireshark display filters): "
    "FIELD == != < <= > >= VALUE; FIELD in {V1, V2}; ip.src in 10.0.0.0/8; "
    'text FIELD contains "s" / matches "regex"; '
    "dns, tls, http test for an application message; "
    "ip.addr, tcp.port, udp.port, port match either side; protocol names (tcp, udp, icmp, "
    "ip, ipv6, vlan, ...) test presence; a bare boolean field (tcp.flags.syn) tests its value; "
    "and/or/not (&&, ||, !) and parentheses. See docs/packets.md."
)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("--fields", "-e", "fields_spec", required=True, metavar="F1,F2,...",
              help="Comma-separated Wireshark field names: frame.number frame.time_epoch frame.len "
                   "frame.cap_len eth.type vlan.id ip.version ip.src ip.dst ipv6.src ipv6.dst "
                   "ip.proto ip.ttl ipv6.hlim ip.id ip.len ip.flags.df ip.flags.mf ip.frag_offset "
                   "tcp.srcport tcp.dstport udp.srcport udp.dstport src.port dst.port tcp.flags "
                   "tcp.flags.syn/ack/fin/rst/reset/push/urg tcp.seq_raw tcp.ack_raw "
                   "tcp.window_size_value tcp.len udp.length icmp.type icmp.code icmpv6.type "
                   "icmpv6.code; application: dns.id dns.flags.response dns.flags.rcode "
                   "dns.qry.name dns.qry.type dns.count.answers dns.a dns.aaaa tls.handshake.type "
                   "tls.handshake.extensions_server_name tls.handshake.extensions_alpn_str "
                   "tls.handshake.ja3 tls.handshake.ja3_full tls.handshake.ja4 tls.handshake.ja4_r "
                   "tls.handshake.ja3s tls.handshake.ja3s_full http.request.method http.host "
                   "http.request.uri http.user_agent http.request.version http.response.code "
                   "http.response.version http.content_type (short: dns.qname dns.qtype dns.rcode "
                   "tls.sni tls.ja3 tls.ja4 http.method http.uri http.status).")
@click.option("--filter", "-Y", "filter_text", metavar="EXPR", help=PACKETS_FILTER_HELP)
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write to FILE (atomically): .csv, .ndjson/.jsonl/.json, or .parquet (needs the "
                   "parquet extra). Default: CSV on stdout.")
def packets(captures: tuple[str, ...], fields_spec: str, filter_text: str | None,
            output: str | None) -> None:
    """Print chosen fields of every packet matching a filter, like tshark -T fields.

    One row per packet (the outermost IP header and its transport header;
    frame.number counts records within each file). CSV cells are rendered as
    tshark prints them (tcp.flags 0x0012, booleans 1/0); absent values are
    empty in CSV and null in NDJSON and Parquet, whose values are typed.

    \b
    Examples:
      netsift packets cap.pcap --fields frame.number,ip.src,ip.dst,tcp.dstport | head
      netsift packets cap.pcap -e ip.src,tcp.dstport --filter 'tcp.flags.syn and not tcp.flags.ack'
      netsift packets 'day/*.pcap' -e frame.time_epoch,ip.src,ip.dst,frame.len -o out.parquet
      netsift packets cap.pcap -e ip.src,ip.dst,udp.dstport --filter 'udp.port in {53, 5353}' -o dns.csv
      netsift packets cap.pcap -e ipv6.src,ipv6.dst --filter 'ip.addr in 2001:db8::/32 && !icmpv6'
      netsift packets cap.pcap -e ip.src,dns.qname,dns.rcode --filter 'dns.rcode == 3'
      netsift packets cap.pcap -e ip.src,tls.sni,tls.ja4 --filter 'tls.handshake.type == 1'
    """
    from .packets import PacketSink, parse_fields, run
    from .pfilter import PacketFilter
    from .pipeline import expand_inputs

    fields = parse_fields(fields_spec)
    packet_filter = PacketFilter(filter_text) if filter_text is not None else None
    plan = expand_inputs(captures)

    def warn(message: str) -> None:
        click.echo(f"netsift: warning: {message}", err=True)

    sink = PacketSink(output, fields, stdout=sys.stdout if output is None else None)
    try:
        run(plan.files, fields, packet_filter, sink, warn=warn)
    except BrokenPipeError:  # `| head` closed the pipe: stop quietly
        _silence_stdout()
        return
    except KeyboardInterrupt:
        click.echo("netsift: interrupted; nothing was written" if output else
                   "netsift: interrupted", err=True)
        raise click.exceptions.Exit(ExitCode.INTERRUPTED) from None
    if output is None:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()


def _silence_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's final flush is quiet."""
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@cli.command(epilog=EXIT_CODES_HELP)
@click.option("--keep", metavar="DIR", type=click.Path(file_okay=False),
              help="Keep the crafted sample captures in DIR (open them in Wireshark).")
@click.option("--only", metavar="DETECTOR", multiple=True, help="Test only this detector (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
def selftest(keep: str | None, only: tuple[str, ...], as_json: bool) -> None:
    """Prove every detector works: craft positive and negative samples with Scapy,
    write them with wrpcap, analyse them and check what each detector reports.

    Exits 1 when any check fails.

    \b
    Examples:
      netsift selftest
      netsift selftest --only dns_tunnel --keep samples/
      netsift selftest --json | jq '.[] | select(.passed | not)'
    """
    from .detect.selftest import results_json, run_selftest

    results = run_selftest(only, keep)
    if as_json:
        click.echo(json.dumps(results_json(results), indent=2))
    else:
        from .terminal import console, render_selftest

        render_selftest(console(sys.stdout), results)
    if not results or not all(r.passed for r in results):
        raise click.exceptions.Exit(ExitCode.ERROR)


@cli.command("config", epilog=EXIT_CODES_HELP)
@click.option("--defaults", is_flag=True, help="Print every detector threshold with its default, as TOML.")
@click.option("--check", "check_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Check a config file; prints nothing and exits 0 when it is valid.")
def config_command(defaults: bool, check_path: str | None) -> None:
    """Show or check the detectors' configuration (TOML, used with analyze --config).

    \b
    Examples:
      netsift config --defaults > netsift.toml
      netsift config --check netsift.toml
      netsift analyze capture.pcap --config netsift.toml
    """
    from .detect import detector_classes
    from .detect.config import defaults_toml, load_config

    if defaults == (check_path is not None):
        raise click.UsageError("give exactly one of --defaults and --check FILE")
    if defaults:
        click.echo(defaults_toml(detector_classes()), nl=False)
    else:
        load_config(check_path, detector_classes())


@cli.command()
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of the analyze report.

    \b
    Example:
      netsift schema > report.schema.json
    """
    from .report import report_schema

    click.echo(json.dumps(report_schema(), indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code.  The single place exceptions become exit codes."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="netsift",
                        standalone_mode=False)
        if isinstance(code, int) and code:  # a command's click.exceptions.Exit(code)
            return code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:  # click's form of KeyboardInterrupt (Ctrl-C, SIGTERM)
        click.echo("netsift: interrupted; a report written with -o covers what was read", err=True)
        return ExitCode.INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except NetsiftError as exc:
        click.echo(f"netsift: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("netsift: interrupted; the report covers what was read", err=True)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.OK
    except OSError as exc:  # output side (stdout closed, disk full while printing)
        click.echo(f"netsift: error: {OutputError(str(exc))}", err=True)
        return ExitCode.OUTPUT
    return ExitCode.OK


