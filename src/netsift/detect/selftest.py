"""``netsift selftest``: proof that every detector fires, and stays quiet, on crafted traffic.

Each detector lists its samples (:meth:`netsift.detect.Detector.samples`):
packets built with Scapy and written with ``wrpcap``, then analysed by the
normal pipeline with default settings.  A positive sample passes when its
detector reports every code it expects; a negative one when its detector
reports nothing at the sample's ``forbid_at`` severity or above.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import Sample
from .finding import Severity

__all__ = ["SampleResult", "run_sample", "run_selftest"]


@dataclass(frozen=True)
class SampleResult:
    detector: str
    sample: Sample
    passed: bool
    #: codes the detector reported, with their severities
    found: tuple[tuple[str, str], ...]
    detail: str
    path: str | None
    seconds: float


def run_selftest(only: tuple[str, ...] = (), keep: str | None = None) -> list[SampleResult]:
    """Build, write, analyse and check every sample (of the detectors in ``only``, if given)."""
    from ..errors import UsageError
    from . import detector_classes

    classes = detector_classes()
    for name in only:
        if name not in classes:
            raise UsageError(f"--only: {name!r} is not a detector (known: {', '.join(classes)})")
    results: list[SampleResult] = []
    with tempfile.TemporaryDirectory(prefix="netsift-selftest-") as tmp:
        folder = Path(keep) if keep else Path(tmp)
        if keep:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"--keep {keep}: cannot create the directory ({exc.strerror})") from None
        for name, cls in classes.items():
            if only and name not in only:
                continue
            for sample in cls.samples():
                results.append(run_sample(name, sample, folder, keep is not None))
    return results


def run_sample(detector: str, sample: Sample, folder: Path, kept: bool = False) -> SampleResult:
    """Build one sample, write it to ``folder``, analyse it and check ``detector``'s findings."""
    from scapy.utils import wrpcap

    from ..pipeline import analyze

    started = time.monotonic()
    path = folder / f"{detector}--{sample.name}.pcap"
    packets = sample.build()
    wrpcap(str(path), packets)
    report = analyze(str(path))
    mine = [f for f in report["findings"]["items"] if f["detector"] == detector]
    found = tuple(sorted({(f["code"], f["severity"]) for f in mine}))
    codes = {c for c, _ in found}
    if sample.expect:
        missing = sorted(sample.expect - codes)
        passed = not missing
        detail = "fired: " + ", ".join(sorted(codes)) if passed else "missing: " + ", ".join(missing)
    else:
        floor = Severity.parse(sample.forbid_at)
        loud = sorted({c for c, sev in found if Severity.parse(sev) >= floor})
        passed = not loud
        detail = "quiet" if not found else ("only below " + floor.label + ": " + ", ".join(sorted(codes)))
        if loud:
            detail = "fired: " + ", ".join(loud)
    return SampleResult(detector, sample, passed, found, detail, str(path) if kept else None,
                        round(time.monotonic() - started, 2))  # fmt: skip


def results_json(results: list[SampleResult]) -> list[dict[str, Any]]:
    return [
        {
            "detector": r.detector,
            "sample": r.sample.name,
            "kind": "positive" if r.sample.expect else "negative",
            "description": r.sample.description,
            "expect": sorted(r.sample.expect),
            "found": [{"code": c, "severity": s} for c, s in r.found],
            "passed": r.passed,
            "detail": r.detail,
            "capture": r.path,
        }
        for r in results
    ]
