"""Shared pieces of the atheris harnesses in this directory (see docs/robustness.md).

Every harness is a script: ``python fuzz/fuzz_NAME.py [libFuzzer options] [corpus dirs]``.
It calls :func:`main`, which instruments the netsift modules the harness imported
inside ``atheris.instrument_imports()`` and hands control to libFuzzer.  An
uncaught exception, a failed assertion, a crash in a C extension (segfault,
abort), a run over ``-timeout`` seconds or an RSS over ``-rss_limit_mb`` is a
finding: libFuzzer writes the input to ``crash-*``/``timeout-*``/``oom-*``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import atheris

# strict(): the type-exact comparison the C fast-path tests use, shared with them
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
from fastpath import strict

__all__ = ["DEFAULT_OPTIONS", "main", "strict"]

#: The libFuzzer options a plain run gets unless the command line sets them.
DEFAULT_OPTIONS = ("-timeout=10", "-rss_limit_mb=2048")


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
