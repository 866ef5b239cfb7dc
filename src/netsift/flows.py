"""Bidirectional flows: Zeek-compatible TCP state and history, Wireshark TCP analysis, bounded memory.

:class:`FlowTable` is fed decoded batches (and reassembled IP datagrams) and
emits one :class:`FlowRecord` per finished flow.  This module is the
specification; ``netsift._flows`` (C, built at install time) runs the same
per-packet logic when it is importable and ``tests/test_flows_c.py`` holds the
two together.

Keys
    TCP and UDP flows are keyed on (protocol, both addresses, both ports);
    ICMP/ICMPv6 on the addresses and Zeek's type "ports" (a request type and
    its reply type pair up; one-way types such as unreachable use
    (type, code)), plus the identifier of echo/timestamp/information/mask
    messages so that two pings between the same hosts are two flows; other IP
    protocols on the address pair.  The outer VLAN id is part of the key by
    default (Suricata's ``vlan.use-for-tracking``).  Non-IP frames, IP
    fragments (they go through :mod:`netsift.defrag`; the reassembled datagram
    is fed instead) and transport headers the decoder could not read are not
    flows; they are counted in :attr:`FlowTable.skipped`.

Direction (Zeek ``WantConnection``)
    The originator is the sender of the first packet, except: a first TCP
    packet without SYN or with SYN-ACK, or a first UDP packet, is flipped
    when its source port is a likely server port and its destination port
    is not (:data:`SERVER_PORTS`; Zeek fills ``likely_server_ports`` from its
    analyzers, bare mode has none); a first TCP packet without SYN whose two
    ports are both likely server ports is flipped when its source port is
    the lower one; a first ICMP reply (echo reply, ...)
    makes its receiver the originator.  A flipped flow's history starts
    with ``^``.

TCP state (zeek ``TCPSessionAdapter``)
    Each endpoint has Zeek's state (INACTIVE, SYN_SENT, SYN_ACK_SENT,
    PARTIAL, ESTABLISHED, CLOSED, RESET) updated by the same transitions;
    ``conn_state`` is derived from the two states, the payload sizes and the
    history exactly as ``base/protocols/conn/main.zeek`` does.  History
    letters: ``S h A D F R`` (upper case originator) recorded once, ``S H F
    R`` again only when the sequence number differs from that endpoint's
    previous packet of the same kind (so a retransmitted SYN adds nothing),
    ``Q`` (SYN with FIN or RST), ``I`` (FIN with RST), and the logarithmic
    ``T`` (retransmitted payload), ``W`` (zero window) and ``G`` (an ACK for
    bytes never seen: content gap) on the 1st, 10th, 100th, ...  occurrence.
    ``C`` (bad checksum) is not produced: checksums are only sampled.
    ``*_bytes`` are Zeek's sizes taken from the sequence space; the payload
    bytes actually seen (retransmissions included) are ``*_payload_bytes``.

TCP analysis (Wireshark ``tcp_analyze_sequence_number``, per direction)
    zero-window probe, zero window, previous segment not captured,
    keep-alive, duplicate ACK (not the ACK answering a keep-alive or a
    zero-window probe), ACKed unseen segment, and for a segment below the
    next expected sequence number: fast retransmission (the peer sent 2 or
    more duplicate ACKs for this sequence number within 20 ms),
    out-of-order (within the connection's initial RTT, 3 ms until the
    handshake gives one, of the last advance and not ending at the next
    expected number), spurious retransmission (already ACKed) or
    retransmission.  See ``docs/flows.md``.

Records
    Finished flows leave the engine as plain tuples (:data:`RAW_FIELDS`;
    absent ids and all-zero TCP counters are None) and become
    :class:`FlowRecord` named tuples only where needed (exports, top flows);
    :func:`summary_key` packs what ``conn_state`` depends on so that counting
    states needs no record at all.

Expiry (Zeek's timers, checked when a packet arrives and by a sweep)
    idle timeout (TCP 300 s, UDP/ICMP/other 60 s); a TCP attempt with no
    answer 5 s after the first SYN (``tcp_attempt_delay``); a closed TCP
    connection 5 s after its last activity (``tcp_close_delay``; a
    half-closed or reset one after ``tcp_connection_linger``); port reuse
    (Zeek ``IsReuse``: a SYN, or a SYN-ACK while the originator is inactive,
    after either side closed or reset, or whose sequence number is not the
    originator's initial one); an optional active timeout; the
    live-flow cap (least recently active evicted first, counted); end of
    capture.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .capture import RecordBatch
from .columns import IP_PROTO_NAMES, PacketColumns, ip_text
from .community_id import PORT_PROTOCOLS, community_id_from_halves

# --- configuration ----------------------------------------------------------------

#: Ports Zeek's base scripts register for their analyzers (``likely_server_ports``);
#: used only to pick the originator of a flow whose first packet is not a SYN.
SERVER_PORTS: frozenset[int] = frozenset(
    {
        21, 22, 23, 25, 53, 67, 69, 80, 81, 88, 110, 111, 123, 135, 137, 138, 139, 143,
        161, 162, 179, 389, 443, 445, 465, 500, 502, 514, 547, 563, 585, 587, 614, 636, 853,
        989, 990, 992, 993, 995, 1080, 1194, 1433, 1521, 1723, 1812, 1813, 1883, 2049, 2123,
        2152, 3128, 3306, 3389, 3478, 4500, 4789, 5060, 5061, 5222, 5223, 5353, 5355, 5432,
        5672, 5900, 6379, 6443, 6667, 8000, 8080, 8443, 8888, 9200, 11211, 27017,
    }
)  # fmt: skip

#: Service guessed from the responder's port (issue 4 replaces it with what the payload says).
SERVICES: dict[tuple[int, int], str] = {
    **{(6, p): s for p, s in (
        (20, "ftp-data"), (21, "ftp"), (22, "ssh"), (23, "telnet"), (25, "smtp"), (53, "dns"),
        (80, "http"), (88, "krb"), (110, "pop3"), (111, "rpc"), (135, "dce-rpc"), (139, "smb"),
        (143, "imap"), (179, "bgp"), (389, "ldap"), (443, "ssl"), (445, "smb"), (465, "smtp-ssl"),
        (502, "modbus"), (587, "smtp"), (636, "ldaps"), (853, "dns-over-tls"), (993, "imaps"),
        (995, "pop3s"), (1433, "mssql"), (1521, "oracle"), (1723, "pptp"), (1883, "mqtt"),
        (3128, "http-proxy"), (3306, "mysql"), (3389, "rdp"), (5060, "sip"), (5222, "xmpp"),
        (5432, "postgresql"), (5900, "vnc"), (6379, "redis"), (6667, "irc"), (8080, "http"),
        (8443, "ssl"), (9200, "http"), (27017, "mongodb"),
    )},
    **{(17, p): s for p, s in (
        (53, "dns"), (67, "dhcp"), (68, "dhcp"), (69, "tftp"), (123, "ntp"), (137, "netbios-ns"),
        (138, "netbios-dgm"), (161, "snmp"), (162, "snmp"), (443, "quic"), (500, "ike"),
        (514, "syslog"), (546, "dhcpv6"), (547, "dhcpv6"), (1194, "openvpn"), (1812, "radius"),
        (1900, "ssdp"), (3478, "stun"), (4500, "ike"), (4789, "vxlan"), (5060, "sip"),
        (5353, "mdns"), (5355, "llmnr"),
    )},
}  # fmt: skip

_TCP, _UDP, _ICMP, _ICMP6 = 6, 17, 1, 58

#: ICMP request types paired with their reply (Zeek's counterparts); a first
#: packet of a reply type makes its receiver the originator.
_ICMP_PAIRS = {
    _ICMP: {8: 0, 13: 14, 15: 16, 17: 18, 10: 9},
    _ICMP6: {128: 129, 133: 134, 135: 136, 130: 131},
}
_ICMP_REPLIES = {p: {v: k for k, v in pairs.items()} for p, pairs in _ICMP_PAIRS.items()}
#: Types that carry an identifier (RFC 792 echo/timestamp/information/mask, RFC 4443 echo).
_ICMP_ID_TYPES = {_ICMP: frozenset({0, 8, 13, 14, 15, 16, 17, 18}), _ICMP6: frozenset({128, 129})}

#: Expiration reasons, in the order the report lists them.
EXPIRATIONS: tuple[str, ...] = (
    "idle_timeout",
    "active_timeout",
    "attempt_timeout",
    "closed",
    "port_reuse",
    "evicted",
    "end_of_capture",
)

#: Per-direction TCP analysis counters (Wireshark ``tcp.analysis.*``).
TCP_ANALYSIS: tuple[str, ...] = (
    "retransmissions",  # tcp.analysis.retransmission
    "fast_retransmissions",  # tcp.analysis.fast_retransmission
    "spurious_retransmissions",  # tcp.analysis.spurious_retransmission
    "out_of_order",  # tcp.analysis.out_of_order
    "duplicate_acks",  # tcp.analysis.duplicate_ack
    "zero_windows",  # tcp.analysis.zero_window
    "zero_window_probes",  # tcp.analysis.zero_window_probe
    "keep_alives",  # tcp.analysis.keep_alive
    "lost_segments",  # tcp.analysis.lost_segment ("previous segment not captured")
    "acked_unseen",  # tcp.analysis.ack_lost_segment ("ACKed unseen segment")
)
(
    RETRANS,
    FAST_RETRANS,
    SPURIOUS,
    OUT_OF_ORDER,
    DUP_ACK,
    ZERO_WINDOW,
    ZERO_WINDOW_PROBE,
    KEEP_ALIVE,
    LOST_SEGMENT,
    ACKED_UNSEEN,
) = range(len(TCP_ANALYSIS))

#: Longest history kept (letters past it are dropped; a SYN storm with changing
#: sequence numbers on one 5-tuple would otherwise grow it without bound).
HISTORY_MAX = 100

_NO_COUNTS = (0,) * len(TCP_ANALYSIS)

#: Why a packet did not become part of a flow.
SKIP_REASONS: tuple[str, ...] = ("not_ip", "fragment", "no_transport_header")


@dataclass(frozen=True)
class FlowConfig:
    """Flow-table settings; defaults are Zeek's (``init-bare.zeek``) unless noted."""

    tcp_timeout_s: float = 300.0  # tcp_inactivity_timeout
    udp_timeout_s: float = 60.0  # udp_inactivity_timeout
    icmp_timeout_s: float = 60.0  # icmp_inactivity_timeout
    other_timeout_s: float = 60.0  # unknown_ip_inactivity_timeout
    tcp_attempt_s: float = 5.0  # tcp_attempt_delay
    tcp_close_s: float = 5.0  # tcp_close_delay (and tcp_connection_linger)
    #: split flows longer than this (seconds); 0 = never (Zeek has no active timeout)
    active_timeout_s: float = 0.0
    #: live flows held at once; the least recently active is evicted beyond it
    max_flows: int = 250_000
    #: put the outer VLAN id in the flow key (Suricata's default; Zeek leaves it out)
    vlan_in_key: bool = True
    server_ports: frozenset[int] = SERVER_PORTS
    #: Community ID seed (Corelight spec; Zeek and Suricata default 0)
    community_id_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("tcp_timeout_s", "udp_timeout_s", "icmp_timeout_s", "other_timeout_s",
                     "tcp_attempt_s", "tcp_close_s", "active_timeout_s"):  # fmt: skip
            value = getattr(self, name)
            low = value >= 0 if name == "active_timeout_s" else value > 0
            if not (low and value <= MAX_TIMEOUT_S):  # also rejects NaN
                what = "0 (off) or" if name == "active_timeout_s" else "more than 0 and"
                raise ValueError(f"{name} must be {what} at most {MAX_TIMEOUT_S:g} seconds, got {value!r}")
        if self.max_flows < 1:
            raise ValueError(f"max_flows must be at least 1, got {self.max_flows!r}")
        if not 0 <= self.community_id_seed <= 0xFFFF:
            raise ValueError(f"community_id_seed must fit 16 bits, got {self.community_id_seed!r}")


#: Longest timeout accepted (about 31 years: nanoseconds of it still fit 63 bits).
MAX_TIMEOUT_S = 1e9


# --- Zeek endpoint states ---------------------------------------------------------
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)

_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
_OOO_NS = 3_000_000  # Wireshark's default out-of-order threshold when no RTT is known
_FAST_RETRANS_NS = 20_000_000
_TOO_LARGE_SEQ_DELTA = 1_048_576  # Zeek TCPSessionAdapter.cc
_RSTOS0 = re.compile(r"^\^?S[^HAFGIQ]*R.*")
_M32 = 0xFFFFFFFF


def _span(n: int, start: int, stop: int | None) -> tuple[int, int]:
    """Rows ``start:stop`` of ``n`` clamped to the batch (``stop`` None or negative: to the end)."""
    return max(start, 0), n if stop is None or stop < 0 or stop > n else stop


def _sdelta(a: int, b: int) -> int:
    """Signed 32-bit sequence difference a - b (RFC 1982 arithmetic)."""
    d = (a - b) & _M32
    return d - 0x1_0000_0000 if d & 0x8000_0000 else d


class FlowOut:
    """Per-packet outputs of a flow-table update, for the stages that follow flows.

    ``fid[i]`` is ``(flow_id(record) << 1) | direction`` for the flow row ``i``
    joined (direction 1 = from the responder), -1 for a row in no flow;
    ``seen[i]`` is the payload bytes that direction had carried before row ``i``.
    """

    __slots__ = ("fid", "seen")

    def __init__(self, n: int) -> None:
        self.fid = np.full(n, -1, dtype=np.int64)
        self.seen = np.zeros(n, dtype=np.int64)


def flow_id(first_file: int, first_frame: int) -> int:
    """A flow's id within a run: its first packet (no two flows start with the same one)."""
    return (first_file << 40) | first_frame


#: Layout of the raw finished-flow tuple both engines produce (``RAW_FIELDS[i]`` names item ``i``).
RAW_FIELDS: tuple[str, ...] = (
    "proto", "orig_hi", "orig_lo", "orig_p", "resp_hi", "resp_lo", "resp_p", "icmp_id", "vlan",
    "vlan_inner", "start_ns", "end_ns", "last_packet_ns", "orig_pkts", "resp_pkts", "orig_ip_bytes",
    "resp_ip_bytes", "orig_payload_bytes", "resp_payload_bytes", "orig_size", "resp_size",
    "orig_state", "resp_state", "history", "flipped", "first_file", "first_frame", "last_file",
    "last_frame", "datagrams_reassembled", "orig_counts", "resp_counts", "orig_active",
    "resp_active", "expiration", "seed", "summary_key",
)  # fmt: skip


#: Application summaries a record may carry (:attr:`FlowRecord.app`), in report order.
APP_KEYS: tuple[str, ...] = ("dns", "tls", "quic", "http")


class _RawFlow(NamedTuple):
    proto: int
    orig_hi: int
    orig_lo: int
    orig_p: int
    resp_hi: int
    resp_lo: int
    resp_p: int
    icmp_id: int | None
    vlan: int | None
    vlan_inner: int | None
    start_ns: int
    end_ns: int
    last_packet_ns: int
    orig_pkts: int
    resp_pkts: int
    orig_ip_bytes: int
    resp_ip_bytes: int
    orig_payload_bytes: int
    resp_payload_bytes: int
    orig_size: int
    resp_size: int
    orig_state: int
    resp_state: int
    history: str
    flipped: bool
    first_file: int
    first_frame: int
    last_file: int
    last_frame: int
    datagrams_reassembled: int
    orig_counts: tuple[int, ...] | None
    resp_counts: tuple[int, ...] | None
    orig_active: bool
    resp_active: bool
    expiration: str
    seed: int
    summary_key: int


_APP = len(RAW_FIELDS)


class FlowRecord(_RawFlow):
    """One finished flow (what the report, the exports and detectors see).

    A named tuple of an engine's raw fields (:data:`RAW_FIELDS`, the
    Community ID seed last), made with :meth:`from_raw`; everything else (addresses
    as text, Community ID, uid, ``conn_state``) is computed from them when
    asked, so flows that are only counted cost one tuple each.
    """

    __slots__ = ()

    @classmethod
    def from_raw(cls, raw: tuple[Any, ...]) -> FlowRecord:
        """A record from an engine's tuple; one extra item after :data:`RAW_FIELDS`, if
        present, is the flow's application summary (:attr:`app`)."""
        return tuple.__new__(cls, raw)

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled (a split run's workers send records to the parent) through from_raw:
        # the named tuple's own __new__ does not take the application summary
        return (_record_from_raw, (tuple(self),))

    @property
    def app(self) -> dict[str, Any] | None:
        """What the application layer read in this flow (:mod:`netsift.applayer`): its
        ``service`` and ``dns``/``tls``/``quic``/``http`` summaries; None if nothing."""
        return self[_APP] if len(self) > _APP else None  # type: ignore[return-value]

    @property
    def conn_state(self) -> str:
        return conn_state(
            self.proto, self.orig_state, self.resp_state, self.orig_size, self.resp_size,
            self.history, self.orig_active, self.resp_active,
        )  # fmt: skip

    @property
    def transport(self) -> str:
        return IP_PROTO_NAMES.get(self.proto, f"ip-{self.proto}")

    @property
    def orig_h(self) -> str:
        return ip_text(self.orig_hi, self.orig_lo)

    @property
    def resp_h(self) -> str:
        return ip_text(self.resp_hi, self.resp_lo)

    @property
    def community_id(self) -> str:
        ports = self.proto in PORT_PROTOCOLS
        return community_id_from_halves(
            self.proto, self.orig_hi, self.orig_lo, self.resp_hi, self.resp_lo,
            self.orig_p if ports else None, self.resp_p if ports else None, self.seed,
        )  # fmt: skip

    @property
    def uid(self) -> str:
        return flow_uid(self.community_id, self.start_ns, self.first_file, self.first_frame)

    @property
    def service(self) -> str | None:
        """The protocol the payload showed (application layer), else the port's usual one."""
        app = self.app
        if app is not None and "service" in app:
            return app["service"]  # type: ignore[no-any-return]
        return self.port_service

    @property
    def port_service(self) -> str | None:
        """The service the responder's port usually carries (:data:`SERVICES`)."""
        return SERVICES.get((self.proto, self.resp_p)) if self.proto in (_TCP, _UDP) else None

    @property
    def orig_bytes(self) -> int:
        """Zeek's ``orig_bytes``: TCP from the sequence space, other protocols the payload seen."""
        return self.orig_size if self.proto == _TCP else self.orig_payload_bytes

    @property
    def resp_bytes(self) -> int:
        return self.resp_size if self.proto == _TCP else self.resp_payload_bytes

    @property
    def orig_tcp(self) -> dict[str, int] | None:
        """The originator's TCP analysis counters (None for other protocols)."""
        if self.proto != _TCP:
            return None
        return dict(zip(TCP_ANALYSIS, self.orig_counts or _NO_COUNTS, strict=True))

    @property
    def resp_tcp(self) -> dict[str, int] | None:
        """The responder's TCP analysis counters (None for other protocols)."""
        if self.proto != _TCP:
            return None
        return dict(zip(TCP_ANALYSIS, self.resp_counts or _NO_COUNTS, strict=True))

    @property
    def packets(self) -> int:
        return self.orig_pkts + self.resp_pkts

    @property
    def ip_bytes(self) -> int:
        return self.orig_ip_bytes + self.resp_ip_bytes

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    def __repr__(self) -> str:
        return (
            f"FlowRecord({self.transport} {self.orig_h}:{self.orig_p} -> {self.resp_h}:{self.resp_p} "
            f"{self.conn_state} {self.history!r} pkts={self.orig_pkts}/{self.resp_pkts})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON report and NDJSON export write it (netsift field names)."""
        cid = self.community_id
        d: dict[str, Any] = {
            "uid": flow_uid(cid, self.start_ns, self.first_file, self.first_frame),
            "community_id": cid,
            "transport": self.transport,
            "ip_proto": self.proto,
            "orig_h": self.orig_h,
            "orig_p": self.orig_p,
            "resp_h": self.resp_h,
            "resp_p": self.resp_p,
        }
        if self.icmp_id is not None:
            d["icmp_id"] = self.icmp_id
        d.update(
            {
                "vlan": self.vlan,
                "vlan_inner": self.vlan_inner,
                "service": self.service,
                "start_ts": self.start_ns / 1e9,
                "end_ts": self.end_ns / 1e9,
                "duration_s": self.duration_s,
                "orig_pkts": self.orig_pkts,
                "orig_ip_bytes": self.orig_ip_bytes,
                "orig_payload_bytes": self.orig_payload_bytes,
                "orig_bytes": self.orig_bytes,
                "resp_pkts": self.resp_pkts,
                "resp_ip_bytes": self.resp_ip_bytes,
                "resp_payload_bytes": self.resp_payload_bytes,
                "resp_bytes": self.resp_bytes,
                "conn_state": self.conn_state,
                "history": self.history,
                "flipped": self.flipped,
                "expiration": self.expiration,
                "first_packet": {"file": self.first_file, "frame": self.first_frame},
                "last_packet": {"file": self.last_file, "frame": self.last_frame},
                "datagrams_reassembled": self.datagrams_reassembled,
            }
        )
        if self.proto == _TCP:
            d["tcp_analysis"] = {"orig": self.orig_tcp, "resp": self.resp_tcp}
        app = self.app
        if app is not None:
            d["service_from"] = "payload" if "service" in app else "port"
            for k in APP_KEYS:
                if k in app:
                    v = app[k]
                    # a summary may be kept in a compact form that renders itself
                    d[k] = v.to_json() if hasattr(v, "to_json") else v
        elif d["service"] is not None:
            d["service_from"] = "port"
        return d


# --- the per-flow state -----------------------------------------------------------


class _Endpoint:
    """One side of a TCP connection: Zeek's endpoint fields plus Wireshark's analysis state."""

    __slots__ = (
        "ack",
        "ack_wraps",
        "counts",
        "did_close",
        "fin_cnt",
        "gap",
        "gap_thr",
        "hist_last_fin",
        "hist_last_rst",
        "hist_last_syn",
        "last",
        "last_wraps",
        "prev_state",
        "rxmit",
        "rxmit_thr",
        "seen_end",
        "start",
        "state",
        "ws_dupacks",
        "ws_last_keep_alive",
        "ws_last_probe",
        "ws_lastack",
        "ws_lastack_ns",
        "ws_maxack",
        # Wireshark
        "ws_next",
        "ws_next_ns",
        "ws_window",
        "ws_window_valid",
        "zw",
        "zw_thr",
    )  # fmt: skip

    def __init__(self) -> None:
        self.state = INACTIVE
        self.prev_state = INACTIVE
        self.start = 0
        self.last = 0
        self.last_wraps = 0
        self.ack = 0
        self.ack_wraps = 0
        self.fin_cnt = 0
        self.did_close = False
        self.hist_last_syn = -1
        self.hist_last_fin = -1
        self.hist_last_rst = -1
        self.rxmit = 0
        self.rxmit_thr = 1
        self.zw = 0
        self.zw_thr = 1
        self.gap = 0
        self.gap_thr = 1
        self.ws_next = 0
        self.ws_next_ns = 0
        self.ws_maxack = 0
        self.ws_lastack = 0
        self.ws_lastack_ns = 0
        self.ws_window = 0
        self.ws_window_valid = False
        self.ws_dupacks = 0
        self.ws_last_keep_alive = False
        self.ws_last_probe = False
        self.seen_end = 0
        self.counts = [0] * len(TCP_ANALYSIS)

    def set_state(self, s: int) -> None:
        self.prev_state = self.state
        self.state = s

    def init_seqs(self, start: int, last: int) -> None:
        self.start = start & _M32
        self.ack = start & _M32
        self.ack_wraps = 0
        self.last = last & _M32
        self.last_wraps = 0

    def size(self) -> int:
        """Zeek ``TCP_Endpoint::Size``: bytes in sequence space, SYN and FIN excluded."""
        last64 = (self.last_wraps << 32) + self.last
        ack64 = (self.ack_wraps << 32) + self.ack
        top = max(last64, ack64)
        size = top - self.start
        if size < 0:  # no wrap recorded: a plain 32-bit difference
            size &= _M32
        if size > 0:
            size -= 1
        if self.fin_cnt > 0 and size > 0:
            size -= 1
        return size


def _scaled(ep: _Endpoint, which: str) -> bool:
    """Zeek ``ScaledHistoryEntry``: True on the 1st, 10th, 100th, ... occurrence."""
    cnt, thr = getattr(ep, which), getattr(ep, which + "_thr")
    cnt += 1
    hit: bool = cnt == thr
    if hit:
        thr *= 10
    setattr(ep, which, cnt)
    setattr(ep, which + "_thr", thr)
    return hit


class _Flow:
    key: tuple[int, ...]
    proto: int
    o_hi: int
    o_lo: int
    o_p: int
    r_hi: int
    r_lo: int
    r_p: int
    icmp_id: int
    vlan: int
    vlan_inner: int
    start_ns: int
    end_ns: int
    seen_ns: int
    first_file: int
    first_frame: int
    last_file: int
    last_frame: int
    __slots__ = (
        "active",
        "attempt_ns",
        "cls",
        "end_ns",
        "first_file",
        "first_frame",
        "flipped",
        "hist",
        "hist_seen",
        "icmp_id",
        "ip_bytes",
        "irtt_ns",
        "key",
        "last_file",
        "last_frame",
        "o",
        "o_hi",
        "o_lo",
        "o_p",
        "payload",
        "pkts",
        "proto",
        "r",
        "r_hi",
        "r_lo",
        "r_p",
        "reassembled",
        "seen_ns",
        "start_ns",
        "syn_ns",
        "vlan",
        "vlan_inner",
    )  # fmt: skip

    def __init__(self) -> None:
        self.pkts = [0, 0]
        self.ip_bytes = [0, 0]
        self.payload = [0, 0]
        self.hist: list[str] = []
        self.hist_seen: set[str] = set()
        self.flipped = False
        self.o: _Endpoint | None = None
        self.r: _Endpoint | None = None
        self.attempt_ns = -1
        self.syn_ns = -1  # latest SYN without ACK
        self.irtt_ns = 0  # initial RTT (0: not known)
        self.active = [False, False]  # UDP/ICMP/other: a packet seen from that side
        self.reassembled = 0
        self.cls = 0

    def add_history(self, code: str) -> None:
        if len(self.hist) < HISTORY_MAX:
            self.hist.append(code)

    def check_history(self, is_orig: bool, code: str) -> bool:
        """Zeek ``CheckHistory``: record the letter once per direction; True if already seen."""
        c = code if is_orig else code.lower()
        if c in self.hist_seen:
            return True
        self.hist_seen.add(c)
        self.add_history(c)
        return False


# timeout classes (one LRU list each)
_CLS_SHORT, _CLS_TCP, _CLS_OTHER = range(3)


class FlowTable:
    """The live flow table (module doc).  Feed with :meth:`update`; collect with :meth:`drain`."""

    def __init__(self, config: FlowConfig | None = None) -> None:
        self.config = c = config or FlowConfig()
        ns = 1_000_000_000
        self._timeouts = {
            _TCP: int(c.tcp_timeout_s * ns),
            _UDP: int(c.udp_timeout_s * ns),
            _ICMP: int(c.icmp_timeout_s * ns),
            _ICMP6: int(c.icmp_timeout_s * ns),
        }
        self._other_ns = int(c.other_timeout_s * ns)
        self._attempt_ns = int(c.tcp_attempt_s * ns)
        self._close_ns = int(c.tcp_close_s * ns)
        self._active_ns = int(c.active_timeout_s * ns)
        self._flows: dict[tuple[int, ...], _Flow] = {}
        self._lru: tuple[OrderedDict[tuple[int, ...], _Flow], ...] = (
            OrderedDict(),
            OrderedDict(),
            OrderedDict(),
        )
        self._done: list[_Flow | tuple[_Flow, str]] = []
        self._finished: list[FlowRecord] = []
        self._now = -(1 << 62)
        self.skipped: dict[str, int] = dict.fromkeys(SKIP_REASONS, 0)
        self.expired: dict[str, int] = dict.fromkeys(EXPIRATIONS, 0)
        self.flows_created = 0
        self.peak_flows = 0
        #: end idle flows after each update (the pipeline calls :meth:`advance` instead)
        self.auto_sweep = True

    # -- public API -----------------------------------------------------------------
    @property
    def live(self) -> int:
        return len(self._flows)

    def update(
        self,
        cols: PacketColumns,
        batch: RecordBatch,
        start: int = 0,
        stop: int | None = None,
        out: FlowOut | None = None,
    ) -> None:
        """Feed one decoded batch, or its rows ``start:stop`` (fragments are skipped: feed reassembled datagrams separately).

        ``out`` (as long as ``cols``) receives each row's flow and direction (:class:`FlowOut`).
        """
        start, stop = _span(len(cols), start, stop)
        if start >= stop:
            return
        ipv = cols.ip_version[start:stop]
        ip_rows = (ipv == 4) | (ipv == 6)
        frag = cols.is_fragment[start:stop] & ip_rows
        self.skipped["not_ip"] += int(stop - start - np.count_nonzero(ip_rows))
        self.skipped["fragment"] += int(np.count_nonzero(frag))
        rows = np.flatnonzero(ip_rows & ~frag) + start
        self._rows(cols, batch, rows, 0, None, out)
        if self.auto_sweep:
            self._sweep()

    def update_reassembled(
        self,
        cols: PacketColumns,
        batch: RecordBatch,
        frames: list[tuple[int, int]],
        start: int = 0,
        stop: int | None = None,
        out: FlowOut | None = None,
    ) -> None:
        """Feed decoded reassembled datagrams (raw-IP rows ``start:stop``); ``frames`` = (file, frame) of each completing fragment, one per row fed."""
        start, stop = _span(len(cols), start, stop)
        ipv = cols.ip_version[start:stop]
        rows = np.flatnonzero((ipv == 4) | (ipv == 6)) + start
        self._rows(cols, batch, rows, 1, frames, out)

    def advance(self, ts_ns: int) -> None:
        """The clock reaches ``ts_ns`` (when later than it is): flows idle past their timeouts end.

        The pipeline turns :attr:`auto_sweep` off and calls this at the end of
        every read batch with the batch's latest IP timestamp, so that when a
        run is split by flow (:mod:`netsift.partition`) each worker's
        flows expire in the batch they would in one process.
        """
        if ts_ns > self._now:
            self._now = ts_ns
        # Every expired flow, not just those ahead of the first live one in LRU order:
        # with timestamps out of order (or per-protocol timeouts within one list) a
        # list is not sorted by deadline, and where the LRU sweep stops would depend
        # on which other flows share the table.
        now = self._now
        for lru in self._lru:
            for f in list(lru.values()):
                reason = self._expired_before(f, now, f.proto, 0, 0, 0, 0, 0)
                if reason is not None:
                    self._remove(f)
                    self._emit(f, reason)

    def finish(self, limit: int | None = None) -> int:
        """End of capture: live flows end (``closed`` if their close completed, else ``end_of_capture``).

        At most ``limit`` flows end per call (drain between calls to bound the
        memory of their records); returns how many are still live.
        """
        done = 0
        for lru in self._lru:
            while lru and (limit is None or done < limit):
                key, flow = lru.popitem(last=False)
                del self._flows[key]
                self._emit(flow, "closed" if self._close_complete(flow) else "end_of_capture")
                done += 1
        return len(self._flows)

    def drain(self) -> list[FlowRecord]:
        """Records of the flows finished since the last call, in the order they ended."""
        out = self._finished
        self._finished = []
        return out

    def drain_raw(self) -> list[tuple[Any, ...]]:
        """:meth:`drain` (records are tuples of :data:`RAW_FIELDS` already)."""
        return list(self.drain())

    def __iter__(self) -> Iterator[FlowRecord]:
        return iter(self.drain())

    # -- per packet -----------------------------------------------------------------
    def _rows(
        self,
        cols: PacketColumns,
        batch: RecordBatch,
        rows: np.ndarray[Any, Any],
        reassembled: int,
        frames: list[tuple[int, int]] | None = None,
        out: FlowOut | None = None,
    ) -> None:
        if not len(rows):
            return
        if out is not None and len(out.fid) != len(cols):
            raise ValueError("output arrays must be as long as the columns")
        take = {
            name: getattr(cols, name)[rows].tolist()
            for name in (
                "frame", "ts_ns", "ip_src_hi", "ip_src_lo", "ip_dst_hi", "ip_dst_lo", "ip_proto",
                "ip_len", "l4_off", "sport", "dport", "tcp_flags", "tcp_seq", "tcp_ack", "tcp_window",
                "icmp_type", "icmp_code", "payload_len", "vlan_depth", "vlan_outer", "vlan_inner",
            )
        }  # fmt: skip
        offs = batch.off[rows].tolist()
        caps = batch.caplen[rows].tolist()
        buf = batch.buf
        blen = len(buf)
        file_index = batch.file_index
        for j in range(len(rows)):
            proto = take["ip_proto"][j]
            l4 = take["l4_off"][j]
            icmp_id = 0
            if proto in (_TCP, _UDP):
                if l4 < 0:
                    self.skipped["no_transport_header"] += 1
                    continue
                sp, dp = take["sport"][j], take["dport"][j]
            elif proto in (_ICMP, _ICMP6):
                if l4 < 0:
                    self.skipped["no_transport_header"] += 1
                    continue
                sp = take["icmp_type"][j]
                pair = _ICMP_PAIRS[proto].get(sp)
                if pair is None:
                    pair = _ICMP_REPLIES[proto].get(sp)
                dp = take["icmp_code"][j] if pair is None else pair
                if sp in _ICMP_ID_TYPES[proto]:
                    # the two identifier bytes, only from the record's captured bytes
                    o, cl = offs[j], caps[j]
                    if o >= 0 and 0 <= cl <= blen and o <= blen - cl and l4 + 6 <= cl:
                        at = o + l4 + 4
                        icmp_id = (int(buf[at]) << 8) | int(buf[at + 1])
            else:
                sp = dp = 0
            vlan = take["vlan_outer"][j] if take["vlan_depth"][j] else -1
            if frames is not None:
                ffile, fframe = frames[j]
            else:
                ffile, fframe = file_index, take["frame"][j]
            joined = self._packet(
                proto, take["ip_src_hi"][j], take["ip_src_lo"][j], sp, take["ip_dst_hi"][j],
                take["ip_dst_lo"][j], dp, icmp_id, vlan,
                take["vlan_inner"][j] if take["vlan_depth"][j] > 1 else -1,
                take["ts_ns"][j], ffile, fframe, take["ip_len"][j], take["payload_len"][j],
                take["tcp_flags"][j], take["tcp_seq"][j], take["tcp_ack"][j], take["tcp_window"][j],
                reassembled,
            )  # fmt: skip
            if out is not None:
                out.fid[rows[j]], out.seen[rows[j]] = joined

    def _packet(
        self, proto: int, s_hi: int, s_lo: int, sp: int, d_hi: int, d_lo: int, dp: int,
        icmp_id: int, vlan: int, vlan_inner: int, ts: int, ffile: int, fframe: int,
        ip_len: int, plen: int, flags: int, seq: int, ack: int, win: int, reassembled: int,
    ) -> tuple[int, int]:  # fmt: skip
        """One packet; returns what :class:`FlowOut` records for it."""
        if ts > self._now:
            self._now = ts
        kvlan = vlan if self.config.vlan_in_key else -1
        a = (s_hi, s_lo, sp)
        b = (d_hi, d_lo, dp)
        key = (proto, *a, *b, icmp_id, kvlan) if a <= b else (proto, *b, *a, icmp_id, kvlan)
        flow = self._flows.get(key)
        if flow is not None:
            reason = self._expired_before(flow, ts, proto, flags, s_hi, s_lo, sp, seq)
            if reason is not None:
                self._remove(flow)
                self._emit(flow, reason)
                flow = None
        if flow is None:
            flow = self._new(key, proto, s_hi, s_lo, sp, d_hi, d_lo, dp, icmp_id, vlan, vlan_inner,
                             ts, ffile, fframe, flags)  # fmt: skip
        is_orig = (s_hi, s_lo, sp) == (flow.o_hi, flow.o_lo, flow.o_p)
        d = 0 if is_orig else 1
        joined = ((flow_id(flow.first_file, flow.first_frame) << 1) | d, flow.payload[d])
        flow.pkts[d] += 1
        flow.ip_bytes[d] += ip_len
        flow.payload[d] += plen
        flow.reassembled += reassembled
        flow.seen_ns = ts if ts > flow.seen_ns else flow.seen_ns
        flow.last_file, flow.last_frame = ffile, fframe
        if proto == _TCP:
            self._tcp(flow, is_orig, ts, flags, seq, ack, win, plen)
        else:
            flow.active[d] = True
            if proto == _UDP:
                flow.check_history(is_orig, "D")
            if ts > flow.end_ns:
                flow.end_ns = ts
        self._touch(flow)
        return joined

    def _new(
        self, key: tuple[int, ...], proto: int, s_hi: int, s_lo: int, sp: int, d_hi: int, d_lo: int,
        dp: int, icmp_id: int, vlan: int, vlan_inner: int, ts: int, ffile: int, fframe: int, flags: int,
    ) -> _Flow:  # fmt: skip
        f = _Flow()
        f.key = key
        f.proto = proto
        flip = False
        if proto == _TCP:
            # Zeek TCPAnalyzer::WantConnection: a first packet without SYN, or a SYN-ACK,
            # is flipped by the ports; when both are likely server ports, only a non-SYN
            # packet from the lower port is.
            if not flags & _SYN or flags & _ACK:
                flip = self._port_flip(sp, dp) or (
                    not flags & _SYN
                    and sp < dp
                    and sp in self.config.server_ports
                    and dp in self.config.server_ports
                )
        elif proto == _UDP:
            flip = self._port_flip(sp, dp)
        elif proto in (_ICMP, _ICMP6):
            flip = sp in _ICMP_REPLIES[proto]
        if flip:
            f.o_hi, f.o_lo, f.o_p, f.r_hi, f.r_lo, f.r_p = d_hi, d_lo, dp, s_hi, s_lo, sp
            f.flipped = True
            f.hist.append("^")
        else:
            f.o_hi, f.o_lo, f.o_p, f.r_hi, f.r_lo, f.r_p = s_hi, s_lo, sp, d_hi, d_lo, dp
        if proto in (_ICMP, _ICMP6):
            # Zeek's ICMP "ports" are (type, code) of the originator's first message.
            f.o_p, f.r_p = (sp, dp) if not flip else (dp, sp)
        f.icmp_id = icmp_id if proto in (_ICMP, _ICMP6) and (sp in _ICMP_ID_TYPES[proto]) else -1
        f.vlan = vlan
        f.vlan_inner = vlan_inner
        f.start_ns = f.end_ns = f.seen_ns = ts
        f.first_file, f.first_frame = ffile, fframe
        f.last_file, f.last_frame = ffile, fframe
        if proto == _TCP:
            f.o = _Endpoint()
            f.r = _Endpoint()
        self._flows[key] = f
        f.cls = self._class(f)
        self._lru[f.cls][key] = f
        self.flows_created += 1
        if len(self._flows) > self.config.max_flows:
            self._evict_one(f)
        if len(self._flows) > self.peak_flows:
            self.peak_flows = len(self._flows)
        return f

    def _port_flip(self, sp: int, dp: int) -> bool:
        ports = self.config.server_ports
        return sp in ports and dp not in ports

    # -- TCP ------------------------------------------------------------------------
    def _tcp(
        self, f: _Flow, is_orig: bool, ts: int, flags: int, seq: int, ack: int, win: int, plen: int
    ) -> None:
        ep = f.o if is_orig else f.r
        peer = f.r if is_orig else f.o
        assert ep is not None and peer is not None
        syn, fin, rst, has_ack = flags & _SYN, flags & _FIN, flags & _RST, flags & _ACK
        unseen = ep.counts[ACKED_UNSEEN]
        # Wireshark's initial RTT: from the latest SYN to the first ACK after it
        # (tcp.analysis.initial_rtt); it becomes the out-of-order threshold.
        if syn and not has_ack:
            f.syn_ns = ts
        elif has_ack and not syn and f.syn_ns >= 0 and f.irtt_ns == 0:
            f.irtt_ns = ts - f.syn_ns
        self._wireshark(ep, peer, ts, flags, seq, ack, win, plen, f.irtt_ns or _OOO_NS)
        if (
            ep.counts[ACKED_UNSEEN] != unseen and not (fin or rst)
            and peer.seen_end and _sdelta(ack, peer.seen_end) > 0 and _scaled(peer, "gap")
        ):  # fmt: skip
            # Zeek's content gap: bytes of the peer acknowledged but never seen
            f.add_history("g" if is_orig else "G")

        seg_len = plen + (1 if syn else 0) + (1 if fin else 0)
        if rst:
            seg_len -= plen
        last_seq = (seq + seg_len) & _M32
        # init_endpoint
        st = ep.state
        if st == INACTIVE:
            if syn:
                ep.init_seqs(seq, last_seq)
            else:
                ep.init_seqs(seq - 1, seq)
        elif st in (SYN_SENT, SYN_ACK_SENT):
            if syn and seq != ep.start:
                ep.init_seqs(seq, last_seq)
        elif st in (ESTABLISHED, PARTIAL):
            if syn:
                ep.init_seqs(seq, last_seq)
        elif st == RESET and syn and ep.prev_state == INACTIVE:
            ep.init_seqs(seq, last_seq)

        # history (rel_seq equality is sequence-number equality within one start)
        bits = (1 if syn else 0) + (1 if fin else 0) + (1 if rst else 0)
        if bits > 1:
            f.check_history(is_orig, "I" if fin and rst else "Q")
        elif bits == 1:
            if syn:
                code = "H" if has_ack else "S"
                if f.check_history(is_orig, code) and seq != ep.hist_last_syn:
                    f.add_history(code if is_orig else code.lower())
                ep.hist_last_syn = seq
            if fin:
                fseq = (seq + plen) & _M32
                if f.check_history(is_orig, "F") and fseq != ep.hist_last_fin:
                    f.add_history("F" if is_orig else "f")
                ep.hist_last_fin = fseq
            if rst:
                if f.check_history(is_orig, "R") and seq != ep.hist_last_rst:
                    f.add_history("R" if is_orig else "r")
                ep.hist_last_rst = seq
        elif plen:
            f.check_history(is_orig, "D")
        elif has_ack:
            f.check_history(is_orig, "A")

        # zero window (Zeek update_window)
        if (
            win == 0
            and not rst
            and peer.state != CLOSED
            and ep.state != RESET
            and _scaled(ep, "zw")
        ):
            f.add_history("W" if is_orig else "w")

        if not (ep.did_close and peer.did_close) and ts > f.end_ns:
            f.end_ns = ts
        if fin:
            ep.fin_cnt += 1

        # ACK processing
        if has_ack:
            if peer.state == INACTIVE:
                p = (ack - 1) & _M32
                peer.init_seqs(p, p)
            elif not rst:
                delta = _sdelta(ack, peer.ack)
                if ack == 0 and delta > _TOO_LARGE_SEQ_DELTA:
                    pass
                elif delta > 0:
                    if ack < peer.ack:
                        peer.ack_wraps += 1
                    peer.ack = ack
        # update_last_seq
        delta_last = _sdelta(last_seq, ep.last)
        if (syn or rst) and (
            delta_last > _TOO_LARGE_SEQ_DELTA or delta_last < -_TOO_LARGE_SEQ_DELTA
        ):
            pass
        elif fin and ep.last == ((ep.start + 1) & _M32):
            self._set_last(ep, last_seq)
        elif ep.state == RESET:
            pass
        elif delta_last > 0:
            self._set_last(ep, last_seq)
        elif plen > 0 and _scaled(ep, "rxmit"):
            f.add_history("T" if is_orig else "t")

        do_close = self._state_machine(f, ep, peer, is_orig, flags, seq, ack, plen, ts)
        if do_close and not ep.did_close:
            ep.did_close = True

    @staticmethod
    def _set_last(ep: _Endpoint, last_seq: int) -> None:
        if last_seq < ep.last and _sdelta(last_seq, ep.last) > 0:
            ep.last_wraps += 1
        ep.last = last_seq

    def _state_machine(
        self, f: _Flow, ep: _Endpoint, peer: _Endpoint, is_orig: bool, flags: int, seq: int, ack: int,
        plen: int, ts: int,
    ) -> bool:  # fmt: skip
        syn, fin, rst, has_ack = flags & _SYN, flags & _FIN, flags & _RST, flags & _ACK
        do_close = False
        st = ep.state
        if st == INACTIVE:
            if syn:
                if is_orig:
                    ep.set_state(SYN_ACK_SENT if has_ack else SYN_SENT)
                    if f.attempt_ns < 0:
                        f.attempt_ns = ts
                else:
                    if peer.state == SYN_SENT:
                        peer.set_state(ESTABLISHED)
                    ep.set_state(ESTABLISHED)
            if fin:
                ep.set_state(CLOSED)
                do_close = True
            if rst:
                ep.set_state(RESET)
                do_close = True
            if ep.state == INACTIVE:
                if not is_orig and plen == 0 and f.o is not None and f.o.state == SYN_SENT:
                    pass  # an ACK of the SYN before the SYN-ACK: not a partial connection
                elif has_ack and peer.state == ESTABLISHED:
                    ep.set_state(ESTABLISHED)
                else:
                    ep.set_state(PARTIAL)
        elif st in (SYN_SENT, SYN_ACK_SENT):
            if fin:
                ep.set_state(CLOSED)
                do_close = True
            if rst:
                ep.set_state(RESET)
                do_close = True
        elif st in (ESTABLISHED, PARTIAL):
            if syn and st == PARTIAL and peer.state == INACTIVE and not has_ack:
                ep.set_state(SYN_SENT)
            if fin and not rst:
                ep.set_state(CLOSED)
                if peer.state == RESET and peer.prev_state == CLOSED:
                    peer.set_state(CLOSED)
                do_close = True
            if rst:
                ep.set_state(RESET)
                do_close = True
        elif st == CLOSED and rst and peer.state != CLOSED:
            ep.set_state(RESET)
            if not ep.did_close:
                do_close = True
        return do_close

    def _wireshark(self, fwd: _Endpoint, rev: _Endpoint, ts: int, flags: int, seq: int, ack: int,
                   win: int, seglen: int, ooo_ns: int) -> None:  # fmt: skip
        """Wireshark 4.0's ``tcp_analyze_sequence_number`` (module doc); counts go to ``fwd.counts``.

        As in Wireshark, a next expected sequence number, an ACK number or a
        "max seq to be acked" of 0 means "not seen yet"; ``ack`` is the
        header's field whether or not ACK is set; time differences are
        unsigned (a segment stamped before the reference never passes a
        time threshold).  The ACK of a keep-alive or of a zero-window probe
        is neither a duplicate ACK nor an ACK of unseen data (Wireshark's
        ``keep_alive_ack`` / ``zero_window_probe_ack``).  The out-of-order
        threshold ``ooo_ns`` is the connection's initial RTT once the
        handshake gave one, else :data:`_OOO_NS`.  Not modelled: the 10,000
        unacked-segment cap.
        """
        c = fwd.counts
        syn, fin, rst, has_ack = flags & _SYN, flags & _FIN, flags & _RST, flags & _ACK
        ctl = syn or fin or rst
        nxt0 = fwd.ws_next  # 0: nothing seen in this direction yet
        probe = keep_alive = answer = False
        if seglen == 1 and seq == nxt0 and rev.ws_window_valid and rev.ws_window == 0:
            c[ZERO_WINDOW_PROBE] += 1
            probe = True
        else:
            if win == 0 and not ctl:
                c[ZERO_WINDOW] += 1
            if nxt0 and _sdelta(seq, nxt0) > 0 and not rst:
                c[LOST_SEGMENT] += 1
            if seglen <= 1 and not ctl and seq == ((nxt0 - 1) & _M32):
                c[KEEP_ALIVE] += 1
                keep_alive = True
            # The ACK of a keep-alive or of a zero-window probe repeats the last
            # ACK; Wireshark names it so and skips the remaining checks.
            repeat = (
                seglen == 0
                and not ctl
                and fwd.ws_window_valid
                and win == fwd.ws_window
                and seq == nxt0
            )
            keep_alive_ack = (
                repeat and win != 0 and ack == fwd.ws_lastack and rev.ws_last_keep_alive
            )
            probe_ack = (
                repeat and win == 0 and rev.ws_last_probe
                and ack in (fwd.ws_lastack, (fwd.ws_lastack + 1) & _M32)
            )  # fmt: skip
            if keep_alive_ack or probe_ack:
                answer = True
            elif repeat and win != 0 and ack == fwd.ws_lastack:
                fwd.ws_dupacks += 1
                c[DUP_ACK] += 1
        if ack != fwd.ws_lastack:
            fwd.ws_dupacks = 0
        # ACKed unseen keeps netsift's rule (once per ACK beyond everything seen or
        # acknowledged): FlowTable._tcp derives Zeek's content-gap history letter
        # from it, which Wireshark's re-arming at the next expected number breaks.
        if has_ack and rev.ws_next and _sdelta(ack, rev.ws_maxack) > 0 and not answer:
            c[ACKED_UNSEEN] += 1
            rev.ws_maxack = ack
        if (seglen > 0 or syn or fin) and not keep_alive and not answer:
            behind = nxt0 != 0 and _sdelta(seq, nxt0) < 0
            if seglen > 1 and seq == ((nxt0 - 1) & _M32):
                behind = False  # new data after a possible zero-window probe
            if (
                behind and rev.ws_dupacks >= 2 and rev.ws_lastack == seq
                and 0 <= ts - rev.ws_lastack_ns < _FAST_RETRANS_NS
            ):  # fmt: skip
                c[FAST_RETRANS] += 1
            elif (
                behind and 0 <= ts - fwd.ws_next_ns < ooo_ns
                and nxt0 != ((seq + seglen + (1 if syn or fin else 0)) & _M32)
            ):  # fmt: skip
                c[OUT_OF_ORDER] += 1
            elif (
                seglen > 0 and rev.ws_lastack
                and _sdelta((seq + seglen) & _M32, rev.ws_lastack) <= 0
            ):  # fmt: skip
                c[SPURIOUS] += 1
            elif behind:
                c[RETRANS] += 1
        # advance (a zero-window probe does not move the next expected number)
        nxt = (seq + seglen + (1 if syn or fin else 0)) & _M32
        if not probe and (not nxt0 or _sdelta(nxt, nxt0) > 0):
            fwd.ws_next = nxt
            fwd.ws_next_ns = ts
            if _sdelta(nxt, fwd.ws_maxack) > 0 or not fwd.ws_maxack:
                fwd.ws_maxack = nxt
        fwd.ws_window = win
        fwd.ws_window_valid = True
        fwd.ws_lastack = ack
        fwd.ws_lastack_ns = ts
        fwd.ws_last_keep_alive = keep_alive
        fwd.ws_last_probe = probe
        if not fwd.seen_end or _sdelta(nxt, fwd.seen_end) > 0:
            fwd.seen_end = nxt  # probes included: the content-gap letter needs bytes never seen

    # -- expiry ---------------------------------------------------------------------
    def _close_complete(self, f: _Flow) -> bool:
        o, r = f.o, f.r
        if o is None or r is None:
            return False
        if not (o.did_close or r.did_close):
            return False
        return (
            (o.did_close and r.did_close)
            or RESET in (o.state, r.state)
            or INACTIVE in (o.state, r.state)
        )

    def _attempt(self, f: _Flow) -> bool:
        o, r = f.o, f.r
        return (
            o is not None
            and r is not None
            and o.state in (SYN_SENT, SYN_ACK_SENT)
            and r.state == INACTIVE
        )

    def _class(self, f: _Flow) -> int:
        if f.proto != _TCP:
            return _CLS_OTHER
        if self._close_complete(f) or self._attempt(f):
            return _CLS_SHORT
        return _CLS_TCP

    def _idle_ns(self, f: _Flow) -> int:
        return self._timeouts.get(f.proto, self._other_ns)

    def _expired_before(self, f: _Flow, ts: int, proto: int, flags: int, s_hi: int, s_lo: int, sp: int,
                        seq: int) -> str | None:  # fmt: skip
        """Why ``f`` ended before a packet at ``ts`` arrived, or None if the packet belongs to it."""
        if proto == _TCP:
            if self._close_complete(f):
                if ts - f.seen_ns > self._close_ns:
                    return "closed"
            elif self._attempt(f) and f.attempt_ns >= 0 and ts - f.attempt_ns > self._attempt_ns:
                return "attempt_timeout"
        if ts - f.seen_ns > self._idle_ns(f):
            return "idle_timeout"
        if self._active_ns and ts - f.start_ns > self._active_ns:
            return "active_timeout"
        if proto == _TCP and flags & _SYN and self._is_reuse(f, flags, seq):
            return "port_reuse"
        return None

    @staticmethod
    def _is_reuse(f: _Flow, flags: int, seq: int) -> bool:
        """Zeek ``TCPSessionAdapter::IsReuse`` for a SYN (or a SYN-ACK on a half connection)."""
        o, r = f.o, f.r
        assert o is not None and r is not None
        conn_orig = o
        if flags & _ACK:
            if o.state != INACTIVE:
                return False
            conn_orig = r
        if not (o.did_close or r.did_close):
            if seq == conn_orig.start:
                return False
            if (
                not flags & _ACK
                and conn_orig.state == SYN_ACK_SENT
                and r.state == INACTIVE
                and seq == r.start
            ):
                return False  # SYN and SYN-ACK seen in swapped order
        return True

    def _touch(self, f: _Flow) -> None:
        cls = self._class(f)
        if cls != f.cls:
            del self._lru[f.cls][f.key]
            f.cls = cls
            self._lru[cls][f.key] = f
        else:
            self._lru[cls].move_to_end(f.key)

    def _remove(self, f: _Flow) -> None:
        del self._flows[f.key]
        del self._lru[f.cls][f.key]

    def _sweep(self) -> None:
        now = self._now
        for lru in self._lru:
            while lru:
                f = next(iter(lru.values()))
                reason = self._expired_before(f, now, f.proto, 0, 0, 0, 0, 0)
                if reason is None:
                    break
                self._remove(f)
                self._emit(f, reason)

    def _evict_one(self, keep: _Flow) -> None:
        best: _Flow | None = None
        for lru in self._lru:
            for f in lru.values():
                if f is keep:
                    continue
                if best is None or f.seen_ns < best.seen_ns:
                    best = f
                break
        if best is None:
            return
        self._remove(best)
        self._emit(best, "evicted")

    # -- records --------------------------------------------------------------------
    def _emit(self, f: _Flow, reason: str) -> None:
        self.expired[reason] += 1
        self._finished.append(
            FlowRecord.from_raw(raw_flow(f, reason, self.config.community_id_seed))
        )


def _record_from_raw(raw: tuple[Any, ...]) -> FlowRecord:
    return FlowRecord.from_raw(raw)


def conn_state(
    proto: int, o_state: int, r_state: int, o_size: int, r_size: int, history: str,
    o_active: bool, r_active: bool,
) -> str:  # fmt: skip
    """Zeek's ``conn_state`` (``base/protocols/conn/main.zeek``) from the endpoint states."""
    if proto == _TCP:
        o_inactive = o_state in (INACTIVE, PARTIAL)
        r_inactive = r_state in (INACTIVE, PARTIAL)
        if r_state == RESET:
            if o_state in (SYN_SENT, SYN_ACK_SENT) or (
                o_state == RESET and o_size == 0 and r_size == 0
            ):
                return "REJ"
            return "RSTRH" if o_inactive else "RSTR"
        if o_state == RESET:
            if r_inactive:
                return "RSTOS0" if _RSTOS0.match(history) else "OTH"
            return "RSTO"
        if o_state == CLOSED and r_state == CLOSED:
            return "SF"
        if o_state == CLOSED:
            return "SH" if r_inactive else "S2"
        if r_state == CLOSED:
            return "SHR" if o_inactive else "S3"
        if o_state == SYN_SENT and r_state == INACTIVE:
            return "S0"
        if o_state == ESTABLISHED and r_state == ESTABLISHED:
            return "S1"
        return "OTH"
    if proto == _UDP:
        if o_active:
            return "SF" if r_active else "S0"
        return "SHR" if r_active else "OTH"
    return "OTH"


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def flow_uid(community: str, start_ns: int, first_file: int, first_frame: int) -> str:
    """A Zeek-shaped uid ("C" + 17 base62 characters), deterministic from the flow's first packet."""
    digest = hashlib.blake2b(
        f"{community}|{start_ns}|{first_file}|{first_frame}".encode(), digest_size=13
    ).digest()
    v = int.from_bytes(digest, "big")
    out = []
    for _ in range(17):
        v, r = divmod(v, 62)
        out.append(_B62[r])
    return "C" + "".join(out)


def summary_key(
    proto: int,
    o_state: int,
    r_state: int,
    empty: bool,
    history: str,
    o_active: bool,
    r_active: bool,
    reason: str,
) -> int:
    """What ``conn_state`` depends on, packed in one int (``FlowSummary`` counts flows by it).

    Bits: protocol 0-7, originator state 8-10, responder state 11-13, both
    sizes zero 14, history matches Zeek's RSTOS0 pattern 15, originator
    active 16, responder active 17, :data:`EXPIRATIONS` index 18-20.
    """
    return (
        proto
        | o_state << 8
        | r_state << 11
        | int(empty) << 14
        | int(bool(_RSTOS0.match(history))) << 15
        | int(o_active) << 16
        | int(r_active) << 17
        | EXPIRATIONS.index(reason) << 18
    )


def unpack_summary_key(key: int) -> tuple[int, str, str]:
    """(protocol, conn_state, expiration) of a :func:`summary_key`."""
    proto, o_st, r_st = key & 0xFF, (key >> 8) & 7, (key >> 11) & 7
    size = 0 if key >> 14 & 1 else 1
    state = conn_state(proto, o_st, r_st, size, size, "SR" if key >> 15 & 1 else "", bool(key >> 16 & 1),
                       bool(key >> 17 & 1))  # fmt: skip
    return proto, state, EXPIRATIONS[(key >> 18) & 7]


def raw_flow(f: _Flow, reason: str, seed: int = 0) -> tuple[Any, ...]:
    """The engine-neutral tuple (:data:`RAW_FIELDS`) of a finished flow (absent ids are None)."""
    o, r = f.o, f.r
    tcp = o is not None and r is not None
    return (
        f.proto, f.o_hi, f.o_lo, f.o_p, f.r_hi, f.r_lo, f.r_p,
        f.icmp_id if f.icmp_id >= 0 else None, f.vlan if f.vlan >= 0 else None,
        f.vlan_inner if f.vlan_inner >= 0 else None, f.start_ns, f.end_ns, f.seen_ns, f.pkts[0], f.pkts[1], f.ip_bytes[0], f.ip_bytes[1],
        f.payload[0], f.payload[1], o.size() if o else 0, r.size() if r else 0,
        o.state if o else 0, r.state if r else 0, "".join(f.hist), f.flipped, f.first_file,
        f.first_frame, f.last_file, f.last_frame, f.reassembled,
        tuple(o.counts) if tcp and o and any(o.counts) else None,
        tuple(r.counts) if tcp and r and any(r.counts) else None,
        f.active[0], f.active[1], reason, seed,
        summary_key(f.proto, o.state if o else 0, r.state if r else 0,
                    (o.size() if o else 0) == 0 and (r.size() if r else 0) == 0, "".join(f.hist),
                    f.active[0], f.active[1], reason),
    )  # fmt: skip
