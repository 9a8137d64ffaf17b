"""Small files in each public dataset's own layout, written the way their authors' files are laid out.

Top tagging: pandas "fixed" HDF5 (hepnn's writer of that layout). JetClass: a ROOT TTree with
part_* and one-hot label_* branches, inside a tar whose members sit under val_5M/ as in the published
archive. Quark-gluon: np.savez_compressed with X (N, M, 4) = (pT, y, phi, pid) float64, zero padded,
particles not pT-sorted (so the converter's ordering is tested), and y. JetNet: h5py datasets
particle_features (N, 30, 4) and jet_features (N, 4), float32, as on Zenodo.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import awkward as ak
import numpy as np

from tests.conftest import random_jets

QG_PIDS = np.array([22, 211, -211, 321, -321, 130, 2212, -2212, 2112, -2112, 11, -11, 13, -13])


def toptagging_files(folder: Path, n: int = 60, seed: int = 0) -> dict[str, ak.Array]:
    """train.h5 / val.h5 / test.h5 with ``n`` jets each; the jets written, by file name."""
    from hepnn.data.io import write_toptagging_h5

    written = {}
    for i, name in enumerate(("train.h5", "val.h5", "test.h5")):
        jets = random_jets(n, seed=seed + i)
        write_toptagging_h5(jets, folder / name, max_particles=30)
        written[name] = jets
    return written


def jetclass_tar(path: Path, n: int = 40, seed: int = 0, member: str = "val_5M/HToBB_120.root") -> ak.Array:
    """A tar holding one JetClass-style ROOT file; the jets it holds (label = class index)."""
    import uproot

    jets = random_jets(n, seed=seed)
    classes = ["QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl"]
    label = np.random.default_rng(seed).integers(0, len(classes), n)
    branches = {"part_px": jets["part_px"], "part_py": jets["part_py"], "part_pz": jets["part_pz"],
                "part_energy": jets["part_E"], "part_charge": ak.values_astype(jets["part_charge"], np.float32)}
    branches.update({f"label_{c}": (label == k).astype(np.bool_) for k, c in enumerate(classes)})
    root = path.with_suffix(".root.tmp")
    with uproot.recreate(root) as f:  # mktree: a TTree (plain assignment would write an RNTuple)
        f.mktree("tree", {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()})
        f["tree"].extend(branches)
    with tarfile.open(path, "w") as tar:
        tar.add(root, arcname=member)
    root.unlink()
    return ak.with_field(jets, label.astype(np.int64), "label")


def qg_npz(path: Path, n: int = 30, seed: int = 0, max_particles: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """An EnergyFlow-style file; returns (X, y) as written."""
    g = np.random.default_rng(seed)
    X = np.zeros((n, max_particles, 4))
    counts = g.integers(1, max_particles + 1, n)
    for i, c in enumerate(counts):  # a test fixture: a loop over 30 jets is fine
        X[i, :c, 0] = g.exponential(20.0, c) + 0.5
        X[i, :c, 1] = g.normal(0.0, 1.0, c)
        X[i, :c, 2] = g.uniform(-np.pi, np.pi, c)
        X[i, :c, 3] = g.choice(QG_PIDS, c)
    y = g.integers(0, 2, n).astype(np.float64)
    with open(path, "wb") as f:  # np.savez_compressed appends .npz to a str path; a file object keeps the name
        np.savez_compressed(f, X=X, y=y)
    return X, y


def jetnet_h5(path: Path, n: int = 25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A JetNet-style file; returns (particle_features, jet_features) as written."""
    import h5py

    g = np.random.default_rng(seed)
    pf = np.zeros((n, 30, 4), np.float32)
    counts = g.integers(1, 31, n)
    for i, c in enumerate(counts):
        pf[i, :c, 0] = g.normal(0, 0.1, c)
        pf[i, :c, 1] = g.normal(0, 0.1, c)
        pf[i, :c, 2] = g.dirichlet(np.ones(c))
        pf[i, :c, 3] = 1.0
    jf = np.stack([g.uniform(900, 1100, n), g.normal(0, 1, n), g.uniform(10, 200, n),
                   counts + g.integers(0, 5, n)], axis=1).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["particle_features"] = pf
        f["jet_features"] = jf
    return pf, jf


def file_bytes(path: Path) -> bytes:
    return Path(path).read_bytes()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
