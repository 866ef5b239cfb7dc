"""Findings: what a detector reports, in the report's JSON and as ECS alerts.

A finding is one conclusion about one entity (a victim, a scanner, a client
and domain, a fragment train): the detector and its stable code, a severity,
the MITRE ATT&CK technique, when it was seen, who was involved, one sentence
an analyst can read, the measured values next to the thresholds they
crossed, and the packet numbers to open in Wireshark.  Its ``id`` is a hash
of detector, code and entity key: the same conclusion about the same entity
gets the same id in every run (SIEMs deduplicate on it).
"""

from __future__ import annotations

import enum
import hashlib
import heapq
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

from ..errors import UsageError

__all__ = ["MAX_EVIDENCE_PACKETS", "Finding", "PacketRefs", "Severity", "Technique", "ecs_alert", "ns_to_iso"]

#: Evidence packets kept per finding (the first ones seen).
MAX_EVIDENCE_PACKETS: Final = 50
#: Sources and destinations listed per finding (the total is counted).
MAX_PARTIES: Final = 20


class Severity(enum.IntEnum):
    """Ordered severities; ``--fail-on`` compares with them."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise UsageError(f"unknown severity {text!r}: use one of {names}") from None


@dataclass(frozen=True)
class Technique:
    """A MITRE ATT&CK technique (https://attack.mitre.org/techniques/...)."""

    id: str
    name: str


class PacketRefs:
    """Evidence packets of one finding: (file index, frame number), the ``cap`` earliest kept.

    The earliest, not the first added: detectors add packets in the order flows end,
    which differs between the workers of a split run; the earliest of the union is
    what one run keeps.
    """

    __slots__ = ("_heap", "_held", "cap", "total")

    def __init__(self, cap: int = MAX_EVIDENCE_PACKETS) -> None:
        self.cap = cap
        self._heap: list[tuple[int, int]] = []  # negated refs: the latest kept on top
        self._held: set[tuple[int, int]] = set()
        self.total = 0

    def add(self, file_index: int, frame: int) -> None:
        self.total += 1
        self._keep((file_index, frame))

    def _keep(self, ref: tuple[int, int]) -> None:
        if ref in self._held:
            return
        heap = self._heap
        if len(heap) < self.cap:
            heapq.heappush(heap, (-ref[0], -ref[1]))
            self._held.add(ref)
            return
        latest = (-heap[0][0], -heap[0][1])
        if ref < latest:
            heapq.heapreplace(heap, (-ref[0], -ref[1]))
            self._held.discard(latest)
            self._held.add(ref)

    def __getstate__(self) -> tuple[int, int, list[tuple[int, int]]]:
        return self.cap, self.total, self._heap

    def __setstate__(self, state: tuple[int, int, list[tuple[int, int]]]) -> None:
        self.cap, self.total, self._heap = state  # the heap's order survives pickling
        self._held = {(-f, -n) for f, n in self._heap}

    def extend(self, refs: list[tuple[int, int]]) -> None:
        for f, n in refs:
            self.add(f, n)

    @property
    def items(self) -> list[tuple[int, int]]:
        return self.sorted()

    def merge(self, other: PacketRefs) -> None:
        self.total += other.total
        for ref in other._held:
            self._keep(ref)

    def sorted(self) -> list[tuple[int, int]]:
        return sorted(self._held)


def ns_to_iso(ns: int) -> str:
    """A capture timestamp (ns since the epoch) as ISO 8601 UTC with microseconds."""
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc).replace(microsecond=ns // 1000 % 1_000_000)
    return dt.isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Finding:
    detector: str
    code: str
    severity: Severity
    technique: Technique | None
    first_ns: int
    last_ns: int
    summary: str
    #: the entity the finding is about (part of the id): e.g. ("10.0.0.5", 80)
    key: tuple[Any, ...]
    sources: tuple[str, ...] = ()
    sources_total: int = 0
    destinations: tuple[str, ...] = ()
    destinations_total: int = 0
    #: measured values (numbers, short lists), by name
    evidence: dict[str, Any] = field(default_factory=dict)
    #: the thresholds the evidence was compared with, by name
    thresholds: dict[str, Any] = field(default_factory=dict)
    #: (file index, frame number) of evidence packets, sorted
    packets: tuple[tuple[int, int], ...] = ()
    packets_total: int = 0

    @property
    def id(self) -> str:
        text = "|".join([self.detector, self.code, *map(str, self.key)])
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def sort_key(self) -> tuple[Any, ...]:
        return (-self.severity, self.detector, self.code, self.first_ns, self.id)

    def to_json(self, inputs: list[str] | None = None) -> dict[str, Any]:
        """The report's form; ``inputs`` (the capture paths by file index) names the
        files of the evidence packets."""
        by_file: dict[int, list[int]] = {}
        for f, n in self.packets:
            by_file.setdefault(f, []).append(n)
        return {
            "id": self.id,
            "detector": self.detector,
            "code": self.code,
            "severity": self.severity.label,
            "technique": None if self.technique is None else {"id": self.technique.id, "name": self.technique.name},
            "first_seen": ns_to_iso(self.first_ns),
            "last_seen": ns_to_iso(self.last_ns),
            "sources": list(self.sources[:MAX_PARTIES]),
            "sources_total": max(self.sources_total, len(self.sources)),
            "destinations": list(self.destinations[:MAX_PARTIES]),
            "destinations_total": max(self.destinations_total, len(self.destinations)),
            "summary": self.summary,
            "evidence": self.evidence,
            "thresholds": self.thresholds,
            "packets": [
                {"file": inputs[f] if inputs is not None and f < len(inputs) else f, "frames": frames}
                for f, frames in sorted(by_file.items())
            ],
            "packets_total": max(self.packets_total, len(self.packets)),
        }

    def to_ecs(self, inputs: list[str] | None = None) -> dict[str, Any]:
        """One NDJSON alert with Elastic Common Schema field names (see :func:`ecs_alert`)."""
        return ecs_alert(self.to_json(inputs))


def ecs_alert(doc: dict[str, Any]) -> dict[str, Any]:
    """A report finding (:meth:`Finding.to_json`) as an alert with ECS 8.x field names:
    ``event.kind: alert``, ``rule.name`` (the code), ``threat.technique.*``,
    ``source.ip``/``destination.ip`` when there is one of each; netsift's own
    fields (evidence, thresholds, packets) under ``netsift``."""
    severity = Severity[doc["severity"].upper()]
    out: dict[str, Any] = {
        "@timestamp": doc["first_seen"],
        "event": {
            "kind": "alert",
            "category": ["network", "intrusion_detection"],
            "type": ["info"],
            "module": "netsift",
            "dataset": f"netsift.{doc['detector']}",
            "id": doc["id"],
            "severity": int(severity),
            "start": doc["first_seen"],
            "end": doc["last_seen"],
        },
        "rule": {
            "id": doc["code"],
            "name": doc["code"],
            "category": doc["detector"],
            "description": doc["summary"],
            "ruleset": "netsift",
        },
        "message": doc["summary"],
        "log": {"level": severity.label},
        "netsift": {
            "finding_id": doc["id"],
            "severity": severity.label,
            "evidence": doc["evidence"],
            "thresholds": doc["thresholds"],
            "packets": doc["packets"],
            "packets_total": doc["packets_total"],
            "sources": doc["sources"],
            "sources_total": doc["sources_total"],
            "destinations": doc["destinations"],
            "destinations_total": doc["destinations_total"],
        },
    }
    technique = doc.get("technique")
    if technique is not None:
        out["threat"] = {
            "framework": "MITRE ATT&CK",
            "technique": {
                "id": [technique["id"]],
                "name": [technique["name"]],
                "reference": [_attack_url(technique["id"])],
            },
        }
    if len(doc["sources"]) == 1 and doc["sources_total"] <= 1:
        out["source"] = {"ip": doc["sources"][0]}
    if len(doc["destinations"]) == 1 and doc["destinations_total"] <= 1:
        out["destination"] = {"ip": doc["destinations"][0]}
        port = doc["evidence"].get("destination_port")
        if isinstance(port, int) and not isinstance(port, bool):
            out["destination"]["port"] = port
    return out


def _attack_url(technique_id: str) -> str:
    return "https://attack.mitre.org/techniques/" + technique_id.replace(".", "/") + "/"
