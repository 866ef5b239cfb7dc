"""Regenerate every golden capture and its expected facts: ``python tests/golden/regen.py``.

Runs each ``*.pcap.py`` / ``*.pcapng.py`` script in this folder as ``__main__``
(Scapy needed, netsift not), all in this one process so Scapy is imported once;
each script also runs on its own: ``python x.pcap.py [OUTDIR]``.  ``--check``
regenerates into a temporary directory instead and exits 1 if any committed
file differs from what its script now produces (the scripts are deterministic:
fixed timestamps, no randomness).
"""

from __future__ import annotations

import argparse
import filecmp
import runpy
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts() -> list[Path]:
    return sorted([*HERE.glob("*.pcap.py"), *HERE.glob("*.pcapng.py")])


def run_all(out_dir: Path) -> list[str]:
    """Run every script writing into ``out_dir``; return the names of the files made."""
    argv = sys.argv
    try:
        for script in scripts():
            sys.argv = [str(script), str(out_dir)]
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    return sorted(p.name for p in out_dir.iterdir() if p.suffix in (".pcap", ".pcapng", ".json"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare fresh output with the committed files instead of writing")
    args = parser.parse_args()
    if not args.check:
        made = run_all(HERE)
        print(f"regenerated {len(made)} files from {len(scripts())} scripts in {HERE}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        made = run_all(Path(tmp))
        stale = [n for n in made
                 if not (HERE / n).exists() or not filecmp.cmp(Path(tmp) / n, HERE / n, shallow=False)]
    for name in stale:
        print(f"{name}: differs from what its script produces (run regen.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
