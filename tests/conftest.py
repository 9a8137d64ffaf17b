"""Shared fixtures: the committed real sample, small synthetic jets, one thread per test process."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "toptag_small.parquet"


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """The committed Pythia top/QCD sample (see data/README.md for the command that made it)."""
    assert SAMPLE.is_file(), f"committed sample {SAMPLE} is missing"
    return SAMPLE


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def random_jets(n: int = 64, seed: int = 0, max_particles: int = 30):
    """Synthetic jets in the native layout (random constituents near a common axis; not physics)."""
    import awkward as ak

    g = np.random.default_rng(seed)
    counts = g.integers(1, max_particles + 1, size=n)
    total = int(counts.sum())
    pt = g.exponential(20.0, size=total).astype(np.float32) + 1.0
    eta = np.repeat(g.normal(0, 1, size=n), counts) + g.normal(0, 0.2, size=total)
    phi = np.repeat(g.uniform(-np.pi, np.pi, size=n), counts) + g.normal(0, 0.2, size=total)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2)
    order = np.argsort(-ak.unflatten(pt, counts), axis=1)

    def jag(a, dtype=np.float32):
        return ak.unflatten(a.astype(dtype), counts)[order]

    arrays = ak.zip(
        {
            "part_E": jag(e), "part_px": jag(px), "part_py": jag(py), "part_pz": jag(pz),
            "part_charge": jag(g.integers(-1, 2, size=total), np.int8),
            "part_pid": jag(g.choice([211, -211, 22, 130], size=total), np.int32),
        },
        depth_limit=1,
    )
    arrays["label"] = g.integers(0, 2, size=n).astype(np.int64)
    return arrays


@pytest.fixture()
def tiny_jets():
    return random_jets()


def train_metrics(config: str | Path, overrides: list[str], out: Path) -> dict:
    """Train a ready config (relative to the repository root) into ``out``; its metrics.json, plus
    ``mass``: the metrics of the jet mass alone on the same test jets (``auc``, ``rej30``, ``rej50``),
    the trivial baseline a tagger must beat (AUC 0.92 on the committed sample's default split)."""
    import json

    from hepnn.config import load_config
    from hepnn.train.fit import fit

    run_dir = fit(load_config(ROOT / config, overrides), out, progress=False)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if (run_dir / "test_scores.parquet").is_file():
        from hepnn.evaluate.scores import mass_baseline

        metrics["mass"] = mass_baseline(run_dir)
    return metrics


def assert_beats_mass(metrics: dict) -> None:
    """A tagger's test AUC (and 1/eps_B at eps_S = 0.3) above the jet mass alone on the same test jets.

    The jet mass is the trivial baseline of top tagging (AUC 0.92 on the committed sample's default
    split): a model that learned only the mass fails here.
    """
    base = metrics["mass"]
    assert metrics["auc"] > base["auc"], f"AUC {metrics['auc']:.4f} <= the jet mass alone {base['auc']:.4f}"
    assert metrics["rej30"] > base["rej30"], f"1/eps_B(0.3) {metrics['rej30']:.1f} <= the jet mass alone {base['rej30']:.1f}"
