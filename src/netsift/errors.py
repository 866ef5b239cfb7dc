"""Exceptions and exit codes: the one place where failures get their sentence and number.

Exception tree (every class carries a sentence a user can act on)::

    NetsiftError                    exit 1  (ExitCode.ERROR)
    ├── UsageError                  exit 2  (ExitCode.USAGE)      bad option or value
    ├── InputNotFoundError          exit 3  (ExitCode.NO_INPUT)   path or glob matches nothing
    ├── InputUnreadableError        exit 4  (ExitCode.UNREADABLE) permission denied, I/O error
    ├── NotACaptureError            exit 5  (ExitCode.NOT_CAPTURE) neither pcap nor pcapng
    ├── OutputError                 exit 6  (ExitCode.OUTPUT)     report cannot be written
    ├── PrivilegeError              exit 7  (ExitCode.PRIVILEGE)  live capture/sending lacks a capability
    └── ScopeError                  exit 8  (ExitCode.SCOPE)      a target outside the authorized scope

Damage *inside* a capture (a cut last record, impossible lengths) is not an
exception: the reader stops that file, records a warning and every result
computed so far is kept.  ``ExitCode.INTERRUPTED`` (130) is used when the user
stops a run with Ctrl-C.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes; documented in the README and in ``netsift --help``."""

    OK = 0
    ERROR = 1
    USAGE = 2
    NO_INPUT = 3
    UNREADABLE = 4
    NOT_CAPTURE = 5
    OUTPUT = 6
    PRIVILEGE = 7
    SCOPE = 8
    FINDINGS = 10
    INTERRUPTED = 130


#: The exit codes in one line, for every command's ``--help``.
EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 internal error (selftest: a check failed), 2 bad usage, 3 input not found, "
    "4 input unreadable, 5 not a capture, 6 output cannot be written, 7 missing privilege (raw sockets), "
    "8 target outside the authorized scope (nothing sent), 10 a finding reached --fail-on, 130 interrupted."
)


class NetsiftError(Exception):
    """Base class: ``str(exc)`` is the one sentence shown to the user."""

    exit_code: ExitCode = ExitCode.ERROR


class UsageError(NetsiftError):
    exit_code = ExitCode.USAGE


class InputNotFoundError(NetsiftError):
    exit_code = ExitCode.NO_INPUT


class InputUnreadableError(NetsiftError):
    exit_code = ExitCode.UNREADABLE


class NotACaptureError(NetsiftError):
    exit_code = ExitCode.NOT_CAPTURE


class OutputError(NetsiftError):
    exit_code = ExitCode.OUTPUT


class PrivilegeError(NetsiftError):
    """Raw sockets need CAP_NET_RAW (root, or the capability granted to the interpreter)."""

    exit_code = ExitCode.PRIVILEGE


class ScopeError(NetsiftError):
    """An active probe would leave the authorized scope; nothing was sent."""

    exit_code = ExitCode.SCOPE
