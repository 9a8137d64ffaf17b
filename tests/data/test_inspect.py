"""``inspect``: counts, label balance, multiplicity, jet statistics (vs vector) and the memory estimate."""

from __future__ import annotations

import awkward as ak
import numpy as np
import vector

from hepnn.data.inspect import GiB, choose_loader, estimate_memory, inspect_files, render_inspect
from hepnn.data.io import write_parquet, write_toptagging_h5
from tests.conftest import random_jets


def test_estimate_memory_by_hand():
    # 1000 jets x 50 particles x (4 + 3) x 4 B = 1,400,000; per jet 1000 x 20 = 20,000;
    # one batch 10 x 80 x (28 + 1) = 23,200
    assert estimate_memory(1000, 50, 3, max_particles=80, batch_size=10) == 1_400_000 + 20_000 + 23_200
    big = estimate_memory(10_000_000, 60, 7, max_particles=200)
    assert choose_loader(big) == "stream" and choose_loader(estimate_memory(1000, 50, 3)) == "memory"


def test_inspect_parquet_and_h5_in_chunks(tmp_path):
    a, b = random_jets(70, seed=1), random_jets(30, seed=2)
    write_parquet(a, tmp_path / "a.parquet", metadata={"seed": 1}, row_group_size=16)
    write_toptagging_h5(ak.zip({k: b[k] for k in ("part_E", "part_px", "part_py", "part_pz", "label")},
                               depth_limit=1), tmp_path / "b.h5")
    sa, sb = inspect_files([tmp_path / "a.parquet", tmp_path / "b.h5"], chunk_size=16)
    assert sa["jets"] == 70 and sb["jets"] == 30 and sb["format"] == "h5"
    assert sa["labels"] == dict(zip(*np.unique(ak.to_numpy(a.label), return_counts=True)))
    counts = ak.to_numpy(ak.num(a.part_E))
    assert sa["multiplicity"]["mean"] == counts.mean() and sa["multiplicity"]["max"] == counts.max()
    assert sa["multiplicity"]["p50"] == np.percentile(counts, 50)
    assert sa["columns"]["part_px"] == "var * float32" and sa["metadata"] == {"seed": 1}
    jet = vector.array({c: ak.to_numpy(ak.sum(ak.values_astype(a[f"part_{c}"], np.float64), axis=1))
                        for c in ("E", "px", "py", "pz")})
    for name, ref in (("jet_pt", jet.pt), ("jet_mass", jet.mass), ("jet_eta", jet.eta)):
        st = sa["stats"][name]
        np.testing.assert_allclose([st["mean"], st["std"], st["min"], st["max"]],
                                   [ref.mean(), ref.std(), ref.min(), ref.max()], rtol=1e-6, atol=1e-9,
                                   err_msg=name)
    part_pt = np.hypot(ak.to_numpy(ak.flatten(a.part_px)), ak.to_numpy(ak.flatten(a.part_py)))
    np.testing.assert_allclose(sa["stats"]["part_pt"]["max"], part_pt.max(), rtol=1e-6)
    assert sa["memory_bytes"] == estimate_memory(70, counts.mean(), 7, max_particles=counts.max())
    assert sa["loader"] == "memory"
    text = render_inspect([sa, sb])
    assert "  jets: 70" in text and "  jets: 30" in text and "\njets: 100\n" in text
    assert "loader memory" in text and "labels: 0:" in text
    assert "(limit 4 GiB)" in text and GiB == 2**30
