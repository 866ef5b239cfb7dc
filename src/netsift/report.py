"""The report: one JSON document with a schema, written atomically, and its terminal summary."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SCHEMA_VERSION = "1.0"

#: Keys whose values change from run to run (stripped when comparing reports).
VOLATILE_KEYS = ("run.generated_at", "run.elapsed_s", "run.packets_per_s", "tool.version")


def report_schema() -> dict[str, Any]:
    """The report's JSON Schema (draft 2020-12), as shipped in the package."""
    text = resources.files("netsift").joinpath("schema/report.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


class Report:
    """A finished analysis.  ``data`` is the JSON document; see ``netsift schema``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text: nested two levels deep, then one line per value.

        Every table row and flow record sits on a line of its own, which reads
        well and lets the C encoder do the bulk of the work (json's indenting
        encoder is pure Python, several times slower on big reports).
        ``indent=None`` gives one compact line.
        """
        if indent is None:
            return json.dumps(self.data, ensure_ascii=False) + "\n"
        return _pretty(self.data, " " * indent, 0, 3) + "\n"

    def write_json(self, path: str) -> None:
        write_atomic(path, self.to_json())

    def stable(self) -> dict[str, Any]:
        """The report without volatile fields (for comparing runs)."""
        data = json.loads(json.dumps(self.data))
        for dotted in VOLATILE_KEYS:
            head, _, tail = dotted.partition(".")
            data.get(head, {}).pop(tail, None)
        return data  # type: ignore[no-any-return]


def _pretty(obj: Any, pad: str, level: int, depth: int) -> str:
    if level >= depth or not isinstance(obj, (dict, list)) or not obj:
        return json.dumps(obj, ensure_ascii=False)
    inner = pad * (level + 1)
    if isinstance(obj, dict):
        rows = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_pretty(v, pad, level + 1, depth)}"
                for k, v in obj.items()]  # fmt: skip
        return "{\n" + ",\n".join(rows) + "\n" + pad * level + "}"
    rows = [inner + _pretty(v, pad, level + 1, depth) for v in obj]
    return "[\n" + ",\n".join(rows) + "\n" + pad * level + "]"


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename: never a half-written file."""
    from .atomic import AtomicFile

    out = AtomicFile(path, "the report")
    try:
        out.raw.write(text.encode("utf-8"))
    except OSError as exc:
        raise out.error(exc) from None
    out.commit()
