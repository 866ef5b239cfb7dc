"""Shared pieces of the atheris harnesses in this directory (see docs/robustness.md).

Every harness is a script: ``python fuzz/fuzz_NAME.py [libFuzzer options] [corpus dirs]``.
It calls :func:`main`, which instruments the netsift modules the harness imported
inside ``atheris.instrument_imports()`` and hands control to libFuzzer.  An
uncaught exception, a failed assertion, a crash in a C extension (segfault,
abort), a run over ``-timeout`` seconds or an RSS over ``-rss_limit_mb`` is a
finding: libFuzzer writes the input to ``crash-*``/``timeout-*``/``oom-*``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import atheris

#: The libFuzzer options a plain run gets unless the command line sets them.
DEFAULT_OPTIONS = ("-timeout=10", "-rss_limit_mb=2048")


def strict(value: Any) -> Any:
    """``value`` with the type of every part spelled out, dataclass instance dicts included,
    so that two results compare equal only when they are the same down to their types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, strict(dict(vars(value))))
    if isinstance(value, dict):
        return ("dict", tuple((k, strict(v)) for k, v in value.items()))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(strict(v) for v in value))
    return (type(value).__name__, value)


def main(test_one_input: Callable[[bytes], None], max_len: int = 4096) -> None:
    """Run libFuzzer on ``test_one_input`` with :data:`DEFAULT_OPTIONS` (and
    ``-max_len``) filled in where the command line does not set them."""
    argv = list(sys.argv)
    for option in (*DEFAULT_OPTIONS, f"-max_len={max_len}"):
        name = option.split("=", 1)[0] + "="
        if not any(arg.startswith(name) for arg in argv[1:]):
            argv.insert(1, option)
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
