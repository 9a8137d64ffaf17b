"""Shared helpers for the hardening tests: the console entry point in process, and one tiny run."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PFN = ROOT / "configs" / "top_tagging" / "pfn.yaml"
TINY_PFN = ["data.max_jets=300", "train.epochs=1", "model.params.phi=[8, 8]", "model.params.f=[8]"]


def hepnn(capsys, *args: str) -> tuple[int, str]:
    """``hepnn ARGS`` through ``hepnn.cli.run`` (the console script, with its generic error handler).

    Returns (exit code, stdout + stderr). ``--debug`` makes run() re-raise, so the caller sees the
    exception itself.
    """
    from hepnn import cli

    argv, sys.argv = sys.argv, ["hepnn", *args]
    try:
        cli.run()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def assert_one_line_error(code: int, output: str, *fragments: str) -> None:
    """Exit code 2, an ``error:`` line naming every fragment, no traceback."""
    assert code == 2, output
    assert "Traceback" not in output, output
    error = output[output.index("error:"):] if "error:" in output else ""
    for fragment in fragments:
        assert fragment in error, f"{fragment!r} not in {error!r}"


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A finished tiny PFN run on the committed sample (a few seconds); copy it before changing it."""
    from hepnn.config import load_config
    from hepnn.train.fit import fit

    cfg = load_config(PFN, [*TINY_PFN, "evaluate.plots=false"])
    return fit(cfg, tmp_path_factory.mktemp("runs") / "pfn", progress=False)


@pytest.fixture()
def run_copy(trained_run, tmp_path) -> Path:
    """A private copy of the tiny run that a test may damage."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))
