"""Evidence captures: each finding's packets as a small pcapng, with a JSON stub of the finding.

:func:`write_evidence` takes an analysis report (``netsift.analyze(paths).data``)
and writes, into one directory:

- ``<severity>-<code>-<id>.pcapng`` per finding that lists evidence packets:
  exactly the frames of its ``packets`` entries, in capture order (input file
  order, then frame number), each Enhanced Packet Block commented with the
  originating file and frame number, so Wireshark opens just the suspicious
  traffic and every packet can be found again in the original capture;
- ``<severity>-<code>-<id>.json`` per finding: the finding as the report has
  it, plus ``evidence_pcap`` (the capture's file name, or null) and
  ``source_files`` (the captures its frames come from);
- ``index.json``: the summary :func:`write_evidence` returns.

Every input capture is streamed once for all findings together (the wanted
frame numbers of each file are collected first), and reading stops after the
last wanted frame.  Frame numbers are netsift's per-file frame numbers, which
are Wireshark's ``frame.number``.  A frame that cannot be found (the file is
gone, unreadable, or shorter than when it was analyzed) is counted as missing;
each file with a problem gives one warning line, never an exception.  Every
file is written atomically (temporary file in the directory, then rename); a
directory that cannot be created or written raises
:class:`~netsift.errors.OutputError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import __version__
from .atomic import atomic_output
from .capture import CaptureReader
from .columns import link_type_name
from .errors import NetsiftError, OutputError
from .pcapng_writer import PcapngWriter

INDEX_NAME = "index.json"
#: Version of the layout of ``index.json`` and the JSON stubs.
EVIDENCE_VERSION = 1
_UNSAFE = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True)
class _Frame:
    """One evidence record as read from its capture."""

    ts_ns: int
    link_type: int
    snaplen: int
    iface_name: str
    wirelen: int
    data: bytes


def _safe(text: object) -> str:
    """``text`` lower-cased with every run of characters outside [a-z0-9_-] turned into ``_``."""
    return _UNSAFE.sub("_", str(text).lower()).strip("_") or "x"


def _report_data(report: Any) -> dict[str, Any]:
    data = getattr(report, "data", report)
    if not isinstance(data, dict):
        raise TypeError("write_evidence needs a report dict (netsift.analyze(...).data)")
    return data


def _input_paths(data: dict[str, Any]) -> list[str]:
    return [str(i.get("path")) for i in data.get("inputs") or [] if isinstance(i, dict) and i.get("path")]


def _file_name(ref: dict[str, Any], inputs: list[str]) -> str | None:
    """The capture path of one ``packets`` entry (a file index is looked up in the inputs)."""
    f = ref.get("file")
    if isinstance(f, str):
        return f
    if isinstance(f, int) and not isinstance(f, bool) and 0 <= f < len(inputs):
        return inputs[f]
    return None


def _frames_of(ref: dict[str, Any]) -> list[int]:
    out = []
    for n in ref.get("frames") or []:
        if isinstance(n, int) and not isinstance(n, bool) and n >= 1:
            out.append(n)
    return out


def _make_dir(out_dir: str) -> None:
    if os.path.isdir(out_dir):
        return
    if os.path.exists(out_dir):
        raise OutputError(f"{out_dir}: the evidence directory cannot be created (a file has that name)")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{out_dir}: the evidence directory cannot be created ({exc.strerror or exc})"
        ) from None


def _write_bytes(path: str, what: str, produce: Callable[[Any], None]) -> None:
    """Write ``path`` atomically: ``produce(file_object)`` writes the content."""
    with atomic_output(path, what, prefix=".netsift-evidence-") as f:
        produce(f)


def _write_json(path: str, what: str, doc: Any) -> None:
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    _write_bytes(path, what, lambda f: f.write(text.encode("utf-8")))


def _read_frames(path: str, wanted: set[int], file_index: int) -> tuple[dict[int, _Frame], str | None]:
    """The wanted frames of one capture, and why some could not be read (or None).

    The file is streamed once; reading stops after the last wanted frame.
    """
    found: dict[int, _Frame] = {}
    order = np.asarray(sorted(wanted), dtype=np.int64)
    last = int(order[-1])
    try:
        reader = CaptureReader(path, file_index=file_index)
        with reader:
            for batch in reader.batches():
                first = batch.first_frame
                n = len(batch)
                lo = int(np.searchsorted(order, first, side="left"))
                hi = int(np.searchsorted(order, first + n, side="left"))
                for frame in order[lo:hi].tolist():
                    i = frame - first
                    g = int(batch.iface[i])
                    itf = reader.info.interfaces[g] if 0 <= g < len(reader.info.interfaces) else None
                    found[frame] = _Frame(
                        ts_ns=int(batch.ts_ns[i]),
                        link_type=int(batch.link_type[i]),
                        snaplen=itf.snaplen if itf is not None else 0,
                        iface_name=itf.name if itf is not None else "",
                        wirelen=int(batch.wirelen[i]),
                        data=batch.packet_bytes(i),
                    )
                if first + n > last:
                    break
    except NetsiftError as exc:
        return found, str(exc)
    except OSError as exc:  # a failure the reader did not turn into a sentence
        return found, f"{path}: cannot be read ({exc.strerror or exc})"
    if len(found) < len(wanted):
        damage = "; ".join(w.message for w in reader.warnings)
        total = reader.records
        reason = f"{path}: the file has {total:,} frames"
        if damage:
            reason += f" and is damaged ({damage})"
        return found, reason
    return found, None


def _label_files(paths: Iterable[str]) -> dict[str, str]:
    """How comments name each capture: its base name, or the path when base names clash."""
    paths = list(paths)
    counts: dict[str, int] = {}
    for p in paths:
        b = os.path.basename(p)
        counts[b] = counts.get(b, 0) + 1
    return {p: (os.path.basename(p) if counts[os.path.basename(p)] == 1 else p) for p in paths}


def write_evidence(report: dict[str, Any], out_dir: str,
                   warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write every finding's evidence pcapng and JSON stub into ``out_dir``, plus ``index.json``.

    ``report`` is the dict ``netsift.analyze(paths).data`` returns (a
    :class:`~netsift.report.Report` is accepted too); the capture paths in its
    findings are opened as given, so call this from the directory the analysis
    ran in.  ``warn`` receives one line per capture whose evidence frames could
    not all be read.  Returns the summary written to ``index.json``::

        {"dir": out_dir, "index": "index.json", "findings": N, "pcaps": P,
         "packets": written, "missing": missing, "source_files": [...],
         "files": [{"finding": id, "detector": ..., "code": ..., "severity": ...,
                    "pcap": name or None, "json": name, "packets": n, "missing": m,
                    "packets_total": ..., "note": ...}, ...],
         "warnings": [...]}

    Raises :class:`~netsift.errors.OutputError` when ``out_dir`` cannot be
    created or written.
    """
    data = _report_data(report)
    findings_section = data.get("findings") or {}
    items = [f for f in (findings_section.get("items") or []) if isinstance(f, dict)]
    inputs = _input_paths(data)
    _make_dir(out_dir)

    # 1. What each finding wants, and the wanted frames of every capture together.
    wants: list[list[tuple[str, int]]] = []
    wanted: dict[str, set[int]] = {}
    for item in items:
        refs: list[tuple[str, int]] = []
        for ref in item.get("packets") or []:
            if not isinstance(ref, dict):
                continue
            path = _file_name(ref, inputs)
            if path is None:
                path = str(ref.get("file"))
            nums = _frames_of(ref)
            if nums:
                wanted.setdefault(path, set()).update(nums)
                refs.extend((path, n) for n in nums)
        wants.append(refs)

    # Capture order: the report's input order, then any other file in order of appearance.
    file_order = [p for p in inputs if p in wanted] + [p for p in wanted if p not in inputs]
    rank = {p: i for i, p in enumerate(file_order)}
    sizes = {str(i.get("path")): i.get("file_bytes") for i in data.get("inputs") or [] if isinstance(i, dict)}

    # 2. Read each capture once.
    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        if warn is not None:
            warn(message)

    frames: dict[str, dict[int, _Frame]] = {}
    for path in file_order:
        index = inputs.index(path) if path in inputs else len(inputs) + rank[path]
        got, reason = _read_frames(path, wanted[path], index)
        frames[path] = got
        missing = len(wanted[path]) - len(got)
        expected = sizes.get(path)
        try:
            now: int | None = os.path.getsize(path)
        except OSError:
            now = None
        changed = isinstance(expected, int) and now is not None and now != expected
        then = f"the file changed since the analysis ({expected:,} bytes then, {now:,} now)" if changed else ""
        if missing:
            note(f"{reason or path}; {missing:,} of {len(wanted[path]):,} evidence frames are missing"
                 + (f"; {then}" if then else ""))
        elif then:
            note(f"{path}: {then}; its evidence frames may not be the packets the findings mean")

    labels = _label_files(file_order)

    # 3. Write one pcapng and one JSON stub per finding.
    entries: list[dict[str, Any]] = []
    used: set[str] = {INDEX_NAME[: -len(".json")]}
    for item, refs in zip(items, wants, strict=True):
        fid = str(item.get("id", ""))
        code = str(item.get("code", ""))
        stem = f"{_safe(item.get('severity', 'info'))}-{_safe(code)}-{_safe(fid)}"
        base, k = stem, 2
        while stem in used:
            stem = f"{base}-{k}"
            k += 1
        used.add(stem)
        ordered = sorted(set(refs), key=lambda r: (rank[r[0]], r[1]))
        present = [(p, n, frames[p][n]) for p, n in ordered if n in frames.get(p, {})]
        source_files = sorted({p for p, _ in refs}, key=rank.__getitem__)
        entry: dict[str, Any] = {
            "finding": fid,
            "detector": item.get("detector"),
            "code": code,
            "severity": item.get("severity"),
            "pcap": None,
            "json": stem + ".json",
            "packets": len(present),
            "missing": len(ordered) - len(present),
            "packets_total": item.get("packets_total", len(ordered)),
            "source_files": source_files,
        }
        if present:
            entry["pcap"] = stem + ".pcapng"
            _write_pcap(os.path.join(out_dir, entry["pcap"]), present, labels, code, fid)
            if entry["missing"]:
                entry["note"] = f"{entry['missing']} of {len(ordered)} evidence frames could not be read"
        else:
            entry["note"] = ("the finding lists no evidence packets: JSON only" if not ordered
                             else "none of the finding's evidence frames could be read: JSON only")
            # an evidence capture of an earlier run under this name would contradict the stub
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(out_dir, stem + ".pcapng"))
        stub = dict(item)
        stub["evidence_pcap"] = entry["pcap"]
        stub["source_files"] = source_files
        _write_json(os.path.join(out_dir, entry["json"]), "the finding's JSON stub", stub)
        entries.append(entry)

    summary: dict[str, Any] = {
        "version": EVIDENCE_VERSION,
        "tool": {"name": "netsift", "version": __version__},
        "report_generated_at": (data.get("run") or {}).get("generated_at"),
        "dir": out_dir,
        "index": INDEX_NAME,
        "findings": len(entries),
        "pcaps": sum(1 for e in entries if e["pcap"]),
        "packets": sum(e["packets"] for e in entries),
        "missing": sum(e["missing"] for e in entries),
        "source_files": file_order,
        "files": entries,
        "warnings": warnings,
    }
    _write_json(os.path.join(out_dir, INDEX_NAME), "the evidence index", summary)
    return summary


def _write_pcap(path: str, present: list[tuple[str, int, _Frame]], labels: dict[str, str],
                code: str, fid: str) -> None:
    """One finding's evidence: an interface per (capture, link type), packets in capture order."""

    def produce(f: Any) -> None:
        w = PcapngWriter(f, application=f"netsift {__version__} (evidence)")
        ifaces: dict[tuple[str, int], int] = {}
        snaplens: dict[tuple[str, int], int] = {}
        names: dict[tuple[str, int], list[str]] = {}
        for p, _n, fr in present:
            key = (p, fr.link_type)
            snaplens[key] = max(snaplens.get(key, 0), fr.snaplen)
            if fr.iface_name and fr.iface_name not in names.setdefault(key, []):
                names[key].append(fr.iface_name)
        for p, _n, fr in present:
            key = (p, fr.link_type)
            if key in ifaces:
                continue
            src = names.get(key) or []
            desc = f"{link_type_name(fr.link_type)} packets from {p}"
            if src:
                desc += f" (interface {', '.join(src)})"
            ifaces[key] = w.add_interface(fr.link_type, snaplens[key], name=labels[p], description=desc)
        for p, n, fr in present:
            comment = f"netsift evidence: {labels[p]} frame {n} (finding {code} {fid})"
            w.write_packet(ifaces[(p, fr.link_type)], fr.ts_ns, fr.data, wirelen=fr.wirelen, comment=comment)
        w.flush()

    _write_bytes(path, "the evidence capture", produce)
