"""Corruption test (issue 9): Wireshark-style ``editcap -E`` fuzzing and tcpdump's malformed captures.

- A deterministic spread of corpus captures (ether, null, raw, sll, sll2; pcap
  and pcapng) is corrupted by ``editcap -E <ratio> --seed <n>`` for several
  ratios.  ``netsift.analyze`` must return a complete report, counting exactly
  the packets ``capinfos`` counts (``editcap -E`` damages packet bytes, not
  record headers), and the C, numpy and Scapy decoders must fill identical
  columns from the damaged packets.  By default 40 files; ``CI=true`` about 300.
- Every ``*oobr*`` / ``*asan*`` capture of the tcpdump test suite (crafted to
  crash dissectors) goes through the CLI in-process: exit code 0, or the
  documented one-line "not a capture" error, no traceback, a schema-valid report.

Only the external tools run under a timeout (``subprocess.run(timeout=...)``);
nothing times netsift.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

import netsift
from netsift import decode_fast, decode_scapy
from netsift.capture import CaptureReader
from netsift.cli import main
from netsift.errors import ExitCode
from test_differential import mismatches

pytestmark = pytest.mark.corpus

#: ``editcap -E`` error probabilities (per byte): barely, Wireshark's fuzz default, heavily.
RATIOS = (0.001, 0.02, 0.1)
#: FILES.tsv encapsulations we decode (Wireshark's names).
ENCAPSULATIONS = ("ether", "null", "rawip", "rawip4", "rawip6", "linux-sll", "linux-sll2")
FORMATS = ("pcap", "pcapng")
CI = os.environ.get("CI") == "true"
#: Files corrupted per run, and the largest (FILES.tsv packet count) one may be.
SAMPLE_FILES = 300 if CI else 40
SAMPLE_MAX_PACKETS = 50_000 if CI else 3_000
#: The Scapy engine (slow) runs on every Nth corrupted file only.
SCAPY_EVERY = 4
TOOL_TIMEOUT_S = 120
REPORT_SECTIONS = netsift.report_schema()["required"]


def _sample(root: Path) -> list[str]:
    """Every Nth decodable capture of each (encapsulation, format) group, by sorted path."""
    with (root / "FILES.tsv").open(newline="", encoding="utf-8") as fh:
        rows = [
            r
            for r in csv.DictReader(fh, delimiter="\t")
            if r["role"] == "capture"
            and r["encapsulation"] in ENCAPSULATIONS
            and r["capture_format"] in FORMATS
            and 0 < int(r["packets"] or 0) <= SAMPLE_MAX_PACKETS
            and (root / r["path"]).is_file()
        ]
    groups: dict[tuple[str, str], list[str]] = {}
    for r in sorted(rows, key=lambda r: r["path"]):
        groups.setdefault((r["encapsulation"], r["capture_format"]), []).append(r["path"])
    chosen: list[str] = []
    spare = max(0, SAMPLE_FILES - 2 * len(groups))
    for paths in groups.values():  # 2 of each group, the rest of the budget in proportion
        quota = 2 + round(spare * len(paths) / len(rows))
        chosen += paths[:: max(1, len(paths) // quota)][:quota]
    return sorted(chosen)


@pytest.fixture(scope="module")
def editcap() -> str:
    tool = shutil.which("editcap")
    if tool is None or shutil.which("capinfos") is None:
        pytest.skip("editcap/capinfos (Wireshark's tshark package) are not installed")
    return tool


@pytest.fixture(scope="module")
def sample(corpus_dir: Path) -> list[str]:
    if not (corpus_dir / "FILES.tsv").is_file():
        pytest.skip(f"no FILES.tsv in {corpus_dir}")
    return _sample(corpus_dir)


def _capinfos_count(path: Path) -> int | None:
    """Packets capinfos reads, or None when it reports the file as damaged."""
    done = subprocess.run(
        ["capinfos", "-c", "-M", str(path)],
        capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False,
    )
    found = re.search(r"Number of packets:\s*(\d+)", done.stdout)
    if done.returncode != 0 or found is None:
        return None
    return int(found.group(1))


def _decode_all_ways(path: Path) -> int:
    """C vs numpy vs Scapy columns on every batch; returns the packets read."""
    packets = 0
    with CaptureReader(str(path)) as reader:
        for batch in reader.batches():
            fast = decode_fast.decode(batch)
            for name, other in (
                ("numpy", decode_fast._decode_numpy(batch)),
                ("scapy", decode_scapy.decode(batch)),
            ):
                diff = mismatches(fast, other)
                assert not diff, f"{path}: fast and {name} disagree\n" + "\n".join(diff)
            packets += len(batch)
    return packets


def test_sample_covers_every_link_type_and_format(sample: list[str], corpus_dir: Path) -> None:
    with (corpus_dir / "FILES.tsv").open(newline="", encoding="utf-8") as fh:
        kinds = {
            (r["encapsulation"], r["capture_format"])
            for r in csv.DictReader(fh, delimiter="\t")
            if r["path"] in set(sample)
        }
    encaps = {e for e, _f in kinds}
    assert {"ether", "null", "linux-sll", "linux-sll2"} <= encaps, encaps
    assert encaps & {"rawip", "rawip4", "rawip6"}, encaps
    assert {f for _e, f in kinds} == set(FORMATS), kinds


@pytest.mark.parametrize("ratio", RATIOS)
def test_editcap_corrupted_captures_analyse_completely(
    ratio: float, sample: list[str], corpus_dir: Path, editcap: str, tmp_path: Path
) -> None:
    checked = 0
    for index, rel in enumerate(sample):
        seed = zlib.crc32(f"{rel}:{ratio}".encode()) % 100_000
        out = tmp_path / f"{index}{Path(rel).suffix}"
        subprocess.run(
            [editcap, "-E", str(ratio), "--seed", str(seed), str(corpus_dir / rel), str(out)],
            capture_output=True, timeout=TOOL_TIMEOUT_S, check=True,
        )
        context = f"{rel} (editcap -E {ratio} --seed {seed})"
        report = netsift.analyze(str(out))
        data = report.data
        assert set(REPORT_SECTIONS) <= set(data), context
        expected = _capinfos_count(out)
        source = data["inputs"][0]
        if expected is None:  # record headers hit: our reader must say so
            assert source["warnings"] and source["status"] == "damaged", context
        else:
            assert data["capture"]["packets"] == expected, context
            assert source["status"] == "ok", (context, source["warnings"])
        if index % SCAPY_EVERY == 0:
            assert _decode_all_ways(out) == data["capture"]["packets"], context
            ref = netsift.analyze(str(out), engine="scapy").data
            for section in ("capture", "protocols", "tcp_flags", "packet_sizes"):
                if section == "capture":
                    assert ref[section]["packets"] == data[section]["packets"], context
                else:
                    assert ref[section] == data[section], (context, section)
        out.unlink()
        checked += 1
    assert checked == len(sample)


def _malformed_tcpdump_captures() -> list[Any]:
    root = (Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "tcpdump" / "tests")
    env = os.environ.get("NETSIFT_CORPUS")
    if env:
        root = Path(env) / "tcpdump" / "tests"
    if not root.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{root} is absent"), id="absent")]
    files = sorted(
        p for p in root.iterdir()
        if ("oobr" in p.name or "asan" in p.name) and p.suffix in (".pcap", ".pcapng", ".cap")
    )
    return [pytest.param(p, id=p.name) for p in files]


@pytest.mark.parametrize("capture", _malformed_tcpdump_captures())
def test_tcpdump_malformed_capture_analyses_cleanly(
    capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], validate_report: Any
) -> None:
    out = tmp_path / "report.json"
    code = main(["analyze", str(capture), "-q", "-o", str(out)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    if code == ExitCode.OK:
        validate_report(json.loads(out.read_text(encoding="utf-8")))
    else:
        assert code in (ExitCode.NOT_CAPTURE, ExitCode.NO_INPUT), (code, captured.err)
        errors = [ln for ln in captured.err.splitlines() if "error" in ln]
        assert len(errors) == 1 and errors[0].startswith("netsift: error: "), captured.err
        assert not out.exists()
