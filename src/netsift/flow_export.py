"""``--flows FILE``: every finished flow, streamed to NDJSON (ECS), CSV or Parquet.

The format follows the file name: ``.ndjson``/``.jsonl``/``.json`` → one
JSON object per line with Elastic Common Schema field names (``source.ip``,
``destination.port``, ``network.transport``, ``network.community_id``,
``event.start``, ...; what ECS has no field for lives under ``netsift.flow``);
``.csv`` → one row per flow with the report's flat field names; ``.parquet``
→ the same columns as CSV in a Parquet file (needs the ``parquet`` extra:
``pip install 'netsift[parquet]'``).

Records are written as flows finish, so memory does not grow with the number
of flows; the file appears under its name only when the run completes (a
temporary file in the same directory is renamed), so a reader never sees a
half-written export.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime, timezone
from typing import Any

from .atomic import AtomicFile
from .errors import OutputError, UsageError
from .flows import APP_KEYS, TCP_ANALYSIS, FlowRecord

FORMATS = {
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".csv": "csv",
    ".parquet": "parquet",
}

#: Flat application columns: (column, summary, key) — the first request / hello / query.
APP_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("dns_query", "dns", "query"), ("dns_qtype", "dns", "qtype"), ("dns_rcode", "dns", "rcode"),
    ("tls_sni", "tls", "sni"), ("tls_version", "tls", "version"), ("tls_ja3", "tls", "ja3"),
    ("tls_ja4", "tls", "ja4"), ("tls_ja3s", "tls", "ja3s"), ("quic_sni", "quic", "sni"),
    ("quic_ja4", "quic", "ja4"), ("http_method", "http", "method"), ("http_host", "http", "host"),
    ("http_uri", "http", "uri"), ("http_user_agent", "http", "user_agent"),
    ("http_status", "http", "status"),
)  # fmt: skip


#: CSV / Parquet columns, in order.
FLAT_FIELDS: tuple[str, ...] = (
    "uid", "community_id", "transport", "ip_proto", "orig_h", "orig_p", "resp_h", "resp_p",
    "icmp_id", "vlan", "vlan_inner", "service", "start_ts", "end_ts", "duration_s",
    "orig_pkts", "orig_ip_bytes", "orig_payload_bytes", "orig_bytes",
    "resp_pkts", "resp_ip_bytes", "resp_payload_bytes", "resp_bytes",
    "conn_state", "history", "flipped", "expiration", "first_file", "first_frame",
    "last_file", "last_frame", "datagrams_reassembled",
    *(f"orig_{k}" for k in TCP_ANALYSIS), *(f"resp_{k}" for k in TCP_ANALYSIS),
    "service_from", *(name for name, _, _ in APP_COLUMNS),
)  # fmt: skip


def _app_value(d: dict[str, Any], summary: str, key: str) -> Any:
    s = d.get(summary)
    if s is None:
        return None
    if summary == "http":
        if key == "status":
            codes = s.get("status_codes") or [None]
            return codes[0]
        reqs = s.get("request_list") or [{}]
        return reqs[0].get(key)
    return s.get(key)


def output_format(path: str, option: str) -> str:
    """The format ``path``'s extension names (:data:`FORMATS`), or a :class:`UsageError`
    naming ``option`` and the choices; Parquet also needs pyarrow importable."""
    ext = os.path.splitext(path)[1].lower()
    fmt = FORMATS.get(ext)
    if fmt is None:
        choices = ", ".join(sorted(FORMATS))
        raise UsageError(
            f"{option} {path}: unknown format {ext or '(no extension)'!r}; use one of {choices}"
        )
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError(
                f"{option} {path}: Parquet needs pyarrow (pip install 'netsift[parquet]'); "
                "or use .ndjson or .csv"
            ) from None
    return fmt


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def flat_row(rec: FlowRecord) -> dict[str, Any]:
    """The CSV/Parquet row of a flow (``FLAT_FIELDS``)."""
    d = rec.to_dict()
    row = {k: d.get(k) for k in FLAT_FIELDS}
    row["first_file"], row["first_frame"] = rec.first_file, rec.first_frame
    row["last_file"], row["last_frame"] = rec.last_file, rec.last_frame
    orig, resp = rec.orig_tcp, rec.resp_tcp
    for k in TCP_ANALYSIS:
        row[f"orig_{k}"] = orig[k] if orig is not None else None
        row[f"resp_{k}"] = resp[k] if resp is not None else None
    for name, summary, key in APP_COLUMNS:
        row[name] = _app_value(d, summary, key)
    return {k: row.get(k) for k in FLAT_FIELDS}


def ecs_document(rec: FlowRecord, inputs: list[str] | None = None) -> dict[str, Any]:
    """One flow as an ECS event (``event.kind: event``, ``event.category: network``)."""
    d = rec.to_dict()
    network: dict[str, Any] = {
        "transport": rec.transport,
        "iana_number": str(rec.proto),
        "community_id": rec.community_id,
        "packets": rec.packets,
        "bytes": rec.ip_bytes,
        "type": "ipv4" if "." in d["orig_h"] else "ipv6",
    }
    if rec.service:
        network["protocol"] = rec.service
    if rec.vlan is not None:
        network["vlan"] = {"id": str(rec.vlan)}
        if rec.vlan_inner is not None:
            network["inner"] = {"vlan": {"id": str(rec.vlan_inner)}}
    flow = {k: d[k] for k in ("uid", "conn_state", "history", "flipped", "expiration",
                              "orig_bytes", "resp_bytes", "orig_payload_bytes", "resp_payload_bytes",
                              "datagrams_reassembled", "first_packet", "last_packet")}  # fmt: skip
    if "icmp_id" in d:
        flow["icmp_id"] = d["icmp_id"]
    if "tcp_analysis" in d:
        flow["tcp_analysis"] = d["tcp_analysis"]
    if inputs:
        flow["first_packet"]["path"] = (
            inputs[rec.first_file] if rec.first_file < len(inputs) else None
        )
        flow["last_packet"]["path"] = inputs[rec.last_file] if rec.last_file < len(inputs) else None
    for k in APP_KEYS:
        if k in d:
            flow[k] = d[k]
    start = _iso(rec.start_ns)
    doc: dict[str, Any] = {
        "@timestamp": start,
        "ecs": {"version": "8.11.0"},
        "event": {
            "kind": "event",
            "category": ["network"],
            "type": ["connection", "end"],
            "action": "flow_" + rec.expiration,
            "id": rec.uid,
            "start": start,
            "end": _iso(rec.end_ns),
            "duration": rec.end_ns - rec.start_ns,
            "dataset": "netsift.flow",
        },
        "source": {
            "ip": d["orig_h"],
            "port": rec.orig_p,
            "packets": rec.orig_pkts,
            "bytes": rec.orig_ip_bytes,
        },
        "destination": {
            "ip": d["resp_h"],
            "port": rec.resp_p,
            "packets": rec.resp_pkts,
            "bytes": rec.resp_ip_bytes,
        },
        "network": network,
        "netsift": {"flow": flow},
    }
    doc.update(_ecs_app(d))
    return doc


def _ecs_app(d: dict[str, Any]) -> dict[str, Any]:
    """ECS fields of the flow's application summaries (the first query / hello / request)."""
    out: dict[str, Any] = {}
    dns = d.get("dns")
    if dns is not None and "query" in dns:
        e: dict[str, Any] = {"question": {"name": dns["query"]}}
        if dns.get("qtype"):
            e["question"]["type"] = dns["qtype"]
        if "rcode" in dns:
            e["response_code"] = dns["rcode"]
        if dns.get("answers"):
            e["answers"] = [{"data": a, "ttl": t} for a, t in zip(dns["answers"], dns["ttls"], strict=False)]
        out["dns"] = e
    hello = d.get("tls") or d.get("quic")
    if hello is not None:
        client = {k: hello[k] for k in ("ja3",) if hello.get(k)}
        if hello.get("sni"):
            client["server_name"] = hello["sni"]
        t: dict[str, Any] = {}
        if client:
            t["client"] = client
        if hello.get("ja3s"):
            t["server"] = {"ja3s": hello["ja3s"]}
        version = hello.get("version") if "tls" in d else None
        if isinstance(version, str) and version.startswith("TLSv"):
            t["version_protocol"], t["version"] = "tls", version[4:]
        if hello.get("cipher"):
            t["cipher"] = hello["cipher"]
        if hello.get("alpn_chosen"):
            t["next_protocol"] = hello["alpn_chosen"]
        if t:
            out["tls"] = t
    http = d.get("http")
    if http is not None and http.get("request_list"):
        first = http["request_list"][0]
        h: dict[str, Any] = {"request": {"method": first["method"]}}
        codes = http.get("status_codes") or []
        if codes and codes[0] is not None:
            h["response"] = {"status_code": codes[0]}
        out["http"] = h
        if first.get("uri"):
            out["url"] = {"original": first["uri"]}
            if first.get("host"):
                out["url"]["domain"] = first["host"].rsplit(":", 1)[0] if first["host"].count(":") == 1 else first["host"]
        if first.get("user_agent"):
            out["user_agent"] = {"original": first["user_agent"]}
    return out


class FlowWriter:
    """Streams flow records to ``path`` in the format its extension names (module doc)."""

    def __init__(self, path: str, inputs: list[str] | None = None) -> None:
        self.path = path
        self.format = output_format(path, "--flows")
        self.inputs = inputs
        self.written = 0
        self._file = AtomicFile(path, "the flows", prefix=".netsift-flows-")
        self._raw = self._file.raw
        self._text: io.TextIOWrapper | None = None
        self._csv: Any = None
        self._parquet: Any = None
        self._pending: list[dict[str, Any]] = []
        if self.format in ("ndjson", "csv"):
            self._text = io.TextIOWrapper(self._raw, encoding="utf-8", newline="")
        if self.format == "csv":
            assert self._text is not None
            self._csv = csv.DictWriter(
                self._text, fieldnames=list(FLAT_FIELDS), lineterminator="\n"
            )
            self._csv.writeheader()

    def write(self, records: list[FlowRecord]) -> None:
        try:
            if self.format == "ndjson":
                assert self._text is not None
                dumps = json.dumps
                self._text.write(
                    "".join(
                        dumps(ecs_document(r, self.inputs), ensure_ascii=False) + "\n"
                        for r in records
                    )
                )
            elif self.format == "csv":
                self._csv.writerows(flat_row(r) for r in records)
            else:
                self._pending.extend(flat_row(r) for r in records)
                if len(self._pending) >= 65_536:
                    self._flush_parquet()
        except OSError as exc:
            self.abort()
            raise OutputError(
                f"{self.path}: cannot write the flows ({exc.strerror or exc})"
            ) from None
        self.written += len(records)

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(self._pending, schema=_arrow_schema())
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._raw, table.schema, compression="zstd")
        self._parquet.write_table(table)
        self._pending = []

    def close(self) -> None:
        """Finish the file and move it into place."""
        try:
            if self.format == "parquet":
                if self._pending or self._parquet is None:
                    self._flush_parquet()
                self._parquet.close()
            if self._text is not None:
                self._text.flush()
        except OSError as exc:
            raise self._file.error(exc) from None
        self._file.commit()

    def abort(self) -> None:
        """Drop the temporary file (nothing appears under ``path``)."""
        self._file.abort()


def _arrow_schema() -> Any:
    import pyarrow as pa

    ints = {"ip_proto", "orig_p", "resp_p", "icmp_id", "vlan", "vlan_inner", "orig_pkts", "orig_ip_bytes",
            "orig_payload_bytes", "orig_bytes", "resp_pkts", "resp_ip_bytes", "resp_payload_bytes",
            "resp_bytes", "first_file", "first_frame", "last_file", "last_frame", "datagrams_reassembled",
            "http_status"}  # fmt: skip
    floats = {"start_ts", "end_ts", "duration_s"}
    fields = []
    for name in FLAT_FIELDS:
        if name in floats:
            t = pa.float64()
        elif name == "flipped":
            t = pa.bool_()
        elif name in ints or name[5:] in TCP_ANALYSIS:
            t = pa.int64()
        else:
            t = pa.string()
        fields.append(pa.field(name, t))
    return pa.schema(fields)
