"""A file that appears under its name only when complete: write a temporary file, then rename.

:class:`AtomicFile` opens a temporary file next to ``path`` (same directory,
so the final :func:`os.replace` is atomic), with the mode ``path`` would get
(an existing file's mode, or 0666 minus the umask).  ``commit()`` flushes,
fsyncs and renames; ``abort()`` removes the temporary file.  Every failure is
an :class:`~netsift.errors.OutputError` naming ``path``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from .errors import OutputError


def _default_mode(path: str) -> int:
    """The existing file's mode, or 0666 minus the process umask for a new file."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


class AtomicFile:
    def __init__(self, path: str, what: str = "the output", prefix: str = ".netsift-") -> None:
        self.path = path
        self.what = what
        directory = os.path.dirname(os.path.abspath(path)) or "."
        if not os.path.isdir(directory):
            raise OutputError(f"{path}: the directory {directory} does not exist")
        if os.path.isdir(path):
            raise OutputError(f"{path}: is a directory")
        try:
            fd, self.tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write here ({exc.strerror})") from None
        os.fchmod(fd, _default_mode(path))
        self.raw: BinaryIO = os.fdopen(fd, "wb")
        self.done = False

    def error(self, exc: OSError) -> OutputError:
        """Drop the temporary file and describe ``exc`` as a failure to write ``path``."""
        self.abort()
        return OutputError(f"{self.path}: cannot write {self.what} ({exc.strerror or exc})")

    def commit(self) -> None:
        try:
            self.raw.flush()
            os.fsync(self.raw.fileno())
            self.raw.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise self.error(exc) from None
        self.done = True

    def abort(self) -> None:
        if self.done:
            return
        with contextlib.suppress(Exception):
            self.raw.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)
        self.done = True


@contextlib.contextmanager
def atomic_output(path: str, what: str = "the output", prefix: str = ".netsift-") -> Iterator[BinaryIO]:
    """``with atomic_output(path) as f:`` writes ``f``; ``path`` appears only if the block succeeds."""
    out = AtomicFile(path, what, prefix)
    try:
        yield out.raw
    except OSError as exc:
        raise out.error(exc) from None
    except BaseException:
        out.abort()
        raise
    out.commit()
