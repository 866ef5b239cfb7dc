"""netsift: packet-capture analysis for security analysts.

Public API::

    import netsift
    report = netsift.analyze(["capture.pcapng"])
    report.data["capture"]["packets"]
    report.write_json("report.json")
"""

from __future__ import annotations

import os

# netsift does no linear algebra; without this, numpy's OpenBLAS starts a
# thread per core that busy-waits after every call and steals CPU from the
# pipeline.  A value the user set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

from .errors import ExitCode, NetsiftError
from .pipeline import analyze
from .report import Report, report_schema

__all__ = ["ExitCode", "NetsiftError", "Report", "__version__", "analyze", "report_schema"]
