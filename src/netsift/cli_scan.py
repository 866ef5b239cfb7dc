"""The ``netsift scan`` command: an authorized TCP SYN scan (see :mod:`netsift.scan`)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .errors import EXIT_CODES_HELP
from .scan import (
    DEFAULT_RATE,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    MAX_RATE,
    dry_run,
    make_plan,
    run_scan,
)
from .scope import expand_targets, load_scope, parse_ports

_STATE_STYLE = {"open": "bold green", "closed": "dim", "filtered": "yellow", "unknown": "magenta"}
#: Above this many rows the table lists open/filtered ports and only counts closed ones (as nmap does).
_MAX_CLOSED_ROWS = 25


@click.command(context_settings={"max_content_width": 100}, epilog=EXIT_CODES_HELP)
@click.argument("targets", nargs=-1, required=True)
@click.option("-p", "--ports", "ports_spec", required=True, metavar="PORTS",
              help="Ports: a list and ranges, e.g. 22,80,443,8000-8100; '-' is 1-65535.")
@click.option("--scope", "scope_items", multiple=True, metavar="CIDR|FILE",
              help="Authorized scope (repeatable): a CIDR/address, or a file of them, one per line. "
                   "Required: targets outside it are refused before anything is sent.")
@click.option("--rate", type=float, default=DEFAULT_RATE, show_default=True, metavar="PPS",
              help=f"Packets per second for everything sent (probes, retries, RSTs); at most {MAX_RATE:g}.")
@click.option("--retries", type=int, default=DEFAULT_RETRIES, show_default=True,
              help="Times an unanswered probe is sent again before its port is 'filtered'.")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True, metavar="SECONDS",
              help="Wait for answers after each round's last probe (nmap's initial RTT timeout).")
@click.option("-i", "--iface", metavar="IFACE", help="Send on this interface (default: by the routing table).")
@click.option("--seed", type=int, help="Seed of the random probe order, source ports and sequence numbers.")
@click.option("--dry-run", "dry_run_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="Send nothing: write the probes that would be sent to this pcapng file.")
@click.option("-o", "--output", "output", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write the results as JSON (the analyze report's field names).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON results on stdout instead of the table.")
@click.option("-q", "--quiet", is_flag=True, help="No table.")
def scan(targets: tuple[str, ...], ports_spec: str, scope_items: tuple[str, ...], rate: float,
         retries: int, timeout: float, iface: str | None, seed: int | None, dry_run_path: str | None,
         output: str | None, as_json: bool, quiet: bool) -> None:
    """TCP SYN scan of TARGETS (addresses, CIDR ranges, host names) inside an authorized scope.

    \b
    What is sent: one TCP SYN per target address and port, from a random
    source port, in random order; unanswered probes again up to --retries
    times; one RST to every port that answered SYN-ACK (no half-open
    connection is left). Everything stays under --rate packets/s. Targets
    outside --scope are refused before a single packet is sent (exit 8).
    Needs CAP_NET_RAW (root) unless --dry-run.

    \b
    Port states are nmap's: SYN-ACK or a bare SYN = open, RST = closed, no
    answer after the retries or ICMP unreachable (codes 1, 2, 3, 9, 10, 13;
    any ICMPv6 unreachable) = filtered; each with its reason and RTT.

    \b
    Examples:
      netsift scan 192.0.2.10 -p 22,80,443 --scope 192.0.2.0/24
      netsift scan 192.0.2.0/28 2001:db8::10 -p 1-1024 --scope scope.txt --rate 500 -o scan.json
      netsift scan 192.0.2.10 -p 1-100 --scope 192.0.2.10 --dry-run probes.pcapng
    """
    scope = load_scope(scope_items)
    plan = make_plan(expand_targets(targets), parse_ports(ports_spec), scope, rate=rate,
                     retries=retries, timeout=timeout, seed=seed, iface=iface)
    if dry_run_path:
        result = dry_run(plan, dry_run_path)
        if not quiet and not as_json:
            click.echo(f"netsift: dry run: {len(result.results)} probes written to {dry_run_path}; "
                       "nothing was sent", err=True)
    else:
        show = not quiet and not as_json and sys.stderr.isatty()

        def on_round(n: int, pending: int) -> None:
            if show:
                what = "probes" if n == 0 else f"retry {n}: unanswered probes"
                click.echo(f"netsift: sending {pending} {what} at {plan.rate:g}/s", err=True)

        result = run_scan(plan, on_round=on_round)
    data = result.to_json()
    if output:
        from .atomic import atomic_output

        with atomic_output(output, "the scan results") as f:
            f.write((json.dumps(data, indent=2) + "\n").encode())
    if as_json:
        click.echo(json.dumps(data, indent=2))
    elif not quiet and not dry_run_path:
        _print_table(data)
    if result.partial:
        raise KeyboardInterrupt  # exit 130, after the results so far were written and shown


def _print_table(data: dict[str, Any]) -> None:
    from rich.table import Table

    from .terminal import console

    con = console(sys.stdout)
    s = data["scan"]
    for host in data["hosts"]:
        rows = host["ports"]
        hide_closed = len(rows) > _MAX_CLOSED_ROWS
        table = Table(title=f"{host['host']}", title_justify="left", show_edge=False)
        for col, justify in (("port", "right"), ("state", "left"), ("reason", "left"),
                             ("ttl", "right"), ("rtt ms", "right"), ("tries", "right")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for r in rows:
            if hide_closed and r["state"] == "closed":
                continue
            style = _STATE_STYLE.get(r["state"], "")
            table.add_row(f"{r['port']}/tcp", f"[{style}]{r['state']}[/]" if style else r["state"],
                          r["reason"], "" if r["reason_ttl"] is None else str(r["reason_ttl"]),
                          "" if r["rtt_ms"] is None else f"{r['rtt_ms']:.2f}", str(r["tries"]))
        con.print(table)
        st = host["states"]
        note = f"  {st['open']} open, {st['closed']} closed, {st['filtered']} filtered"
        if st.get("unknown"):
            note += f", {st['unknown']} unknown"
        if hide_closed and st["closed"]:
            note += " (closed ports not listed)"
        con.print(note)
    con.print(f"{s['probes_sent']} probes ({s['retransmissions']} retransmitted), {s['rsts_sent']} RSTs, "
              f"{data['run']['elapsed_s']} s at most {s['rate_pps']:g} packets/s")
