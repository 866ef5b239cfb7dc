"""``--flows FILE``: the NDJSON (ECS), CSV and Parquet flow exports and their failure modes."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from flowgen import CLIENT, SERVER, T0, Tcp, icmp, udp, write
from netsift import flow_export
from netsift.cli import main
from netsift.errors import ExitCode
from netsift.flow_export import FLAT_FIELDS, FlowWriter
from netsift.pipeline import analyze


def crafted(tmp_path: Path) -> Path:
    c = Tcp()
    pkts = [
        *c.handshake(),
        c.c(0.03, "PA", 1001, 5001, b"q" * 100),
        c.s(0.05, "PA", 5001, 1101, b"r" * 300),
        c.c(0.07, "FA", 1101, 5301),
        c.s(0.08, "FA", 5301, 1102),
        c.c(0.09, "A", 1102, 5302),
        udp(1.0, CLIENT, "10.0.0.53", 53000, 53, b"\1" * 29),
        udp(1.01, "10.0.0.53", CLIENT, 53, 53000, b"\2" * 45, to_server=False),
        icmp(2.0, CLIENT, SERVER, 8, 0x77, 1),
    ]
    return write(tmp_path / "crafted.pcap", pkts)


def run_export(tmp_path: Path, name: str) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / name
    data = analyze([str(crafted(tmp_path))], flow_engine="python", flows_path=str(out)).data
    return out, data


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("suffix", [".ndjson", ".jsonl", ".json"])
def test_ndjson_lines_are_ecs_documents_matching_the_report(tmp_path: Path, suffix: str) -> None:
    out, data = run_export(tmp_path, "flows" + suffix)
    records = {r["uid"]: r for r in data["flows"]["records"]}
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(records) == data["flows"]["total"] == 3
    seen = set()
    for line in lines:
        doc = json.loads(line)
        flow = doc["netsift"]["flow"]
        rec = records[flow["uid"]]
        seen.add(flow["uid"])
        assert doc["source"]["ip"] == rec["orig_h"]
        assert doc["source"]["port"] == rec["orig_p"]
        assert doc["destination"]["ip"] == rec["resp_h"]
        assert doc["destination"]["port"] == rec["resp_p"]
        assert doc["source"]["packets"] == rec["orig_pkts"]
        assert doc["destination"]["bytes"] == rec["resp_ip_bytes"]
        assert doc["network"]["transport"] == rec["transport"]
        assert doc["network"]["iana_number"] == str(rec["ip_proto"])
        assert doc["network"]["community_id"] == rec["community_id"]
        assert doc["network"]["packets"] == rec["orig_pkts"] + rec["resp_pkts"]
        assert doc["network"]["type"] == "ipv4"
        assert doc["event"]["kind"] == "event"
        assert doc["event"]["category"] == ["network"]
        assert doc["event"]["id"] == rec["uid"]
        assert doc["event"]["start"] == doc["@timestamp"] == iso(rec["start_ts"])
        assert doc["event"]["end"] == iso(rec["end_ts"])
        assert doc["event"]["duration"] == round(rec["duration_s"] * 1e9)  # nanoseconds
        assert doc["event"]["action"] == "flow_" + rec["expiration"]
        assert flow["conn_state"] == rec["conn_state"]
        assert flow["history"] == rec["history"]
        assert flow["first_packet"]["path"] == data["inputs"][0]["path"]
        if rec["transport"] == "tcp":
            assert flow["tcp_analysis"] == rec["tcp_analysis"]
        if rec["transport"] == "icmp":
            assert flow["icmp_id"] == 0x77
    assert seen == set(records)
    by_transport = {json.loads(x)["network"]["transport"]: json.loads(x) for x in lines}
    tcp = by_transport["tcp"]
    assert tcp["network"]["protocol"] == "http"
    assert tcp["netsift"]["flow"]["conn_state"] == "SF"
    assert tcp["netsift"]["flow"]["history"] == "ShADdFf"
    assert tcp["event"]["start"] == "2023-11-14T22:13:20Z"
    assert tcp["event"]["duration"] == 80_000_000
    assert by_transport["udp"]["netsift"]["flow"]["conn_state"] == "SF"
    assert by_transport["udp"]["netsift"]["flow"]["orig_bytes"] == 29
    assert by_transport["udp"]["netsift"]["flow"]["resp_bytes"] == 45


def test_csv_header_and_rows_round_trip(tmp_path: Path) -> None:
    out, data = run_export(tmp_path, "flows.csv")
    with out.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    assert tuple(header) == FLAT_FIELDS
    assert len(rows) == data["flows"]["total"] == 3
    records = {r["uid"]: r for r in data["flows"]["records"]}
    for row in rows:
        got = dict(zip(header, row, strict=True))
        rec = records[got["uid"]]
        for key in (
            "community_id",
            "transport",
            "orig_h",
            "resp_h",
            "conn_state",
            "history",
            "expiration",
        ):
            assert got[key] == rec[key], key
        for key in ("ip_proto", "orig_p", "resp_p", "orig_pkts", "resp_pkts", "orig_ip_bytes",
                    "resp_ip_bytes", "orig_bytes", "resp_bytes", "datagrams_reassembled"):  # fmt: skip
            assert int(got[key]) == rec[key], key
        assert float(got["start_ts"]) == rec["start_ts"]
        assert float(got["duration_s"]) == rec["duration_s"]
        assert (int(got["first_file"]), int(got["first_frame"])) == (
            0,
            rec["first_packet"]["frame"],
        )
        assert got["flipped"] == str(rec["flipped"])
        if rec["transport"] == "tcp":
            for k, v in rec["tcp_analysis"]["orig"].items():
                assert int(got["orig_" + k]) == v
        else:
            assert got["orig_retransmissions"] == ""  # None: no TCP analysis
        assert got["icmp_id"] == ("119" if rec["transport"] == "icmp" else "")
        assert got["vlan"] == ""


def test_parquet_rows_and_columns(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out, data = run_export(tmp_path, "flows.parquet")
    table = pq.read_table(out)
    assert table.num_rows == data["flows"]["total"] == 3
    assert tuple(table.column_names) == FLAT_FIELDS
    rows = {r["uid"]: r for r in table.to_pylist()}
    for rec in data["flows"]["records"]:
        row = rows[rec["uid"]]
        assert (row["orig_h"], row["orig_p"], row["resp_p"]) == (
            rec["orig_h"],
            rec["orig_p"],
            rec["resp_p"],
        )
        assert (row["conn_state"], row["history"]) == (rec["conn_state"], rec["history"])
        assert row["orig_bytes"] == rec["orig_bytes"] and row["start_ts"] == rec["start_ts"]
    assert str(table.schema.field("orig_pkts").type) == "int64"
    assert str(table.schema.field("flipped").type) == "bool"


def test_empty_capture_still_writes_a_valid_parquet_file(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from scapy.layers.l2 import ARP

    from flowgen import eth

    path = write(tmp_path / "arp.pcap", [eth() / ARP()])
    out = tmp_path / "none.parquet"
    data = analyze([str(path)], flows_path=str(out)).data
    assert data["flows"]["total"] == 0 and data["flows"]["packets_not_in_flows"]["not_ip"] == 1
    assert pq.read_table(out).num_rows == 0


def test_csv_via_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "f.csv"
    code = main(["analyze", str(crafted(tmp_path)), "--flows", str(out)])
    stdout, err = capsys.readouterr()
    assert code == ExitCode.OK, err
    assert f"3 flows written to {out}" in stdout
    assert len(out.read_text().splitlines()) == 4


def one_error_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_unknown_extension_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "flows.xlsx"
    code = main(["analyze", str(crafted(tmp_path)), "--flows", str(target), "-q"])
    _, err = capsys.readouterr()
    assert code == ExitCode.USAGE == 2
    line = one_error_line(err)
    assert "'.xlsx'" in line and ".ndjson" in line and ".csv" in line
    assert not target.exists()
    assert not list(tmp_path.glob(".netsift-flows-*"))


def test_missing_directory_is_an_output_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nowhere" / "flows.ndjson"
    code = main(["analyze", str(crafted(tmp_path)), "--flows", str(target), "-q"])
    _, err = capsys.readouterr()
    assert code == ExitCode.OUTPUT == 6
    assert "does not exist" in one_error_line(err)


def test_flows_and_no_flows_contradict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "f.ndjson"
    code = main(["analyze", str(crafted(tmp_path)), "--flows", str(target), "--no-flows"])
    _, err = capsys.readouterr()
    assert code == ExitCode.USAGE
    assert "--no-flows" in err and "Traceback" not in err
    assert not target.exists()


def test_interrupted_run_leaves_no_partial_export(tmp_path: Path) -> None:
    path = crafted(tmp_path)
    target = tmp_path / "f.ndjson"
    target.write_text("previous\n")

    def interrupt(done: int, total: int, packets: int) -> None:
        raise KeyboardInterrupt

    rep = analyze([str(path)], flows_path=str(target), progress=interrupt)
    # a Ctrl-C while reading ends the run with what was read; the export it completes
    # replaces the old file atomically
    assert rep.data["run"]["partial"] is True
    assert len(target.read_text().splitlines()) == rep.data["flows"]["total"]
    assert not list(tmp_path.glob(".netsift-flows-*"))


def test_writer_failure_leaves_neither_target_nor_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.csv"

    def boom(self: FlowWriter, records: list[Any]) -> None:
        raise RuntimeError("writer failed")

    monkeypatch.setattr(FlowWriter, "write", boom)
    with pytest.raises(RuntimeError, match="writer failed"):
        analyze([str(crafted(tmp_path))], flows_path=str(target))
    assert not target.exists()
    assert not list(tmp_path.glob(".netsift-flows-*"))


def test_disk_error_while_writing_is_an_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from netsift.errors import OutputError

    target = tmp_path / "f.ndjson"
    real_dumps = json.dumps

    def full(*a: Any, **k: Any) -> str:
        raise OSError(28, "No space left on device")

    writer = FlowWriter(str(target))
    monkeypatch.setattr(flow_export.json, "dumps", full)
    from netsift.flows import FlowTable

    table = FlowTable()
    from flowgen import run_table

    recs = run_table(crafted(tmp_path), table=table)
    with pytest.raises(OutputError, match="No space left on device"):
        writer.write(recs)
    monkeypatch.setattr(flow_export.json, "dumps", real_dumps)
    assert not target.exists()
    assert not list(tmp_path.glob(".netsift-flows-*"))


def test_export_file_mode_follows_the_umask(tmp_path: Path) -> None:
    import os

    out, _ = run_export(tmp_path, "f.jsonl")
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_export_start_time_is_utc_iso(tmp_path: Path) -> None:
    out, _ = run_export(tmp_path, "f.ndjson")
    first = json.loads(out.read_text().splitlines()[0])
    assert first["@timestamp"] == iso(T0)
