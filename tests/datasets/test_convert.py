"""`hepnn datasets convert`: quark-gluon .npz and JetNet HDF5 -> native parquet, particles round-tripped exactly."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest

from hepnn.data.io import read_jets, read_metadata
from hepnn.datasets.convert import convert_dataset
from hepnn.datasets.sources import JETNET_TYPES, QUARKGLUON
from hepnn.errors import DataError, HepnnError
from tests.datasets import layouts

# PDG masses in GeV, independent of hepnn.datasets.particles (a test must be able to disagree with it)
MASS = {22: 0.0, 11: 0.000510999, 13: 0.105658, 211: 0.13957, 321: 0.493677, 130: 0.497611,
        2212: 0.938272, 2112: 0.939565}


@pytest.fixture(scope="module")
def qg_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qg")
    written = {f.name: layouts.qg_npz(folder / f.name, n=13, seed=i) for i, f in enumerate(QUARKGLUON.files)}
    return folder, written


def _sorted_source(X: np.ndarray) -> list[np.ndarray]:
    """Each jet's real particles (pT > 0) sorted by decreasing pT, by a plain per-jet loop."""
    return [row[row[:, 0] > 0][np.argsort(-row[row[:, 0] > 0][:, 0], kind="stable")] for row in X]


def test_quarkgluon_round_trips_the_particles_exactly(qg_folder, tmp_path):
    folder, written = qg_folder
    out = convert_dataset("quarkgluon", folder, tmp_path / "pq", keep_source=True, shard_size=100,
                          row_group_size=16, chunk=5)
    assert {s: len(p) for s, p in out.items()} == {"train": 3, "val": 1, "test": 1}  # 208 / 26 / 26 jets
    for split in ("train", "val", "test"):
        files = [f.name for f in QUARKGLUON.files if f.split == split]
        X = np.concatenate([written[n][0] for n in files])
        y = np.concatenate([written[n][1] for n in files])
        jets = read_jets(out[split])
        assert len(jets) == len(X)
        assert np.array_equal(ak.to_numpy(jets["label"]), y.astype(np.int64))
        src = _sorted_source(X)
        flat = np.concatenate(src)  # (P, 4): pt, y, phi, pid
        for k, name in enumerate(("src_pt", "src_y", "src_phi")):  # bit for bit
            assert np.array_equal(ak.to_numpy(ak.flatten(jets[name])), flat[:, k])
        assert np.array_equal(ak.to_numpy(ak.flatten(jets["part_pid"])), flat[:, 3].astype(np.int32))
        assert list(ak.num(jets["part_E"])) == [len(s) for s in src]
        m = np.array([MASS[abs(int(p))] for p in flat[:, 3]])
        mt = np.sqrt(flat[:, 0] ** 2 + m**2)
        want = {"part_E": mt * np.cosh(flat[:, 1]), "part_px": flat[:, 0] * np.cos(flat[:, 2]),
                "part_py": flat[:, 0] * np.sin(flat[:, 2]), "part_pz": mt * np.sinh(flat[:, 1])}
        for name, value in want.items():  # float64 physics rounded once to float32
            assert np.array_equal(ak.to_numpy(ak.flatten(jets[name])), value.astype(np.float32)), name
        charge = np.sign(flat[:, 3]) * np.isin(np.abs(flat[:, 3]), [211, 321, 2212]) \
            - np.sign(flat[:, 3]) * np.isin(np.abs(flat[:, 3]), [11, 13])
        assert np.array_equal(ak.to_numpy(ak.flatten(jets["part_charge"])), charge.astype(np.int8))
    meta = read_metadata(out["val"][0])
    assert meta["classes"] == ["gluon", "quark"] and meta["sources"] == ["QG_jets_16.npz", "QG_jets_17.npz"]


def test_shards_are_balanced_and_row_groups_fixed(qg_folder, tmp_path):
    folder, _ = qg_folder
    out = convert_dataset("quarkgluon", folder, tmp_path / "pq", splits=["train"], shard_size=100,
                          row_group_size=16, chunk=7)
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in out["train"]]
    assert sizes == [70, 69, 69]  # 208 jets in ceil(208 / 100) equal shards
    groups = [pq.ParquetFile(p).metadata.row_group(i).num_rows for p in out["train"]
              for i in range(pq.ParquetFile(p).metadata.num_row_groups)]
    assert groups == [16, 16, 16, 16, 6] + [16, 16, 16, 16, 5] * 2
    sub = convert_dataset("quarkgluon", folder, tmp_path / "sub", splits=["test"], subset=20)
    assert len(read_jets(sub["test"])) == 20


def test_a_failed_conversion_leaves_no_parquet(qg_folder, tmp_path, monkeypatch):
    from hepnn.datasets import convert_qg

    folder, _ = qg_folder
    calls = {"n": 0}
    real = convert_qg.qg_jets

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 30:
            raise RuntimeError("disk full")
        return real(*args, **kw)

    monkeypatch.setattr(convert_qg, "qg_jets", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        convert_dataset("quarkgluon", folder, tmp_path / "pq", splits=["train"], shard_size=50,
                        row_group_size=8, chunk=5)
    assert list((tmp_path / "pq").iterdir()) == []  # neither finished shards nor temporary files


def _jetnet_reference_division(n: int) -> list[np.ndarray]:
    """JetNet's own code path (jetnet.py getData + utils.getSplitting), with the global RNG as it uses it."""
    state = np.random.get_state()
    try:
        np.random.seed(42)
        randperm = np.random.permutation(n)
    finally:
        np.random.set_state(state)
    cuts = (np.cumsum(np.insert([0.7, 0.15, 0.15], 0, 0)) * n).astype(int)
    return [randperm[cuts[i]:cuts[i + 1]] for i in range(3)]


def test_jetnet_keeps_its_published_division_and_particles(tmp_path):
    folder = tmp_path / "jn"
    folder.mkdir()
    src = {t: layouts.jetnet_h5(folder / f"{t}.hdf5", n=9 + i, seed=i) for i, t in enumerate(JETNET_TYPES)}
    pf = np.concatenate([src[t][0] for t in JETNET_TYPES])  # JetNet's concatenation order
    jf = np.concatenate([src[t][1] for t in JETNET_TYPES])
    label = np.concatenate([np.full(9 + i, i) for i in range(5)])
    out = convert_dataset("jetnet", folder, tmp_path / "pq", keep_source=True, row_group_size=8, chunk=6)
    for split, rows in zip(("train", "val", "test"), _jetnet_reference_division(len(pf))):
        jets = read_jets(out[split])
        assert np.array_equal(ak.to_numpy(jets["label"]), label[rows])
        assert np.array_equal(ak.to_numpy(jets["jet_pt"]), jf[rows, 0])
        real = [p[p[:, 3] > 0] for p in pf[rows]]
        real = [p[np.argsort(-p[:, 2], kind="stable")] for p in real]
        flat = np.concatenate(real)
        for k, name in enumerate(("src_etarel", "src_phirel", "src_ptrel")):
            assert np.array_equal(ak.to_numpy(ak.flatten(jets[name])), flat[:, k]), name
        pt = flat[:, 2].astype(np.float64) * np.repeat(jf[rows, 0], [len(p) for p in real])
        eta = flat[:, 0].astype(np.float64) + np.repeat(jf[rows, 1], [len(p) for p in real])
        phi = flat[:, 1].astype(np.float64)  # float64 physics, rounded once to float32
        assert np.array_equal(ak.to_numpy(ak.flatten(jets["part_px"])), (pt * np.cos(phi)).astype(np.float32))
        assert np.array_equal(ak.to_numpy(ak.flatten(jets["part_E"])), (pt * np.cosh(eta)).astype(np.float32))
    gluons = convert_dataset("jetnet", folder, tmp_path / "g", jet_types=["g"], splits=["test"])
    assert set(ak.to_numpy(read_jets(gluons["test"])["label"])) == {0}


def test_convert_refusals_are_clear(qg_folder, tmp_path):
    folder, _ = qg_folder
    with pytest.raises(HepnnError, match="needs no conversion: hepnn reads it as it is"):
        convert_dataset("toptagging", tmp_path)
    with pytest.raises(HepnnError, match="--jet-types applies to jetnet only"):
        convert_dataset("quarkgluon", folder, jet_types=["g"])
    with pytest.raises(HepnnError, match="unknown type x"):
        convert_dataset("jetnet", tmp_path, jet_types=["x"])
    with pytest.raises(DataError, match="hepnn datasets get quarkgluon --dir .* --split val"):
        convert_dataset("quarkgluon", tmp_path, splits=["val"])
    with pytest.raises(HepnnError, match="--subset must be a positive"):
        convert_dataset("quarkgluon", folder, subset=0)
