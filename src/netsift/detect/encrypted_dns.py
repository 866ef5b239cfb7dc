"""Encrypted-DNS blind spots: hosts whose name resolution the analyst cannot read.

DNS over TLS (DoT, RFC 7858: TCP 853), DNS over QUIC (DoQ, RFC 9250: UDP
853) and DNS over HTTPS (DoH, RFC 8484: HTTPS to a resolver) hide the names a
host looks up; plaintext DNS (what :mod:`netsift.detect.dns_tunnel` and an
analyst read) then shows only part of its resolution, or none.  LANDSCAPE.md
§1.7 (no listed tool has a DoH notice: Zeek and Suricata need SNI/IP lists,
nDPI has a DoH_DoT class) and §4 item 7 (the blind-spot report) describe it.

How a finished flow is classed (first match wins):

- DoT: TCP to a ``dot_ports`` port (853, RFC 7858 §3.1), or a TLS ClientHello
  offering the ALPN ``dot`` (IANA ALPN registry, RFC 9103);
- DoQ: UDP to a ``doq_ports`` port (853, RFC 9250 §4.1.1), or a QUIC
  ClientHello offering ALPN ``doq`` or a draft ``doq-i..`` (the drafts ran on
  ports 784 and 8853);
- DoH: TLS or QUIC whose SNI is a known resolver name (any port), or a TCP/UDP
  flow to a ``doh_ports`` port (443) of a known resolver address whose SNI, if
  any, is not some other name.  ``h2``/``h3`` ALPN and the mean request size
  are kept as supporting evidence.

Per host (the flow's originator) the detector adds up sessions, packets and
bytes per kind, and counts the plaintext DNS messages it sent or received
(:meth:`dns`).  The number of lookups hidden in the encrypted sessions is
estimated from the client's bytes (see ``bytes_per_lookup``); the hidden
share is ``hidden / (hidden + plaintext)``.

Findings (technique: ATT&CK T1071.004, Application Layer Protocol: DNS, for
the dominant case; DoH/DoT is the C2 channel of e.g. Godlua):

- ``encrypted_dns_dominant`` (low; medium at ``medium_hidden_share``): the
  host resolves mainly through encrypted channels (hidden share at least
  ``min_hidden_share`` and at least ``min_hidden_lookups`` estimated lookups);
- ``encrypted_dns_seen`` (info): the host used encrypted DNS, but most of its
  lookups are still visible (or too few to say).

State: at most ``max_hosts`` hosts with encrypted sessions and
``max_dns_hosts`` plaintext DNS clients are tracked; sessions and messages of
further hosts are counted and the findings' evidence says the cap was hit.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from itertools import compress
from typing import TYPE_CHECKING, Any, Final

from ..columns import ip_text
from .base import Detector, DnsEvents, FinishContext, Sample
from .finding import Finding, PacketRefs, Severity, Technique

if TYPE_CHECKING:
    from ..flows import FlowRecord

__all__ = ["DETECTOR", "EncryptedDns"]

_TCP, _UDP = 6, 17
KINDS: Final = ("dot", "doq", "doh")
TECHNIQUE: Final = Technique("T1071.004", "Application Layer Protocol: DNS")
#: Resolver names and addresses listed per finding (the totals are counted).
_LISTED: Final = 20
#: Resolver names/addresses kept per host.
_KEPT: Final = 256

#: Public resolvers' DoH/DoT names, each from its operator's documentation.
RESOLVER_NAMES: Final[tuple[str, ...]] = (
    # Google: https://developers.google.com/speed/public-dns/docs/doh and .../docs/dns-over-tls
    "dns.google", "dns.google.com", "dns64.dns.google",
    # Cloudflare: https://developers.cloudflare.com/1.1.1.1/encryption/dns-over-https/
    # and .../setup/ (1.1.1.1 for Families); Mozilla's TRR: https://wiki.mozilla.org/Trusted_Recursive_Resolver
    "cloudflare-dns.com", "one.one.one.one", "1dot1dot1dot1.cloudflare-dns.com",
    "mozilla.cloudflare-dns.com", "security.cloudflare-dns.com", "family.cloudflare-dns.com",
    # Quad9: https://www.quad9.net/service/service-addresses-and-features/
    "dns.quad9.net", "dns9.quad9.net", "dns10.quad9.net", "dns11.quad9.net",
    # AdGuard: https://adguard-dns.io/kb/general/dns-providers/ (dns.adguard.com: the former name)
    "dns.adguard-dns.com", "unfiltered.adguard-dns.com", "family.adguard-dns.com", "dns.adguard.com",
    # OpenDNS: https://support.opendns.com/hc/en-us/articles/360038086532 (DoH)
    "doh.opendns.com", "doh.familyshield.opendns.com", "doh.sandbox.opendns.com",
    # NextDNS: https://nextdns.io (per-profile names under dns.nextdns.io)
    "dns.nextdns.io", "*.dns.nextdns.io",
    # Mullvad: https://mullvad.net/en/help/dns-over-https-and-dns-over-tls
    "dns.mullvad.net", "adblock.dns.mullvad.net", "base.dns.mullvad.net",
    # CleanBrowsing: https://cleanbrowsing.org/filters/
    "doh.cleanbrowsing.org",
)  # fmt: skip

#: Public resolvers' anycast addresses, each from its operator's documentation.
RESOLVER_ADDRESSES: Final[tuple[str, ...]] = (
    # Google: https://developers.google.com/speed/public-dns/docs/using
    "8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844",
    # Cloudflare: https://developers.cloudflare.com/1.1.1.1/ip-addresses/
    "1.1.1.1", "1.0.0.1", "1.1.1.2", "1.0.0.2", "1.1.1.3", "1.0.0.3",
    "2606:4700:4700::1111", "2606:4700:4700::1001",
    # Quad9: https://www.quad9.net/service/service-addresses-and-features/
    "9.9.9.9", "149.112.112.112", "9.9.9.10", "149.112.112.10", "9.9.9.11", "149.112.112.11",
    "2620:fe::fe", "2620:fe::9",
    # AdGuard: https://adguard-dns.io/kb/general/dns-providers/
    "94.140.14.14", "94.140.15.15", "2a10:50c0::ad1:ff", "2a10:50c0::ad2:ff",
    # OpenDNS: https://support.opendns.com/hc/en-us/articles/227986667
    "208.67.222.222", "208.67.220.220", "2620:119:35::35", "2620:119:53::53",
)  # fmt: skip


def _halves(text: str) -> tuple[int, int]:
    """An address as the columns' (hi, lo) halves (IPv4 mapped into ::ffff:0:0/96)."""
    addr = ipaddress.ip_address(text)
    value = int(addr) | (0xFFFF << 32) if addr.version == 4 else int(addr)
    return value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class EncryptedDnsThresholds:
    #: TCP ports of DNS over TLS. RFC 7858 §3.1 (port 853); LANDSCAPE.md §4 item 7.
    dot_ports: tuple[int, ...] = (853,)
    #: UDP ports of DNS over QUIC. RFC 9250 §4.1.1 (port 853); 784 and 8853 are the ports
    #: pre-RFC implementations used (draft-ietf-dprive-dnsoquic; AdGuard DNS ran DoQ on 784,
    #: as nDPI's test capture doq_adguard.pcapng shows, and netsift reads QUIC hellos on 443
    #: only, so the ALPN cannot be seen there); LANDSCAPE.md §4 item 7.
    doq_ports: tuple[int, ...] = (853, 784, 8853)
    #: Ports on which a known resolver address counts as DoH. RFC 8484 (HTTPS, 443);
    #: LANDSCAPE.md §4 item 7 ("dst IP ∈ resolver IPs").
    doh_ports: tuple[int, ...] = (443,)
    #: Resolver names (SNI) that make a TLS/QUIC flow DoH; ``*.name`` matches any name
    #: under ``name``. LANDSCAPE.md §4 item 7; each operator's page is cited in
    #: :data:`RESOLVER_NAMES`.  Replace the list to tune (e.g. add the company's resolver).
    resolver_names: tuple[str, ...] = RESOLVER_NAMES
    #: Resolver addresses (see :data:`RESOLVER_ADDRESSES` for the operators' pages).
    resolver_addresses: tuple[str, ...] = RESOLVER_ADDRESSES
    #: Names added to ``resolver_names`` (netsift's choice: extend without repeating the list).
    extra_resolver_names: tuple[str, ...] = ()
    #: Addresses added to ``resolver_addresses``.
    extra_resolver_addresses: tuple[str, ...] = ()
    #: Client bytes per hidden lookup, to estimate lookups from an encrypted session.
    #: netsift's own choice: a query of 30-60 bytes plus a TLS 1.3 record's 22 bytes
    #: (RFC 8446 §5.2), its 2-byte length (RFC 7858) or HTTP/2 frames (RFC 8484) and the
    #: TCP/QUIC acknowledgements the client sends for the answer.
    bytes_per_lookup: int = 120
    #: Client bytes of a session's handshake, not counted as lookups (netsift's choice:
    #: a ClientHello of 250-600 bytes, the client's Finished and ACKs; a session with less
    #: still counts one lookup).
    handshake_bytes: int = 600
    #: Hidden share of a host's lookups that makes encrypted DNS its main channel: the
    #: issue's "resolves mainly through encrypted channels" (more than half).
    min_hidden_share: float = 0.5
    #: Hidden share at which the finding is medium: the analyst sees at most one in ten of
    #: the host's lookups (netsift's choice).
    medium_hidden_share: float = 0.9
    #: Estimated hidden lookups before a host can be "mainly encrypted" (netsift's choice:
    #: one DoT probe of an Android phone or browser is not yet its resolution).
    min_hidden_lookups: int = 10
    #: Hosts with encrypted DNS tracked (netsift's choice; bounded state, STYLE.md).
    max_hosts: int = 10_000
    #: Plaintext DNS clients tracked (netsift's choice; about 100 bytes each).
    max_dns_hosts: int = 200_000

    def __post_init__(self) -> None:
        for name in ("dot_ports", "doq_ports", "doh_ports"):
            for p in getattr(self, name):
                if isinstance(p, bool) or not isinstance(p, int) or not 0 < p < 65536:
                    raise ValueError(f"{name} must hold ports 1-65535, got {p!r}")
        for name in ("resolver_names", "extra_resolver_names"):
            for n in getattr(self, name):
                if not isinstance(n, str) or not n.strip(".*"):
                    raise ValueError(f"{name} must hold host names, got {n!r}")
        for name in ("resolver_addresses", "extra_resolver_addresses"):
            for a in getattr(self, name):
                try:
                    ipaddress.ip_address(a)
                except (ValueError, TypeError):
                    raise ValueError(f"{name} must hold IP addresses, got {a!r}") from None
        for name in ("bytes_per_lookup", "min_hidden_lookups", "max_hosts", "max_dns_hosts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.handshake_bytes < 0:
            raise ValueError(f"handshake_bytes must be 0 or more, got {self.handshake_bytes!r}")
        for name in ("min_hidden_share", "medium_hidden_share"):
            v = getattr(self, name)
            if not 0.0 < v <= 1.0:  # also rejects NaN
                raise ValueError(f"{name} must be more than 0 and at most 1, got {v!r}")
        if self.medium_hidden_share < self.min_hidden_share:
            raise ValueError(f"medium_hidden_share ({self.medium_hidden_share}) must not be below "
                             f"min_hidden_share ({self.min_hidden_share})")  # fmt: skip


@dataclass
class _Host:
    """One host's encrypted-DNS sessions."""

    sessions: Counter[str] = field(default_factory=Counter)
    packets: int = 0
    orig_bytes: int = 0
    resp_bytes: int = 0
    #: estimated lookups hidden in the sessions
    lookups: int = 0
    h2: int = 0
    first_ns: int = 0
    last_ns: int = 0
    resolvers: set[tuple[int, int]] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    #: how each session was recognised (port, alpn, sni, address)
    basis: Counter[str] = field(default_factory=Counter)
    refs: PacketRefs = field(default_factory=PacketRefs)

    def merge(self, o: _Host) -> None:
        self.sessions.update(o.sessions)
        self.packets += o.packets
        self.orig_bytes += o.orig_bytes
        self.resp_bytes += o.resp_bytes
        self.lookups += o.lookups
        self.h2 += o.h2
        self.first_ns = min(self.first_ns, o.first_ns)
        self.last_ns = max(self.last_ns, o.last_ns)
        for r in o.resolvers:
            if len(self.resolvers) < _KEPT:
                self.resolvers.add(r)
        for n in o.names:
            if len(self.names) < _KEPT:
                self.names.add(n)
        self.basis.update(o.basis)
        self.refs.merge(o.refs)


class EncryptedDns(Detector):
    """See the module doc."""

    name = "encrypted_dns"
    title = "Hosts resolving names through DoT, DoQ or DoH, which plaintext DNS analysis cannot see"
    Thresholds = EncryptedDnsThresholds

    def __init__(self, thresholds: EncryptedDnsThresholds | None = None) -> None:
        super().__init__(thresholds)
        t: EncryptedDnsThresholds = self.t
        self._dot_ports = frozenset(t.dot_ports)
        self._doq_ports = frozenset(t.doq_ports)
        self._doh_ports = frozenset(t.doh_ports)
        names = [n.lower().rstrip(".") for n in (*t.resolver_names, *t.extra_resolver_names)]
        self._names = frozenset(n for n in names if not n.startswith("*."))
        self._suffixes = tuple(n[1:] for n in names if n.startswith("*."))
        self._addrs = frozenset(_halves(a) for a in (*t.resolver_addresses, *t.extra_resolver_addresses))
        self._addr_lo = frozenset(lo for _, lo in self._addrs)
        self._any_port = self._dot_ports | self._doq_ports
        self.hosts: dict[tuple[int, int], _Host] = {}
        self.untracked_sessions = 0
        #: plaintext DNS per client: [queries sent, responses received]
        self.plain: dict[tuple[int, int], list[int]] = {}
        self.untracked_dns = 0

    # -- hooks ----------------------------------------------------------------------------
    def flows(self, records: list[FlowRecord]) -> None:
        any_port = self._any_port
        addr_lo = self._addr_lo
        for r in records:
            proto = r.proto
            if proto != _TCP and proto != _UDP:
                continue
            # cheap pre-filter: a DNS port, a resolver address, or a TLS/QUIC summary
            if r.resp_p not in any_port and r.resp_lo not in addr_lo:
                app = r.app
                if app is None or ("tls" not in app and "quic" not in app):
                    continue
            self._classify(r)

    def _classify(self, r: FlowRecord) -> None:
        proto, port = r.proto, r.resp_p
        app = r.app or {}
        hello = app.get("tls") if proto == _TCP else app.get("quic")
        sni = hello.get("sni") if hello else None
        alpn: list[str] = (hello.get("alpn") or []) if hello else []
        sni_l = sni.lower().rstrip(".") if isinstance(sni, str) else None
        kind: str | None = None
        basis = ""
        if proto == _TCP and port in self._dot_ports:
            kind, basis = "dot", "port"
        elif proto == _UDP and port in self._doq_ports:
            kind, basis = "doq", "port"
        elif proto == _TCP and "dot" in alpn:
            kind, basis = "dot", "alpn"
        elif proto == _UDP and any(a == "doq" or a.startswith("doq-") for a in alpn):
            kind, basis = "doq", "alpn"
        elif sni_l is not None and (sni_l in self._names or sni_l.endswith(self._suffixes)):
            kind, basis = "doh", "sni"
        elif (port in self._doh_ports and (r.resp_hi, r.resp_lo) in self._addrs
                and (sni_l is None or sni_l in self._names)):  # fmt: skip
            kind, basis = "doh", "address"
        if kind is None:
            return
        key = (r.orig_hi, r.orig_lo)
        h = self.hosts.get(key)
        if h is None:
            if len(self.hosts) >= self.t.max_hosts:
                self.untracked_sessions += 1
                return
            h = self.hosts[key] = _Host(first_ns=r.start_ns, last_ns=r.end_ns)
        h.sessions[kind] += 1
        h.basis[basis] += 1
        h.packets += r.orig_pkts + r.resp_pkts
        ob = r.orig_payload_bytes
        h.orig_bytes += ob
        h.resp_bytes += r.resp_payload_bytes
        h.lookups += max(1, (ob - self.t.handshake_bytes) // self.t.bytes_per_lookup)
        if "h2" in alpn or "h3" in alpn:
            h.h2 += 1
        h.first_ns = min(h.first_ns, r.start_ns)
        h.last_ns = max(h.last_ns, r.end_ns)
        if len(h.resolvers) < _KEPT:
            h.resolvers.add((r.resp_hi, r.resp_lo))
        if sni_l is not None and len(h.names) < _KEPT:
            h.names.add(sni_l)
        h.refs.add(r.first_file, r.first_frame)

    def dns(self, events: DnsEvents) -> None:
        resp = events.response
        queries = Counter(compress(events.client, [not x for x in resp]))
        answers = Counter(compress(events.client, resp))
        plain = self.plain
        cap = self.t.max_dns_hosts
        for i, counts in ((0, queries), (1, answers)):
            for c, k in counts.items():
                row = plain.get(c)
                if row is None:
                    if len(plain) >= cap:
                        self.untracked_dns += k
                        continue
                    row = plain[c] = [0, 0]
                row[i] += k

    def merge(self, other: Detector) -> None:
        if not isinstance(other, EncryptedDns):
            raise TypeError(f"cannot merge {type(other).__name__} into EncryptedDns")
        for key, h in other.hosts.items():
            mine = self.hosts.get(key)
            if mine is not None:
                mine.merge(h)
            elif len(self.hosts) < self.t.max_hosts:
                self.hosts[key] = h
            else:
                self.untracked_sessions += sum(h.sessions.values())
        self.untracked_sessions += other.untracked_sessions
        for c, (q, a) in other.plain.items():
            row = self.plain.get(c)
            if row is None:
                if len(self.plain) >= self.t.max_dns_hosts:
                    self.untracked_dns += q + a
                    continue
                row = self.plain[c] = [0, 0]
            row[0] += q
            row[1] += a
        self.untracked_dns += other.untracked_dns

    # -- findings -------------------------------------------------------------------------
    def finish(self, ctx: FinishContext) -> list[Finding]:
        t: EncryptedDnsThresholds = self.t
        out: list[Finding] = []
        caps: dict[str, Any] = {}
        if self.untracked_sessions:
            caps["hosts_cap_reached"] = True
            caps["sessions_untracked"] = self.untracked_sessions
        if self.untracked_dns:
            caps["dns_hosts_cap_reached"] = True
            caps["dns_messages_untracked"] = self.untracked_dns
        for key, h in self.hosts.items():
            host = ip_text(*key)
            q, a = self.plain.get(key, (0, 0))
            # a capture that sees one direction only still shows one of the two
            plain = max(q, a)
            hidden = h.lookups
            share = hidden / (hidden + plain)
            dominant = share >= t.min_hidden_share and hidden >= t.min_hidden_lookups
            if dominant:
                code = "encrypted_dns_dominant"
                sev = Severity.MEDIUM if share >= t.medium_hidden_share else Severity.LOW
            else:
                code, sev = "encrypted_dns_seen", Severity.INFO
            resolvers = sorted(ip_text(*r) for r in h.resolvers)
            kinds = {k: h.sessions[k] for k in KINDS if h.sessions[k]}
            kinds_text = ", ".join(f"{k.upper() if k != 'doh' else 'DoH'} {n}" for k, n in kinds.items())
            kinds_text = kinds_text.replace("DOT", "DoT").replace("DOQ", "DoQ")
            if dominant:
                summary = (f"{host} resolves mainly through encrypted DNS ({kinds_text} sessions to "
                           f"{len(h.resolvers)} resolver(s)): about {hidden} lookups hidden against "
                           f"{plain} plaintext DNS messages, {share:.0%} of its resolution unseen.")
            else:
                summary = (f"{host} used encrypted DNS ({kinds_text} sessions, {h.orig_bytes + h.resp_bytes} "
                           f"bytes; about {hidden} lookups hidden) beside {plain} plaintext DNS messages.")
            evidence: dict[str, Any] = {
                "sessions": kinds,
                "sessions_total": sum(kinds.values()),
                "recognised_by": dict(sorted(h.basis.items())),
                "packets": h.packets,
                "client_bytes": h.orig_bytes,
                "resolver_bytes": h.resp_bytes,
                "mean_client_bytes_per_session": round(h.orig_bytes / sum(kinds.values()), 1),
                "h2_or_h3_sessions": h.h2,
                "hidden_lookups_estimate": hidden,
                "plaintext_dns_queries": q,
                "plaintext_dns_responses": a,
                "hidden_share": round(share, 3),
                "resolver_names": sorted(h.names)[:_LISTED],
                **caps,
            }
            out.append(Finding(
                detector=self.name, code=code, severity=sev,
                technique=TECHNIQUE if dominant else None,
                first_ns=h.first_ns, last_ns=h.last_ns, summary=summary, key=(host,),
                sources=(host,), sources_total=1,
                destinations=tuple(resolvers[:_LISTED]), destinations_total=len(resolvers),
                evidence=evidence,
                thresholds={"min_hidden_share": t.min_hidden_share, "medium_hidden_share": t.medium_hidden_share,
                            "min_hidden_lookups": t.min_hidden_lookups, "bytes_per_lookup": t.bytes_per_lookup,
                            "handshake_bytes": t.handshake_bytes},
                packets=tuple(h.refs.sorted()), packets_total=h.refs.total,
            ))  # fmt: skip
        return out

    # -- selftest -------------------------------------------------------------------------
    @classmethod
    def samples(cls) -> list[Sample]:
        return [
            Sample("dot_only_host", "a phone resolving only through DoT to 8.8.8.8:853 and DoH to 1.1.1.1",
                   lambda: _sample_packets(plain_queries=0), frozenset({"encrypted_dns_dominant"})),
            Sample("plaintext_host", "a host resolving 60 names over plaintext DNS and opening one DoT session",
                   lambda: _sample_packets(plain_queries=60), forbid_at="low"),
        ]  # fmt: skip


DETECTOR = EncryptedDns


# -- samples ------------------------------------------------------------------------------
def client_hello(sni: str | None, alpn: tuple[str, ...] = ()) -> bytes:
    """A minimal TLS 1.3 ClientHello record (RFC 8446 §4.1.2) with SNI and ALPN extensions."""

    def ext(kind: int, body: bytes) -> bytes:
        return kind.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body

    exts = b""
    if sni is not None:
        name = sni.encode()
        entry = b"\x00" + len(name).to_bytes(2, "big") + name
        exts += ext(0, len(entry).to_bytes(2, "big") + entry)
    if alpn:
        protos = b"".join(len(a).to_bytes(1, "big") + a.encode() for a in alpn)
        exts += ext(16, len(protos).to_bytes(2, "big") + protos)
    exts += ext(43, b"\x02\x03\x04")  # supported_versions: TLS 1.3
    body = (b"\x03\x03" + bytes(range(32)) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
            + len(exts).to_bytes(2, "big") + exts)  # fmt: skip
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs


def tls_session(client: str, server: str, sport: int, dport: int, t0: float, hello: bytes,
                exchanges: int, req: int = 90, resp: int = 160) -> list[Any]:
    """A TCP session: handshake, the ClientHello, ``exchanges`` request/response pairs, FIN."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    cm, sm = "02:00:00:00:00:01", "02:00:00:00:00:02"

    def c2s(flags: str, seq: int, ack: int, data: bytes = b"") -> Any:
        p = Ether(src=cm, dst=sm) / IP(src=client, dst=server) / TCP(sport=sport, dport=dport, flags=flags,
                                                                      seq=seq, ack=ack)  # fmt: skip
        return p / Raw(data) if data else p

    def s2c(flags: str, seq: int, ack: int, data: bytes = b"") -> Any:
        p = Ether(src=sm, dst=cm) / IP(src=server, dst=client) / TCP(sport=dport, dport=sport, flags=flags,
                                                                      seq=seq, ack=ack)  # fmt: skip
        return p / Raw(data) if data else p

    cs, ss = 1000, 5000
    pkts = [c2s("S", cs, 0), s2c("SA", ss, cs + 1), c2s("A", cs + 1, ss + 1)]
    cs += 1
    ss += 1
    pkts.append(c2s("PA", cs, ss, hello))
    cs += len(hello)
    for _ in range(exchanges):
        pkts.append(c2s("PA", cs, ss, b"\x17\x03\x03" + bytes(req - 3)))
        cs += req
        pkts.append(s2c("PA", ss, cs, b"\x17\x03\x03" + bytes(resp - 3)))
        ss += resp
    pkts += [c2s("FA", cs, ss), s2c("FA", ss, cs + 1), c2s("A", cs + 1, ss + 1)]
    for i, p in enumerate(pkts):
        p.time = t0 + i * 0.01
    return pkts


def dns_exchange(client: str, server: str, sport: int, qid: int, name: str, t0: float) -> list[Any]:
    """One plaintext DNS A query and its answer."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    q: Any = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:03") / IP(src=client, dst=server)
         / UDP(sport=sport, dport=53) / DNS(id=qid, rd=1, qd=DNSQR(qname=name)))  # fmt: skip
    a: Any = (Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:01") / IP(src=server, dst=client)
         / UDP(sport=53, dport=sport)
         / DNS(id=qid, qr=1, ra=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, rdata="192.0.2.7")))  # fmt: skip
    q.time, a.time = t0, t0 + 0.02
    return [q, a]


def _sample_packets(plain_queries: int) -> list[Any]:
    import random

    rng = random.Random(7)
    host = "192.168.50.10"
    pkts: list[Any] = []
    t = 1_700_000_000.0
    if plain_queries:
        for i in range(plain_queries):
            name = f"www.site{rng.randrange(10_000)}.example"
            pkts += dns_exchange(host, "192.168.50.1", 40000 + i, rng.randrange(65536), name, t + i)
        pkts += tls_session(host, "8.8.8.8", 50001, 853, t + 100, client_hello("dns.google"), 2)
    else:
        pkts += tls_session(host, "8.8.8.8", 50001, 853, t, client_hello("dns.google"), 30)
        pkts += tls_session(host, "1.1.1.1", 50002, 443, t + 5, client_hello(None, ("h2", "http/1.1")), 20)
    return sorted(pkts, key=lambda p: float(p.time))
