"""JetClass-style ROOT trees (arXiv:2202.03772) read with uproot into the canonical layout."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepnn.data.io import count_jets, iter_chunks, read_jets, read_metadata, write_parquet
from hepnn.errors import DataError
from tests.conftest import random_jets
from tests.data.test_io import assert_same_jets

uproot = pytest.importorskip("uproot")

CLASSES = ["QCD", "Tbqq", "Wqq"]


def jetclass_branches(jets: ak.Array, onehot: np.ndarray | None = None) -> dict:
    """JetClass branch names; uproot writes the record ``part`` as part_px, ... plus a counter npart."""
    part = ak.zip({"px": jets.part_px, "py": jets.part_py, "pz": jets.part_pz, "energy": jets.part_E,
                   "charge": ak.values_astype(jets.part_charge, np.float32)})
    n = len(jets)
    out = {"part": part, "jet_pt": np.hypot(ak.to_numpy(jets.jet_px), ak.to_numpy(jets.jet_py)),
           "jet_energy": ak.to_numpy(jets.jet_E), "jet_sdmass": np.full(n, 80.0, np.float32),
           "aux_genpart_pt": ak.to_numpy(jets.truth_pt)}
    if onehot is None:
        onehot = np.eye(len(CLASSES))[ak.to_numpy(jets.label)]
    for k, name in enumerate(CLASSES):
        out[f"label_{name}"] = onehot[:, k].astype(np.int32)
    return out


def make_jets(n: int = 30, seed: int = 0) -> ak.Array:
    jets = random_jets(n, seed=seed)
    jets = ak.zip({k: jets[k] for k in jets.fields if k != "part_pid"}, depth_limit=1)
    jets["label"] = np.random.default_rng(seed).integers(0, 3, n)
    for c in ("E", "px", "py"):
        jets[f"jet_{c}"] = ak.sum(jets[f"part_{c}"], axis=1)
    jets["truth_pt"] = np.linspace(400, 600, n).astype(np.float32)
    return jets


def write_root(path, branches: dict, tree: str = "tree") -> None:
    """A TTree (uproot's plain assignment would write an RNTuple)."""
    with uproot.recreate(path) as f:
        f.mktree(tree, {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()})
        f[tree].extend(branches)


def test_jetclass_tree_reads_like_the_parquet_file(tmp_path):
    jets = make_jets(30)
    write_root(tmp_path / "jc.root", jetclass_branches(jets))
    got = read_jets(tmp_path / "jc.root")
    assert set(got.fields) == {"part_E", "part_px", "part_py", "part_pz", "part_charge", "jet_pt", "jet_E",
                               "jet_sdmass", "truth_pt", "label"}
    np.testing.assert_array_equal(got.label, jets.label)  # index of the set label_* branch, in tree order
    assert ak.parameters(got)["classes"] == CLASSES
    assert read_metadata(tmp_path / "jc.root") == {"layout": "jetclass", "tree": "tree", "classes": CLASSES}
    assert str(got.part_charge.type.content) == "var * int8" and str(got.part_E.type.content) == "var * float32"
    write_parquet(jets, tmp_path / "jc.parquet")
    same = ["part_E", "part_px", "part_py", "part_pz", "part_charge", "label", "jet_E", "truth_pt"]
    assert_same_jets(got[same], read_jets(tmp_path / "jc.parquet")[same])
    assert count_jets(tmp_path / "jc.root") == 30


def test_chunks_and_the_only_tree(tmp_path):
    jets = make_jets(25, seed=1)
    write_root(tmp_path / "events.root", jetclass_branches(jets), tree="Events")
    chunks = list(iter_chunks(tmp_path / "events.root", chunk_size=8, columns=["part_px", "label"]))
    assert [len(c) for c in chunks] == [8, 8, 8, 1]
    whole = read_jets(tmp_path / "events.root", columns=["part_px", "label"])
    assert_same_jets(ak.concatenate(chunks), whole)
    assert read_metadata(tmp_path / "events.root")["tree"] == "Events"


def test_bad_root_files(tmp_path):
    jets = make_jets(12)
    onehot = np.eye(3)[ak.to_numpy(jets.label)]
    onehot[7] = [1, 1, 0]
    write_root(tmp_path / "twohot.root", jetclass_branches(jets, onehot))
    with pytest.raises(DataError, match=r"twohot\.root: label_\* branches are not one-hot at row 7"):
        read_jets(tmp_path / "twohot.root")

    write_root(tmp_path / "two.root", {"x": np.ones(3)}, tree="a")
    with uproot.update(tmp_path / "two.root") as f:
        f.mktree("b", {"x": np.float64})
    with pytest.raises(DataError, match=r"two\.root: expected a TTree named 'tree' or exactly one TTree; found \['a', 'b'\]"):
        read_jets(tmp_path / "two.root")
    with uproot.recreate(tmp_path / "rntuple.root") as f:
        f["tree"] = {"x": np.ones(3)}
    with pytest.raises(DataError, match=r"rntuple\.root: .*found none among tree \(ROOT::RNTuple\)"):
        read_jets(tmp_path / "rntuple.root")

    branches = jetclass_branches(jets)
    branches["part"] = branches["part"][["px", "py", "pz", "charge"]]
    write_root(tmp_path / "noE.root", branches)
    with pytest.raises(DataError, match=r"noE\.root: missing column\(s\) part_E; the file has part_px"):
        read_jets(tmp_path / "noE.root")

    write_root(tmp_path / "ok.root", jetclass_branches(make_jets(300)))
    data = (tmp_path / "ok.root").read_bytes()
    (tmp_path / "cut.root").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.root: cannot read"):
        read_jets(tmp_path / "cut.root")


def test_files_with_different_classes_are_refused(tmp_path):
    jets = make_jets(10)
    write_root(tmp_path / "a.root", jetclass_branches(jets))
    swapped = jetclass_branches(jets)
    swapped = {("label_Wqq" if k == "label_Tbqq" else "label_Tbqq" if k == "label_Wqq" else k): v
               for k, v in swapped.items()}
    write_root(tmp_path / "b.root", swapped)  # label_QCD, label_Wqq, label_Tbqq
    with pytest.raises(DataError, match=r"mixed layouts.*a\.root has classes \['QCD', 'Tbqq', 'Wqq'\].*b\.root"):
        read_jets([tmp_path / "a.root", tmp_path / "b.root"])
