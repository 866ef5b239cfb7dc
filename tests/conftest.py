"""Shared fixtures: where the shared capture corpus lives, and a report validator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_corpus() -> Path | None:
    """The shared corpus: $NETSIFT_CORPUS, else ../shared/corpus beside the repository."""
    env = os.environ.get("NETSIFT_CORPUS")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "corpus"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    path = find_corpus()
    if path is None:
        pytest.skip("the shared capture corpus (../shared/corpus or $NETSIFT_CORPUS) is absent")
    return path


@pytest.fixture(scope="session")
def validate_report() -> Any:
    """A callable that raises if a report does not match the shipped JSON Schema."""
    import jsonschema

    import netsift

    validator = jsonschema.Draft202012Validator(netsift.report_schema())

    def check(data: dict[str, Any]) -> None:
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        if errors:
            raise AssertionError(
                "report violates its schema: "
                + "; ".join(f"{list(e.path)}: {e.message[:200]}" for e in errors[:5])
            )

    return check


@pytest.fixture(autouse=True)
def _every_report_matches_the_schema(monkeypatch: pytest.MonkeyPatch, validate_report: Any) -> None:
    """Every Report any test builds is validated against the shipped JSON Schema."""
    import netsift.report

    original = netsift.report.Report.__init__

    def checked_init(self: netsift.report.Report, data: dict[str, Any]) -> None:
        validate_report(data)
        original(self, data)

    monkeypatch.setattr(netsift.report.Report, "__init__", checked_init)
