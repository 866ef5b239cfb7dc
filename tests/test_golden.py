"""Golden tests: analyze each capture in tests/golden/ and check the facts its script recorded.

Every ``golden/<name>.pcap(ng)`` is built by ``golden/<name>.pcap(ng).py``, which
also writes ``golden/<name>.expected.json`` from what it built (never from
netsift).  Regenerate them all with ``python tests/golden/regen.py``.

Checks are partial matches (suricata-verify / JA4 style): only the facts listed
in the expected file are compared, each by a named *view* of the report below,
and every differing fact is reported in one assertion.  Tables the script knows
completely (protocol paths, talkers, ports, ...) must not contain extra rows;
nested dicts (a reason's evidence) are compared key by key, extra keys allowed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import netsift

GOLDEN = Path(__file__).resolve().parent / "golden"
EXPECTED = sorted(GOLDEN.glob("*.expected.json"))
#: large enough that no top-N table of a golden capture is cut
TOP_N = 1000


def _scapy_engine() -> str | None:
    """Why the scapy engine cannot run, or None when it can."""
    try:
        import netsift.decode_scapy  # noqa: F401
    except ImportError as exc:
        return f"netsift.decode_scapy is not importable yet ({exc})"
    return None


# ---------------------------------------------------------------- report views
def _by(rows: list[dict[str, Any]], key: str, *fields: str) -> dict[str, Any]:
    return {str(r[key]): {f: r[f] for f in fields} for r in rows}


def _talkers(side: str) -> Callable[[dict[str, Any]], Any]:
    return lambda r: _by(r["top_talkers"]["by_packets"][side], "address", "packets", "bytes")


def _top(side: str) -> Callable[[dict[str, Any]], Any]:
    def view(r: dict[str, Any]) -> Any:
        rows = r["top_talkers"]["by_packets"][side]
        return rows[0]["address"] if rows else None

    return view


def _ports(proto: str, side: str) -> Callable[[dict[str, Any]], Any]:
    return lambda r: {str(x["port"]): x["packets"] for x in r["ports"][proto][side]}


def _conversations(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("a_to_b_packets", "a_to_b_bytes", "b_to_a_packets", "b_to_a_bytes")
    return {f"{c['address_a']} <-> {c['address_b']}": {k: c[k] for k in keys}
            for c in r["conversations"]["top_by_bytes"]}


def _sizes(r: dict[str, Any]) -> dict[str, int]:
    return {f"{b['min']}-{'' if b['max'] is None else b['max']}": b["packets"]
            for b in r["packet_sizes"] if b["packets"]}


def _reasons(r: dict[str, Any]) -> dict[str, Any]:
    return {x["code"]: {"level": x["level"], "evidence": x["evidence"]}
            for x in r["quality"]["reasons"]}


#: fact name -> (view of the report, whether the expected table is complete).
#: Names not listed here are dotted paths into the report (``capture.packets``,
#: ``inputs.0.byte_order``).
VIEWS: dict[str, tuple[Callable[[dict[str, Any]], Any], bool]] = {
    "link_types": (lambda r: _by(r["capture"]["link_types"], "name", "link_type", "packets"), True),
    "interfaces": (lambda r: [i for inp in r["inputs"] for i in inp["interfaces"]], False),
    "protocols": (lambda r: _by(r["protocols"], "path", "frames", "bytes"), True),
    "talkers.sources": (_talkers("sources"), True),
    "talkers.destinations": (_talkers("destinations"), True),
    "talkers.top_source": (_top("sources"), False),
    "talkers.top_destination": (_top("destinations"), False),
    "conversations": (_conversations, True),
    "ports.tcp.src": (_ports("tcp", "src"), True),
    "ports.tcp.dst": (_ports("tcp", "dst"), True),
    "ports.udp.src": (_ports("udp", "src"), True),
    "ports.udp.dst": (_ports("udp", "dst"), True),
    "tcp_flags": (lambda r: {x["flags"]: x["packets"] for x in r["tcp_flags"]}, True),
    "packet_sizes": (_sizes, True),
    "timeseries.totals": (lambda r: {"packets": sum(r["timeseries"]["packets"]),
                                     "bytes": sum(r["timeseries"]["bytes"])}, True),
    "quality.reasons": (_reasons, True),
    "quality.hidden_layers": (lambda r: r["quality"]["hidden_layers"], True),
    "anomalies": (lambda r: r["anomalies"], True),
}


def view(report: dict[str, Any], fact: str) -> tuple[Any, bool]:
    if fact in VIEWS:
        fn, complete = VIEWS[fact]
        return fn(report), complete
    node: Any = report
    for part in fact.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, False


def compare(where: str, want: Any, got: Any, complete: bool, diffs: list[str]) -> int:
    """Append a line per difference to ``diffs``; return the number of leaf facts compared."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            diffs.append(f"{where}: expected a table, report has {got!r}")
            return 1
        n = 0
        for key, value in want.items():
            if key not in got:
                diffs.append(f"{where}[{key}]: expected {value!r}, absent from the report")
                n += 1
            else:
                n += compare(f"{where}[{key}]", value, got[key], False, diffs)
        extra = {k: v for k, v in got.items() if k not in want}
        if complete and extra:
            diffs.append(f"{where}: unexpected rows {extra!r}")
        return n + (1 if complete else 0)
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            diffs.append(f"{where}: expected {want!r}, report has {got!r}")
            return 1
        if not any(isinstance(w, (dict, list)) for w in want):  # a series: one fact
            bad = [i for i, (w, g) in enumerate(zip(want, got, strict=True)) if w != g]
            if bad:
                diffs.append(f"{where}: differs at {len(bad)} positions, first [{bad[0]}]: "
                             f"expected {want[bad[0]]!r}, report has {got[bad[0]]!r}")
            return 1
        return sum(compare(f"{where}[{i}]", w, g, False, diffs)
                   for i, (w, g) in enumerate(zip(want, got, strict=True)))
    if isinstance(want, float) and isinstance(got, (int, float)):
        ok = math.isclose(want, got, rel_tol=0, abs_tol=1e-6)
    else:
        ok = type(want) is type(got) and want == got
    if not ok:
        diffs.append(f"{where}: expected {want!r}, report has {got!r}")
    return 1


def check_facts(report: dict[str, Any], facts: dict[str, Any]) -> tuple[int, list[str]]:
    diffs: list[str] = []
    n = 0
    for fact, want in facts.items():
        try:
            got, complete = view(report, fact)
        except (KeyError, IndexError, TypeError) as exc:
            diffs.append(f"{fact}: not in the report ({exc!r})")
            n += 1
            continue
        n += compare(fact, want, got, complete, diffs)
    return n, diffs


# ----------------------------------------------------------------------- tests
@pytest.mark.parametrize("engine", ["fast", "scapy"])
@pytest.mark.parametrize("expected_path", EXPECTED,
                         ids=[p.name.removesuffix(".expected.json") for p in EXPECTED])
def test_golden_report(expected_path: Path, engine: str, validate_report: Any) -> None:
    if engine == "scapy" and (why := _scapy_engine()):
        pytest.skip(why)
    expected = json.loads(expected_path.read_text("utf-8"))
    capture = GOLDEN / expected["capture"]
    assert capture.is_file(), f"{capture.name} is missing: run tests/golden/regen.py"
    report = netsift.analyze([str(capture)], engine=engine, top_n=TOP_N).data
    validate_report(report)
    n, diffs = check_facts(report, expected["facts"])
    assert not diffs, (
        f"{capture.name} ({engine} engine): {len(diffs)} of {n} facts differ:\n  "
        + "\n  ".join(diffs)
    )


def test_golden_files_are_paired() -> None:
    """Every script has its capture and expected file, and every expected file a script."""
    scripts = sorted([*GOLDEN.glob("*.pcap.py"), *GOLDEN.glob("*.pcapng.py")])
    assert scripts, "no golden scripts found"
    problems = []
    for script in scripts:
        capture = script.with_suffix("")
        stem = capture.name.rsplit(".", 1)[0]
        if not capture.is_file():
            problems.append(f"{script.name}: {capture.name} missing")
        if not (GOLDEN / f"{stem}.expected.json").is_file():
            problems.append(f"{script.name}: {stem}.expected.json missing")
    for path in EXPECTED:
        name = json.loads(path.read_text("utf-8"))["capture"]
        if not (GOLDEN / f"{name}.py").is_file():
            problems.append(f"{path.name}: no script {name}.py")
    assert not problems, "; ".join(problems)


def test_golden_files_are_current() -> None:
    """The committed captures and expected files are what the scripts produce now."""
    pytest.importorskip("scapy")
    run = subprocess.run([sys.executable, str(GOLDEN / "regen.py"), "--check"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr or run.stdout
