"""The capture-quality verdict: can the analyst trust what this capture shows?

Each rule yields a reason with a stable code, a level and a sentence; the
verdict is the worst level found: ``good`` < ``degraded`` < ``poor``.

Rules and their thresholds:
- ``snaplen_hides_headers`` (poor): snaplen cut packets inside their network
  or transport headers, so addresses/ports/flags of those packets are unknown.
- ``snaplen_truncated`` (degraded): packets were cut by snaplen (caplen <
  wire length); the reason names the layers that were hidden (DNS messages,
  TLS records, HTTP messages, other payload) — Wireshark flags each such
  packet "Packet size limited during capture"; Zeek silently loses them
  (zeek/zeek#2517).
- ``damaged_file`` (degraded): a file ended early (cut record, bad block).
- ``duplicates`` (degraded above :data:`DUP_DEGRADED_PCT` percent): SPAN
  ports and multi-tap setups copy frames; counts, rates and TCP analysis are
  inflated.
- ``out_of_order_timestamps`` (degraded above :data:`OOO_DEGRADED_PCT`
  percent, otherwise info): merged captures or multi-queue NICs; rates and
  timing-based detections are unreliable.
- ``unsupported_link_type`` (degraded): frames of a link type we do not decode.
- ``capture_drops`` (degraded): the capturing host's interface/OS dropped
  packets (pcapng Interface Statistics Blocks).
- ``checksum_offload`` (info): sampled TCP/UDP or IPv4 header checksums are
  wrong for one or two senders only, on nearly all their packets: the
  capture was taken on that host and its NIC fills checksums in later.
  Harmless, but tools that validate checksums (Zeek without ``-C``) drop
  those packets.  See :mod:`netsift.checksums`.
- ``bad_checksums`` (degraded above ``CORRUPTION_DEGRADED_PCT`` percent of
  the sample, otherwise info): wrong checksums spread over senders —
  corrupted frames or crafted packets.
"""

from __future__ import annotations

from typing import Any

from .checksums import CORRUPTION_DEGRADED_PCT
from .columns import LINK_TYPES, link_type_name
from .stats import TrafficStats

#: Duplicate share above which counts are considered inflated (percent of frames).
DUP_DEGRADED_PCT = 1.0
#: Share of out-of-order timestamps that makes timing unreliable (percent).
OOO_DEGRADED_PCT = 0.1

_LEVELS = ("good", "info", "degraded", "poor")

_HIDDEN_TEXT = {
    "network_headers": "network headers",
    "transport_headers": "transport headers",
    "dns_messages": "DNS messages (names unreadable)",
    "tls_records": "TLS records (handshakes, SNI and fingerprints unreadable)",
    "http_messages": "HTTP messages",
    "other_payload": "other payload",
}


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def verdict(stats: TrafficStats, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    reasons: list[dict[str, Any]] = []
    n = stats.packets

    def add(code: str, level: str, message: str, **evidence: Any) -> None:
        reasons.append({"code": code, "level": level, "message": message, "evidence": evidence})

    hidden = dict(sorted(stats.hidden.items(), key=lambda kv: (-kv[1], kv[0])))
    if stats.snaplen_truncated:
        header_hidden = hidden.get("network_headers", 0) + hidden.get("transport_headers", 0)
        snaplens = sorted({itf["snaplen"] for i in inputs for itf in i["interfaces"]})
        layers = ", ".join(f"{_HIDDEN_TEXT.get(k, k)}: {v}" for k, v in hidden.items())
        if header_hidden:
            add("snaplen_hides_headers", "poor",
                f"{header_hidden} packets were cut inside their network or transport headers "
                f"(snaplen {snaplens}); their addresses, ports or flags are unknown.",
                packets=header_hidden, snaplens=snaplens)
        add("snaplen_truncated", "degraded",
            f"{stats.snaplen_truncated} packets ({_pct(stats.snaplen_truncated, n)}%) were cut by "
            f"snaplen, hiding {stats.truncated_bytes:,} bytes" + (f" — {layers}." if layers else "."),
            packets=stats.snaplen_truncated, percent=_pct(stats.snaplen_truncated, n),
            bytes_hidden=stats.truncated_bytes, hidden_layers=hidden, snaplens=snaplens)
    damaged = [i for i in inputs if i["status"] != "ok"]
    if damaged:
        add("damaged_file", "degraded",
            f"{len(damaged)} file(s) ended early because of damage; results cover the readable part.",
            files=[i["path"] for i in damaged])
    if stats.duplicates:
        pct = _pct(stats.duplicates, n)
        add("duplicates", "degraded" if pct > DUP_DEGRADED_PCT else "info",
            f"{stats.duplicates} frames ({pct}%) repeat one of the 4 frames before them byte for "
            "byte (SPAN or tap duplicates inflate counts).",
            packets=stats.duplicates, percent=pct, threshold_percent=DUP_DEGRADED_PCT,
            example_frames=stats.duplicate_examples)
    if stats.out_of_order:
        pct = _pct(stats.out_of_order, n)
        add("out_of_order_timestamps", "degraded" if pct > OOO_DEGRADED_PCT else "info",
            f"{stats.out_of_order} packets ({pct}%) have a timestamp earlier than the packet before "
            f"them (largest step back {stats.max_backwards_ns / 1e9:.6f} s).",
            packets=stats.out_of_order, percent=pct, threshold_percent=OOO_DEGRADED_PCT,
            max_backwards_s=stats.max_backwards_ns / 1e9)
    unsupported = {lt: k for lt, k in sorted(stats.link_types.items()) if lt not in LINK_TYPES}
    if unsupported:
        names = ", ".join(f"{link_type_name(lt)} ({k})" for lt, k in unsupported.items())
        add("unsupported_link_type", "degraded",
            f"{sum(unsupported.values())} frames use link types netsift counts but does not decode: "
            f"{names}.", packets=sum(unsupported.values()))
    drops = 0
    for i in inputs:
        for itf in i["interfaces"]:
            drops += (itf.get("dropped_by_interface") or 0) + (itf.get("dropped_by_os") or 0)
    if drops:
        add("capture_drops", "degraded",
            f"the capturing host reported {drops} dropped packets; the capture is incomplete.",
            packets=drops)
    sums = stats.checksums.summary()
    if sums["offload_suspected"]:
        senders = ", ".join(sums["offloading_senders"])
        add("checksum_offload", "info",
            f"packets sent by {senders} carry wrong checksums (checksum offload: the capture was "
            "taken on that host); tools that validate checksums would drop them.",
            senders=sums["offloading_senders"], sampled=sums["sampled"],
            bad_ip_header=sums["bad_ip_header"], bad_transport=sums["bad_transport"])
    elif sums["bad_ip_header"] or sums["bad_transport"]:
        wrong = sums["bad_ip_header"] + sums["bad_transport"]
        pct = _pct(wrong, sums["sampled"])
        add("bad_checksums", "degraded" if pct > CORRUPTION_DEGRADED_PCT else "info",
            f"{wrong} of {sums['sampled']} sampled packets ({pct}%) have wrong checksums from "
            f"several senders: corrupted frames or crafted packets.",
            sampled=sums["sampled"], percent=pct, threshold_percent=CORRUPTION_DEGRADED_PCT,
            bad_by_sender=sums["bad_by_sender"])
    level = max((r["level"] for r in reasons), key=_LEVELS.index, default="good")
    if level == "info":
        level = "good"
    return {
        "verdict": level,
        "reasons": reasons,
        "snaplen_truncated": stats.snaplen_truncated,
        "snaplen_truncated_pct": _pct(stats.snaplen_truncated, n),
        "hidden_layers": hidden,
        "duplicates": stats.duplicates,
        "out_of_order": stats.out_of_order,
        "caplen_exceeds_wirelen": stats.caplen_exceeds_wirelen,
        "checksums": sums,
    }


def apply_checksum_not_ready(quality: dict[str, Any], not_ready: int) -> dict[str, Any]:
    """Refine a verdict with what a live capture knows: frames the kernel marked checksum-not-ready.

    Linux marks a captured frame ``TP_STATUS_CSUMNOTREADY`` when its checksum is
    left to the NIC or to the receiving stack (checksum offload; every frame that
    crosses a veth pair).  A file cannot say so, which is why :func:`verdict`
    reads wrong checksums from several senders as corruption; ``netsift live``
    counts the marks and, when there are any, turns ``bad_checksums`` into the
    ``checksum_offload`` reason it is.  Returns ``quality`` changed in place.
    """
    if not_ready <= 0:
        return quality
    reasons = quality["reasons"]
    for i, r in enumerate(reasons):
        if r["code"] in ("bad_checksums", "checksum_offload"):
            ev = dict(r.get("evidence", {}))
            ev["checksum_not_ready"] = not_ready
            reasons[i] = {
                "code": "checksum_offload", "level": "info",
                "message": (f"the kernel marked {not_ready} captured packets checksum-not-ready (checksum "
                            "offload on the capturing host or a veth pair): their checksums are filled in "
                            "after capture, so wrong checksums here are not corruption; tools that validate "
                            "checksums would drop them."),
                "evidence": ev,
            }
    level = max((r["level"] for r in reasons), key=_LEVELS.index, default="good")
    quality["verdict"] = "good" if level == "info" else level
    return quality
