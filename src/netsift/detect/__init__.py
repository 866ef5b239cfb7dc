"""Detectors: findings an analyst can trust, each with its evidence and thresholds.

One module per detector (see :mod:`netsift.detect.base` for the shape).
:class:`Detectors` runs the enabled ones inside the analysis: it receives the
finished flows and the DNS messages as the pipeline produces them, and the
findings when the run ends.
"""

from __future__ import annotations

import importlib
from collections import Counter
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from .base import Detector, DnsEvents, FinishContext, Sample
from .config import DetectorConfig, config_from_dict, load_config
from .finding import Finding, Severity, Technique

if TYPE_CHECKING:
    from ..flows import FlowRecord

__all__ = [
    "DETECTOR_MODULES",
    "Detector",
    "Detectors",
    "DnsEvents",
    "Finding",
    "FinishContext",
    "Sample",
    "Severity",
    "Technique",
    "detector_classes",
]

#: The detector modules, in report order (each defines ``DETECTOR``, its class).
DETECTOR_MODULES: Final[tuple[str, ...]] = ("syn_flood", "scan", "dns_tunnel", "fragmentation",
                                             "encrypted_dns", "capture_quality")


@cache
def detector_classes() -> dict[str, type[Detector]]:
    """Every detector class by its name, in report order."""
    out: dict[str, type[Detector]] = {}
    for module in DETECTOR_MODULES:
        cls = importlib.import_module(f"{__name__}.{module}").DETECTOR
        out[cls.name] = cls
    return out


class Detectors:
    """The enabled detectors of one run."""

    def __init__(self, config: DetectorConfig | None = None,
                 classes: dict[str, type[Detector]] | None = None) -> None:  # fmt: skip
        if classes is None:
            classes = detector_classes()
        if config is None:
            config = config_from_dict({}, classes)
        self.config = config
        self.active: list[Detector] = [cls(config.thresholds[name]) for name, cls in classes.items()
                                       if name not in config.disabled]  # fmt: skip
        self._on_flows = [d for d in self.active if type(d).flows is not Detector.flows]
        self._on_dns = [d for d in self.active if type(d).dns is not Detector.dns]

    @classmethod
    def from_file(cls, path: str | None) -> Detectors:
        return cls(load_config(path, detector_classes()))

    @property
    def wants_dns(self) -> bool:
        return bool(self._on_dns)

    def flows(self, records: list[FlowRecord]) -> None:
        for d in self._on_flows:
            d.flows(records)

    def dns(self, events: DnsEvents) -> None:
        if len(events):
            for d in self._on_dns:
                d.dns(events)

    def finish(self, ctx: FinishContext) -> list[Finding]:
        findings: list[Finding] = []
        for d in self.active:
            findings.extend(d.finish(ctx))
        return sorted(findings, key=Finding.sort_key)

    def merge(self, other: Detectors) -> None:
        for mine, theirs in zip(self.active, other.active, strict=True):
            mine.merge(theirs)

    def section(self, findings: list[Finding], inputs: list[str]) -> dict[str, Any]:
        """The report's ``findings`` section."""
        by_severity = Counter(f.severity.label for f in findings)
        return {
            "total": len(findings),
            "by_severity": {s.label: by_severity.get(s.label, 0) for s in sorted(Severity, reverse=True)},
            "by_detector": dict(sorted(Counter(f.detector for f in findings).items())),
            "detectors": {
                d.name: {"title": d.title, "thresholds": d.thresholds_json()} for d in self.active
            },
            "disabled": sorted(self.config.disabled),
            "items": [f.to_json(inputs) for f in findings],
        }
