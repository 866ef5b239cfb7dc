"""Split runs (``analyze --jobs N``, ``--dask-scheduler``) give the report and the flow
export of one process.

The promise (src/netsift/parallel.py, docs of ``--jobs``): the JSON report equals the
``--jobs 1`` report once the volatile fields are removed (the whole ``run`` object,
``tool``, and the path in ``flows.export``), and the flow export is identical byte for
byte while at most 65,536 flows are open at the end of the capture.  Runs whose
live-flow cap evicts flows, and interrupted runs, are documented exceptions and are
not compared here.

Most comparisons call the Python API (:func:`netsift.pipeline.analyze` against
:func:`netsift.parallel.analyze_split`) to keep the time down; a few go through the
command line, as a user would.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import parallelgen
from conftest import REPO_ROOT
from netsift.errors import ExitCode
from netsift.parallel import analyze_split
from netsift.pipeline import RunOptions, analyze, run_part

#: the application layer (DNS, TLS, QUIC, HTTP) takes part in every comparison
APP = True

TOOL = [sys.executable, "-m", "netsift"]

# -- comparing reports -----------------------------------------------------------------------


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what may differ between runs: ``run``, ``tool`` and the export's path."""
    data = copy.deepcopy(report)
    data.pop("run", None)
    data.pop("tool", None)
    export = (data.get("flows") or {}).get("export")
    if isinstance(export, dict):
        export.pop("path", None)
    return data


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def differences(a: Any, b: Any, path: str = "") -> Iterator[str]:
    """Where two JSON values differ: one line per differing leaf, named by its path."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) == set(b) and list(a) != list(b):  # the report is compared as bytes: order counts
            yield f"{path or '(top)'}: keys in another order: single {list(a)} != split {list(b)}"
        for key in sorted(set(a) | set(b), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in b:
                yield f"{where}: only in the single run: {_short(a[key])}"
            elif key not in a:
                yield f"{where}: only in the split run: {_short(b[key])}"
            else:
                yield from differences(a[key], b[key], where)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield f"{path}: {len(a)} items in the single run, {len(b)} in the split run"
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            # name findings by detector and code, so a failure says which one differs
            label = f"{i} {x['detector']}/{x['code']}" if isinstance(x, dict) and "code" in x and "detector" in x else i
            yield from differences(x, y, f"{path}[{label}]")
    elif a != b or type(a) is not type(b):
        yield f"{path}: single {_short(a)} != split {_short(b)}"


def diff_text(single: dict[str, Any], split: dict[str, Any], limit: int = 30) -> str:
    """A readable account of how two reports differ: the top-level sections and their
    sub-keys that differ, then the first differing leaves."""
    a, b = comparable(single), comparable(split)
    lines = list(differences(a, b))
    if not lines:
        assert json.dumps(a) == json.dumps(b), "the reports differ in a way the helper does not name"
        return ""
    sections: dict[str, set[str]] = {}
    for line in lines:
        where = line.split(":", 1)[0]
        head, _, rest = where.partition(".")
        top = head.split("[", 1)[0]
        sub = rest.split(".", 1)[0].split("[", 1)[0] if rest else head[len(top):] or "(value)"
        sections.setdefault(top, set()).add(sub)
    summary = "; ".join(f"{top}: {', '.join(sorted(subs))}" for top, subs in sorted(sections.items()))
    shown = "\n  ".join(lines[:limit])
    more = f"\n  ... and {len(lines) - limit} more differences" if len(lines) > limit else ""
    return f"{len(lines)} differences in [{summary}]\n  {shown}{more}"


def assert_same_report(single: dict[str, Any], split: dict[str, Any], what: str) -> None:
    text = diff_text(single, split)
    assert not text, f"{what}: the split run's report differs from the single run's: {text}"


def assert_same_export(single: Path, split: Path, what: str) -> None:
    a, b = single.read_bytes(), split.read_bytes()
    if a == b:
        return
    la, lb = a.splitlines(), b.splitlines()
    first = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), min(len(la), len(lb)))
    row_a = la[first][:200] if first < len(la) else b"(end of file)"
    row_b = lb[first][:200] if first < len(lb) else b"(end of file)"
    raise AssertionError(
        f"{what}: the flow exports differ ({len(la)} lines single, {len(lb)} split); first at line "
        f"{first + 1}:\n  single: {row_a!r}\n  split:  {row_b!r}"
    )


def test_the_diff_helper_names_sections_and_keys() -> None:
    """The helper the comparisons rely on finds and names differences (and ignores run/tool)."""
    a = {"run": {"elapsed_s": 1}, "tool": {"version": "1"}, "capture": {"packets": 3},
         "flows": {"total": 2, "export": {"path": "a.csv", "records": 2}}}  # fmt: skip
    b = copy.deepcopy(a)
    b["run"]["elapsed_s"] = 9
    b["tool"]["version"] = "2"
    b["flows"]["export"]["path"] = "b.csv"
    assert diff_text(a, b) == ""
    b["flows"]["total"] = 3
    b["capture"]["extra"] = [1]
    text = diff_text(a, b)
    assert "capture: extra" in text and "flows: total" in text
    assert "flows.total: single 2 != split 3" in text
    b["flows"]["export"]["records"] = 1
    assert "flows: export, total" in diff_text(a, b)


# -- corpus captures -----------------------------------------------------------------------

PPP = "pcapplusplus/Tests"
ZEEK = "zeek/testing/btest/Traces"
NDPI = "ndpi/tests/cfgs/default/pcap"
CS = "chrissanders-packets"

#: (test id, inputs relative to the corpus): what each one is there for is in its id
CAPTURES: list[tuple[str, list[str]]] = [
    ("dns-udp", [f"{CS}/dns.pcap"]),
    ("dns-tcp", [f"{CS}/dns_tcp.pcapng"]),
    ("dns-tunnel", [f"{NDPI}/dns-tunnel-iodine.pcap"]),
    ("tls-handshake-pcapng", ["foxio-ja4/pcap/tls-handshake.pcapng"]),
    ("tls-ipv4-ipv6", [f"{PPP}/ExamplesTest/pcap_examples/tls2.pcap"]),
    ("quic", ["foxio-ja4/pcap/quic-tls-handshake.pcapng"]),
    ("quic-out-of-order-frags", [f"{NDPI}/quic_frags_ch_out_of_order_same_packet_craziness.pcapng"]),
    ("http", ["dpkt/examples/data/http.pcap"]),
    ("http-ipv4-and-ipv6", [f"{CS}/http_ip4and6.pcapng"]),
    ("ipv4-fragments", [f"{PPP}/ExamplesTest/pcap_examples/ip-frag.pcap"]),
    ("ipv4-fragmented-dns-amplification", ["stopddos-packet-captures/amp.dns.RRSIG.fragmented.pcap"]),
    ("ipv6-fragments", [f"{PPP}/ExamplesTest/pcap_examples/ipv6-frag.pcap"]),
    ("ipv6-fragmented-dns", [f"{ZEEK}/ipv6-fragmented-dns.pcap", f"{CS}/ipv6_fragments.pcapng"]),
    ("vlan-qinq", [f"{ZEEK}/vlan-qinqinq.pcap", f"{ZEEK}/q-in-q.pcap", "arkime/tests/pcap/twovlan.pcap"]),
    ("pcapng-many-interfaces", [f"{PPP}/Pcap++Test/PcapExamples/many_interfaces-1.pcapng"]),
    ("pcapng-two-link-types", [f"{PPP}/Pcap++Test/PcapExamples/pcapng-example.pcapng",
                               f"{ZEEK}/pcapng-multi-interface.pcapng"]),
    ("duplicates-retransmissions", [f"{CS}/tcp_dupack.pcapng", f"{CS}/tcp_retransmissions.pcapng"]),
    ("last-record-cut", ["dpkt/examples/data/truncated_dns_2.pcap", f"{NDPI}/fuzz-2021-10-13.pcap"]),
    ("truncated-headers-directory", [f"{ZEEK}/trunc"]),
    ("fragment-directory", [f"{ZEEK}/ipv4"]),
    ("many-files-list", [f"{CS}/dns.pcap", "dpkt/examples/data/http.pcap", "foxio-ja4/pcap/tls-handshake.pcapng",
                         f"{ZEEK}/ipv6-fragmented-dns.pcap", f"{CS}/dns.pcap"]),
    ("syn-flood-scan", ["stopddos-packet-captures/pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng", f"{CS}/tcp_ports.pcapng"]),
]

#: Ethernet pcaps (little-endian, microseconds) concatenated into the multi-batch capture
BIG_PARTS = [
    f"{ZEEK}/echo-connections.pcap",
    f"{PPP}/Pcap++Test/PcapExamples/example.pcap",
    f"{PPP}/ExamplesTest/pcap_examples/tls2.pcap",
    f"{PPP}/ExamplesTest/pcap_examples/ip-frag.pcap",
    f"{PPP}/ExamplesTest/pcap_examples/http-packets.pcap",
    f"{NDPI}/1kxun.pcap",
    "stopddos-packet-captures/amp.dns.RRSIG.fragmented.pcap",
]


def _inputs(corpus: Path, rel: list[str]) -> list[str]:
    paths = [corpus / r for r in rel]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"corpus capture(s) missing from this copy of the corpus: {', '.join(missing)}")
    return [str(p) for p in paths]


@pytest.fixture(scope="module")
def made(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Captures made from corpus captures: a multi-batch one (>8 MiB, several read batches),
    one with out-of-order timestamps and duplicates, and one cut in the middle of a record."""
    out = tmp_path_factory.mktemp("made")
    parts = [Path(p) for p in _inputs(corpus_dir, BIG_PARTS)]
    big = parallelgen.concat(parts, out / "big.pcap")
    assert big.stat().st_size > 2 * (8 << 20), "the multi-batch capture must span several 8 MiB read batches"
    frag = corpus_dir / PPP / "ExamplesTest/pcap_examples/ip-frag.pcap"
    tls = corpus_dir / PPP / "ExamplesTest/pcap_examples/tls2.pcap"
    return {
        "big": big,
        "reordered": parallelgen.reorder_and_duplicate(tls, out / "reordered-duplicated.pcap"),
        "cut": parallelgen.cut_in_the_middle(frag, out / "ip-frag-cut.pcap"),
    }


def compare_api(paths: list[str], tmp: Path, jobs: tuple[int, ...] = (2, 3), ext: str = "csv",
                **options: Any) -> dict[str, Any]:  # fmt: skip
    """Run ``paths`` in one process and split ``jobs`` ways; require equal reports and exports."""
    single_export = tmp / f"single.{ext}"
    single = analyze(paths, flows_path=str(single_export), app=APP, **options).data
    assert single["run"]["workers"] == 1
    for n in jobs:
        export = tmp / f"split{n}.{ext}"
        opts = RunOptions(flows_path=str(export), app=APP, **options)
        split = analyze_split(paths, opts, jobs=n).data
        assert split["run"]["workers"] == n and split["run"]["runner"] == "local"
        assert not split["run"]["partial"]
        assert_same_report(single, split, f"--jobs {n}")
        assert_same_export(single_export, export, f"--jobs {n}")
    return single


@pytest.mark.corpus
@pytest.mark.parametrize(("rel",), [pytest.param(rel, id=name) for name, rel in CAPTURES])
def test_split_run_equals_single_run(rel: list[str], corpus_dir: Path, tmp_path: Path) -> None:
    paths = _inputs(corpus_dir, rel)
    single = compare_api(paths, tmp_path)
    assert single["capture"]["packets"] > 0


@pytest.mark.corpus
@pytest.mark.parametrize("which", ["reordered", "cut"])
def test_split_run_equals_single_run_on_made_captures(which: str, made: dict[str, Path], tmp_path: Path) -> None:
    """Out-of-order timestamps and duplicates; a capture cut inside a record."""
    single = compare_api([str(made[which])], tmp_path, ext="ndjson")
    if which == "cut":
        assert single["inputs"][0]["status"] != "ok", "the cut copy should be reported as damaged"


@pytest.mark.corpus
def test_split_run_with_small_read_batches(corpus_dir: Path, tmp_path: Path, made: dict[str, Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Many read batches per capture (64 KiB each): flows, fragment trains and TLS
    streams cross batch boundaries, and batches go to alternating workers."""
    from netsift.capture import CaptureReader

    defaults = CaptureReader.__init__.__defaults__
    assert defaults is not None and len(defaults) == 2
    # the workers are forked from this process, so they read with the same batch size
    monkeypatch.setattr(CaptureReader.__init__, "__defaults__", (defaults[0], 64 << 10))
    paths = _inputs(corpus_dir, [f"{PPP}/ExamplesTest/pcap_examples/ip-frag.pcap",
                                 "stopddos-packet-captures/amp.dns.RRSIG.fragmented.pcap"])
    compare_api([*paths, str(made["reordered"])], tmp_path, jobs=(2, 3))


def run_cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TOOL, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT, stdin=subprocess.DEVNULL)  # fmt: skip


def cli_reports(captures: list[str], tmp: Path, jobs: list[str], ext: str = "csv",
                extra: tuple[str, ...] = ()) -> dict[str, tuple[dict[str, Any], Path, str]]:  # fmt: skip
    """Run the CLI once per ``--jobs`` value (or other runner options): report, export, stderr."""
    out = {}
    for j in jobs:
        tag = j.replace(" ", "_").replace(":", "").replace("/", "")
        report, export = tmp / f"r-{tag}.json", tmp / f"f-{tag}.{ext}"
        proc = run_cli("analyze", *captures, "-q", "-o", report, "--flows", export, *j.split(), *extra)
        assert proc.returncode == 0, f"analyze {j} exited {proc.returncode}: {proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stderr
        out[j] = (json.loads(report.read_text()), export, proc.stderr)
    return out


NO_APP = () if APP else ("--no-app",)


@pytest.mark.corpus
def test_cli_multi_batch_capture(made: dict[str, Path], tmp_path: Path) -> None:
    """A >8 MiB capture (three read batches, timestamps going back at each junction)."""
    runs = cli_reports([str(made["big"])], tmp_path, ["--jobs 1", "--jobs 2", "--jobs 3"], extra=NO_APP)
    single, export, _ = runs["--jobs 1"]
    assert single["run"]["workers"] == 1
    assert single["flows"]["total"] > 1000
    for j in ("--jobs 2", "--jobs 3"):
        report, split_export, _ = runs[j]
        assert report["run"]["workers"] == int(j.split()[1]) and report["run"]["runner"] == "local"
        assert_same_report(single, report, j)
        assert_same_export(export, split_export, j)


@pytest.mark.corpus
def test_cli_directory_and_list_of_files(corpus_dir: Path, made: dict[str, Path], tmp_path: Path) -> None:
    """A directory and files given one by one: file indexes and frame numbers across files,
    warnings of the damaged ones, an NDJSON export."""
    captures = _inputs(corpus_dir, [f"{ZEEK}/ipv4", "foxio-ja4/pcap/tls-handshake.pcapng",
                                    f"{ZEEK}/trunc", "dpkt/examples/data/http.pcap"])
    captures.append(str(made["cut"]))
    runs = cli_reports(captures, tmp_path, ["--jobs 1", "--jobs 2"], ext="ndjson", extra=NO_APP)
    single, export, err1 = runs["--jobs 1"]
    split, split_export, err2 = runs["--jobs 2"]
    assert len(single["inputs"]) > 5
    assert_same_report(single, split, "--jobs 2")
    assert_same_export(export, split_export, "--jobs 2")
    warnings1 = sorted(line for line in err1.splitlines() if "warning" in line)
    warnings2 = sorted(line for line in err2.splitlines() if "warning" in line)
    assert warnings1, "the damaged inputs should give warnings"
    assert warnings1 == warnings2, "a split run should warn about the damaged inputs as one process does"


@pytest.mark.corpus
def test_default_jobs_split_only_large_inputs(corpus_dir: Path, made: dict[str, Path], tmp_path: Path) -> None:
    """Without --jobs: inputs under 4 MiB run in one process, larger ones over every core (at most 4)."""
    small = _inputs(corpus_dir, ["dpkt/examples/data/http.pcap"])[0]
    cores = min(len(os.sched_getaffinity(0)), 4)
    for capture, workers, runner in ((small, 1, "process"), (str(made["big"]), cores, "local" if cores > 1 else "process")):
        report = tmp_path / "r.json"
        proc = run_cli("analyze", capture, "-q", "-o", report, *NO_APP)
        assert proc.returncode == 0, proc.stderr[-2000:]
        run = json.loads(report.read_text())["run"]
        assert (run["workers"], run["runner"]) == (workers, runner), f"{capture}: {run}"


def test_flow_records_with_app_summaries_survive_pickling() -> None:
    """Workers send their state (top flow records) back pickled, and spill finished flows as
    pickles: a record that carries an application summary must come back whole."""
    import pickle

    from netsift.flows import FlowRecord

    fields = len(FlowRecord._fields)
    record = FlowRecord.from_raw((*range(fields), {"dns": {"queries": 1}}))
    assert record.app == {"dns": {"queries": 1}}
    back = pickle.loads(pickle.dumps(record, protocol=5))
    assert type(back) is FlowRecord and tuple(back) == tuple(record) and back.app == record.app


# -- the split really splits ---------------------------------------------------------------


@pytest.mark.corpus
def test_each_worker_holds_part_of_the_flows(made: dict[str, Path]) -> None:
    files = [str(made["big"])]
    opts = RunOptions(app=APP, detect=False)
    whole = run_part(files, opts)
    assert whole.summary is not None
    assert len(whole.gauges) >= 3, "the capture should span several read batches"
    parts = [run_part(files, opts, (k, 2)) for k in range(2)]
    flows = [p.summary.flows for p in parts if p.summary is not None]
    assert len(flows) == 2
    assert all(f > 0 for f in flows), f"each worker should hold some flows, got {flows}"
    assert all(f < whole.summary.flows for f in flows), f"no worker should hold every flow: {flows}"
    assert sum(flows) == whole.summary.flows
    packets = [p.stats.packets for p in parts]
    assert all(p > 0 for p in packets), f"each worker should count some batches' packets, got {packets}"
    assert sum(packets) == whole.stats.packets


# -- Dask ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[str]:
    try:
        import distributed
    except ImportError:
        pytest.skip("Dask distributed is not installed (pip install 'netsift[dask]')")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)  # fmt: skip
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


@pytest.mark.corpus
def test_dask_cluster_gives_the_same_report(dask_cluster: str, corpus_dir: Path, tmp_path: Path) -> None:
    captures = _inputs(corpus_dir, [f"{PPP}/ExamplesTest/pcap_examples/ip-frag.pcap", f"{ZEEK}/ipv4",
                                    "foxio-ja4/pcap/tls-handshake.pcapng", f"{CS}/dns.pcap"])
    runs = cli_reports(captures, tmp_path, ["--jobs 1", f"--dask-scheduler {dask_cluster}"], extra=NO_APP)
    single, export, _ = runs["--jobs 1"]
    split, split_export, _ = runs[f"--dask-scheduler {dask_cluster}"]
    assert split["run"]["runner"] == "dask" and split["run"]["workers"] == 2, split["run"]
    assert_same_report(single, split, "--dask-scheduler")
    assert_same_export(export, split_export, "--dask-scheduler")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".netsift-flows-")]
    assert not leftovers, f"the spill directory beside the export was left behind: {leftovers}"
    # without --flows
    report = tmp_path / "nf.json"
    proc = run_cli("analyze", *captures, "-q", "-o", report, "--dask-scheduler", dask_cluster, *NO_APP)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(report.read_text())
    assert data["run"]["runner"] == "dask" and data["run"]["workers"] == 2
    assert data["flows"]["export"] is None
    assert_same_report({**single, "flows": {**single["flows"], "export": None}}, data, "--dask-scheduler, no --flows")


# -- bad input and options -----------------------------------------------------------------


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("netsift: error:", "Error:"))]


def test_jobs_zero_is_a_usage_error(tmp_path: Path) -> None:
    capture = tmp_path / "x.pcap"
    capture.write_bytes(b"")
    proc = run_cli("analyze", capture, "--jobs", "0", timeout=60)
    assert proc.returncode == ExitCode.USAGE
    assert "Traceback" not in proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "--jobs" in lines[0], proc.stderr


def test_dask_scheduler_nobody_listens(corpus_dir: Path) -> None:
    pytest.importorskip("distributed", reason="Dask distributed is not installed")
    capture = _inputs(corpus_dir, ["dpkt/examples/data/http.pcap"])[0]
    started = time.monotonic()
    proc = run_cli("analyze", capture, "-q", "--dask-scheduler", "tcp://127.0.0.1:1", timeout=60)
    took = time.monotonic() - started
    assert proc.returncode != ExitCode.OK
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "tcp://127.0.0.1:1" in lines[0], proc.stderr
    assert took < 20, f"giving up on an absent scheduler took {took:.1f} s"


@pytest.mark.corpus
def test_damaged_file_in_a_list(corpus_dir: Path, made: dict[str, Path], tmp_path: Path) -> None:
    """One input cut in the middle of a record, between good ones: same report split or not."""
    good = _inputs(corpus_dir, ["foxio-ja4/pcap/tls-handshake.pcapng", f"{PPP}/ExamplesTest/pcap_examples/ipv6-frag.pcap"])
    single = compare_api([good[0], str(made["cut"]), good[1]], tmp_path, jobs=(2,))
    assert [i["status"] != "ok" for i in single["inputs"]] == [False, True, False]


@pytest.mark.corpus
@pytest.mark.parametrize("case", ["not-a-capture", "not-a-capture-among-good", "missing", "empty-file"])
def test_bad_input_fails_as_in_one_process(case: str, corpus_dir: Path, tmp_path: Path) -> None:
    good = _inputs(corpus_dir, ["dpkt/examples/data/http.pcap"])[0]
    text = tmp_path / "notes.pcap"
    text.write_text("these are notes, not packets\n" * 10)
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    captures = {
        "not-a-capture": [str(text)],
        "not-a-capture-among-good": [good, str(text), good],
        "missing": [good, str(tmp_path / "nonexistent.pcap")],
        "empty-file": [str(empty), good],
    }[case]
    results = {}
    for j in ("1", "2"):
        report = tmp_path / f"r{j}.json"
        proc = run_cli("analyze", *captures, "-q", "-o", report, "--jobs", j, *NO_APP, timeout=120)
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        body = json.loads(report.read_text()) if report.exists() else None
        results[j] = (proc.returncode, proc.stderr.replace(str(tmp_path), "TMP"), body)
    assert results["2"][0] == results["1"][0], f"exit codes differ: {results['1'][0]} vs {results['2'][0]}"
    assert results["2"][1] == results["1"][1]
    if results["1"][0] != ExitCode.OK:
        assert len(error_lines(results["1"][1])) == 1, results["1"][1]
    if results["1"][2] is not None or results["2"][2] is not None:
        assert results["1"][2] is not None and results["2"][2] is not None
        assert_same_report(results["1"][2], results["2"][2], "--jobs 2")


# -- interruption --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_capture(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A capture that takes several seconds to analyse (the multi-batch one, six times over)."""
    parts = [Path(p) for p in _inputs(corpus_dir, BIG_PARTS)]
    return parallelgen.concat(parts, tmp_path_factory.mktemp("slow") / "slow.pcap", copies=6)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def interrupt(capture: Path, report: Path, jobs: str, how: Callable[[subprocess.Popen[str]], None],
              after: float = 1.5) -> tuple[int, str, bool]:  # fmt: skip
    """Start analyze in its own process group, interrupt it after ``after`` s; (exit code,
    stderr, whether any process of the group outlived the parent)."""
    proc = subprocess.Popen([*TOOL, "analyze", str(capture), "-q", "-o", str(report), "--jobs", jobs, *NO_APP],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, cwd=REPO_ROOT, start_new_session=True)  # fmt: skip
    try:
        time.sleep(after)
        assert proc.poll() is None, "the run ended before it could be interrupted: make the capture larger"
        how(proc)
        _, err = proc.communicate(timeout=60)
        deadline = time.monotonic() + 5
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _group_alive(proc.pid)
        return proc.returncode, err, left
    finally:
        if proc.poll() is None:
            proc.kill()
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


def _ctrl_c(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group


def _sigint_parent(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)


def _sigterm_parent(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)


@pytest.mark.corpus
@pytest.mark.slow
@pytest.mark.parametrize("how", [_ctrl_c, _sigint_parent, _sigterm_parent], ids=["ctrl-c", "sigint", "sigterm"])
def test_interrupted_split_run(how: Callable[[subprocess.Popen[str]], None], slow_capture: Path,
                               tmp_path: Path) -> None:  # fmt: skip
    single_code, single_err, _ = interrupt(slow_capture, tmp_path / "r1.json", "1", how)
    assert single_code == ExitCode.INTERRUPTED, f"--jobs 1 exited {single_code}: {single_err[-2000:]}"
    report = tmp_path / "r2.json"
    code, err, left = interrupt(slow_capture, report, "2", how)
    assert "Traceback" not in err, err[-3000:]
    assert code == single_code, f"--jobs 2 exited {code} on interruption, --jobs 1 {single_code}: {err[-2000:]}"
    assert not left, "worker processes outlived the interrupted parent"
    assert report.exists(), f"no report written on interruption: {err[-2000:]}"
    data = json.loads(report.read_text())
    assert data["run"]["partial"] is True
    assert data["run"]["workers"] == 2
    assert data["capture"]["packets"] > 0


# -- progress ------------------------------------------------------------------------------


@pytest.mark.corpus
def test_progress_adds_up_across_workers(made: dict[str, Path]) -> None:
    """The parent's progress: bytes are the workers' mean (each reads every input), packets
    their sum; after the last worker ends the figures are final (parallel._run_local)."""
    calls: list[tuple[int, int, int]] = []

    def progress(done: int, total: int, packets: int) -> None:
        calls.append((done, total, packets))

    path = made["big"]
    report = analyze_split([str(path)], RunOptions(app=APP), jobs=2, progress=progress).data
    assert calls, "no progress was reported"
    size = path.stat().st_size
    assert {t for _, t, _ in calls} == {size}
    packets = [p for _, _, p in calls]
    done = [d for d, _, _ in calls]
    assert packets == sorted(packets), "packets counted went back"
    assert done == sorted(done), "bytes read went back"
    assert all(d <= size for d in done), f"bytes read exceed the total: {max(done)} > {size}"
    assert packets[-1] == report["capture"]["packets"]
    assert done[-1] == size


@pytest.mark.corpus
@pytest.mark.slow
def test_the_whole_corpus_as_one_run(corpus_dir: Path) -> None:
    """Every capture of the shared corpus in one run (2,500 files, half a million packets):
    what depends on the order things were found in shows up across files — a QUIC
    connection replayed in two traces, link types first seen in different files, more
    fragment events than a kind keeps."""
    single = analyze([str(corpus_dir)], app=APP, warn=lambda _m: None).data
    split = analyze_split([str(corpus_dir)], RunOptions(app=APP), jobs=2).data
    assert single["capture"]["files"] > 1000
    assert_same_report(single, split, "the whole corpus, --jobs 2")


def test_jobs_1_through_the_split_runner() -> None:
    """analyze_split with one job (the API, or a one-core machine) runs in this process."""
    sample = str(REPO_ROOT / "examples" / "sample.pcap")
    split = analyze_split([sample], RunOptions(app=APP), jobs=1).data
    assert (split["run"]["workers"], split["run"]["runner"]) == (1, "local")
    assert_same_report(analyze([sample], app=APP).data, split, "analyze_split with jobs=1")
