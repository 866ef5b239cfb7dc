"""Commands that touch the network: ``live`` (capture), ``craft`` (build/send probes), ``scan``.

They share the error boundary of :func:`netsift.cli.main`; sending is fenced by
:mod:`netsift.scope`.
"""

from __future__ import annotations

from .cli_craft import craft
from .cli_live import live
from .cli_scan import scan

__all__ = ["craft", "live", "scan"]
