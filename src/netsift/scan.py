"""An authorized, scoped, rate-limited TCP SYN scan with nmap's port states.

What is sent: one TCP SYN per (target address, port), from a random source
port with a random sequence number, in random order; unanswered probes are
sent again up to ``retries`` times (each round waits ``timeout`` seconds after
its last probe); every port that answers SYN-ACK gets one RST, so the scan
leaves no half-open connection behind.  All of it — probes, retransmissions and
RSTs — stays under one packet rate (``rate`` per second).  Nothing is sent to an
address outside the scope: :func:`plan` checks every target against the
:class:`~netsift.scope.Scope` before the first packet is built.

Port states follow nmap's SYN scan (nmap book, "TCP SYN (Stealth) Scan";
LANDSCAPE §2.6):

==============================================  ========  ======================
answer                                          state     reason
==============================================  ========  ======================
SYN-ACK                                         open      ``syn-ack``
SYN without ACK (split handshake)               open      ``split-handshake-syn``
RST                                             closed    ``reset``
nothing, after every retry                      filtered  ``no-response``
ICMP unreachable, codes 1, 2, 3, 9, 10, 13      filtered  ``host-unreach``, ...
ICMPv6 destination unreachable (any code)       filtered  ``addr-unreach``, ...
==============================================  ========  ======================

Scapy does the sending and the matching (``sr`` with its ``answers`` rules,
which also pair an ICMP error with the probe quoted inside it).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import PrivilegeError, UsageError
from .scope import IPAddress, Scope

#: Default packets per second for everything the scan sends (probes, retries, RSTs).
#: Conservative on purpose: nmap has no default cap, but a scan that cannot
#: hurt a small device or trip a rate limiter is the right default for an
#: analyst's tool; raise it with --rate.
DEFAULT_RATE = 100.0
MAX_RATE = 10_000.0
#: Seconds to wait after a round's last probe: nmap's initial RTT timeout (1 s).
DEFAULT_TIMEOUT = 1.0
#: Retransmissions of unanswered probes.  nmap's --max-retries default is 10,
#: but that is an adaptive cap it reaches only when it sees drops; for a port
#: that never answers nmap normally sends two probes in all.  A fixed timer
#: with 10 retries would wait 11 timeouts on every filtered port, so netsift
#: retries twice (nmap -T5's cap) and lets --retries raise it.
DEFAULT_RETRIES = 2

#: ICMP (type 3) codes nmap reads as "filtered", with nmap's reason names.
ICMP4_FILTERED = {1: "host-unreach", 2: "proto-unreach", 3: "port-unreach", 9: "net-prohibited",
                  10: "host-prohibited", 13: "admin-prohibited"}
#: Other ICMP type 3 codes (nmap names), also read as filtered.
ICMP4_OTHER = {0: "net-unreach", 4: "needs-frag", 5: "source-route-failed", 6: "net-unknown",
               7: "host-unknown", 11: "net-tos-unreach", 12: "host-tos-unreach",
               14: "host-precedence-violation", 15: "precedence-cutoff"}
#: ICMPv6 destination unreachable (type 1) codes, RFC 4443 §3.1.
ICMP6_UNREACH = {0: "no-route", 1: "admin-prohibited", 2: "beyond-scope", 3: "addr-unreach",
                 4: "port-unreach", 5: "source-policy", 6: "reject-route"}

STATES = ("open", "closed", "filtered", "unknown")


@dataclass
class ScanPlan:
    targets: list[IPAddress]
    ports: list[int]
    scope: Scope
    rate: float = DEFAULT_RATE
    retries: int = DEFAULT_RETRIES
    timeout: float = DEFAULT_TIMEOUT
    seed: int | None = None
    iface: str | None = None


@dataclass
class PortResult:
    host: str
    port: int
    state: str = "filtered"
    reason: str = "no-response"
    reason_ttl: int | None = None
    rtt_ms: float | None = None
    tries: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"port": self.port, "transport": "tcp", "state": self.state, "reason": self.reason,
                "reason_ttl": self.reason_ttl, "rtt_ms": self.rtt_ms, "tries": self.tries}


@dataclass
class ScanResult:
    plan: ScanPlan
    results: dict[tuple[str, int], PortResult] = field(default_factory=dict)
    probes_sent: int = 0
    retransmissions: int = 0
    rsts_sent: int = 0
    started: float = 0.0
    elapsed_s: float = 0.0
    partial: bool = False
    dry_run: bool = False
    rounds: int = 0

    def states(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for r in self.results.values():
            out[r.state] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        from datetime import datetime, timezone

        from . import __version__

        hosts: dict[str, list[PortResult]] = {}
        for r in self.results.values():
            hosts.setdefault(r.host, []).append(r)
        order = {str(a): i for i, a in enumerate(self.plan.targets)}
        host_rows = []
        for host in sorted(hosts, key=lambda h: order.get(h, 0)):
            rows = sorted(hosts[host], key=lambda r: r.port)
            states = dict.fromkeys(STATES, 0)
            for r in rows:
                states[r.state] += 1
            host_rows.append({"host": host, "states": states, "ports": [r.to_json() for r in rows]})
        p = self.plan
        return {
            "schema_version": "1",
            "tool": {"name": "netsift", "version": __version__},
            "run": {
                "generated_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                "elapsed_s": round(self.elapsed_s, 3),
                "partial": self.partial,
                "dry_run": self.dry_run,
            },
            "scan": {
                "type": "tcp_syn",
                "scope": p.scope.to_json(),
                "targets_total": len(p.targets),
                "ports_total": len(p.ports),
                "probes_planned": len(p.targets) * len(p.ports),
                "probes_sent": self.probes_sent,
                "retransmissions": self.retransmissions,
                "rsts_sent": self.rsts_sent,
                "rounds": self.rounds,
                "rate_pps": p.rate,
                "retries": p.retries,
                "timeout_s": p.timeout,
                "seed": p.seed,
                "states": self.states(),
            },
            "hosts": host_rows,
        }


def make_plan(targets: Sequence[IPAddress], ports: Sequence[int], scope: Scope, *,
              rate: float = DEFAULT_RATE, retries: int = DEFAULT_RETRIES,
              timeout: float = DEFAULT_TIMEOUT, seed: int | None = None,
              iface: str | None = None) -> ScanPlan:
    """Validate the options and check every target against the scope (raises before anything is sent)."""
    if not 0 < rate <= MAX_RATE:
        raise UsageError(f"--rate must be above 0 and at most {MAX_RATE:g} packets/s, got {rate:g}")
    if not 0 <= retries <= 50:
        raise UsageError(f"--retries must be 0 to 50, got {retries}")
    if not 0 < timeout <= 60:
        raise UsageError(f"--timeout must be above 0 and at most 60 s, got {timeout:g}")
    if not ports:
        raise UsageError("no ports to scan")
    if 0 in ports:
        raise UsageError("port 0 cannot be scanned")
    scope.check(targets)
    for a in targets:
        if a.is_multicast or (a.version == 4 and a == ipaddress.IPv4Address("255.255.255.255")):
            raise UsageError(f"target {a} is a multicast or broadcast address; a SYN scan needs unicast targets")
    return ScanPlan(list(targets), sorted(set(ports)), scope, rate, retries, timeout, seed, iface)


def build_probes(plan: ScanPlan) -> list[Any]:
    """One SYN per (target, port), random source port and sequence number, in random order."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6

    rng = random.Random(plan.seed)
    pairs = [(a, p) for a in plan.targets for p in plan.ports]
    rng.shuffle(pairs)
    probes = []
    for a, port in pairs:
        ip = IP(dst=str(a)) if a.version == 4 else IPv6(dst=str(a))
        probes.append(ip / TCP(sport=rng.randint(32768, 60999), dport=port, flags="S",
                               seq=rng.getrandbits(32), window=1024, options=[("MSS", 1460)]))
    return probes


def classify(answer: Any) -> tuple[str, str, int | None]:
    """(state, reason, reason_ttl) of an answer to a SYN probe."""
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6

    ttl = answer[IP].ttl if IP in answer else (answer[IPv6].hlim if IPv6 in answer else None)
    first = answer.getlayer(1)
    if isinstance(first, TCP) or (TCP in answer and ICMP not in answer and ICMPv6DestUnreach not in answer):
        flags = int(answer[TCP].flags)
        syn, rst, ack = flags & 0x02, flags & 0x04, flags & 0x10
        if rst:
            return "closed", "reset", ttl
        if syn and ack:
            return "open", "syn-ack", ttl
        if syn:
            return "open", "split-handshake-syn", ttl
        return "unknown", f"tcp-flags-{answer[TCP].flags}", ttl
    if ICMP in answer:
        icmp = answer[ICMP]
        if int(icmp.type) == 3:
            code = int(icmp.code)
            reason = ICMP4_FILTERED.get(code) or ICMP4_OTHER.get(code) or f"icmp-unreach-code-{code}"
            return "filtered", reason, ttl
        return "unknown", f"icmp-type-{int(icmp.type)}", ttl
    if ICMPv6DestUnreach in answer:
        code = int(answer[ICMPv6DestUnreach].code)
        return "filtered", ICMP6_UNREACH.get(code, f"icmpv6-unreach-code-{code}"), ttl
    return "unknown", "unexpected-answer", ttl


def check_privilege() -> None:
    """Raise :class:`PrivilegeError` unless raw packet sockets can be opened."""
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    except PermissionError:
        raise PrivilegeError(
            "sending raw packets needs CAP_NET_RAW: run as root, or grant it to the interpreter "
            "(setcap cap_net_raw,cap_net_admin=eip <python>)") from None
    except (AttributeError, OSError) as exc:
        raise PrivilegeError(f"raw packet sockets are not available here ({exc})") from None
    s.close()


def _key(probe: Any) -> tuple[str, int]:
    """A probe's (target, port): how results are kept, and how answers find them."""
    return probe.dst, int(probe.dport)


SendReceive = Callable[..., tuple[Any, Any]]
Send = Callable[..., Any]


def run_scan(plan: ScanPlan, sr: SendReceive | None = None, send: Send | None = None,
             on_round: Callable[[int, int], None] | None = None) -> ScanResult:
    """Send the probes in rounds and classify the answers (``sr``/``send`` default to Scapy's)."""
    if sr is None or send is None:
        check_privilege()
        from scapy.sendrecv import send as scapy_send
        from scapy.sendrecv import sr as scapy_sr

        sr = sr or scapy_sr
        send = send or scapy_send
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6

    result = ScanResult(plan, started=time.time())
    probes = build_probes(plan)
    for pr in probes:
        result.results[_key(pr)] = PortResult(host=pr.dst, port=int(pr.dport))
    inter = 1.0 / plan.rate
    pending = probes
    kwargs: dict[str, Any] = {"verbose": 0}
    if plan.iface:
        kwargs["iface"] = plan.iface
    quiet = logging.getLogger("scapy.runtime")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "MAC address not found, using broadcast" per dead host
    try:
        for round_no in range(plan.retries + 1):
            if not pending:
                break
            if on_round is not None:
                on_round(round_no, len(pending))
            result.rounds += 1
            result.probes_sent += len(pending)
            if round_no:
                result.retransmissions += len(pending)
            for pr in pending:
                result.results[_key(pr)].tries += 1
            ans, unans = sr(pending, inter=inter, timeout=plan.timeout, **kwargs)
            rsts = []
            for snd, rcv in ans:
                r = result.results[_key(snd)]
                state, reason, ttl = classify(rcv)
                r.state, r.reason, r.reason_ttl = state, reason, ttl
                sent_at = getattr(snd, "sent_time", None)
                if sent_at:
                    r.rtt_ms = round(max(0.0, float(rcv.time) - float(sent_at)) * 1000, 3)
                if state == "open" and TCP in rcv:
                    ip = IP(dst=snd.dst) if snd.version == 4 else IPv6(dst=snd.dst)
                    rsts.append(ip / TCP(sport=snd[TCP].sport, dport=snd[TCP].dport, flags="R",
                                         seq=int(rcv[TCP].ack)))
            if rsts:
                send(rsts, inter=inter, **kwargs)
                result.rsts_sent += len(rsts)
            pending = list(unans)
    except KeyboardInterrupt:
        result.partial = True
    finally:
        quiet.setLevel(level)
        result.elapsed_s = time.time() - result.started
    return result


def dry_run(plan: ScanPlan, path: str) -> ScanResult:
    """Write the first round of probes to a pcapng file (raw IP link type) instead of sending them."""
    from .atomic import atomic_output
    from .pcapng_writer import PcapngWriter

    result = ScanResult(plan, started=time.time(), dry_run=True)
    probes = build_probes(plan)
    ts = time.time_ns()
    gap = max(1, int(1e9 / plan.rate))
    with atomic_output(path) as f:
        w = PcapngWriter(f, application="netsift scan --dry-run")
        itf = w.add_interface(101, 65535, name=plan.iface or "netsift-scan",
                              description="SYN probes netsift scan would send")
        for i, pr in enumerate(probes):
            w.write_packet(itf, ts + i * gap, bytes(pr),
                           comment=f"probe {i + 1}/{len(probes)}: SYN to {pr.dst} port {pr.dport}")
        w.flush()
    for pr in probes:
        result.results[_key(pr)] = PortResult(host=pr.dst, port=int(pr.dport), state="unknown",
                                              reason="not-sent")
    result.elapsed_s = time.time() - result.started
    return result
