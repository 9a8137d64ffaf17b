"""Pile-up overlay: Poisson(μ) minimum-bias events per hard event, seeded, raising the jets' soft activity."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepnn.generate.pileup import PileupOverlay, minbias_seed


def _empty_events(n: int) -> ak.Array:
    rec = ak.zip({k: np.zeros(0) for k in ("E", "px", "py", "pz")} | {"charge": np.zeros(0, np.int8),
                                                                      "pid": np.zeros(0, np.int32)})  # fmt: skip
    return ak.unflatten(rec, np.zeros(n, np.int64))


def test_overlay_adds_a_poisson_number_of_minimum_bias_events_per_event():
    mu, n = 2.0, 20
    overlay = PileupOverlay(mu=mu, shard_seed=1234)
    out = overlay(_empty_events(n))
    draws = np.random.default_rng([1234, 11]).poisson(mu, n)  # the overlay's documented seeding
    assert overlay.n_minbias == draws.sum()
    counts = ak.to_numpy(ak.num(out))
    assert np.all(counts[draws == 0] == 0) and np.all(counts[draws > 0] > 0)
    per_event = counts.sum() / draws.sum()  # visible particles of one 14 TeV minimum-bias event
    assert 100 < per_event < 400
    again = PileupOverlay(mu=mu, shard_seed=1234)(_empty_events(n))
    assert ak.to_list(again.E) == ak.to_list(out.E)  # reproducible
    assert minbias_seed(1234) != 1234 and 0 <= minbias_seed(899_999_999) < 900_000_000


@pytest.mark.slow  # ~25 s on a loaded 2-core machine: minimum-bias events for every hard event
def test_pileup_raises_the_jets_soft_activity(tmp_path):
    from hepnn.data.io import read_jets
    from hepnn.generate import generate

    kw = dict(mode="window", detector="none", jets="all", max_constituents=None, progress=False, seed=3)
    (clean,) = generate("qcd", 12, tmp_path / "clean.parquet", **kw)
    (piled,) = generate("qcd", 12, tmp_path / "piled.parquet", pileup=10, **kw)
    n_clean = ak.mean(ak.num(read_jets(clean).part_E))
    jets = read_jets(piled)
    # ≈ 6 visible minimum-bias particles per unit area and event, jet area ≈ 2: ≈ +120 constituents
    assert ak.mean(ak.num(jets.part_E)) > n_clean + 50
    soft = ak.sum(np.hypot(jets.part_px, jets.part_py) < 1.0, axis=1)
    assert ak.mean(soft) > 50
    (again,) = generate("qcd", 12, tmp_path / "again.parquet", pileup=10, **kw)
    assert again.read_bytes() == piled.read_bytes()
