"""JetNet HDF5 files (one per jet type) -> hepnn's native parquet, with JetNet's own train/val/test division.

Source layout (Zenodo record 6975118): ``particle_features`` (N, 30, 4) = (eta_rel, phi_rel, pT_rel,
mask) and ``jet_features`` (N, 4) = (pT, eta, mass, number of particles before truncation to 30),
float32. eta_rel = eta - eta_jet, phi_rel = phi - phi_jet, pT_rel = pT / pT_jet (arXiv:2106.11535, Sec. 2).

Native layout written: massless part_E/px/py/pz (float32) with pT = pT_rel pT_jet, eta = eta_rel +
eta_jet, phi = phi_rel (the jet azimuth is not stored: the jet sits at phi = 0); jet_pt, jet_eta,
jet_mass as stored, jet_phi = 0, jet_n_particles (int32); label = the type's index in JetNet's order
g, q, t, w, z. Particles are ordered by decreasing pT (stable). With ``keep_source`` the stored
(eta_rel, phi_rel, pT_rel) are kept too, bit for bit, as src_etarel, src_phirel, src_ptrel.

The division is JetNet's (jet-net/JetNet, jetnet/datasets/jetnet.py ``getData`` and utils.py
``getSplitting``): the chosen types' jets are concatenated in JetNet's type order, permuted with
``np.random.seed(42); np.random.permutation(n)``, and cut at 70 % / 85 % (train / valid / test), in
the permuted order. Rows are read in chunks of that order (sorted HDF5 point reads per file), so
memory is bounded by a chunk, not by the dataset.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np

from hepnn.datasets.parquet_out import ShardedParquetWriter
from hepnn.datasets.particles import order_by_pt, p4_from_ptyphim
from hepnn.datasets.sources import JETNET_TYPES
from hepnn.errors import DataError

SEED = 42  # jetnet.py: JetNet(..., seed=42)
FRACTIONS = (0.7, 0.15, 0.15)  # jetnet.py: split_fraction=[0.7, 0.15, 0.15]
SPLIT_INDEX = {"train": 0, "val": 1, "test": 2}  # JetNet calls the middle split "valid"


def jetnet_jets(pf: np.ndarray, jf: np.ndarray, label: np.ndarray, *, keep_source: bool = False) -> ak.Array:
    """One chunk of the JetNet layout as native jets.

    Shapes: pf (k, 30, 4), jf (k, 4), label (k,) -> k records.
    """
    etarel, phirel, ptrel = pf[..., 0], pf[..., 1], pf[..., 2]  # (k, 30) each
    order = order_by_pt(ptrel, pf[..., 3] > 0.5)
    etarel, phirel, ptrel, mask = (np.take_along_axis(pf[..., i], order, axis=1) for i in range(4))
    real = mask > 0.5  # (k, 30); real particles first
    counts = real.sum(axis=1)
    jet_pt, jet_eta, jet_mass, n_parts = (jf[:, i] for i in range(4))
    pt = (ptrel.astype(np.float64) * jet_pt[:, None])[real]  # (P,)
    eta = (etarel.astype(np.float64) + jet_eta[:, None])[real]
    p4 = p4_from_ptyphim(pt, eta, phirel[real], np.zeros_like(pt))  # (P, 4): massless, so y = eta
    cols = {name: ak.unflatten(p4[:, i].astype(np.float32), counts)
            for i, name in enumerate(("part_E", "part_px", "part_py", "part_pz"))}
    cols.update(jet_pt=jet_pt.astype(np.float32), jet_eta=jet_eta.astype(np.float32),
                jet_phi=np.zeros(len(jf), np.float32), jet_mass=jet_mass.astype(np.float32),
                jet_n_particles=np.rint(n_parts).astype(np.int32), label=label.astype(np.int64))
    if keep_source:
        for name, a in (("src_etarel", etarel), ("src_phirel", phirel), ("src_ptrel", ptrel)):
            cols[name] = ak.unflatten(a[real], counts)
    return ak.zip(cols, depth_limit=1)


def jetnet_division(n: int, seed: int = SEED) -> list[np.ndarray]:
    """[train, valid, test] row indices into the concatenated types, in JetNet's permuted order."""
    perm = np.random.RandomState(seed).permutation(n)  # == np.random.seed(seed); np.random.permutation(n)
    cuts = (np.cumsum(np.insert(np.array(FRACTIONS), 0, 0)) * n).astype(int)  # getSplitting's arithmetic
    return [perm[cuts[i]:cuts[i + 1]] for i in range(3)]


def _open(path: Path):
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: cannot open as HDF5 ({err}); download it again (hepnn datasets get jetnet)") from err
    for key, width in (("particle_features", 4), ("jet_features", 4)):
        if key not in f or f[key].shape[-1] != width:
            f.close()
            raise DataError(f"{path}: expected dataset {key!r} with {width} features per row (the JetNet layout)")
    return f


def _read_rows(handles: list, types: list[int], starts: np.ndarray,
               rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(particle_features, jet_features, label) of global ``rows``, in that order.

    Shapes: rows (k,) -> (k, 30, 4), (k, 4), (k,); ``types`` is each file's class index.
    """
    which = np.searchsorted(starts, rows, side="right") - 1  # (k,) file of each row
    pf = np.empty((len(rows), *handles[0]["particle_features"].shape[1:]), np.float32)
    jf = np.empty((len(rows), 4), np.float32)
    label = np.empty(len(rows), np.int64)
    for i, (f, type_index) in enumerate(zip(handles, types)):
        pos = np.flatnonzero(which == i)
        if not len(pos):
            continue
        local = rows[pos] - starts[i]
        sort = np.argsort(local)  # h5py point reads need increasing indices
        pf[pos[sort]] = f["particle_features"][local[sort]]
        jf[pos[sort]] = f["jet_features"][local[sort]]
        label[pos] = type_index
    return pf, jf, label


def convert_splits(files: list[Path], out: Path, splits: list[str], *, subset: int | None, keep_source: bool,
                   shard_size: int, row_group_size: int, chunk: int, metadata: dict) -> dict[str, list[Path]]:
    """Write each split of the concatenated ``files`` (JetNet type order) as ``out/SPLIT_NNN.parquet``."""
    handles = [_open(p) for p in files]
    try:
        types = [JETNET_TYPES.index(p.stem) for p in files]  # JetNet's class index of each file
        sizes = np.array([f["jet_features"].shape[0] for f in handles])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        division = jetnet_division(int(sizes.sum()))
        written = {}
        for split in splits:
            rows = division[SPLIT_INDEX[split]][:subset]
            meta = {**metadata, "split": split, "sources": [p.name for p in files], "seed": SEED,
                    "fractions": list(FRACTIONS)}
            with ShardedParquetWriter(folder=out, stem=split, total=len(rows), shard_size=shard_size,
                                      row_group_size=row_group_size, metadata=meta) as writer:
                for start in range(0, len(rows), chunk):
                    pf, jf, label = _read_rows(handles, types, starts, rows[start:start + chunk])
                    writer.write(jetnet_jets(pf, jf, label, keep_source=keep_source))
            written[split] = writer.paths
        return written
    finally:
        for f in handles:
            f.close()
