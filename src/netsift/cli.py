"""The ``netsift`` command line and its one error boundary (:func:`main`).

Every failure a user can cause ends here as one sentence on stderr and an
:class:`~netsift.errors.ExitCode`; tracebacks are for bugs only.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from collections.abc import Sequence

import click

from . import __version__
from .errors import ExitCode, NetsiftError, OutputError
from .pipeline import ENGINES

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 internal error, 2 bad usage, 3 input not found, "
    "4 input unreadable, 5 not a capture, 6 output cannot be written, 130 interrupted."
)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="netsift")
def cli() -> None:
    """netsift: what is inside network traffic.

    \b
    Examples:
      netsift analyze capture.pcapng -o report.json
      netsift analyze 'captures/*.pcap.gz' --quiet -o report.json
      netsift schema > report.schema.json
    """


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, writable=False),
              help="Write the JSON report to this file (atomically).")
@click.option("--engine", type=click.Choice(ENGINES), default="fast", show_default=True,
              help="Decoder: 'fast' (vectorized) or 'scapy' (the slow reference).")
@click.option("--top", "top_n", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="Rows in each top-N table.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout instead of the summary.")
@click.option("-q", "--quiet", is_flag=True, help="No summary and no progress bar (warnings still go to stderr).")
@click.option("--no-progress", is_flag=True, help="Never show the progress bar.")
def analyze(captures: tuple[str, ...], output: str | None, engine: str, top_n: int,
            as_json: bool, quiet: bool, no_progress: bool) -> None:
    """Read captures, decode them and report traffic statistics.

    CAPTURE may be a pcap or pcapng file (optionally gzip-compressed), a glob
    or a directory (searched recursively). Prints a summary; -o writes the JSON
    report whose schema `netsift schema` prints.

    \b
    Examples:
      netsift analyze capture.pcapng -o report.json
      netsift analyze day1/ day2/*.pcap.gz --top 50 -o week.json
      netsift analyze capture.pcap --json | jq .quality
    """
    from .pipeline import analyze as run

    err = sys.stderr
    # SIGTERM (a service manager, a timeout) ends the run like Ctrl-C: the report
    # of what was read is still written, marked partial.
    with contextlib.suppress(ValueError):  # not in the main thread (embedded use)
        signal.signal(signal.SIGTERM, _interrupt)

    def warn(message: str) -> None:
        click.echo(f"netsift: warning: {message}", err=True)

    show_progress = not (quiet or no_progress or as_json) and err.isatty()
    if show_progress:
        from .terminal import progress_bar

        bar = progress_bar(err)
        task = bar.add_task("read", total=None, packets=0, rate="")
        started = time.monotonic()

        def progress(done: int, total: int, packets: int) -> None:
            el = time.monotonic() - started
            bar.update(task, completed=done, total=total, packets=packets,
                       rate=f"{packets / el:,.0f} pkt/s" if el > 0 else "")

        with bar:
            report = run(captures, engine=engine, top_n=top_n, progress=progress, warn=warn)
    else:
        report = run(captures, engine=engine, top_n=top_n, warn=warn)
    if output:
        report.write_json(output)
    if as_json:
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.write(report.to_json())
    elif not quiet:
        from .terminal import console, render_summary

        render_summary(console(sys.stdout), report.data)
        if output:
            click.echo(f"report written to {output}")
    if report.data["run"]["partial"]:
        raise KeyboardInterrupt


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@cli.command()
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of the analyze report.

    \b
    Example:
      netsift schema > report.schema.json
    """
    from .report import report_schema

    click.echo(json.dumps(report_schema(), indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code.  The single place exceptions become exit codes."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="netsift",
                 standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:  # click's form of KeyboardInterrupt (Ctrl-C, SIGTERM)
        click.echo("netsift: interrupted; a report written with -o covers what was read", err=True)
        return ExitCode.INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except NetsiftError as exc:
        click.echo(f"netsift: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("netsift: interrupted; the report covers what was read", err=True)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.OK
    except OSError as exc:  # output side (stdout closed, disk full while printing)
        click.echo(f"netsift: error: {OutputError(str(exc))}", err=True)
        return ExitCode.OUTPUT
    return ExitCode.OK


