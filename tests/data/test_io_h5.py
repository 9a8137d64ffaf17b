"""Top Tagging HDF5 layout (arXiv:1902.09914): the pandas-"fixed" writer and the chunked h5py reader."""

from __future__ import annotations

import awkward as ak
import h5py
import numpy as np
import pytest
import vector

from hepnn.data.io import count_jets, iter_chunks, read_jets, read_metadata, write_parquet, write_toptagging_h5
from hepnn.errors import DataError
from tests.conftest import random_jets
from tests.data.test_io import assert_same_jets


def truth_jets(n: int = 30, seed: int = 0, max_particles: int = 30) -> ak.Array:
    jets = random_jets(n, seed=seed, max_particles=max_particles)
    jets = ak.zip({k: jets[k] for k in ("part_E", "part_px", "part_py", "part_pz", "label")}, depth_limit=1)
    g = np.random.default_rng(seed + 1)
    jets["truth_pt"] = g.uniform(400, 600, n).astype(np.float32)
    jets["truth_eta"] = g.uniform(-2, 2, n).astype(np.float32)
    jets["truth_phi"] = g.uniform(-3, 3, n).astype(np.float32)
    jets["truth_mass"] = g.uniform(170, 175, n).astype(np.float32)
    return jets


def test_writer_layout_matches_pandas_fixed_frame(tmp_path):
    jets = truth_jets(12, max_particles=8)
    softest_first = ak.zip({k: jets[k][:, ::-1] if k.startswith("part") else jets[k] for k in jets.fields},
                           depth_limit=1)
    write_toptagging_h5(softest_first, tmp_path / "t.h5", max_particles=5)
    with h5py.File(tmp_path / "t.h5") as f:
        g = f["table"]
        assert g.attrs["pandas_type"] == b"frame" and g.attrs["nblocks"] == 2 and g.attrs["ndim"] == 2
        names = [x.decode() for x in g["axis0"][()]]
        assert names[:5] == ["E_0", "PX_0", "PY_0", "PZ_0", "E_1"] and len(names) == 4 * 5 + 6
        assert names[-6:] == ["truthE", "truthPX", "truthPY", "truthPZ", "ttv", "is_signal_new"]
        assert [x.decode() for x in g["block1_items"][()]] == ["ttv", "is_signal_new"]
        np.testing.assert_array_equal(g["axis1"][()], np.arange(12))
        floats, ints = g["block0_values"][()], g["block1_values"][()]
    assert floats.dtype == np.float32 and floats.shape == (12, 24) and ints.dtype == np.int64
    np.testing.assert_array_equal(ints[:, 1], jets.label)
    # by hand: jet 0's constituents, hardest first, zero padded to 5
    pt = np.hypot(ak.to_numpy(jets.part_px[0]), ak.to_numpy(jets.part_py[0]))
    order = np.argsort(-pt)[:5]
    expect = np.zeros((5, 4), np.float32)
    expect[: len(order)] = np.stack([ak.to_numpy(jets[c][0])[order] for c in ("part_E", "part_px", "part_py", "part_pz")], 1)
    np.testing.assert_array_equal(floats[0, :20].reshape(5, 4), expect)
    top = vector.array({"pt": jets.truth_pt, "eta": jets.truth_eta, "phi": jets.truth_phi, "mass": jets.truth_mass})
    np.testing.assert_allclose(floats[:, 20:], np.stack([top.E, top.px, top.py, top.pz], 1), rtol=1e-5)


def test_pandas_reads_the_file_if_installed(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("tables")
    jets = truth_jets(10)
    write_toptagging_h5(jets, tmp_path / "t.h5", max_particles=200)
    df = pd.read_hdf(tmp_path / "t.h5", "table")
    assert df.shape == (10, 806)
    np.testing.assert_array_equal(df["is_signal_new"].to_numpy(), jets.label)
    np.testing.assert_array_equal((df.filter(regex=r"^E_\d+$") > 0).sum(axis=1).to_numpy(), ak.num(jets.part_E))


def test_reader_matches_parquet_and_truth_round_trips(tmp_path):
    jets = truth_jets(40)
    write_toptagging_h5(jets, tmp_path / "t.h5")
    write_parquet(jets, tmp_path / "t.parquet")
    from_h5, from_pq = read_jets(tmp_path / "t.h5"), read_jets(tmp_path / "t.parquet")
    for name in ("part_E", "part_px", "part_py", "part_pz", "label"):
        assert_same_jets(from_h5[[name]], from_pq[[name]])
    for name in ("truth_pt", "truth_eta", "truth_phi", "truth_mass"):
        np.testing.assert_allclose(from_h5[name], jets[name], rtol=2e-3, atol=2e-3, err_msg=name)
    assert count_jets(tmp_path / "t.h5") == 40
    assert read_metadata(tmp_path / "t.h5")["max_particles"] == 200
    chunks = list(iter_chunks(tmp_path / "t.h5", chunk_size=9))
    assert [len(c) for c in chunks] == [9, 9, 9, 9, 4]
    assert_same_jets(ak.concatenate(chunks), from_h5)


def write_by_hand(jets: ak.Array, path, max_particles: int = 30, nan_at: tuple[str, int] | None = None) -> None:
    """The layout as another writer might produce it: int block first, float64, shuffled columns."""
    n = len(jets)
    padded = {p: ak.to_numpy(ak.fill_none(ak.pad_none(jets[c], max_particles, clip=True), 0.0))
              for p, c in zip(("E", "PX", "PY", "PZ"), ("part_E", "part_px", "part_py", "part_pz"))}
    cols = {f"{p}_{j}": padded[p][:, j].copy() for j in range(max_particles) for p in padded}
    if nan_at is not None:
        cols[nan_at[0]][nan_at[1]] = np.nan
    float_names = list(cols)[::-1]
    with h5py.File(path, "w") as f:
        g = f.create_group("table")
        g["block0_items"] = np.array([b"is_signal_new", b"ttv"])
        g["block0_values"] = np.stack([ak.to_numpy(jets.label), np.zeros(n, np.int64)], 1)
        g["block1_items"] = np.array([s.encode() for s in float_names])
        g["block1_values"] = np.stack([cols[s] for s in float_names], 1).astype(np.float64)
        g["axis0"] = np.array([s.encode() for s in float_names] + [b"is_signal_new", b"ttv"])
        g["axis1"] = np.arange(n)


def test_block_order_and_dtype_do_not_matter(tmp_path):
    jets = truth_jets(25)
    write_toptagging_h5(jets, tmp_path / "a.h5", max_particles=30)
    write_by_hand(jets, tmp_path / "b.h5")
    a, b = read_jets(tmp_path / "a.h5"), read_jets(tmp_path / "b.h5")
    assert "truth_pt" not in b.fields
    assert_same_jets(a[[n for n in a.fields if not n.startswith("truth")]], b)
    assert str(b.type.content) == str(a[b.fields].type.content)


def test_bad_h5_files(tmp_path):
    jets = truth_jets(20)
    write_by_hand(jets, tmp_path / "nan.h5", nan_at=("PX_2", 11))
    with pytest.raises(DataError, match=r"nan\.h5: column part_px has NaN or inf at row 11"):
        read_jets(tmp_path / "nan.h5")
    with h5py.File(tmp_path / "nolabel.h5", "w") as f:
        f["table/block0_items"] = np.array([b"E_0", b"PX_0", b"PY_0", b"PZ_0"])
        f["table/block0_values"] = np.ones((3, 4))
        f["table/axis1"] = np.arange(3)
    with pytest.raises(DataError, match=r"nolabel\.h5: missing column 'is_signal_new'.*found E_0, PX_0"):
        read_jets(tmp_path / "nolabel.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["data"] = np.ones(3)
    with pytest.raises(DataError, match=r"other\.h5: no group 'table' \(found \['data'\]\)"):
        read_jets(tmp_path / "other.h5")
    write_toptagging_h5(jets, tmp_path / "ok.h5")
    data = (tmp_path / "ok.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=r"cut\.h5: cannot"):
        read_jets(tmp_path / "cut.h5")
