"""The detectors' configuration file (TOML), checked key by key.

::

    [detectors]
    disabled = ["encrypted_dns"]      # detectors not to run

    [detectors.syn_flood]
    min_attempts = 500                # any field of that detector's Thresholds

    [detectors.dns_tunnel]
    allow_domains = ["corp.example", "*.backup.example"]

Every key must name a threshold of that detector and every value must have
the type of its default (an integer where an integer is expected, a list of
strings for a list); anything else is a :class:`~netsift.errors.UsageError`
whose sentence names the key.  ``netsift config --defaults`` prints every
detector's section with its defaults.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from ..errors import InputNotFoundError, InputUnreadableError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

__all__ = ["DetectorConfig", "defaults_toml", "load_config"]


@dataclasses.dataclass
class DetectorConfig:
    #: detector name -> its Thresholds instance
    thresholds: dict[str, Any]
    disabled: frozenset[str]


def load_config(path: str | None, classes: dict[str, type]) -> DetectorConfig:
    """Read ``path`` (None: defaults) for the detector classes by name."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise InputNotFoundError(f"{path}: no such config file")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputUnreadableError(f"{path}: cannot be read ({exc})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: not valid TOML ({exc})") from None
    return config_from_dict(data, classes, path or "config")


def config_from_dict(data: dict[str, Any], classes: dict[str, type], where: str = "config") -> DetectorConfig:
    unknown = set(data) - {"detectors"}
    if unknown:
        raise UsageError(f"{where}: unknown section {sorted(unknown)[0]!r} (the file holds a [detectors] table)")
    section = data.get("detectors", {})
    if not isinstance(section, dict):
        raise UsageError(f"{where}: 'detectors' must be a table")
    disabled = section.get("disabled", [])
    if not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
        raise UsageError(f"{where}: detectors.disabled must be a list of detector names")
    for d in disabled:
        if d not in classes:
            raise UsageError(f"{where}: detectors.disabled names {d!r}, not a detector "
                             f"(known: {', '.join(sorted(classes))})")  # fmt: skip
    thresholds: dict[str, Any] = {}
    for name, cls in classes.items():
        values = section.get(name, {})
        if not isinstance(values, dict):
            raise UsageError(f"{where}: detectors.{name} must be a table")
        thresholds[name] = _thresholds(cls.Thresholds, values, f"{where}: detectors.{name}")  # type: ignore[attr-defined]
    for key in section:
        if key != "disabled" and key not in classes:
            raise UsageError(f"{where}: [detectors.{key}] is not a detector (known: {', '.join(sorted(classes))})")
    return DetectorConfig(thresholds, frozenset(disabled))


def _thresholds(cls: type, values: dict[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    defaults = cls()
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise UsageError(f"{where}.{key}: unknown key (known: {', '.join(sorted(fields))})")
        kwargs[key] = _coerce(getattr(defaults, key), value, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{where}: {exc}") from None


def _coerce(default: Any, value: Any, where: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise UsageError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(default, (tuple, frozenset)):
        if not isinstance(value, list):
            raise UsageError(f"{where}: expected a list, got {value!r}")
        sample = next(iter(default), None)
        kind = type(sample) if sample is not None else None
        for v in value:
            if kind is not None and not (isinstance(v, kind) and not (kind is int and isinstance(v, bool))):
                raise UsageError(f"{where}: expected a list of {kind.__name__}, got {v!r}")
        return type(default)(value)
    raise UsageError(f"{where}: cannot be set from the config file")


def defaults_toml(classes: dict[str, Any]) -> str:
    """Every detector's thresholds with their defaults, as a TOML file."""
    lines = ["# netsift detector configuration: every threshold with its default.",
             "# Use with: netsift analyze CAPTURE --config THIS_FILE", "", "[detectors]",
             "disabled = []", ""]  # fmt: skip
    for name, cls in classes.items():
        lines.append(f"[detectors.{name}]")
        if cls.title:
            lines.insert(len(lines) - 1, f"# {name}: {cls.title}")
        defaults = cls.Thresholds()
        for f in dataclasses.fields(defaults):
            lines.append(f"{f.name} = {_toml_value(getattr(defaults, f.name))}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (tuple, list, frozenset, set)):
        items = sorted(v, key=str) if isinstance(v, (frozenset, set)) else list(v)
        return "[" + ", ".join(_toml_value(x) for x in items) + "]"
    raise TypeError(f"no TOML form for {v!r}")
