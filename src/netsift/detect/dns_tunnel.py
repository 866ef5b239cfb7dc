"""DNS tunnelling and exfiltration: per (client, registered domain) scores an analyst can read.

What it detects (codes):

- ``dns_tunnel``: a client's queries under one registered domain have the shape
  of a tunnel or C2 channel (iodine, dnscat2, dns2tcp, Cobalt Strike DNS):
  many unique subdomains, long names, encoded-looking labels, random-looking
  characters, tunnel query types, NXDOMAIN answers, a count far above the
  client's other domains and the population;
- ``dns_exfiltration``: the same shape with a large volume of subdomain bytes
  sent (data leaving in the names);
- ``dns_query_rate``, ``dns_txt_null_rate``, ``dns_bytes_out_rate``: the Sigma
  rate rules per source and minute (a volume signal, not a tunnel verdict).

How it decides: every (client, registered domain) pair is measured
(registered domain = Public Suffix List eTLD+1, offline, through
:func:`netsift.applayer.registered_domain`); each component below gives points
when its measurement reaches its threshold, and the total decides the code and
the severity.  The evidence lists every component with its value, threshold and
points.  Names on the allowlist (mDNS, DNS-SD, AD SRV, DKIM/DMARC, reverse
lookups, DNSBL and antivirus reputation zones, CDN hashed host names, plus the
user's ``allow_domains``) are not scored.

Sources of the numbers (``docs/reference`` LANDSCAPE.md §2.7): RITA v5
(unique subdomains per eTLD+1, 100 / 1000), Zeek community scripts (query
length 52), Microsoft Sentinel ``DNS_LongURILookup`` (name length 150), Sigma
``net_high_*`` rules (rates per minute), the robust z-score of Iglewicz and
Hoaglin (3.5); the rest is netsift's own choice, said so where defined.

State: per pair the distinct names (capped), qtype and rcode counts; per source
and minute the rate counters (capped).  Caps are reported in the evidence.
"""

from __future__ import annotations

import hashlib
import heapq
import operator
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import compress
from statistics import median
from typing import Any, ClassVar, Final

from ..applayer import qtype_name, registered_domain
from ..columns import ip_text
from ..entropy import entropy_ratio
from .base import Detector, DnsEvents, FinishContext, Sample
from .finding import MAX_EVIDENCE_PACKETS, Finding, Severity, Technique

__all__ = ["DEFAULT_ALLOWLIST", "PUBLIC_RESOLVERS", "Allowlist", "DnsTunnelDetector", "TunnelThresholds",
           "entropy_ratio", "name_length", "name_shape", "robust_z", "spread"]

T_DNS: Final = Technique("T1071.004", "Application Layer Protocol: DNS")
T_EXFIL: Final = Technique("T1048.003", "Exfiltration Over Alternative Protocol: "
                                        "Exfiltration Over Unencrypted Non-C2 Protocol")  # fmt: skip

NS_PER_MIN: Final = 60_000_000_000

QTYPE_A, QTYPE_NULL, QTYPE_TXT, QTYPE_CNAME, QTYPE_MX = 1, 10, 16, 5, 15
RCODE_NXDOMAIN: Final = 3

#: Curated allowlist (LANDSCAPE.md §2.7, "False-positive allowlist classes seen in practice").
#: ``*.zone`` matches the zone's subdomains only; ``zone`` matches the zone and its subdomains.
DEFAULT_ALLOWLIST: Final[tuple[str, ...]] = (
    # mDNS (RFC 6762) and link-local names
    "local",
    # reverse lookups (RFC 1035 §3.5, RFC 3596 §2.5) and the servers of those zones
    "in-addr.arpa", "ip6.arpa", "in-addr-servers.arpa",
    # DNSBL / RBL / URI blocklists (queried with the address or host as labels)
    "spamhaus.org", "spamcop.net", "sorbs.net", "barracudacentral.org", "surbl.org", "uribl.com",
    "spameatingmonkey.net", "mailspike.net", "dnswl.org", "abuseat.org", "junkemailfilter.com",
    # antivirus / reputation lookups over DNS (Sentinel DNS_LongURILookup exclusions)
    "sophosxl.net", "mcafee.com", "trendmicro.com", "e5.sk", "kr0.io", "cnr.io", "arcticwolf.net",
    "webcfs00.com", "barracudabrts.com", "opendns.com", "modsecurity.org", "fdmarc.net", "ipass.com",
    "spotify.com", "avast.com", "avcdn.net", "eset.com",
    # CDN and cloud hashed host names (RITA users' list, activecm/rita-legacy#713; maltrail#19047)
    "akamaitechnologies.com", "akamaiedge.net", "akamai.net", "akadns.net", "cloudfront.net",
    "1e100.net", "msedge.net", "trafficmanager.net", "gstatic.com", "googlevideo.com",
    "amazonaws.com", "azureedge.net", "fastly.net", "edgekey.net", "edgesuite.net",
)  # fmt: skip
#: First labels that are ordinary automatic look-ups (mattclemons dns-tunneling.bro, Sentinel).
ALLOW_FIRST_LABELS: Final = frozenset({"wpad", "isatap", "autodiscover"})

#: Known public resolvers by address, each from its operator's documentation:
#: Google Public DNS (developers.google.com/speed/public-dns/docs/using),
#: Cloudflare 1.1.1.1 (developers.cloudflare.com/1.1.1.1/ip-addresses/),
#: Quad9 (quad9.net/service/service-addresses-and-features),
#: Cisco OpenDNS (support.opendns.com, "OpenDNS IP addresses"),
#: AdGuard DNS (adguard-dns.io/kb/general/dns-providers/),
#: CleanBrowsing (cleanbrowsing.org/filters).
PUBLIC_RESOLVERS: Final[dict[str, str]] = {
    "8.8.8.8": "Google Public DNS", "8.8.4.4": "Google Public DNS",
    "2001:4860:4860::8888": "Google Public DNS", "2001:4860:4860::8844": "Google Public DNS",
    "1.1.1.1": "Cloudflare", "1.0.0.1": "Cloudflare",
    "2606:4700:4700::1111": "Cloudflare", "2606:4700:4700::1001": "Cloudflare",
    "9.9.9.9": "Quad9", "149.112.112.112": "Quad9", "2620:fe::fe": "Quad9", "2620:fe::9": "Quad9",
    "208.67.222.222": "Cisco OpenDNS", "208.67.220.220": "Cisco OpenDNS",
    "94.140.14.14": "AdGuard DNS", "94.140.15.15": "AdGuard DNS",
    "185.228.168.9": "CleanBrowsing", "185.228.169.9": "CleanBrowsing",
}  # fmt: skip


@dataclass(frozen=True)
class TunnelThresholds:
    #: Fewest queries of a (client, domain) pair before it is scored: netsift's own
    #: (shares from fewer queries are noise; the smallest real tunnel captures hold 12).
    min_queries: int = 10
    #: Fewest distinct names of a pair before it is scored: netsift's own, as above.
    min_distinct_names: int = 8
    #: Unique subdomains per pair for 2 points: RITA v5 ``c2_subdomain_threshold`` (100 in 24 h), §2.7.
    unique_subdomains: int = 100
    #: Unique subdomains per pair for 3 points: RITA v5's "high" severity base (1000), §2.7.
    unique_subdomains_high: int = 1000
    #: Mean query-name length (over distinct names) for 1 point: Zeek community script
    #: dnsexfilitration.bro (query length > 52), §2.7.
    mean_name_length: int = 52
    #: Longest query name for 1 more point: Microsoft Sentinel ``DNS_LongURILookup`` (≥ 150), §2.7.
    long_name_length: int = 150
    #: Shortest label that can look encoded (hex/base32/base64): netsift's own (hashes and
    #: encoded chunks are ≥ 16 characters; shorter labels are words and host numbers).
    encoded_min_label: int = 16
    #: Share of distinct names with an encoded-looking label for 1 point: netsift's own.
    encoded_share: float = 0.25
    #: ... and for 2 points: netsift's own (most names encoded = the channel itself).
    encoded_share_high: float = 0.5
    #: Mean entropy ratio (Shannon entropy / the entropy expected of random characters of the
    #: same length and alphabet) of long subdomains for 1 point: netsift's own; §2.7 notes
    #: entropy is length-biased, this ratio removes the bias (random ≈ 1.0, words ≈ 0.8–0.9).
    entropy_ratio: float = 0.93
    #: Share of NULL queries for 2 points: netsift's own from the iodine fingerprint (§2.7:
    #: NULL first); NULL (RFC 1035 "experimental") has no ordinary use.
    null_share: float = 0.2
    #: Share of TXT/MX/CNAME queries for 1 point: netsift's own from the dnscat2 and dns2tcp
    #: fingerprints (§2.7: TXT/CNAME/MX).
    txt_mx_cname_share: float = 0.5
    #: NXDOMAIN share of a pair's responses for 1 point: netsift's own (RITA lab computes the
    #: ratio without a cut-off).
    nxdomain_ratio: float = 0.5
    #: Fewest responses before the NXDOMAIN ratio counts: netsift's own.
    min_responses: int = 10
    #: Robust (modified) z-score of a pair's unique-name count against the client's other
    #: domains, and against the population, for 1 point each: Iglewicz & Hoaglin (1993) 3.5.
    baseline_z: float = 3.5
    #: Fewest other pairs to compare with before a baseline counts: netsift's own.
    baseline_min_domains: int = 5
    #: Total points for a medium finding: netsift's own (two strong components, or one strong and
    #: two weak).
    score_medium: int = 4
    #: Total points for high: netsift's own.
    score_high: int = 6
    #: Total points for critical: netsift's own.
    score_critical: int = 9
    #: Subdomain bytes sent under one domain that make a tunnel ``dns_exfiltration``: netsift's
    #: own (a third of Sigma ``net_high_dns_bytes_out``'s 300,000 per minute, over the whole run).
    exfil_bytes: int = 100_000
    #: Queries per source and minute: Sigma ``net_high_dns_requests_rate`` (> 1000 / 1 min), §2.7.
    rate_queries_per_min: int = 1000
    #: TXT plus NULL queries per source and minute: Sigma ``net_high_txt_records_requests_rate``
    #: and ``net_high_null_records_requests_rate`` (> 50 / 1 min), §2.7.
    rate_txt_null_per_min: int = 50
    #: Query-name bytes per source and minute: Sigma ``net_high_dns_bytes_out`` (> 300,000), §2.7.
    rate_bytes_per_min: int = 300_000
    #: (client, domain) pairs tracked: netsift's own memory bound (about 1 KiB each).  At the
    #: bound the table holds the pairs whose keys hash lowest (a sample that does not depend
    #: on arrival order: traffic early in a capture cannot crowd out a later tunnel).
    max_pairs: int = 50_000
    #: Distinct names kept per pair: netsift's own; beyond it new names are counted only.
    max_names_per_pair: int = 5_000
    #: Distinct names kept over all pairs together: netsift's own memory bound (about 200
    #: bytes a name; pairs times names per pair is far beyond memory).  Beyond it new names
    #: are counted only, as past ``max_names_per_pair``.
    max_names_total: int = 500_000
    #: (source, minute) rate buckets kept: netsift's own memory bound.
    max_rate_buckets: int = 200_000
    #: Extra allowlist entries from the config file (``*.zone``: subdomains; ``zone``: it and
    #: its subdomains).
    allow_domains: tuple[str, ...] = ()
    #: Use the curated allowlist (DEFAULT_ALLOWLIST) besides ``allow_domains``.
    default_allowlist: bool = True

    def __post_init__(self) -> None:
        for f in ("min_queries", "min_distinct_names", "unique_subdomains", "unique_subdomains_high",
                  "mean_name_length", "long_name_length", "encoded_min_label", "min_responses",
                  "baseline_min_domains", "score_medium", "score_high", "score_critical",
                  "exfil_bytes", "rate_queries_per_min", "rate_txt_null_per_min",
                  "rate_bytes_per_min", "max_pairs", "max_names_per_pair", "max_names_total",
                  "max_rate_buckets"):  # fmt: skip
            if getattr(self, f) < 1:
                raise ValueError(f"{f} must be at least 1")
        for f in ("encoded_share", "encoded_share_high", "null_share", "txt_mx_cname_share",
                  "nxdomain_ratio"):  # fmt: skip
            v = getattr(self, f)
            if not 0.0 < v <= 1.0:
                raise ValueError(f"{f} must be in (0, 1]")
        if not 0.0 < self.entropy_ratio <= 1.5:
            raise ValueError("entropy_ratio must be in (0, 1.5]")
        if self.baseline_z <= 0:
            raise ValueError("baseline_z must be positive")
        if self.unique_subdomains_high < self.unique_subdomains:
            raise ValueError("unique_subdomains_high must be at least unique_subdomains")
        if self.encoded_share_high < self.encoded_share:
            raise ValueError("encoded_share_high must be at least encoded_share")
        if not self.score_medium <= self.score_high <= self.score_critical:
            raise ValueError("score_medium, score_high, score_critical must not decrease")
        for d in self.allow_domains:
            if not isinstance(d, str) or not d.strip("*.").strip():
                raise ValueError(f"allow_domains: {d!r} is not a domain pattern")


class Allowlist:
    """Domain patterns: ``*.zone`` matches strict subdomains of zone, ``zone`` matches zone and
    its subdomains; a name with a label starting ``_`` (DNS-SD ``_service._proto``, AD SRV
    ``_ldap._tcp``/``_msdcs``, DKIM ``_domainkey``, DMARC ``_dmarc``) or ``#``, or whose first
    label is wpad/isatap/autodiscover, is allowed as a class."""

    def __init__(self, patterns: tuple[str, ...] | list[str]) -> None:
        self.zones: dict[str, str] = {}  # zone -> pattern (zone and subdomains)
        self.strict: dict[str, str] = {}  # zone -> pattern (subdomains only)
        for p in patterns:
            q = p.strip().lower().rstrip(".")
            if q.startswith("*."):
                self.strict[q[2:]] = p
            else:
                self.zones[q.lstrip(".")] = p

    def match(self, name: str) -> str | None:
        """The pattern or class that allows ``name`` (lower-case, no trailing dot), else None."""
        labels = name.split(".")
        first = labels[0]
        if first in ALLOW_FIRST_LABELS:
            return f"{first} (automatic look-up)"
        for lab in labels:
            if lab[:1] in ("_", "#"):
                return "_service/_proto label (DNS-SD, SRV, DKIM, DMARC)"
        zones, strict = self.zones, self.strict
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            hit = zones.get(suffix)
            if hit is not None:
                return hit
            if i > 0:
                hit = strict.get(suffix)
                if hit is not None:
                    return hit
        return None


_HEX: Final = frozenset("0123456789abcdef")
_B32: Final = frozenset("abcdefghijklmnopqrstuvwxyz01234567")  # RFC 4648 (a-z2-7) and iodine (a-z0-5)
_ALNUM: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_B64: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+/=")
_DIGITS: Final = frozenset("0123456789")
_ESCAPED_BYTE: Final = re.compile(r"\\\d{3}")


def name_length(text: str) -> int:
    """A name's length in octets: an escaped byte (``\\ddd``) of the text form counts one."""
    if "\\" not in text:
        return len(text)
    return len(text) - 3 * len(_ESCAPED_BYTE.findall(text))


def name_shape(label: str, min_len: int) -> str:
    """The character-class shape of one label: ``binary`` (escaped bytes: base128 and raw),
    ``hex``, ``base32``, ``base64`` (mixed case), or ``""`` (not encoded-looking).

    An encoded shape needs ``min_len`` characters and a digit among letters (or mixed case for
    base64): words and host names rarely have both."""
    if "\\" in label:
        return "binary"
    if len(label) < min_len:
        return ""
    chars = set(label)
    lower = set(label.lower())
    has_digit = bool(chars & _DIGITS)
    has_alpha = bool(lower - _DIGITS - {"-", "_"})
    if lower <= _HEX and has_digit and has_alpha:
        return "hex"
    if chars <= _B64 and chars != lower and chars != set(label.upper()) and has_digit:
        return "base64"
    if lower <= _B32 and has_digit and has_alpha:
        return "base32"
    return ""


def spread(values: list[int]) -> tuple[float, float, float]:
    """(median, MAD, mean absolute deviation from the median) of ``values``."""
    med = float(median(values))
    mad = float(median([abs(v - med) for v in values]))
    mean_ad = sum(abs(v - med) for v in values) / len(values)
    return med, mad, mean_ad


def robust_z(x: float, stats: tuple[float, float, float]) -> float:
    """Modified z-score (Iglewicz & Hoaglin): 0.6745 (x − median) / MAD, with the mean absolute
    deviation (×1.2533) when the MAD is 0; 0 when the values do not vary (99 above them)."""
    med, mad, mean_ad = stats
    if mad > 0:
        return 0.6745 * (x - med) / mad
    if mean_ad > 0:
        return (x - med) / (1.2533 * mean_ad)
    return 0.0 if x <= med else 99.0


@dataclass
class _Pair:
    """What one client sent under one registered domain."""

    queries: int = 0
    name_bytes: int = 0
    #: lower-case name -> (first ts, file, frame, name as sent), capped
    names: dict[str, tuple[int, int, int, str]] = field(default_factory=dict)
    names_over_cap: int = 0
    qtypes: Counter[int] = field(default_factory=Counter)
    responses: int = 0
    nxdomain: int = 0
    first_ns: int = 0
    last_ns: int = 0
    servers: set[tuple[int, int]] = field(default_factory=set)

    def times(self, first: int, last: int) -> None:
        if self.first_ns == 0 or first < self.first_ns:
            self.first_ns = first
        if last > self.last_ns:
            self.last_ns = last


def _pair(queries: int, name_bytes: int, names: dict[str, tuple[int, int, int, str]], names_over_cap: int,
          qtypes: dict[int, int], responses: int, nxdomain: int, first_ns: int, last_ns: int,
          servers: tuple[tuple[int, int], ...]) -> _Pair:  # fmt: skip
    """A pair from the plain values :meth:`DnsTunnelDetector.__getstate__` packs."""
    counts: Counter[int] = Counter()
    dict.update(counts, qtypes)
    p: _Pair = object.__new__(_Pair)  # the fields set directly: the dataclass __init__ costs more than the rest
    p.__dict__.update(queries=queries, name_bytes=name_bytes, names=names, names_over_cap=names_over_cap,
                      qtypes=counts, responses=responses, nxdomain=nxdomain, first_ns=first_ns,
                      last_ns=last_ns, servers=set(servers))  # fmt: skip
    return p


_MAX_SERVERS: Final = 8


def _pair_rank(key: tuple[tuple[int, int], str]) -> int:
    """A pair's place in the order the table keeps pairs in at its bound: a 64-bit BLAKE2b
    hash of the key (the same in every process, unlike Python's string hash)."""
    (hi, lo), reg = key
    data = f"{hi},{lo},{reg}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


class DnsTunnelDetector(Detector):
    """DNS tunnelling and exfiltration per (client, registered domain); Sigma DNS rates per source."""

    name: ClassVar[str] = "dns_tunnel"
    title: ClassVar[str] = "DNS tunnels and exfiltration: scored per client and registered domain"
    Thresholds: ClassVar[type] = TunnelThresholds

    def __init__(self, thresholds: TunnelThresholds | None = None) -> None:
        super().__init__(thresholds)
        t: TunnelThresholds = self.t
        self.allow = Allowlist((DEFAULT_ALLOWLIST if t.default_allowlist else ()) + tuple(t.allow_domains))
        #: (client, registered domain) -> state
        self.pairs: dict[tuple[tuple[int, int], str], _Pair] = {}
        #: queries of the pairs not held (refused at the bound, or pushed out by a pair that ranks lower)
        self.pairs_dropped = 0
        #: the held pairs by rank, largest first (:func:`_pair_rank` negated), once the bound is reached
        self._ranks: list[tuple[int, tuple[tuple[int, int], str]]] | None = None
        #: distinct names kept in all pairs, and new names not kept because of max_names_total
        self.names_held = 0
        self.names_dropped = 0
        #: (client, minute) -> [queries, txt+null queries, name bytes, first (ts, file, frame)]
        self.rates: dict[tuple[tuple[int, int], int], list[Any]] = {}
        self.rates_dropped = 0
        self.allowed_queries: Counter[str] = Counter()
        #: name -> (lower-case name, registered domain, allowlist hit) for names seen
        self._names: dict[str, tuple[str, str, str | None]] = {}

    def __getstate__(self) -> dict[str, Any]:
        # the name cache is only a cache: a split run's worker does not send it to the parent
        state = self.__dict__.copy()
        state["_names"] = {}
        state["_ranks"] = None  # rebuilt from the pairs when needed
        # the pairs as columns of plain values: a worker sends tens of thousands, and one
        # reduce call per pair made them the slowest part of its state to send and load
        pairs = state.pop("pairs")
        ps = list(pairs.values())
        state["pairs_packed"] = (
            list(pairs), [p.queries for p in ps], [p.name_bytes for p in ps], [p.names for p in ps],
            [p.names_over_cap for p in ps], [dict(p.qtypes) for p in ps], [p.responses for p in ps],
            [p.nxdomain for p in ps], [p.first_ns for p in ps], [p.last_ns for p in ps],
            [tuple(p.servers) for p in ps],
        )  # fmt: skip
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        keys, *columns = state.pop("pairs_packed")
        self.__dict__.update(state)
        self.pairs = dict(zip(keys, map(_pair, *columns), strict=True))

    # -- ingest --------------------------------------------------------------------------------

    def _name(self, name: str) -> tuple[str, str, str | None]:
        hit = self._names.get(name)
        if hit is None:
            low = name.rstrip(".").lower()
            hit = (low, registered_domain(low), self.allow.match(low))
            if len(self._names) >= 200_000:
                self._names.clear()
            self._names[name] = hit
        return hit

    def _pair(self, key: tuple[tuple[int, int], str]) -> _Pair | None:
        """The state of a pair; None when the table is full and every held pair ranks below it.

        At the bound a new pair that ranks below the highest-ranked held pair takes its place
        (that pair's queries are counted as dropped).  So the table ends up holding the
        ``max_pairs`` lowest-ranked pairs of the whole input, each with all of its queries (a
        pair that ends up held ranks below any pair it could have been pushed out by), however
        the input was ordered or split among a run's workers.
        """
        p = self.pairs.get(key)
        if p is None and self._admit(key):
            p = self.pairs[key] = _Pair()
        return p

    def _admit(self, key: tuple[tuple[int, int], str]) -> bool:
        """Make room for the new pair ``key`` (the caller then adds it): False when the table
        is full and every held pair ranks below it, else True, having pushed out the
        highest-ranked pair if the table was full."""
        pairs = self.pairs
        ranks = self._ranks
        if len(pairs) < self.t.max_pairs:
            if ranks is not None:
                heapq.heappush(ranks, (-_pair_rank(key), key))
            return True
        if ranks is None:
            ranks = self._ranks = [(-_pair_rank(k), k) for k in pairs]
            heapq.heapify(ranks)
        if not ranks:
            return False  # max_pairs is 0
        rank = _pair_rank(key)
        if rank >= -ranks[0][0]:
            return False
        _, out = heapq.heapreplace(ranks, (-rank, key))
        gone = pairs.pop(out)
        self.pairs_dropped += gone.queries
        self.names_held -= len(gone.names)
        return True

    def dns(self, events: DnsEvents) -> None:
        t: TunnelThresholds = self.t
        is_q = list(map(operator.not_, events.response))
        qname = list(compress(events.qname, is_q))
        if qname:
            qclient = list(compress(events.client, is_q))
            qtype = list(compress(events.qtype, is_q))
            qts = list(compress(events.ts_ns, is_q))
            qfile = list(compress(events.file_index, is_q))
            qframe = list(compress(events.frame, is_q))
            qserver = list(compress(events.server, is_q))
            minute = [x // NS_PER_MIN for x in qts]
            keys = list(zip(qclient, qname, qtype, minute, qserver, strict=True))
            counts = Counter(keys)
            n = len(keys)
            first = dict(zip(reversed(keys), range(n - 1, -1, -1), strict=True))
            last = dict(zip(keys, qts, strict=True))
            rates = self.rates
            for key, k in counts.items():
                client, name, qt, mn, server = key
                i = first[key]
                ref = (qts[i], qfile[i], qframe[i])
                size = name_length(name) * k if name is not None else 0
                r = rates.get((client, mn))
                if r is None:
                    if len(rates) >= t.max_rate_buckets:
                        self.rates_dropped += k
                    else:
                        rates[(client, mn)] = [k, k if qt in (QTYPE_TXT, QTYPE_NULL) else 0, size, ref]
                else:
                    r[0] += k
                    if qt in (QTYPE_TXT, QTYPE_NULL):
                        r[1] += k
                    r[2] += size
                    if ref < r[3]:
                        r[3] = ref
                if not name:
                    continue
                low, reg, allowed = self._name(name)
                if allowed is not None:
                    self.allowed_queries[allowed] += k
                    continue
                p = self._pair((client, reg))
                if p is None:
                    self.pairs_dropped += k
                    continue
                p.queries += k
                p.name_bytes += size
                p.qtypes[qt if qt is not None else -1] += k
                p.times(ref[0], last[key])
                if len(p.servers) < _MAX_SERVERS:
                    p.servers.add(server)
                seen = p.names.get(low)
                if seen is None:
                    if len(p.names) >= t.max_names_per_pair:
                        p.names_over_cap += 1
                    elif self.names_held >= t.max_names_total:
                        p.names_over_cap += 1
                        self.names_dropped += 1
                    else:
                        p.names[low] = (*ref, name)
                        self.names_held += 1
                elif ref < seen[:3]:
                    p.names[low] = (*ref, seen[3])
        is_r = events.response
        rname = list(compress(events.qname, is_r))
        if rname:
            rkeys = list(zip(compress(events.client, is_r), rname, compress(events.rcode, is_r), strict=True))
            rts = list(compress(events.ts_ns, is_r))
            rfirst = dict(zip(reversed(rkeys), reversed(rts), strict=True))
            rlast = dict(zip(rkeys, rts, strict=True))
            for rkey, k in Counter(rkeys).items():
                client, name, rcode = rkey
                if not name:
                    continue
                _low, reg, allowed = self._name(name)
                if allowed is not None:
                    continue
                p = self._pair((client, reg))
                if p is None:
                    continue
                p.responses += k
                if rcode == RCODE_NXDOMAIN:
                    p.nxdomain += k
                p.times(rfirst[rkey], rlast[rkey])

    def merge(self, other: Detector) -> None:
        assert isinstance(other, DnsTunnelDetector)
        t: TunnelThresholds = self.t
        self.pairs_dropped += other.pairs_dropped
        self.names_dropped += other.names_dropped
        self.rates_dropped += other.rates_dropped
        self.allowed_queries.update(other.allowed_queries)
        pairs = self.pairs
        for key, o in other.pairs.items():
            p = pairs.get(key)
            if p is None:
                if not self._admit(key):
                    self.pairs_dropped += o.queries
                    continue
                if o.first_ns and self.names_held + len(o.names) <= t.max_names_total:
                    # a pair only the other side saw, with room for all its names: what adding
                    # it field by field below would build (other is not used afterwards)
                    pairs[key] = o
                    self.names_held += len(o.names)
                    continue
                p = pairs[key] = _Pair()
            p.queries += o.queries
            p.name_bytes += o.name_bytes
            p.qtypes.update(o.qtypes)
            p.responses += o.responses
            p.nxdomain += o.nxdomain
            p.names_over_cap += o.names_over_cap
            if o.first_ns:
                p.times(o.first_ns, o.last_ns)
            for s in o.servers:
                if len(p.servers) < _MAX_SERVERS:
                    p.servers.add(s)
            for low, v in o.names.items():
                seen = p.names.get(low)
                if seen is None:
                    if len(p.names) >= t.max_names_per_pair:
                        p.names_over_cap += 1
                    elif self.names_held >= t.max_names_total:
                        p.names_over_cap += 1
                        self.names_dropped += 1
                    else:
                        p.names[low] = v
                        self.names_held += 1
                elif v[:3] < seen[:3]:
                    p.names[low] = v
        for bucket, r in other.rates.items():
            mine = self.rates.get(bucket)
            if mine is None:
                if len(self.rates) >= t.max_rate_buckets:
                    self.rates_dropped += r[0]
                else:
                    self.rates[bucket] = list(r)
            else:
                mine[0] += r[0]
                mine[1] += r[1]
                mine[2] += r[2]
                if r[3] < mine[3]:
                    mine[3] = r[3]

    # -- scoring -------------------------------------------------------------------------------

    def _caps(self) -> dict[str, Any]:
        return {"pairs_tracked": len(self.pairs), "pairs_cap": self.t.max_pairs,
                "queries_in_pairs_not_held": self.pairs_dropped,
                "names_held": self.names_held, "names_cap": self.t.max_names_total,
                "names_dropped_at_cap": self.names_dropped,
                "rate_buckets_cap_hit": self.rates_dropped > 0}  # fmt: skip

    def _measure(self, p: _Pair, reg: str) -> dict[str, Any]:
        """The pair's measurements, from its distinct names (each once)."""
        t: TunnelThresholds = self.t
        names = list(p.names.values())
        lengths = [name_length(v[3].rstrip(".")) for v in names]
        shapes: Counter[str] = Counter()
        ratios: list[float] = []
        max_label = 0
        encoded = 0
        cut = len(reg) + 1
        for v in names:
            full = v[3].rstrip(".")
            sub = full[: len(full) - cut] if len(full) > cut else ""
            labels = sub.split(".") if sub else []
            longest = max((len(x) for x in labels), default=0)
            max_label = max(max_label, longest)
            shape = ""
            for lab in labels:
                shape = name_shape(lab, t.encoded_min_label)
                if shape:
                    break
            if shape:
                shapes[shape] += 1
                encoded += 1
            flat = sub.replace(".", "")
            if len(flat) >= t.encoded_min_label:
                ratios.append(entropy_ratio(flat))
        unique = len(names) + p.names_over_cap
        q = p.queries or 1
        minutes = max((p.last_ns - p.first_ns) / NS_PER_MIN, 1.0)
        return {
            "queries": p.queries,
            "unique_names": unique,
            "unique_names_capped": p.names_over_cap > 0,
            "mean_name_length": round(sum(lengths) / len(lengths), 1) if lengths else 0.0,
            "max_name_length": max(lengths, default=0),
            "max_label_length": max_label,
            "encoded_share": round(encoded / len(names), 3) if names else 0.0,
            "encoded_shapes": dict(sorted(shapes.items())),
            "entropy_ratio": round(sum(ratios) / len(ratios), 3) if ratios else 0.0,
            "entropy_names": len(ratios),
            "null_share": round(p.qtypes.get(QTYPE_NULL, 0) / q, 3),
            "txt_mx_cname_share": round(sum(p.qtypes.get(x, 0) for x in (QTYPE_TXT, QTYPE_MX, QTYPE_CNAME)) / q, 3),
            "qtypes": {(qtype_name(k) or "?") if k >= 0 else "?": v for k, v in sorted(p.qtypes.items())},
            "responses": p.responses,
            "nxdomain_ratio": round(p.nxdomain / p.responses, 3) if p.responses else 0.0,
            "queries_per_min": round(p.queries / minutes, 1),
            "name_bytes_sent": p.name_bytes,
            "subdomain_bytes_sent": sum(max(n - cut, 0) for n in lengths),
        }

    def _score(self, m: dict[str, Any], z_client: float | None, z_pop: float | None) -> list[dict[str, Any]]:
        t: TunnelThresholds = self.t

        def comp(name: str, value: Any, threshold: Any, points: int) -> dict[str, Any]:
            return {"component": name, "value": value, "threshold": threshold, "points": points}

        u = m["unique_names"]
        out = [
            comp("unique_subdomains", u, [t.unique_subdomains, t.unique_subdomains_high],
                 3 if u >= t.unique_subdomains_high else 2 if u >= t.unique_subdomains else 0),
            comp("mean_name_length", m["mean_name_length"], t.mean_name_length,
                 1 if m["mean_name_length"] >= t.mean_name_length else 0),
            comp("max_name_length", m["max_name_length"], t.long_name_length,
                 1 if m["max_name_length"] >= t.long_name_length else 0),
            comp("encoded_share", m["encoded_share"], [t.encoded_share, t.encoded_share_high],
                 2 if m["encoded_share"] >= t.encoded_share_high else 1 if m["encoded_share"] >= t.encoded_share else 0),
            comp("entropy_ratio", m["entropy_ratio"], t.entropy_ratio,
                 1 if m["entropy_names"] and m["entropy_ratio"] >= t.entropy_ratio else 0),
            comp("null_share", m["null_share"], t.null_share, 2 if m["null_share"] >= t.null_share else 0),
            comp("txt_mx_cname_share", m["txt_mx_cname_share"], t.txt_mx_cname_share,
                 1 if m["txt_mx_cname_share"] >= t.txt_mx_cname_share else 0),
            comp("nxdomain_ratio", m["nxdomain_ratio"], t.nxdomain_ratio,
                 1 if m["responses"] >= t.min_responses and m["nxdomain_ratio"] >= t.nxdomain_ratio else 0),
            comp("client_baseline_z", None if z_client is None else round(z_client, 2), t.baseline_z,
                 1 if z_client is not None and z_client >= t.baseline_z else 0),
            comp("population_z", None if z_pop is None else round(z_pop, 2), t.baseline_z,
                 1 if z_pop is not None and z_pop >= t.baseline_z else 0),
        ]  # fmt: skip
        return out

    def finish(self, ctx: FinishContext) -> list[Finding]:
        return self._pair_findings() + self._rate_findings()

    def _pair_findings(self) -> list[Finding]:
        t: TunnelThresholds = self.t
        counts_by_client: dict[tuple[int, int], list[int]] = {}
        population: list[int] = []
        for (client, _reg), p in self.pairs.items():
            if p.queries:
                u = len(p.names) + p.names_over_cap
                counts_by_client.setdefault(client, []).append(u)
                population.append(u)
        # one median/MAD per client and one for the population (each pair included: the median and
        # MAD hardly move for one outlier, and this keeps finish linear in the pairs)
        min_n = t.baseline_min_domains + 1
        client_stats = {c: spread(v) for c, v in counts_by_client.items() if len(v) >= min_n}
        pop_stats = spread(population) if len(population) >= min_n else None
        out: list[Finding] = []
        caps = self._caps()
        for (client, reg), p in sorted(self.pairs.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            if p.queries < t.min_queries or len(p.names) + p.names_over_cap < t.min_distinct_names:
                continue
            m = self._measure(p, reg)
            u = m["unique_names"]
            cs = client_stats.get(client)
            z_client = robust_z(u, cs) if cs is not None else None
            z_pop = robust_z(u, pop_stats) if pop_stats is not None else None
            comps = self._score(m, z_client, z_pop)
            score = sum(c["points"] for c in comps)
            content = sum(c["points"] for c in comps
                          if c["component"] in ("unique_subdomains", "mean_name_length", "max_name_length",
                                                "encoded_share"))  # fmt: skip
            if score < t.score_medium or content == 0:
                continue
            sev = (Severity.CRITICAL if score >= t.score_critical else Severity.HIGH
                   if score >= t.score_high else Severity.MEDIUM)  # fmt: skip
            exfil = m["subdomain_bytes_sent"] >= t.exfil_bytes
            if exfil and sev < Severity.HIGH:
                sev = Severity.HIGH
            code = "dns_exfiltration" if exfil else "dns_tunnel"
            servers = sorted(ip_text(*s) for s in p.servers)
            resolvers = {s: PUBLIC_RESOLVERS[s] for s in servers if s in PUBLIC_RESOLVERS}
            refs = sorted(v[:3] for v in p.names.values())[:MAX_EVIDENCE_PACKETS]
            examples = [v[3] for v in sorted(p.names.values())[:5]]
            fired = ", ".join(f"{c['component']} {c['value']}" for c in comps if c["points"])
            what = ("sent " + f"{m['subdomain_bytes_sent']:,} bytes in subdomains of" if exfil
                    else "queried")  # fmt: skip
            summary = (f"{ip_text(*client)} {what} {reg} with a tunnel's shape: score {score} "
                       f"({fired}) over {m['queries']} queries and {u} unique names.")  # fmt: skip
            evidence: dict[str, Any] = {
                "client": ip_text(*client),
                "registered_domain": reg,
                "score": score,
                "components": comps,
                **m,
                "example_names": examples,
                "servers": servers,
                "public_resolvers": resolvers,
                **caps,
            }
            out.append(Finding(
                detector=self.name, code=code, severity=sev, technique=T_EXFIL if exfil else T_DNS,
                first_ns=p.first_ns, last_ns=p.last_ns, summary=summary,
                key=(ip_text(*client), reg),
                sources=(ip_text(*client),), sources_total=1,
                destinations=tuple(servers), destinations_total=len(servers),
                evidence=evidence,
                thresholds={"score_medium": t.score_medium, "score_high": t.score_high,
                            "score_critical": t.score_critical, "exfil_bytes": t.exfil_bytes,
                            "min_queries": t.min_queries, "min_distinct_names": t.min_distinct_names},
                packets=tuple((f, n) for _, f, n in refs), packets_total=p.queries,
            ))  # fmt: skip
        return out

    def _rate_findings(self) -> list[Finding]:
        t: TunnelThresholds = self.t
        rules = (
            ("dns_query_rate", 0, t.rate_queries_per_min, "queries", T_DNS),
            ("dns_txt_null_rate", 1, t.rate_txt_null_per_min, "TXT and NULL queries", T_DNS),
            ("dns_bytes_out_rate", 2, t.rate_bytes_per_min, "bytes of query names", T_EXFIL),
        )
        per: dict[tuple[str, tuple[int, int]], list[tuple[int, list[Any]]]] = {}
        for (client, minute), r in self.rates.items():
            for code, idx, limit, _what, _tech in rules:
                if r[idx] > limit:
                    per.setdefault((code, client), []).append((minute, r))
        out: list[Finding] = []
        by_code = {code: (idx, limit, what, tech) for code, idx, limit, what, tech in rules}
        for (code, client), hits in sorted(per.items()):
            idx, limit, what, tech = by_code[code]
            hits.sort(key=lambda h: h[0])
            peak = max(h[1][idx] for h in hits)
            refs = sorted(h[1][3] for h in hits)
            src = ip_text(*client)
            out.append(Finding(
                detector=self.name, code=code, severity=Severity.LOW, technique=tech,
                first_ns=hits[0][0] * NS_PER_MIN, last_ns=(hits[-1][0] + 1) * NS_PER_MIN - 1,
                summary=(f"{src} sent up to {peak:,} {what} in one minute (over {limit:,}) "
                         f"in {len(hits)} minute(s)."),
                key=(src,),
                sources=(src,), sources_total=1,
                evidence={"peak_per_min": peak, "minutes_over": len(hits),
                          "per_minute": [[h[0] * 60, h[1][idx]] for h in hits[:20]],
                          "rate_buckets_dropped_queries": self.rates_dropped},
                thresholds={f"{code}_per_min": limit},
                packets=tuple((f, n) for _, f, n in refs[:MAX_EVIDENCE_PACKETS]),
                packets_total=sum(h[1][0] for h in hits),
            ))  # fmt: skip
        return out

    # -- self-test -----------------------------------------------------------------------------

    @classmethod
    def samples(cls) -> list[Sample]:
        return [
            Sample("dnscat2_like", "hex-encoded subdomains over TXT/MX/CNAME to one domain",
                   lambda: _sample_tunnel(hexed=True), frozenset({"dns_tunnel"})),
            Sample("iodine_like", "base32 subdomains over NULL, 600 queries, 40 kB of names",
                   lambda: _sample_tunnel(hexed=False), frozenset({"dns_tunnel", "dns_txt_null_rate"})),
            Sample("ordinary_browsing", "a client resolving ordinary, CDN, mDNS, SRV and DKIM names",
                   _sample_ordinary, forbid_at="low"),
        ]


# -- samples -------------------------------------------------------------------------------------

_MAC_C, _MAC_S = "02:00:00:00:00:01", "02:00:00:00:00:02"


def _dns_pair(t: float, client: str, server: str, sport: int, qid: int, name: str, qtype: int,
              rcode: int = 0) -> list[Any]:  # fmt: skip
    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    q: Any = Ether(src=_MAC_C, dst=_MAC_S) / IP(src=client, dst=server) / UDP(sport=sport, dport=53) / DNS(
        id=qid, rd=1, qd=DNSQR(qname=name, qtype=qtype))
    r: Any = Ether(src=_MAC_S, dst=_MAC_C) / IP(src=server, dst=client) / UDP(sport=53, dport=sport) / DNS(
        id=qid, qr=1, ra=1, rcode=rcode, qd=DNSQR(qname=name, qtype=qtype))
    q.time = t
    r.time = t + 0.002
    return [q, r]


def _sample_tunnel(hexed: bool) -> list[Any]:
    import random

    rng = random.Random(7 if hexed else 11)
    pkts: list[Any] = []
    t = 1_700_000_000.0
    if hexed:
        for i in range(40):
            label = "".join(rng.choice("0123456789abcdef") for _ in range(34))
            pkts += _dns_pair(t + i, "10.0.0.5", "10.0.0.53", 40000 + i, i, f"{label}.c2.example.com",
                              (QTYPE_TXT, QTYPE_MX, QTYPE_CNAME)[i % 3])  # fmt: skip
    else:
        for i in range(600):
            chunks = ".".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz012345") for _ in range(50))
                              for _ in range(2))  # fmt: skip
            pkts += _dns_pair(t + i * 0.05, "10.0.0.6", "10.0.0.53", 20000 + i, i, f"{chunks}.t.tun.example.net",
                              QTYPE_NULL)  # fmt: skip
    return pkts


def _sample_ordinary(seed: int = 3) -> list[Any]:
    import random

    rng = random.Random(seed)
    names = ["www.example.com", "mail.example.com", "static.example.org", "api.github.com",
             "e1234.dscb.akamaiedge.net", "d1a2b3c4d5e6f7.cloudfront.net", "printer._ipp._tcp.local",
             "_ldap._tcp.dc._msdcs.corp.example", "s1._domainkey.example.com", "_dmarc.example.com",
             "4.3.2.1.in-addr.arpa", "wpad.corp.example", "clients4.google.com", "update.mozilla.org"]  # fmt: skip
    pkts: list[Any] = []
    t = 1_700_000_000.0
    for i in range(300):
        name = rng.choice(names)
        qtype = QTYPE_TXT if "_domainkey" in name or "_dmarc" in name else 12 if "arpa" in name else QTYPE_A
        pkts += _dns_pair(t + i * 0.5, "10.0.0.7", "8.8.8.8", 30000 + i, i, name, qtype)
    return pkts


DETECTOR = DnsTunnelDetector
