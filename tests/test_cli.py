"""The command line and the public API: outputs, exit codes and one-line errors."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import netsift
from netsift.cli import main
from netsift.errors import ExitCode

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample.pcap"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return int(code), out, err


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_analyze_writes_valid_report_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], validate_report: Any
) -> None:
    out_file = tmp_path / "report.json"
    code, out, err = run(capsys, "analyze", str(SAMPLE), "-o", str(out_file))
    assert code == ExitCode.OK, err
    data = json.loads(out_file.read_text())
    validate_report(data)
    assert data["capture"]["packets"] == 514
    assert data["quality"]["verdict"] == "good"
    for heading in ("Capture", "Protocols", "Top talkers", "Top conversations"):
        assert heading in out
    assert f"report written to {out_file}" in out
    assert not list(tmp_path.glob(".netsift-*")), "temporary file left behind"
    umask = os.umask(0)
    os.umask(umask)
    assert out_file.stat().st_mode & 0o777 == 0o666 & ~umask


def test_json_mode_prints_the_report(capsys: pytest.CaptureFixture[str], validate_report: Any) -> None:
    code, out, _ = run(capsys, "analyze", str(SAMPLE), "--json", "--top", "3")
    assert code == ExitCode.OK
    data = json.loads(out)
    validate_report(data)
    assert len(data["top_talkers"]["by_packets"]["sources"]) == 3


def test_quiet_prints_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "analyze", str(SAMPLE), "-q", "-o", str(tmp_path / "r.json"))
    assert code == ExitCode.OK
    assert out == "" and err == ""


def test_schema_command_prints_a_valid_schema(capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema

    code, out, _ = run(capsys, "schema")
    assert code == ExitCode.OK
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == netsift.report_schema()


@pytest.mark.parametrize(
    ("args", "expected", "needle"),
    [
        (["analyze", "no/such/file.pcap"], ExitCode.NO_INPUT, "no/such/file.pcap"),
        (["analyze", "no/such/*.pcap"], ExitCode.NO_INPUT, "matches no file"),
        (["analyze", str(SAMPLE), "--engine", "turbo"], ExitCode.USAGE, "turbo"),
        (["analyze", str(SAMPLE), "--top", "0"], ExitCode.USAGE, "--top"),
        (["analyze", str(SAMPLE), "--frobnicate"], ExitCode.USAGE, "--frobnicate"),
        (["analyze"], ExitCode.USAGE, "CAPTURE"),
        (["explode"], ExitCode.USAGE, "explode"),
    ],
)
def test_user_errors_are_one_line_with_exit_codes(
    capsys: pytest.CaptureFixture[str], args: list[str], expected: ExitCode, needle: str
) -> None:
    code, _, err = run(capsys, *args)
    assert code == expected
    assert "Traceback" not in err
    assert needle in err


def test_not_a_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("these are not packets\n")
    code, _, err = run(capsys, "analyze", str(text))
    assert code == ExitCode.NOT_CAPTURE
    assert_one_line_error(err, "notes.txt", "not a pcap or pcapng")


def test_gzip_of_text_is_not_a_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gz = tmp_path / "x.pcap.gz"
    gz.write_bytes(gzip.compress(b"hello world, not a capture"))
    code, _, err = run(capsys, "analyze", str(gz))
    assert code == ExitCode.NOT_CAPTURE
    assert_one_line_error(err, "x.pcap.gz")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked.pcap"
    shutil.copy(SAMPLE, locked)
    locked.chmod(0)
    code, _, err = run(capsys, "analyze", str(locked))
    assert code == ExitCode.UNREADABLE
    assert_one_line_error(err, "locked.pcap", "permission denied")


def test_output_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "analyze", str(SAMPLE), "-q", "-o", str(tmp_path / "missing" / "r.json"))
    assert code == ExitCode.OUTPUT
    assert_one_line_error(err, "does not exist")
    code, _, err = run(capsys, "analyze", str(SAMPLE), "-q", "-o", str(tmp_path))
    assert code in (ExitCode.OUTPUT, ExitCode.USAGE)
    assert "Traceback" not in err


def test_directory_input_reads_captures_and_lists_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], validate_report: Any
) -> None:
    (tmp_path / "sub").mkdir()
    shutil.copy(SAMPLE, tmp_path / "a.pcap")
    (tmp_path / "sub" / "b.pcap.gz").write_bytes(gzip.compress(SAMPLE.read_bytes()))
    (tmp_path / "README.txt").write_text("not a capture")
    code, out, err = run(capsys, "analyze", str(tmp_path), "--json")
    assert code == ExitCode.OK, err
    data = json.loads(out)
    validate_report(data)
    assert [Path(i["path"]).name for i in data["inputs"]] == ["a.pcap", "b.pcap.gz"]
    assert data["inputs"][1]["compression"] == "gzip"
    assert all(i["packets"] == 514 for i in data["inputs"])
    assert data["capture"]["packets"] == 2 * 514
    assert data["capture"]["files"] == 2
    assert [Path(s["path"]).name for s in data["skipped_inputs"]] == ["README.txt"]
    # The same capture twice: every count doubles, the hierarchy too.
    single = netsift.analyze([str(SAMPLE)])
    by_path = {p["path"]: p["frames"] for p in single["protocols"]}
    assert {p["path"]: p["frames"] for p in data["protocols"]} == {k: 2 * v for k, v in by_path.items()}


def test_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "analyze", str(tmp_path))
    assert code == ExitCode.NO_INPUT
    assert_one_line_error(err, "no capture files")


def test_cut_capture_keeps_results_and_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], validate_report: Any
) -> None:
    data = SAMPLE.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])
    code, out, err = run(capsys, "analyze", str(cut), "--json")
    assert code == ExitCode.OK
    assert "warning" in err and "cut.pcap" in err and "middle of a record" in err
    report = json.loads(out)
    validate_report(report)
    assert report["inputs"][0]["status"] == "damaged"
    assert report["inputs"][0]["warnings"][0]["code"] == "cut_short"
    assert 100 < report["capture"]["packets"] < 514
    assert report["quality"]["verdict"] == "degraded"
    assert "damaged_file" in [r["code"] for r in report["quality"]["reasons"]]


def test_interrupted_run_returns_a_partial_report() -> None:
    calls = []

    def stop(done: int, total: int, packets: int) -> None:
        calls.append(packets)
        raise KeyboardInterrupt

    report = netsift.analyze([str(SAMPLE), str(SAMPLE)], progress=stop)
    assert report["run"]["partial"] is True
    assert len(report["inputs"]) == 1
    assert report["capture"]["packets"] == calls[0] > 0


def test_python_dash_m_and_help_examples() -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    for args in (["--help"], ["analyze", "--help"], ["schema", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "netsift", *args], capture_output=True,
                              text=True, check=False, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "Example" in proc.stdout
        assert "Exit codes" in proc.stdout or args == ["schema", "--help"]


def test_public_api() -> None:
    assert set(netsift.__all__) == {
        "ExitCode", "NetsiftError", "Report", "__version__", "analyze", "report_schema"
    }
    report = netsift.analyze(str(SAMPLE))
    assert isinstance(report, netsift.Report)
    stable = report.stable()
    assert "generated_at" not in stable["run"] and "version" not in stable["tool"]
    assert report.stable() == netsift.analyze(str(SAMPLE)).stable()


def test_permission_denied_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root reads anything, so simulate the kernel's answer for an unreadable file."""
    import netsift.capture

    def denied(*_args: Any, **_kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(netsift.capture, "open", denied, raising=False)
    code, _, err = run(capsys, "analyze", str(SAMPLE))
    assert code == ExitCode.UNREADABLE
    assert_one_line_error(err, "sample.pcap", "permission denied")


def test_every_report_in_the_suite_is_schema_checked() -> None:
    """The autouse fixture in conftest.py validates each Report as it is built."""
    with pytest.raises(AssertionError, match="violates its schema"):
        netsift.Report({"schema_version": "1.0"})


def test_sigterm_writes_a_partial_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM arriving mid-run (here: while the second file is analysed) ends like Ctrl-C."""
    import signal

    import netsift.stats

    original = netsift.stats.TrafficStats.update
    calls = []

    def update(self: Any, cols: Any, batch: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # handled by netsift analyze's SIGTERM handler
        original(self, cols, batch)

    monkeypatch.setattr(netsift.stats.TrafficStats, "update", update)
    previous = signal.getsignal(signal.SIGTERM)
    out_file = tmp_path / "partial.json"
    second = tmp_path / "second.pcap"  # the same path twice would be read once
    shutil.copy(SAMPLE, second)
    try:
        code, _, err = run(capsys, "analyze", str(SAMPLE), str(second), "-q", "-o", str(out_file))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == ExitCode.INTERRUPTED
    assert_one_line_error(err, "interrupted", "covers what was read")
    data = json.loads(out_file.read_text())
    assert data["run"]["partial"] is True
    assert len(data["inputs"]) == 2
    assert data["capture"]["packets"] == 514 + data["inputs"][1]["packets"]


def test_every_command_help_has_examples_and_exit_codes(capsys):
    import click

    from netsift.cli import cli

    names = cli.list_commands(click.Context(cli))
    assert {"analyze", "live", "craft", "scan"} <= set(names)
    for name in names:
        assert main([name, "--help"]) == 0
        out = capsys.readouterr().out
        marker = "Examples:" if "Examples:" in out else "Example:"
        assert marker in out and "netsift " + name in out.split(marker, 1)[1], name
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in names:
        assert f"netsift {name}" in out, name
