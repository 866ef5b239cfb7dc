"""The HTML report in a real headless Chromium: the script runs without errors, nothing injected runs.

The page is loaded from a file with the network turned off (the flags below and the
page's own Content-Security-Policy).  ``--dump-dom`` gives the DOM after the script
ran: the script marks ``<body data-ready="1">`` when it finished and
``data-error`` when anything threw.  ``--screenshot`` keeps a PNG of each page
under $NETSIFT_ARTIFACTS (or the test's temporary directory).
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

import netsift
from netsift.html_report import write_html
from test_html_report import ALL_SECTIONS, IMG, SCRIPT, SVG, parse, write_xss_capture

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 60

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium (Debian package 'chromium') is not installed"
)

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--no-default-browser-check",
    "--metrics-recording-only", "--hide-scrollbars", "--mute-audio",
    # no proxy, no DNS: any request the page tried would fail at once
    "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND",
]  # fmt: skip


def chromium(args: list[str], profile: Path) -> str:
    """Run Chromium with ``args``; its stdout.  The whole process group dies on timeout."""
    assert CHROMIUM
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env={**os.environ, "LANG": "C.UTF-8"})  # fmt: skip
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish within {TIMEOUT_S} s: {' '.join(args)}")
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode("utf-8", errors="replace")


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ["NETSIFT_ARTIFACTS"]) if os.environ.get("NETSIFT_ARTIFACTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def render_in_chromium(report: dict[str, Any], name: str, tmp_path: Path) -> tuple[str, Path]:
    """The dumped DOM of the report's page, and a screenshot of it."""
    page = tmp_path / f"{name}.html"
    write_html(report, str(page))
    dom = chromium(["--dump-dom", page.as_uri()], tmp_path / "profile-dom")
    shot = artifacts(tmp_path) / f"{name}.png"
    chromium([f"--screenshot={shot}", "--window-size=1400,4000", page.as_uri()], tmp_path / "profile-shot")
    return dom, shot


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 4000)
    assert len(data) > 30_000, "the screenshot is nearly empty"


def check_dom(dom: str, sections: set[str]) -> Any:
    parsed = parse(dom)
    body = next(attrs for tag, attrs in parsed.attrs if tag == "body")
    assert "data-error" not in body, body.get("data-error")
    assert body.get("data-ready") == "1", "the page's script did not finish"
    assert sections <= set(parsed.ids)
    assert parsed.tags.get("script") == 1
    assert "img" not in parsed.tags
    assert parsed.handlers == []
    # the script closed the findings' evidence rows and made the tables sortable
    details = [a for t, a in parsed.attrs if t == "tr" and a.get("class") == "detail"]
    assert all("hidden" in a for a in details)
    toggles = [a for t, a in parsed.attrs if t == "button" and a.get("class") == "toggle"]
    assert len(toggles) == len(details)
    assert all(a.get("aria-expanded") == "false" for a in toggles)
    sortable = [a for t, a in parsed.attrs if t == "th" and "sort" in (a.get("class") or "").split()]
    assert sortable
    return parsed


def test_sample_report_in_chromium(tmp_path: Path) -> None:
    report = netsift.analyze([str(REPO_ROOT / "examples" / "sample.pcap")]).data
    dom, shot = render_in_chromium(report, "sample", tmp_path)
    check_dom(dom, set(ALL_SECTIONS))
    assert f"{len(report['findings']['items'])} of {len(report['findings']['items'])} shown" in dom
    records = min(len(report["flows"]["records"]), 200)
    assert f"{records} of {records} shown" in dom
    check_png(shot)


@pytest.mark.corpus
def test_corpus_report_in_chromium(tmp_path: Path, corpus_dir: Path) -> None:
    pcaps = corpus_dir / "ndpi" / "tests" / "cfgs" / "default" / "pcap"
    paths = [pcaps / "dns-tunnel-iodine.pcap", pcaps / "chrome.pcap", pcaps / "bt-http.pcapng"]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"corpus captures missing: {missing}")
    report = netsift.analyze([str(p) for p in paths]).data
    assert report["findings"]["total"] >= 1
    dom, shot = render_in_chromium(report, "corpus", tmp_path)
    check_dom(dom, {"summary", "findings", "timeline", "dns", "tls", "http", "flows"})
    check_png(shot)


def test_xss_capture_in_chromium(tmp_path: Path) -> None:
    capture = tmp_path / "xss.pcap"
    write_xss_capture(capture)
    report = netsift.analyze([str(capture)]).data
    dom, shot = render_in_chromium(report, "xss", tmp_path)
    parsed = check_dom(dom, {"summary", "findings", "dns", "tls", "http", "flows"})
    # nothing the capture carried became an element: the only svg elements are the charts
    assert not {"img", "iframe", "object", "embed"} & set(parsed.tags)
    charts = [a for t, a in parsed.attrs if t == "svg"]
    assert charts and all("chart" in (a.get("class") or "") for a in charts)
    # the strings are there as text
    for raw in (SCRIPT, IMG, SVG):
        assert raw.replace("<", "&lt;").replace(">", "&gt;") in dom
    check_png(shot)
