"""Tests of the scripts in benchmarks/."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from tests.conftest import ROOT


def benchmark_script(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module, imported the way the scripts import their siblings (by name,
    with benchmarks/ on the path), so a script and a test that both use ``leaderboard`` share one module."""
    folder = str(ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)
