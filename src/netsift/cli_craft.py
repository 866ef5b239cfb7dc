"""The ``netsift craft`` command: build packets from a spec, write them to a capture or send them.

The library is :mod:`netsift.craft`; this module only reads options, prints the
summary and orders the steps so that the scope fence runs before anything is
sent and the output path is checked before the first packet leaves.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import click

from . import craft as C
from .errors import ExitCode, UsageError
from .scope import load_scope

DEFAULT_OUTPUT = "probes.pcap"
DEFAULT_RATE = 100.0

_LINK_NAMES = {C.LINKTYPE_ETHERNET: "ethernet", C.LINKTYPE_RAW: "raw IP", C.LINKTYPE_LINUX_SLL: "linux-sll"}


def _parse_time(text: str) -> int:
    """``--time``: seconds since the epoch, or an ISO 8601 date-time (UTC when no zone is given)."""
    try:
        return int(float(text) * 1_000_000_000)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--time {text!r} is neither seconds since 1970 nor an ISO 8601 date-time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1_000_000) * 1000


@click.command(epilog="Exit codes: 0 ok, 2 bad spec or option, 6 output cannot be written, "
                      "7 sending needs CAP_NET_RAW, 8 a destination outside --scope (nothing sent).")
@click.option("-l", "--layer", "layers", multiple=True, metavar="'NAME FIELD=VALUE ...'",
              help="One layer of the packet, outermost first (repeatable), e.g. 'IP dst=10.0.0.2 ttl=5'.")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Read the packets from a TOML (.toml) or JSON (.json) spec instead of --layer.")
@click.option("-w", "--write", "output", type=click.Path(dir_okay=False), metavar="FILE",
              help=f"Write the packets to FILE: .pcapng, or classic pcap for any other name "
                   f"(default {DEFAULT_OUTPUT} unless --send).")
@click.option("--send", is_flag=True,
              help="Transmit the packets (needs --scope; every destination is checked first).")
@click.option("--scope", "scope_items", multiple=True, metavar="CIDR|FILE",
              help="Addresses --send may reach (repeatable): a CIDR, an address, or a file of them.")
@click.option("-i", "--iface", metavar="IFACE",
              help="Interface for --send (needed for packets that start with Ether; IP packets are routed).")
@click.option("--rate", type=click.FloatRange(0, C.MAX_RATE, min_open=True), metavar="PPS",
              help=f"Packets per second when sending (default {DEFAULT_RATE:g}, or the spec's interval; "
                   f"at most {C.MAX_RATE:g}).")
@click.option("--count", type=click.IntRange(1), metavar="N",
              help="Repeat the whole probe set N times (overrides the spec's count).")
@click.option("--max-packets", type=click.IntRange(1), default=C.MAX_PACKETS, show_default=True,
              metavar="N", help="Refuse a spec that expands to more packets than this.")
@click.option("--time", "start_time", metavar="WHEN",
              help="Timestamp of the first written packet (epoch seconds or ISO 8601); default now. "
                   "Packets are 1 µs apart.")
@click.option("--show", is_flag=True, help="Print one line per packet on stdout (Scapy's summary).")
@click.option("--fields", "fields_of", metavar="LAYER",
              help="List LAYER's fields (name, kind, default) and exit.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
def craft(layers: tuple[str, ...], spec_path: str | None, output: str | None, send: bool,
          scope_items: tuple[str, ...], iface: str | None, rate: float | None, count: int | None,
          max_packets: int, start_time: str | None, show: bool, fields_of: str | None,
          quiet: bool) -> None:
    """Build packets from Scapy layers named in a spec; write them to a capture or send them.

    Each --layer names a Scapy layer (case-sensitive: Ether, ARP, IP, IPv6, TCP, UDP,
    ICMP, DNS, DNSQR, Raw, ...) and sets fields by name.  Values are converted per field
    (numbers, 0x hex, enum names such as echo-request, TCP flags, addresses, bytes with
    \\r\\n / \\x00 escapes or hex:...); nothing is evaluated.  A range 1..30 (or 1..30/2),
    a list 22,80,443 or a CIDR range in a number or address field makes one packet per
    value; several such fields make every combination.  Text fields (load, qname) take
    their value whole, commas included; a quoted value is always taken whole.

    --send transmits the packets built here from this machine: it first checks every
    packet's destination (IP/IPv6 dst, ARP pdst) against --scope and sends nothing if
    one lies outside it.

    \b
    Examples:
      netsift craft --layer 'IP dst=10.0.0.2 ttl=5' --layer 'TCP dport=80 flags=S'
      netsift craft -l 'IP dst=10.0.0.2 ttl=1..30' -l 'UDP dport=33434' -w traceroute.pcapng
      netsift craft -l 'IP dst=10.0.0.2' -l 'TCP dport=22,80,443 flags=S'
      netsift craft -l 'IP dst=10.0.0.53' -l UDP -l 'DNS rd=1 qd=DNSQR(qname=example.com,qtype=TXT)'
      netsift craft -l 'IP dst=10.0.0.2' -l 'TCP dport=80 flags=PA' -l "Raw load='GET / HTTP/1.0\\r\\n\\r\\n'"
      netsift craft --spec examples/probes.toml -w probes.pcapng
      netsift craft --spec probes.toml --send --scope 10.0.0.0/24 --rate 50
      netsift craft -l 'Ether dst=02:00:00:00:00:02' -l 'ARP pdst=10.0.0.2' --send -i eth1 --scope 10.0.0.0/24
      netsift craft --fields TCP
    """
    if fields_of:
        for line in C.describe_fields(fields_of):
            click.echo(line)
        return
    if layers and spec_path:
        raise UsageError("give either --layer options or --spec FILE, not both")
    if not layers and not spec_path:
        raise UsageError("nothing to build: give --layer 'NAME field=value ...' (repeatable) or --spec FILE")
    if not send and (scope_items or iface or rate is not None):
        used = [n for n, v in (("--scope", scope_items), ("--iface", iface), ("--rate", rate is not None)) if v]
        raise UsageError(f"{', '.join(used)} only apply with --send")

    spec = C.load_spec(spec_path, max_packets) if spec_path else C.spec_from_layers(layers, limit=max_packets)
    if count is not None:
        spec.count = count
    total = C.check_size(spec, max_packets)
    if output is None and not send:
        output = DEFAULT_OUTPUT
    if output:
        C.check_link_types(spec, output)
    start_ns = _parse_time(start_time) if start_time else time.time_ns()

    def say(text: str) -> None:
        if not quiet:
            click.echo(f"netsift: {text}", err=True)

    if send:  # the fence, before anything is printed or sent: a refusal is the only line
        C.check_scope(C.iter_packets(spec, max_packets), load_scope(scope_items))
        if iface is None and C.LINKTYPE_ETHERNET in spec.link_types():
            raise UsageError("packets that start with a link layer (Ether) need -i/--iface to be sent")

    stacks = ", ".join(dict.fromkeys(p.stack() for p in spec.packets))
    fuzzed = spec.fuzzed()
    say(f"built {total} packet{'s' if total != 1 else ''} ({stacks}"
        f"{'; fuzzed ' + ', '.join(fuzzed) if fuzzed else ''}{f'; count {spec.count}' if spec.count > 1 else ''})")

    if show:
        for pkt in C.iter_packets(spec, max_packets):
            click.echo(pkt.summary())

    if send:
        interval = 1.0 / rate if rate is not None else (spec.interval or 1.0 / DEFAULT_RATE)
        writer = C.CaptureWriter(output) if output else None  # the path is checked before sending
        try:
            result = C.send_packets(C.iter_packets(spec, max_packets), iface=iface, interval=interval)
            if writer is not None:
                for pkt, ts in result.sent:
                    writer.write(pkt, ts)
                writer.commit()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        where = f"on {iface}" if iface else "routed by the kernel"
        say(f"sent {len(result.sent)} of {total} packets {where}"
            f"{' (interrupted)' if result.interrupted else ''}")
        if writer is not None:
            say(f"wrote {output} ({writer.count} packets sent)")
        if result.interrupted:
            raise click.exceptions.Exit(ExitCode.INTERRUPTED)
        return

    assert output is not None
    n = C.write_capture(C.iter_packets(spec, max_packets), output, start_ns=start_ns)
    kinds = ", ".join(_LINK_NAMES.get(lt, f"link type {lt}") for lt in spec.link_types())
    say(f"wrote {output} ({n} packets, {'pcapng' if output.lower().endswith('.pcapng') else 'pcap'}, {kinds})")
