"""Application fields for ``netsift packets``: DNS, TLS (and QUIC) and HTTP, by Wireshark name.

These fields need flows: when a command asks for one (in ``--fields`` or
``--filter``), packets go through the flow table, IP reassembly and the
application layer (:mod:`netsift.applayer`) before the fields are read, and
each packet's application fields are looked up by its frame number.  As in
Wireshark, a field sits on the frame where its message became complete: a
TLS hello split over three segments shows on the third, a DNS answer sent in
fragments on the last fragment.  A frame carrying several HTTP heads shows
the first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

import numpy as np

from .capture import RecordBatch
from .columns import PacketColumns
from .pfields import FIELDS, PROTOCOLS, Field, Mask, Values, register

#: The application fields of the batch being read: frame number -> {field: value}.
_EVENTS: ContextVar[dict[int, dict[str, Any]] | None] = ContextVar("netsift_app_events", default=None)

#: name, kind, description, hex width; the names are Wireshark's.
_APP_FIELDS: tuple[tuple[str, str, str, int], ...] = (
    ("dns.id", "hex", "DNS transaction id", 4),
    ("dns.flags.response", "bool", "DNS message is a response", 0),
    ("dns.flags.rcode", "int", "DNS response code (with EDNS extended bits)", 0),
    ("dns.qry.name", "str", "DNS first question's name", 0),
    ("dns.qry.type", "int", "DNS first question's type", 0),
    ("dns.count.answers", "int", "DNS answer count (ANCOUNT as sent)", 0),
    ("dns.a", "str", "DNS A answers (comma-separated)", 0),
    ("dns.aaaa", "str", "DNS AAAA answers (comma-separated)", 0),
    ("tls.handshake.type", "int", "TLS handshake type: 1 ClientHello, 2 ServerHello", 0),
    ("tls.handshake.extensions_server_name", "str", "TLS/QUIC ClientHello SNI", 0),
    ("tls.handshake.extensions_alpn_str", "str", "TLS/QUIC ClientHello ALPN values (comma-separated)", 0),
    ("tls.handshake.ja3", "str", "JA3 of the ClientHello (MD5)", 0),
    ("tls.handshake.ja3_full", "str", "JA3 string of the ClientHello", 0),
    ("tls.handshake.ja4", "str", "JA4 of the ClientHello (t for TCP, q for QUIC)", 0),
    ("tls.handshake.ja4_r", "str", "JA4_r (raw JA4) of the ClientHello", 0),
    ("tls.handshake.ja3s", "str", "JA3S of the ServerHello (MD5)", 0),
    ("tls.handshake.ja3s_full", "str", "JA3S string of the ServerHello", 0),
    ("http.request.method", "str", "HTTP request method", 0),
    ("http.host", "str", "HTTP Host header", 0),
    ("http.request.uri", "str", "HTTP request target", 0),
    ("http.user_agent", "str", "HTTP User-Agent header", 0),
    ("http.request.version", "str", "HTTP request version", 0),
    ("http.response.code", "int", "HTTP response status code", 0),
    ("http.response.version", "str", "HTTP response version", 0),
    ("http.content_type", "str", "HTTP Content-Type header", 0),
)
#: Short names (the issue tracker's and analysts' habit) for the long Wireshark ones.
SHORT_NAMES: dict[str, str] = {
    "dns.qname": "dns.qry.name",
    "dns.qtype": "dns.qry.type",
    "dns.rcode": "dns.flags.rcode",
    "tls.sni": "tls.handshake.extensions_server_name",
    "tls.ja3": "tls.handshake.ja3",
    "tls.ja4": "tls.handshake.ja4",
    "http.method": "http.request.method",
    "http.uri": "http.request.uri",
    "http.status": "http.response.code",
}
_PROTOCOL_PREFIX = {"dns": "dns.", "tls": "tls.", "http": "http."}


#: the last (events, cols, result) of :func:`_rows_of`: every field of a batch uses it
_LAST: list[Any] = [None, None, None]


def _rows_of(cols: PacketColumns) -> tuple[list[int], list[dict[str, Any]]]:
    """Rows of ``cols`` that have application fields, and those fields (once per batch)."""
    events = _EVENTS.get()
    if not events:
        return [], []
    if _LAST[0] is events and _LAST[1] is cols:
        return _LAST[2]  # type: ignore[no-any-return]
    _LAST[:] = [events, cols, _match_rows(cols, events)]
    return _LAST[2]  # type: ignore[no-any-return]


def _match_rows(cols: PacketColumns, events: dict[int, dict[str, Any]]
                ) -> tuple[list[int], list[dict[str, Any]]]:  # fmt: skip
    frames = np.fromiter(events, dtype=np.int64, count=len(events))
    at = np.searchsorted(cols.frame, frames)
    ok = (at < len(cols)) & (cols.frame[np.minimum(at, len(cols) - 1)] == frames) if len(cols) else at < 0
    rows = at[ok].tolist()
    values = list(events.values())
    return rows, [values[k] for k in np.flatnonzero(ok).tolist()]


def _extractor(name: str, kind: str) -> Any:
    def extract(cols: PacketColumns, batch: RecordBatch) -> tuple[Values, Mask]:
        n = len(cols)
        present = np.zeros(n, dtype=np.bool_)
        rows, evs = _rows_of(cols)
        if kind == "str":
            out: list[Any] = [None] * n
            for r, ev in zip(rows, evs, strict=True):
                v = ev.get(name)
                if v is not None:
                    out[r] = v
                    present[r] = True
            return out, present
        arr = np.zeros(n, dtype=np.bool_ if kind == "bool" else np.int64)
        for r, ev in zip(rows, evs, strict=True):
            v = ev.get(name)
            if v is not None:
                arr[r] = v
                present[r] = True
        return arr, present

    return extract


def _protocol(prefix: str) -> Any:
    def test(cols: PacketColumns, batch: RecordBatch) -> Mask:
        mask = np.zeros(len(cols), dtype=np.bool_)
        rows, evs = _rows_of(cols)
        for r, ev in zip(rows, evs, strict=True):
            if any(k.startswith(prefix) for k in ev):
                mask[r] = True
        return mask

    return test


def _register() -> None:
    for name, kind, description, width in _APP_FIELDS:
        register(Field(name, kind, _extractor(name, kind), description, hex_width=width))
    for short, long in SHORT_NAMES.items():
        f = FIELDS[long]
        register(Field(short, f.kind, f.extract, f"{f.description} (short for {long})", f.hex_width))
    for proto, prefix in _PROTOCOL_PREFIX.items():
        PROTOCOLS[proto] = _protocol(prefix)


#: Every field and protocol name that needs the application layer.
APP_NAMES: frozenset[str] = frozenset(
    [n for n, *_ in _APP_FIELDS] + list(SHORT_NAMES) + list(_PROTOCOL_PREFIX)
)


def needs_app(names: Iterable[str], filter_text: str | None = None) -> bool:
    """Whether these field names, or the names in a filter expression, need the application layer."""
    wanted = set(names)
    if filter_text:
        wanted.update(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", filter_text))
    return any(n in APP_NAMES for n in wanted)


class AppFields:
    """Runs flows and the application layer over each batch and publishes its fields."""

    def __init__(self) -> None:
        from .applayer import AppLayer
        from .decode_fast import decode
        from .defrag import FragmentTracker
        from .flow_summary import FlowSummary
        from .flows import FlowConfig
        from .pipeline import _flow_table, _Sessions

        table, used = _flow_table(FlowConfig(), "auto")
        self.sessions = _Sessions(table, used, FragmentTracker(), FlowSummary(0), None, decode,
                                  AppLayer(events=True))  # fmt: skip

    def read(self, cols: PacketColumns, batch: RecordBatch) -> None:
        """Process a batch; its application fields are then what the extractors see."""
        self.sessions.update(cols, batch)
        app = self.sessions.app
        assert app is not None and app.events is not None
        _EVENTS.set(app.events)

    def close(self) -> None:
        _EVENTS.set(None)
        _LAST[:] = [None, None, None]


_register()
