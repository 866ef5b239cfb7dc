"""Capture-quality advisory: when the capture itself makes detectors blind, say so as a finding.

The report's ``quality`` verdict (:mod:`netsift.quality`) says whether a
capture can be trusted; this detector turns the defects that blind the
*detectors* into findings that name them, so an analyst reading "no SYN flood"
or "no DNS tunnel" knows when that absence means nothing.  LANDSCAPE.md §4
item 2 (the capture-quality preflight: snaplen truncation, duplicates, gaps)
and §3 (zeek/zeek#2517, arkime/arkime#455: tools silently mis-analyse
truncated captures).  The seed recipe's rule: "capture full frames before
scoring".

Codes (technique: none, these are about the capture, not an attack):

- ``capture_truncated``: snaplen cut packets.  Hidden network/transport
  headers blind every detector; hidden DNS messages blind ``dns_tunnel`` and
  ``encrypted_dns`` (names, sizes, plaintext counts); hidden TLS records blind
  ``encrypted_dns`` (SNI, ALPN).  Medium when such layers are hidden in at
  least ``truncated_medium_pct`` percent of packets, low when in fewer,
  info when only other payload (HTTP bodies, ...) was cut.
- ``capture_one_sided``: TCP flows where only one direction was captured
  (asymmetric routing, a one-way tap or SPAN session): ``syn_flood``
  completion ratios and ``scan`` port states come from the replies that are
  missing.  Info/low/medium by the share of such flows.
- ``capture_gaps``: TCP flows whose peer acknowledged bytes the capture never
  saw (Zeek's ``G`` history letter, the base of its capture-loss script):
  DNS-over-TCP and TLS hellos in the holes are lost to ``dns_tunnel`` and
  ``encrypted_dns``.  Info/low/medium by the share of flows.
- ``capture_duplicates``: SPAN/tap double copies inflate the counts and rates
  ``syn_flood``, ``scan`` and ``dns_tunnel`` compare with thresholds.
- ``capture_bad_checksums``: frames with wrong checksums from several senders
  (not checksum offload): the receivers dropped them, so counts include
  packets that never reached their target (``syn_flood``, ``scan``,
  ``fragmentation`` insertion).  Info/low, never more: crafted traffic does this.
- ``capture_drops``: the capturing host reported dropped packets (pcapng
  interface statistics): every count is a lower bound.  Low.

State: counters and the evidence packets of the first 50 flows per code
(bounded).  Findings are about the whole capture (one per code).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..checksums import CORRUPTION_DEGRADED_PCT
from ..quality import DUP_DEGRADED_PCT
from .base import Detector, FinishContext, Sample
from .finding import Finding, PacketRefs, Severity

if TYPE_CHECKING:
    from ..flows import FlowRecord

__all__ = ["DETECTOR", "CaptureQuality"]

_TCP: Final = 6

#: Which detectors each defect blinds, and why (stable text, in the findings' evidence).
AFFECTED: Final[dict[str, dict[str, str]]] = {
    "headers": {
        "syn_flood": "SYN/SYN-ACK flags and ports of cut packets are unknown",
        "scan": "ports and reply flags of cut packets are unknown",
        "fragmentation": "fragment offsets and lengths of cut packets are unknown",
        "dns_tunnel": "DNS messages of cut packets are unreadable",
        "encrypted_dns": "ports and TLS hellos of cut packets are unreadable",
    },
    "dns": {
        "dns_tunnel": "query names, types and sizes of cut DNS messages are unreadable",
        "encrypted_dns": "plaintext DNS lookups are undercounted, hidden shares overstated",
    },
    "tls": {
        "encrypted_dns": "SNI and ALPN of cut TLS hellos are unreadable (DoH by name is missed)",
    },
    "one_sided": {
        "syn_flood": "SYN-ACKs and completions of the missing direction are absent",
        "scan": "open/closed port states come from the replies that are missing",
        "dns_tunnel": "responses (NXDOMAIN ratios, bytes in) of the missing direction are absent",
    },
    "gaps": {
        "dns_tunnel": "DNS-over-TCP messages in the holes are lost",
        "encrypted_dns": "TLS hellos in the holes are lost",
    },
    "duplicates": {
        "syn_flood": "SYN counts and rates are inflated",
        "scan": "probe counts are inflated",
        "dns_tunnel": "query counts and rates are inflated",
    },
    "checksums": {
        "syn_flood": "counts include packets their receivers discarded",
        "scan": "probes with bad checksums never reached their target",
        "fragmentation": "fragments with bad checksums may be insertion (evasion) attempts",
    },
    "drops": {
        "syn_flood": "counts are lower bounds",
        "scan": "probes and replies may be missing",
        "dns_tunnel": "queries may be missing",
    },
}


@dataclass(frozen=True)
class CaptureQualityThresholds:
    #: Percent of packets whose headers, DNS messages or TLS records snaplen cut that makes
    #: ``capture_truncated`` medium (below it: low).  netsift's own choice: quality.py marks
    #: any truncation "degraded"; at one packet in ten the detectors' ratios move.  Source of
    #: the concern: LANDSCAPE.md §3/§4 item 2 (zeek/zeek#2517, arkime/arkime#455).
    truncated_medium_pct: float = 10.0
    #: Least one-sided TCP flows for ``capture_one_sided`` (netsift's choice: a flow caught
    #: mid-way at the capture's start or end is normal).
    min_one_sided_flows: int = 3
    #: Share of TCP flows (with payload or acknowledgements) seen one-sided for a finding
    #: (info).  netsift's own choice, LANDSCAPE.md §4 item 2 ("one-sided flows").
    one_sided_info_share: float = 0.05
    #: ... for low (netsift's choice: one flow in five blind to replies).
    one_sided_low_share: float = 0.2
    #: ... for medium: most flows lack a direction (netsift's choice).
    one_sided_medium_share: float = 0.5
    #: Least TCP flows with a content gap for ``capture_gaps`` (netsift's choice).
    min_gap_flows: int = 1
    #: Share of two-sided TCP flows with a content gap that makes ``capture_gaps`` low.
    #: Zeek ``policy/misc/capture-loss.zeek`` ``CaptureLoss::too_much_loss`` = 0.1 (10 %
    #: of ACKs acknowledging unseen bytes raises its Too_Much_Loss notice); here per flow.
    gap_low_share: float = 0.1
    #: ... for medium (netsift's choice: three times Zeek's notice level).
    gap_medium_share: float = 0.3
    #: Least one-sided or gapped TCP flows for a medium finding (netsift's choice: in a
    #: capture of a handful of flows one defective flow is a share of 100 % but blinds little;
    #: the zeek test traces of single gapped flows are the example).
    medium_min_flows: int = 10
    #: Percent of duplicate frames that makes ``capture_duplicates`` low (below it: info).
    #: netsift.quality.DUP_DEGRADED_PCT (1 %), where the quality verdict turns "degraded".
    duplicates_low_pct: float = DUP_DEGRADED_PCT
    #: Percent of duplicate frames that makes it medium (netsift's choice: one frame in ten
    #: repeated inflates rate thresholds by 10 % and more).
    duplicates_medium_pct: float = 10.0
    #: Least duplicate frames for a medium finding (netsift's choice, as ``medium_min_flows``).
    duplicates_medium_min_frames: int = 50
    #: Percent of sampled packets with wrong checksums (several senders) that makes
    #: ``capture_bad_checksums`` low: netsift.checksums.CORRUPTION_DEGRADED_PCT.
    bad_checksums_low_pct: float = CORRUPTION_DEGRADED_PCT

    def __post_init__(self) -> None:
        for name in ("truncated_medium_pct", "duplicates_low_pct", "duplicates_medium_pct",
                     "bad_checksums_low_pct"):  # fmt: skip
            v = getattr(self, name)
            if not 0.0 <= v <= 100.0:  # also rejects NaN
                raise ValueError(f"{name} must be a percentage (0-100), got {v!r}")
        for name in ("one_sided_info_share", "one_sided_low_share", "one_sided_medium_share",
                     "gap_low_share", "gap_medium_share"):  # fmt: skip
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, got {v!r}")
        for name in ("min_one_sided_flows", "min_gap_flows", "medium_min_flows", "duplicates_medium_min_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if not self.one_sided_info_share <= self.one_sided_low_share <= self.one_sided_medium_share:
            raise ValueError("one_sided_low_share must lie between one_sided_info_share and one_sided_medium_share")
        if self.gap_low_share > self.gap_medium_share:
            raise ValueError("gap_low_share must not exceed gap_medium_share")
        if self.duplicates_low_pct > self.duplicates_medium_pct:
            raise ValueError("duplicates_low_pct must not exceed duplicates_medium_pct")


class CaptureQuality(Detector):
    """See the module doc."""

    name = "capture_quality"
    title = "Capture defects (snaplen, one-sided flows, gaps, duplicates) that blind the other detectors"
    Thresholds = CaptureQualityThresholds

    def __init__(self, thresholds: CaptureQualityThresholds | None = None) -> None:
        super().__init__(thresholds)
        #: TCP flows with payload or acknowledgements (the denominator of the shares)
        self.tcp_flows = 0
        self.two_sided = 0
        self.one_sided = 0
        #: one-sided flows by the direction that was seen
        self.only_orig = 0
        self.only_resp = 0
        self.gap_flows = 0
        self.one_sided_refs = PacketRefs()
        self.gap_refs = PacketRefs()
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def flows(self, records: list[FlowRecord]) -> None:
        for r in records:
            if r[0] != _TCP:
                continue
            op, rp, h = r.orig_pkts, r.resp_pkts, r.history
            if op and rp:
                if "G" in h or "g" in h:
                    self.gap_flows += 1
                    self.gap_refs.add(r.first_file, r.first_frame)
                    self._span(r)
                if r.orig_payload_bytes or r.resp_payload_bytes or "A" in h or "a" in h:
                    self.tcp_flows += 1
                    self.two_sided += 1
            elif op:
                # the originator only: data or ACKs (not a lone SYN: scans and floods look so)
                if r.orig_payload_bytes or "A" in h:
                    self.tcp_flows += 1
                    self.one_sided += 1
                    self.only_orig += 1
                    self.one_sided_refs.add(r.first_file, r.first_frame)
                    self._span(r)
            elif r.resp_payload_bytes or "a" in h:
                self.tcp_flows += 1
                self.one_sided += 1
                self.only_resp += 1
                self.one_sided_refs.add(r.first_file, r.first_frame)
                self._span(r)

    def _span(self, r: FlowRecord) -> None:
        if self.first_ns is None or r.start_ns < self.first_ns:
            self.first_ns = r.start_ns
        if self.last_ns is None or r.end_ns > self.last_ns:
            self.last_ns = r.end_ns

    def merge(self, other: Detector) -> None:
        if not isinstance(other, CaptureQuality):
            raise TypeError(f"cannot merge {type(other).__name__} into CaptureQuality")
        for name in ("tcp_flows", "two_sided", "one_sided", "only_orig", "only_resp", "gap_flows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.one_sided_refs.merge(other.one_sided_refs)
        self.gap_refs.merge(other.gap_refs)
        for r in (other.first_ns, other.last_ns):
            if r is not None:
                self.first_ns = r if self.first_ns is None else min(self.first_ns, r)
                self.last_ns = r if self.last_ns is None else max(self.last_ns, r)

    # -- findings -------------------------------------------------------------------------
    def finish(self, ctx: FinishContext) -> list[Finding]:
        t: CaptureQualityThresholds = self.t
        report = ctx.report
        cap = report.get("capture", {})
        quality = report.get("quality", {})
        packets = int(cap.get("packets") or 0)
        first = _ns(cap.get("first_ts"))
        last = _ns(cap.get("last_ts"))
        where = tuple(os.path.basename(p) for p in ctx.inputs)
        out: list[Finding] = []

        def add(code: str, sev: Severity, summary: str, affected: dict[str, str], evidence: dict[str, Any],
                thresholds: dict[str, Any], refs: PacketRefs | None = None,
                span: tuple[int, int] | None = None) -> None:  # fmt: skip
            evidence = {**evidence, "detectors_affected": sorted(affected),
                        "why": dict(sorted(affected.items()))}  # fmt: skip
            f0, f1 = span if span is not None else (first, last)
            blinds = f" Blinds: {', '.join(sorted(affected))}." if affected else " No detector is blinded."
            out.append(Finding(
                detector=self.name, code=code, severity=sev, technique=None, first_ns=f0, last_ns=f1,
                summary=summary + blinds, key=(*where,),
                evidence=evidence, thresholds=thresholds,
                packets=tuple(refs.sorted()) if refs is not None else (),
                packets_total=refs.total if refs is not None else 0,
            ))  # fmt: skip

        # snaplen truncation
        truncated = int(quality.get("snaplen_truncated") or 0)
        if truncated:
            hidden: dict[str, int] = dict(quality.get("hidden_layers") or {})
            headers = hidden.get("network_headers", 0) + hidden.get("transport_headers", 0)
            dns = hidden.get("dns_messages", 0)
            tls = hidden.get("tls_records", 0)
            blinding = headers + dns + tls
            pct = _pct(blinding, packets)
            if blinding and pct >= t.truncated_medium_pct:
                sev = Severity.MEDIUM
            elif blinding:
                sev = Severity.LOW
            else:
                sev = Severity.INFO
            blind = "headers" if headers else "dns" if dns else "tls" if tls else "dns"
            affected = AFFECTED[blind]
            if dns and tls and not headers:
                affected = {**AFFECTED["dns"], "encrypted_dns": AFFECTED["dns"]["encrypted_dns"] + "; "
                            + AFFECTED["tls"]["encrypted_dns"]}  # fmt: skip
            what = []
            if headers:
                what.append(f"{headers} in their headers")
            if dns:
                what.append(f"{dns} inside DNS messages")
            if tls:
                what.append(f"{tls} inside TLS records")
            if not what:
                what.append("only in payload no detector reads")
            snaplens = sorted(cap.get("snaplens") or [])
            summary = (f"Snaplen {snaplens} cut {truncated} of {packets} packets "
                       f"({_pct(truncated, packets)}%): {', '.join(what)}; capture full frames before scoring.")
            evidence = {"packets_truncated": truncated, "percent": _pct(truncated, packets),
                        "blinding_packets": blinding, "blinding_percent": pct, "hidden_layers": hidden,
                        "snaplens": snaplens}  # fmt: skip
            if not blinding:
                affected = {}
            add("capture_truncated", sev, summary, affected, evidence,
                {"truncated_medium_pct": t.truncated_medium_pct})

        # one-sided TCP
        if self.one_sided >= t.min_one_sided_flows and self.tcp_flows:
            share = self.one_sided / self.tcp_flows
            if share >= t.one_sided_info_share:
                sev = (Severity.MEDIUM if share >= t.one_sided_medium_share and self.one_sided >= t.medium_min_flows
                       else Severity.LOW if share >= t.one_sided_low_share else Severity.INFO)  # fmt: skip
                summary = (f"{self.one_sided} of {self.tcp_flows} TCP flows ({share:.0%}) were captured in one "
                           f"direction only ({self.only_orig} originator-only, {self.only_resp} responder-only): "
                           "asymmetric routing or a one-way tap.")
                add("capture_one_sided", sev, summary, AFFECTED["one_sided"],
                    {"one_sided_flows": self.one_sided, "tcp_flows": self.tcp_flows, "share": round(share, 3),
                     "originator_only": self.only_orig, "responder_only": self.only_resp},
                    {"min_one_sided_flows": t.min_one_sided_flows, "one_sided_info_share": t.one_sided_info_share,
                     "one_sided_low_share": t.one_sided_low_share,
                     "one_sided_medium_share": t.one_sided_medium_share, "medium_min_flows": t.medium_min_flows},
                    self.one_sided_refs, self._flow_span(first, last))  # fmt: skip

        # content gaps
        if self.gap_flows >= t.min_gap_flows and self.two_sided:
            share = self.gap_flows / self.two_sided
            sev = (Severity.MEDIUM if share >= t.gap_medium_share and self.gap_flows >= t.medium_min_flows
                   else Severity.LOW if share >= t.gap_low_share else Severity.INFO)  # fmt: skip
            tcp = (report.get("flows") or {}).get("tcp_analysis") or {}
            summary = (f"{self.gap_flows} of {self.two_sided} two-way TCP flows ({share:.0%}) acknowledge bytes "
                       "the capture never saw (capture loss).")
            add("capture_gaps", sev, summary, AFFECTED["gaps"],
                {"gap_flows": self.gap_flows, "two_sided_tcp_flows": self.two_sided, "share": round(share, 3),
                 "lost_segments": tcp.get("lost_segments", 0), "acked_unseen": tcp.get("acked_unseen", 0)},
                {"min_gap_flows": t.min_gap_flows, "gap_low_share": t.gap_low_share,
                 "gap_medium_share": t.gap_medium_share, "medium_min_flows": t.medium_min_flows},
                self.gap_refs, self._flow_span(first, last))  # fmt: skip

        # duplicates
        dups = int(quality.get("duplicates") or 0)
        if dups:
            pct = _pct(dups, packets)
            sev = (Severity.MEDIUM if pct > t.duplicates_medium_pct and dups >= t.duplicates_medium_min_frames
                   else Severity.LOW if pct > t.duplicates_low_pct else Severity.INFO)  # fmt: skip
            examples: list[int] = next((r["evidence"].get("example_frames", []) for r in quality.get("reasons", [])
                             if r.get("code") == "duplicates"), [])  # fmt: skip
            add("capture_duplicates", sev,
                f"{dups} of {packets} frames ({pct}%) are byte-for-byte copies of a frame just before them "
                "(SPAN or tap duplicates).", AFFECTED["duplicates"],
                {"duplicate_frames": dups, "percent": pct, "example_frames": list(examples)},
                {"duplicates_low_pct": t.duplicates_low_pct, "duplicates_medium_pct": t.duplicates_medium_pct,
                 "duplicates_medium_min_frames": t.duplicates_medium_min_frames})

        # checksums (offload is harmless: netsift does not drop those packets)
        sums = quality.get("checksums") or {}
        wrong = int(sums.get("bad_ip_header") or 0) + int(sums.get("bad_transport") or 0)
        if wrong and not sums.get("offload_suspected"):
            sampled = int(sums.get("sampled") or 0)
            pct = _pct(wrong, sampled)
            sev = Severity.LOW if pct > t.bad_checksums_low_pct else Severity.INFO
            add("capture_bad_checksums", sev,
                f"{wrong} of {sampled} sampled packets ({pct}%) carry wrong checksums from several senders "
                "(corrupted or crafted).", AFFECTED["checksums"],
                {"bad_checksums": wrong, "sampled": sampled, "percent": pct,
                 "bad_by_sender": sums.get("bad_by_sender", [])[:20]},
                {"bad_checksums_low_pct": t.bad_checksums_low_pct})  # fmt: skip

        # drops reported by the capturing host
        for r in quality.get("reasons", []):
            if r.get("code") == "capture_drops":
                dropped = int(r.get("evidence", {}).get("packets") or 0)
                add("capture_drops", Severity.LOW,
                    f"The capturing host reported {dropped} dropped packets; every count is a lower bound.",
                    AFFECTED["drops"], {"dropped_packets": dropped, "packets": packets}, {})
        return out

    def _flow_span(self, first: int, last: int) -> tuple[int, int]:
        if self.first_ns is None or self.last_ns is None:
            return first, last
        return self.first_ns, self.last_ns

    # -- selftest -------------------------------------------------------------------------
    @classmethod
    def samples(cls) -> list[Sample]:
        return [
            Sample("one_way_tap", "40 HTTP sessions of which only the client's direction was captured",
                   lambda: _sample_packets(one_sided=True), frozenset({"capture_one_sided"})),
            Sample("full_capture", "40 complete HTTP sessions, both directions, full frames",
                   lambda: _sample_packets(one_sided=False), forbid_at="low"),
            Sample("snaplen_64", "DNS lookups captured with a 64-byte snaplen (names cut off)",
                   _sample_truncated_dns, frozenset({"capture_truncated"})),
        ]  # fmt: skip


DETECTOR = CaptureQuality


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _ns(ts: Any) -> int:
    return round(float(ts) * 1e9) if isinstance(ts, (int, float)) else 0


def http_session(client: str, server: str, sport: int, t0: float, one_sided: bool) -> list[Any]:
    """A small HTTP exchange over TCP (both directions unless ``one_sided``)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    cm, sm = "02:00:00:00:01:01", "02:00:00:00:01:02"
    req = b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"
    body = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    c, s = 100, 9000

    def c2s(flags: str, seq: int, ack: int, data: bytes = b"") -> Any:
        p = Ether(src=cm, dst=sm) / IP(src=client, dst=server) / TCP(sport=sport, dport=80, flags=flags,
                                                                      seq=seq, ack=ack)  # fmt: skip
        return p / Raw(data) if data else p

    def s2c(flags: str, seq: int, ack: int, data: bytes = b"") -> Any:
        p = Ether(src=sm, dst=cm) / IP(src=server, dst=client) / TCP(sport=80, dport=sport, flags=flags,
                                                                      seq=seq, ack=ack)  # fmt: skip
        return p / Raw(data) if data else p

    pkts = [
        c2s("S", c, 0), s2c("SA", s, c + 1), c2s("A", c + 1, s + 1), c2s("PA", c + 1, s + 1, req),
        s2c("PA", s + 1, c + 1 + len(req), body), c2s("A", c + 1 + len(req), s + 1 + len(body)),
        c2s("FA", c + 1 + len(req), s + 1 + len(body)), s2c("FA", s + 1 + len(body), c + 2 + len(req)),
        c2s("A", c + 2 + len(req), s + 2 + len(body)),
    ]  # fmt: skip
    for i, p in enumerate(pkts):
        p.time = t0 + i * 0.005
    if one_sided:
        pkts = [p for p in pkts if p["IP"].src == client]
    return pkts


def _sample_truncated_dns() -> list[Any]:
    """50 DNS queries and answers as a capture with ``snaplen 64`` records them: each
    frame cut to 64 bytes, its wire length kept (wrpcap writes ``wirelen``)."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    cm, sm = "02:00:00:00:02:01", "02:00:00:00:02:02"
    out: list[Any] = []
    for i in range(50):
        name = f"host{i}.branch-office.example.org"
        q = Ether(src=cm, dst=sm) / IP(src="10.30.0.5", dst="10.30.0.53") / UDP(sport=40000 + i, dport=53) / DNS(
            id=i, rd=1, qd=DNSQR(qname=name))
        r = Ether(src=sm, dst=cm) / IP(src="10.30.0.53", dst="10.30.0.5") / UDP(sport=53, dport=40000 + i) / DNS(
            id=i, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, rdata=f"10.30.1.{i}"))
        for k, p in enumerate((q, r)):
            raw = bytes(p)
            cut = Ether(raw[:64])
            cut.time = 1_700_000_000.0 + i + k * 0.002
            cut.wirelen = len(raw)
            out.append(cut)
    return out


def _sample_packets(one_sided: bool) -> list[Any]:
    import random

    rng = random.Random(11)
    pkts: list[Any] = []
    for i in range(40):
        client = f"10.20.0.{rng.randrange(2, 250)}"
        pkts += http_session(client, "10.20.1.80", 30000 + i, 1_700_000_000.0 + i, one_sided)
    return sorted(pkts, key=lambda p: float(p.time))
