"""Port scans (one source, many ports of one host) and address sweeps (one source,
one port, many hosts), from failed connection attempts, as Zeek counts them.

Rule (Zeek ``policy/misc/scan.zeek``, LANDSCAPE.md §2.9 last bullet): a source
is a *port scanner* of a host when it has failed connections with at least
``Scan::port_scan_threshold`` = 15 distinct ports of that host within
``Scan::port_scan_interval`` = 5 min, and an *address scanner* on a port when it
has failed connections with at least ``Scan::addr_scan_threshold`` = 25
distinct hosts on that port within ``Scan::addr_scan_interval`` = 5 min.

A failed TCP attempt (a *probe*) is a flow the source opened with a SYN in
which no payload went either way and the handshake did not complete normally:
Zeek's ``connection_attempt`` (S0, and SH / RSTOS0: the SYN was never
answered), ``connection_rejected`` (REJ: RST answer) and ``is_failed_conn``
(SYN-ACK answered by the source's RST, without data: the half-open probe of a
SYN scan, or a connect scan's RST).  A connection that completed and closed
without data, and anything with payload, is not a probe (a busy client's
connections never count).  Each probe's port state follows nmap's SYN-scan
table (LANDSCAPE.md §2.6): SYN-ACK = open, RST = closed, no answer = filtered.
ICMP destination-unreachable messages cannot be tied to the probe they answer
(the flow table keys them by type and code and does not read the quoted
header), so a silent probe counts as filtered and the unreachables the source
received are shown beside the counts.

UDP (netsift's own addition; Zeek counts TCP only): a probe is a UDP flow the
source sent that got no answer at all, to a unicast address, outside the
traceroute port range.  The same thresholds apply; severity is one step lower
because an unanswered datagram is weaker evidence than a refused SYN.

Distinct ports (hosts) are counted by the time each was first probed, in a
sliding window of ``window_s``.  One finding per source, protocol and kind;
the entities that crossed the threshold are its destinations.

Thresholds (see :class:`ScanThresholds` for each source): vertical_min_ports 15,
horizontal_min_hosts 25, window_s 300 (Zeek); vertical_high_ports 100 (nmap
``-F``), horizontal_high_hosts 256 (a /24); caps max_sources, max_probes.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ..columns import ip_text
from .base import Detector, FinishContext, Sample
from .finding import MAX_PARTIES, Finding, PacketRefs, Severity, Technique, ns_to_iso

if TYPE_CHECKING:
    from ..flows import FlowRecord

__all__ = ["CODES", "DETECTOR", "ScanDetector", "ScanThresholds"]

#: Finding codes (stable).
CODES: Final = ("tcp_vertical_scan", "tcp_horizontal_scan", "udp_vertical_scan", "udp_horizontal_scan")

TECHNIQUE: Final = Technique("T1046", "Network Service Discovery")

#: Port states (nmap's names); a probe answered in several ways keeps the most telling.
OPEN, CLOSED, FILTERED = 4, 2, 1
_STATE_NAMES: Final = (("open", OPEN), ("closed", CLOSED), ("filtered", FILTERED))

#: nmap's "filtered" ICMP destination-unreachable codes (LANDSCAPE.md §2.6), for the evidence.
_ICMP4_FILTERED: Final = frozenset({1, 2, 3, 9, 10, 13})

#: Open ports (or host:port) listed per finding; targets detailed per finding.
MAX_LISTED: Final = 50
MAX_TARGETS: Final = 20

_TCP, _UDP, _ICMP, _ICMP6 = 6, 17, 1, 58


@dataclass(frozen=True)
class ScanThresholds:
    #: Distinct ports of one host with failed attempts in the window: a port scan.
    #: LANDSCAPE.md §2.9 (last bullet); Zeek policy/misc/scan.zeek ``Scan::port_scan_threshold = 15``.
    vertical_min_ports: int = 15
    #: Distinct hosts with failed attempts on one port in the window: an address scan.
    #: LANDSCAPE.md §2.9 (last bullet); Zeek policy/misc/scan.zeek ``Scan::addr_scan_threshold = 25``.
    horizontal_min_hosts: int = 25
    #: Sliding window, seconds. LANDSCAPE.md §2.9; Zeek ``Scan::port_scan_interval`` and
    #: ``Scan::addr_scan_interval`` = 5 min.
    window_s: float = 300.0
    #: Ports of one host in the window that make a port scan high severity.  netsift's own
    #: choice: nmap's fast mode (``-F``) probes its top 100 ports; that many is enumeration.
    vertical_high_ports: int = 100
    #: Hosts on one port in the window that make an address scan high severity.  netsift's
    #: own choice: a whole IPv4 /24 (256 addresses) swept.
    horizontal_high_hosts: int = 256
    #: Count unanswered UDP datagrams as probes too.  netsift's own choice (Zeek's scan
    #: script counts TCP only); findings are one severity step lower.
    udp: bool = True
    #: UDP destination ports [low, high] never counted: traceroute's probes (base port
    #: 33434, one port per probe, 3 probes x 30 hops by default; Van Jacobson traceroute).
    #: netsift's own choice, to keep traceroute from looking like a UDP port scan.
    udp_ignore_ports: tuple[int, ...] = (33434, 33534)
    #: Sources never reported (addresses or CIDR networks, e.g. the vulnerability scanner).
    #: netsift's own choice: empty by default.
    allow_sources: tuple[str, ...] = ()
    #: Sources tracked at once (beyond it new sources are not tracked; counted in the
    #: evidence).  netsift's own bound on memory.
    max_sources: int = 100_000
    #: Distinct (source, host, port) probes held in all (beyond it new ones are dropped;
    #: counted in the evidence).  netsift's own bound: about 200 bytes each.
    max_probes: int = 1_000_000

    def __post_init__(self) -> None:
        for name in ("vertical_min_ports", "horizontal_min_hosts", "vertical_high_ports",
                     "horizontal_high_hosts", "max_sources", "max_probes"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an integer of at least 2, got {value!r}")
        if self.vertical_high_ports < self.vertical_min_ports:
            raise ValueError("vertical_high_ports must be at least vertical_min_ports, got "
                             f"{self.vertical_high_ports!r} < {self.vertical_min_ports!r}")  # fmt: skip
        if self.horizontal_high_hosts < self.horizontal_min_hosts:
            raise ValueError("horizontal_high_hosts must be at least horizontal_min_hosts, got "
                             f"{self.horizontal_high_hosts!r} < {self.horizontal_min_hosts!r}")  # fmt: skip
        if not (isinstance(self.window_s, (int, float)) and 0 < self.window_s <= 86_400):
            raise ValueError(f"window_s must be more than 0 and at most 86400 seconds, got {self.window_s!r}")
        ports = self.udp_ignore_ports
        if not (len(ports) in (0, 2) and all(isinstance(p, int) and 0 <= p <= 65535 for p in ports)
                and (not ports or ports[0] <= ports[1])):  # fmt: skip
            raise ValueError(f"udp_ignore_ports must be [] or [low, high] ports with low <= high, got {list(ports)!r}")
        for text in self.allow_sources:
            try:
                ipaddress.ip_network(text, strict=False)
            except (ValueError, TypeError):
                raise ValueError(f"allow_sources: {text!r} is not an address or network") from None


# A probe entry: [first_ns, last_ns, states (OR of OPEN/CLOSED/FILTERED), flows, file, frame]
_Entry = list[int]
_ProbeKey = tuple[int, int, int, int]  # (proto, host hi, host lo, port)


def _rate(n: int, first_ns: int, last_ns: int) -> float:
    """Probes per second over their span (at least 1 ms, so a burst of crafted probes with
    one timestamp still gives a finite rate): a 40-port burst in 78 ms is 513/s, not 40."""
    return round(n / max((last_ns - first_ns) / 1e9, 0.001), 2)


def _is_multicast(hi: int, lo: int) -> bool:
    if hi == 0 and (lo >> 32) == 0xFFFF:
        a = lo & 0xFFFFFFFF
        return (a >> 28) == 0xE or a == 0xFFFFFFFF or a == 0
    return (hi >> 56) == 0xFF


def _max_in_window(times: list[int], window_ns: int) -> tuple[int, int, int]:
    """The most items whose times fit in one window: (count, window start, window end)."""
    times.sort()
    best, best_lo, best_hi = 0, 0, 0
    j = 0
    for i, t in enumerate(times):
        while t - times[j] > window_ns:
            j += 1
        if i - j + 1 > best:
            best, best_lo, best_hi = i - j + 1, times[j], t
    return best, best_lo, best_hi


class ScanDetector(Detector):
    """Port scans and address sweeps from failed attempts (Zeek), with nmap's port states."""

    name: ClassVar[str] = "scan"
    title: ClassVar[str] = "Port scans and address sweeps: many failed attempts from one source (Zeek scan.zeek)"
    Thresholds: ClassVar[type] = ScanThresholds
    t: ScanThresholds

    def __init__(self, thresholds: ScanThresholds | None = None) -> None:
        super().__init__(thresholds)
        #: source (hi, lo) -> probe key -> entry
        self.probes: dict[tuple[int, int], dict[_ProbeKey, _Entry]] = {}
        self.n_probes = 0
        #: probe flows not kept because a cap was reached
        self.dropped_sources = 0
        self.dropped_probes = 0
        #: receiver (hi, lo) -> "type/code" -> ICMP unreachable flows it was sent
        self.unreachables: dict[tuple[int, int], dict[str, int]] = {}

    # --- feed ------------------------------------------------------------------

    def flows(self, records: list[FlowRecord]) -> None:
        udp = self.t.udp
        lo_ign, hi_ign = self.t.udp_ignore_ports if self.t.udp_ignore_ports else (1, 0)
        add = self._add
        for r in records:
            proto = r.proto
            if proto == _TCP:
                h = r.history
                if h[:1] != "S" or "D" in h or "d" in h:
                    continue
                if "h" in h:
                    if "A" in h and "R" not in h:
                        continue  # completed, closed without data: not failed (Zeek)
                    state = OPEN
                elif "r" in h:
                    state = CLOSED
                else:
                    state = FILTERED
            elif proto == _UDP:
                if not udp or r.resp_pkts or r.flipped or not r.orig_pkts:
                    continue
                if lo_ign <= r.resp_p <= hi_ign or _is_multicast(r.resp_hi, r.resp_lo):
                    continue
                state = FILTERED
            elif proto in (_ICMP, _ICMP6):
                self._icmp(r)
                continue
            else:
                continue
            add((r.orig_hi, r.orig_lo), (proto, r.resp_hi, r.resp_lo, r.resp_p), state,
                r.start_ns, r.end_ns, r.first_file, r.first_frame)

    def _icmp(self, r: FlowRecord) -> None:
        # Unreachables are one-way types: the flow's originator sent them, its "ports" are (type, code).
        typ, code, proto = r.orig_p, r.resp_p, r.proto
        if not ((proto == _ICMP and typ == 3) or (proto == _ICMP6 and typ == 1)):
            return
        key = (r.resp_hi, r.resp_lo)
        counts = self.unreachables.get(key)
        if counts is None:
            if len(self.unreachables) >= self.t.max_sources:
                return
            counts = self.unreachables[key] = {}
        name = f"{'icmp' if proto == _ICMP else 'icmp6'} {typ}/{code}"
        counts[name] = counts.get(name, 0) + r.orig_pkts

    def _add(self, src: tuple[int, int], key: _ProbeKey, state: int, first: int, last: int,
             ffile: int, fframe: int, flows: int = 1) -> None:  # fmt: skip
        table = self.probes.get(src)
        if table is None:
            if len(self.probes) >= self.t.max_sources:
                self.dropped_sources += flows
                return
            table = self.probes[src] = {}
        e = table.get(key)
        if e is None:
            if self.n_probes >= self.t.max_probes:
                self.dropped_probes += flows
                return
            table[key] = [first, last, state, flows, ffile, fframe]
            self.n_probes += 1
            return
        if (first, ffile, fframe) < (e[0], e[4], e[5]):
            e[0], e[4], e[5] = first, ffile, fframe
        if last > e[1]:
            e[1] = last
        e[2] |= state
        e[3] += flows

    def merge(self, other: Detector) -> None:
        if not isinstance(other, ScanDetector):
            raise TypeError(f"cannot merge {type(other).__name__} into ScanDetector")
        for src in sorted(other.probes):
            for key, e in sorted(other.probes[src].items()):
                self._add(src, key, e[2], e[0], e[1], e[4], e[5], e[3])
        self.dropped_sources += other.dropped_sources
        self.dropped_probes += other.dropped_probes
        for recv, counts in sorted(other.unreachables.items()):
            mine = self.unreachables.get(recv)
            if mine is None:
                if len(self.unreachables) >= self.t.max_sources:
                    continue
                mine = self.unreachables[recv] = {}
            for name, n in counts.items():
                mine[name] = mine.get(name, 0) + n

    # --- findings --------------------------------------------------------------

    def finish(self, ctx: FinishContext) -> list[Finding]:
        allow = [ipaddress.ip_network(a, strict=False) for a in self.t.allow_sources]
        window_ns = int(self.t.window_s * 1e9)
        out: list[Finding] = []
        for src in sorted(self.probes):
            table = self.probes[src]
            if len(table) < min(self.t.vertical_min_ports, self.t.horizontal_min_hosts):
                continue
            src_text = ip_text(*src)
            if allow and any(ipaddress.ip_address(src_text) in net for net in allow):
                continue
            # group the probes: (proto, host) -> ports, (proto, port) -> hosts
            by_host: dict[tuple[int, int, int], list[tuple[_ProbeKey, _Entry]]] = {}
            by_port: dict[tuple[int, int], list[tuple[_ProbeKey, _Entry]]] = {}
            for key, e in table.items():
                by_host.setdefault(key[:3], []).append((key, e))
                by_port.setdefault((key[0], key[3]), []).append((key, e))
            for proto in (_TCP, _UDP):
                vertical = self._crossed(by_host, proto, self.t.vertical_min_ports, window_ns)
                if vertical:
                    out.append(self._finding(src, src_text, proto, "vertical", vertical))
                horizontal = self._crossed(by_port, proto, self.t.horizontal_min_hosts, window_ns)
                if horizontal:
                    out.append(self._finding(src, src_text, proto, "horizontal", horizontal))
        return out

    @staticmethod
    def _crossed(groups: dict[Any, list[tuple[_ProbeKey, _Entry]]], proto: int, minimum: int,
                 window_ns: int) -> list[tuple[Any, int, int, int, list[tuple[_ProbeKey, _Entry]]]]:  # fmt: skip
        """Groups of ``proto`` with ``minimum`` distinct items first probed within one window:
        (group key, most in a window, its start, its end, the probes)."""
        out = []
        for gkey, items in groups.items():
            if gkey[0] != proto or len(items) < minimum:
                continue
            best, lo, hi = _max_in_window([e[0] for _, e in items], window_ns)
            if best >= minimum:
                out.append((gkey, best, lo, hi, items))
        out.sort(key=lambda g: (-g[1], g[0]))
        return out

    def _finding(self, src: tuple[int, int], src_text: str, proto: int, kind: str,
                 groups: list[tuple[Any, int, int, int, list[tuple[_ProbeKey, _Entry]]]]) -> Finding:  # fmt: skip
        t = self.t
        tname = "tcp" if proto == _TCP else "udp"
        vertical = kind == "vertical"
        high = t.vertical_high_ports if vertical else t.horizontal_high_hosts
        peak = groups[0][1]
        severity = Severity.HIGH if peak >= high else Severity.MEDIUM
        if proto == _UDP:
            severity = Severity(severity - 1)

        probes: dict[_ProbeKey, _Entry] = {}
        for *_, items in groups:
            probes.update(items)
        states = {name: 0 for name, _ in _STATE_NAMES}
        open_items: list[_ProbeKey] = []
        for key, e in probes.items():
            for name, bit in _STATE_NAMES:
                if e[2] & bit:
                    states[name] += 1
                    if bit == OPEN:
                        open_items.append(key)
                    break
        open_items.sort(key=lambda k: (k[3], k[1], k[2]) if vertical else (k[1], k[2], k[3]))
        first = min(e[0] for e in probes.values())
        last = max(e[1] for e in probes.values())
        hosts = sorted({k[1:3] for k in probes})
        ports = sorted({k[3] for k in probes})

        targets = []
        for gkey, best, lo, hi, items in groups[:MAX_TARGETS]:
            counts = {name: sum(1 for _, e in items if _top_state(e[2]) == bit) for name, bit in _STATE_NAMES}
            entry: dict[str, Any] = {"host": ip_text(gkey[1], gkey[2])} if vertical else {"port": gkey[1]}
            entry.update({
                "ports_probed" if vertical else "hosts_probed": len(items),
                "most_in_window": best,
                "window_first_seen": ns_to_iso(lo),
                "window_last_seen": ns_to_iso(hi),
                "probe_rate_per_s": _rate(best, lo, hi),
                **counts,
            })  # fmt: skip
            targets.append(entry)

        refs = PacketRefs()
        for e in sorted(probes.values(), key=lambda e: (e[0], e[4], e[5])):
            refs.add(e[4], e[5])
        refs.total = sum(e[3] for e in probes.values())

        if vertical:
            open_list: list[Any] = [k[3] for k in open_items] if len(groups) == 1 else [
                f"{ip_text(k[1], k[2])}:{k[3]}" for k in open_items]  # fmt: skip
            destinations = tuple(ip_text(g[0][1], g[0][2]) for g in groups[:MAX_PARTIES])
            destinations_total = len(groups)
        else:
            open_list = [f"{ip_text(k[1], k[2])}:{k[3]}" for k in open_items]
            destinations = tuple(ip_text(*h) for h in hosts[:MAX_PARTIES])
            destinations_total = len(hosts)
        evidence: dict[str, Any] = {
            "transport": tname,
            "targets_over_threshold": len(groups),
            "most_in_window": peak,
            "hosts_probed": len(hosts),
            "ports_probed": len(ports),
            "probes": len(probes),
            "probe_flows": refs.total,
            "states": states,
            "open": open_list[:MAX_LISTED],
            "open_total": len(open_list),
            "probe_rate_per_s": _rate(len(probes), first, last),
            "duration_s": round((last - first) / 1e9, 3),
            "targets": targets,
            "icmp_unreachable_to_source": dict(sorted(self.unreachables.get(src, {}).items())),
        }
        if vertical and len(groups) == 1:
            evidence["destination_port_range"] = [ports[0], ports[-1]]
        else:
            evidence["destination_ports"] = [g[0][1] for g in groups[:MAX_LISTED]] if not vertical else ports[:MAX_LISTED]
        if self.dropped_sources or self.dropped_probes:
            evidence["cap_reached"] = {"max_sources": t.max_sources, "sources_dropped_flows": self.dropped_sources,
                                       "max_probes": t.max_probes, "probes_dropped_flows": self.dropped_probes}  # fmt: skip
        if vertical:
            thresholds: dict[str, Any] = {"vertical_min_ports": t.vertical_min_ports, "window_s": t.window_s,
                                          "vertical_high_ports": t.vertical_high_ports}  # fmt: skip
            what = (f"{peak} ports of {destinations[0]}" if len(groups) == 1
                    else f"{len(groups)} hosts on up to {peak} ports each")  # fmt: skip
            summary = (f"{src_text} port-scanned {what} ({tname}, failed attempts within "
                       f"{t.window_s:g} s; {states['open']} open, {states['closed']} closed, "
                       f"{states['filtered']} filtered).")  # fmt: skip
        else:
            thresholds = {"horizontal_min_hosts": t.horizontal_min_hosts, "window_s": t.window_s,
                          "horizontal_high_hosts": t.horizontal_high_hosts}  # fmt: skip
            what = (f"{peak} hosts on port {groups[0][0][1]}" if len(groups) == 1
                    else f"{len(groups)} ports, up to {peak} hosts each")  # fmt: skip
            summary = (f"{src_text} swept {what} ({tname}, failed attempts within "
                       f"{t.window_s:g} s; {states['open']} open, {states['closed']} closed, "
                       f"{states['filtered']} filtered).")  # fmt: skip
        if proto == _UDP:
            # nmap: a UDP probe without reply is open|filtered; ICMP port unreachable (closed)
            # cannot be tied to its probe here, so only the unanswered count is meaningful.
            n = len(probes)
            evidence["states"] = {"open|filtered": n}
            for tgt in targets:
                for name, _ in _STATE_NAMES:
                    tgt.pop(name, None)
                tgt["open|filtered"] = tgt["ports_probed" if vertical else "hosts_probed"]
            summary = summary.split(" (")[0] + f" (udp, {n} unanswered datagrams within {t.window_s:g} s)."
        return Finding(
            detector=self.name,
            code=f"{tname}_{kind}_scan",
            severity=severity,
            technique=TECHNIQUE,
            first_ns=first,
            last_ns=last,
            summary=summary,
            key=(src_text,),
            sources=(src_text,),
            sources_total=1,
            destinations=destinations,
            destinations_total=destinations_total,
            evidence=evidence,
            thresholds=thresholds,
            packets=tuple(refs.sorted()),
            packets_total=refs.total,
        )

    # --- selftest ----------------------------------------------------------------

    @classmethod
    def samples(cls) -> list[Sample]:
        return [
            Sample("tcp_syn_scan", "nmap-style SYN scan of 200 ports of one host (3 open, RSTs, silence) "
                   "and a sweep of 60 hosts on 445", _build_scans,
                   frozenset({"tcp_vertical_scan", "tcp_horizontal_scan"})),
            Sample("udp_scan", "UDP probes to 40 ports of one host answered by ICMP port unreachable",
                   _build_udp_scan, frozenset({"udp_vertical_scan"})),
            Sample("busy_client", "a client making 120 successful HTTPS connections to 40 hosts, and a few "
                   "failures", _build_busy_client),
            Sample("syn_flood", "a SYN flood: 1,500 SYNs to one port from one source and many spoofed ones",
                   _build_syn_flood),
        ]


def _top_state(states: int) -> int:
    for _, bit in _STATE_NAMES:
        if states & bit:
            return bit
    return 0


DETECTOR = ScanDetector


# --- crafted samples (Scapy is imported only when they are built) -------------------

_SCANNER_MAC, _TARGET_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
_T0 = 1_700_000_000.0


def _tcp(src: str, dst: str, sport: int, dport: int, flags: str, t: float, seq: int = 1000,
         ack: int = 0, payload: bytes = b"", back: bool = False) -> Any:  # fmt: skip
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    macs = (_TARGET_MAC, _SCANNER_MAC) if back else (_SCANNER_MAC, _TARGET_MAC)
    p: Any = Ether(src=macs[0], dst=macs[1]) / IP(src=src, dst=dst) / TCP(
        sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=1024)
    if payload:
        p = p / payload
    p.time = t
    return p


def _probe(out: list[Any], src: str, dst: str, sport: int, dport: int, answer: str, t: float) -> None:
    """One SYN probe and its answer: "open" (SYN-ACK, then the scanner's RST), "closed" (RST), else silence."""
    out.append(_tcp(src, dst, sport, dport, "S", t, seq=5000))
    if answer == "open":
        out.append(_tcp(dst, src, dport, sport, "SA", t + 0.001, seq=9000, ack=5001, back=True))
        out.append(_tcp(src, dst, sport, dport, "R", t + 0.002, seq=5001))
    elif answer == "closed":
        out.append(_tcp(dst, src, dport, sport, "RA", t + 0.001, seq=0, ack=5001, back=True))


def _build_scans() -> list[Any]:
    rng = random.Random(1046)
    out: list[Any] = []
    t = _T0
    ports = list(range(1, 201))
    rng.shuffle(ports)
    for port in ports:
        answer = "open" if port in (22, 80, 135) else ("closed" if rng.random() < 0.7 else "silent")
        _probe(out, "10.0.0.5", "10.0.0.9", 40000 + rng.randrange(20000), port, answer, t)
        t += 0.01
    for host in range(1, 61):
        answer = "open" if host % 20 == 0 else ("closed" if host % 3 == 0 else "silent")
        _probe(out, "10.0.0.5", f"10.0.1.{host}", 40000 + rng.randrange(20000), 445, answer, t)
        t += 0.02
    return out


def _build_udp_scan() -> list[Any]:
    from scapy.layers.inet import ICMP, IP, UDP, IPerror
    from scapy.layers.l2 import Ether

    rng = random.Random(53)
    out: list[Any] = []
    t = _T0
    for port in rng.sample(range(1, 1024), 40):
        probe = IP(src="10.0.0.5", dst="10.0.0.9") / UDP(sport=50000, dport=port)
        p: Any = Ether(src=_SCANNER_MAC, dst=_TARGET_MAC) / probe
        p.time = t
        out.append(p)
        err: Any = (Ether(src=_TARGET_MAC, dst=_SCANNER_MAC) / IP(src="10.0.0.9", dst="10.0.0.5")
               / ICMP(type=3, code=3) / IPerror(bytes(probe)[:28]))  # fmt: skip
        err.time = t + 0.001
        out.append(err)
        t += 0.5
    return out


def _build_busy_client() -> list[Any]:
    rng = random.Random(443)
    out: list[Any] = []
    t = _T0
    for i in range(120):
        host = f"192.0.2.{1 + i % 40}"
        sport = 30000 + i
        out.append(_tcp("10.0.0.7", host, sport, 443, "S", t, seq=100))
        out.append(_tcp(host, "10.0.0.7", 443, sport, "SA", t + 0.01, seq=700, ack=101, back=True))
        out.append(_tcp("10.0.0.7", host, sport, 443, "A", t + 0.02, seq=101, ack=701))
        out.append(_tcp("10.0.0.7", host, sport, 443, "PA", t + 0.021, seq=101, ack=701, payload=b"x" * 200))
        out.append(_tcp(host, "10.0.0.7", 443, sport, "PA", t + 0.03, seq=701, ack=301,
                        payload=b"y" * 1000, back=True))  # fmt: skip
        out.append(_tcp("10.0.0.7", host, sport, 443, "FA", t + 0.04, seq=301, ack=1701))
        out.append(_tcp(host, "10.0.0.7", 443, sport, "FA", t + 0.05, seq=1701, ack=302, back=True))
        out.append(_tcp("10.0.0.7", host, sport, 443, "A", t + 0.06, seq=302, ack=1702))
        t += rng.uniform(0.1, 1.0)
    for i in range(5):  # a few dead hosts
        _probe(out, "10.0.0.7", f"198.51.100.{i + 1}", 31000 + i, 443, "silent", t)
        t += 0.1
    return out


def _build_syn_flood() -> list[Any]:
    rng = random.Random(80)
    out: list[Any] = []
    t = _T0
    for i in range(1500):
        src = "203.0.113.9" if i % 2 else f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        out.append(_tcp(src, "10.0.0.80", rng.randrange(1024, 65536), 80, "S", t, seq=rng.randrange(1 << 32)))
        t += 0.001
    return out
