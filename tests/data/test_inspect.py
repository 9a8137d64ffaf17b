"""``inspect``: counts, label balance, multiplicity, jet statistics (vs vector) and the memory estimate."""

from __future__ import annotations

import awkward as ak
import numpy as np
import vector

from hepnn.data.inspect import GiB, inspect_files, render_inspect
from hepnn.data.loader import estimate_jets_bytes
from hepnn.data.io import write_parquet, write_toptagging_h5
from tests.conftest import random_jets


def test_memory_estimate_by_hand_and_loader_choice(tmp_path):
    # per particle 4 x 4 B (p4) + 1 (charge) + 4 (pid) = 21 B; per jet 8 (offset) + 8 (target) + 4 x 3 (jet
    # features) = 28 B; doubled for the copy made while reading: 2 x 1000 x (50 x 21 + 28) = 2,156,000
    assert estimate_jets_bytes(1000, 50, 3) == 2 * 1000 * (50 * 21 + 28)
    write_parquet(random_jets(40, seed=4), tmp_path / "a.parquet")
    (small,) = inspect_files([tmp_path / "a.parquet"])
    (tiny,) = inspect_files([tmp_path / "a.parquet"], memory_limit=10)
    assert small["loader"] == "memory" and tiny["loader"] == "stream"


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
    assert sa["memory_bytes"] == int(estimate_jets_bytes(70, counts.mean(), 9))
    assert sa["loader"] == "memory"
    text = render_inspect([sa, sb])
    assert "  jets: 70" in text and "  jets: 30" in text and "\njets: 100\n" in text
    assert "loader memory" in text and "labels: 0:" in text
    assert "(limit 4 GiB)" in text and GiB == 2**30
