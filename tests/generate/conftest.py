"""Small generated samples shared by the generation tests (a few seconds each, made once)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "toptag_small.parquet"


def _make(tmp_path_factory, process: str, n: int, **kw):
    from hepnn.data.io import read_jets
    from hepnn.generate import generate

    out = tmp_path_factory.mktemp(f"gen_{process}") / f"{process}.parquet"
    (path,) = generate(process, n, out, seed=11, progress=False, **kw)
    return path, read_jets(path)


@pytest.fixture(scope="session")
def top_jets(tmp_path_factory):
    """40 top jets, the defaults (unbiased mode, simple detector, leading jet)."""
    return _make(tmp_path_factory, "top", 40)


@pytest.fixture(scope="session")
def qcd_jets(tmp_path_factory):
    """40 QCD jets, the defaults (unbiased mode, simple detector, leading jet)."""
    return _make(tmp_path_factory, "qcd", 40)


@pytest.fixture(scope="session")
def sample():
    """The committed ~5000-jet sample (top + QCD) for statistics-hungry checks."""
    from hepnn.data.io import read_jets

    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} not generated yet")
    return read_jets(SAMPLE)
