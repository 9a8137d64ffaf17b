"""Quark-gluon (EnergyFlow) ``.npz`` files -> hepnn's native parquet, streamed.

Source layout (thaler-lab/EnergyFlow, energyflow/datasets/qg_jets.py): ``X`` (N, M, 4) float with
(pT, rapidity y, phi, PDG id) per particle, zero padded; ``y`` (N,) with 1 = quark, 0 = gluon.

Native layout written: part_E/px/py/pz (float32; E = mT cosh y, pz = mT sinh y with the PDG mass
of the id, as EnergyFlow's ``p4s_from_ptyphipids``), part_pid (int32), part_charge (int8), jet_pt/
eta/phi/mass of the constituent sum, label (int64, 1 = quark). Particles are ordered by decreasing
pT (stable). With ``keep_source`` the file's own (pT, y, phi) are kept too, bit for bit, as
src_pt, src_y, src_phi (the PDG id is kept exactly in part_pid either way).

Splits follow the catalogue (files 0-15 train, 16-17 val, 18-19 test). Memory is bounded by one read
chunk plus one row group, whatever the file sizes.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np

from hepnn.datasets.npz_stream import iter_npz_rows, npz_info
from hepnn.datasets.parquet_out import ShardedParquetWriter
from hepnn.datasets.particles import order_by_pt, p4_from_ptyphim, pdg_lookup
from hepnn.errors import DataError
from hepnn.log import get_logger

log = get_logger(__name__)


def qg_jets(X: np.ndarray, y: np.ndarray, *, keep_source: bool = False, where: str = "") -> ak.Array:
    """One chunk of the quark-gluon layout as native jets.

    Shapes: X (k, M, 4) = (pT, y, phi, pid) zero padded, y (k,) -> k records.
    """
    pt, rap, phi, pid = (X[..., i] for i in range(4))  # (k, M) each
    order = order_by_pt(pt, pt > 0)
    pt, rap, phi, pid = (np.take_along_axis(a, order, axis=1) for a in (pt, rap, phi, pid))
    real = pt > 0  # (k, M); real particles come first in each row now
    counts = real.sum(axis=1)
    pid_f = pid[real]  # (P,) flattened jet by jet
    if np.any(pid_f != np.round(pid_f)):
        raise DataError(f"{where}: X[..., 3] holds non-integer PDG ids; is this the EnergyFlow layout?")
    mass, charge, known = pdg_lookup(pid_f.astype(np.int64))
    if not known.all():
        log.warning("%s: %d particles have a PDG id outside the mass table (e.g. %d) and get mass 0", where,
                    int((~known).sum()), int(pid_f[~known][0]))
    p4 = p4_from_ptyphim(pt[real], rap[real], phi[real], mass)  # (P, 4) float64
    cols = {name: ak.unflatten(p4[:, i].astype(np.float32), counts)
            for i, name in enumerate(("part_E", "part_px", "part_py", "part_pz"))}
    cols["part_pid"] = ak.unflatten(pid_f.astype(np.int32), counts)
    cols["part_charge"] = ak.unflatten(charge, counts)
    cols.update(_jet_kinematics(p4, counts))
    cols["label"] = _labels(y, where)
    if keep_source:
        for name, a in (("src_pt", pt), ("src_y", rap), ("src_phi", phi)):
            cols[name] = ak.unflatten(a[real], counts)
    return ak.zip(cols, depth_limit=1)


def _jet_kinematics(p4: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """jet_pt/eta/phi/mass (float32) of the constituent sum. Shapes: (P, 4), (k,) -> 4 x (k,)."""
    jet = np.repeat(np.arange(len(counts)), counts)  # (P,) owning jet
    e, px, py, pz = (np.bincount(jet, weights=p4[:, i], minlength=len(counts)) for i in range(4))
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), 0.0)
    mass = np.sqrt(np.clip(e**2 - px**2 - py**2 - pz**2, 0.0, None))
    return {"jet_pt": pt.astype(np.float32), "jet_eta": eta.astype(np.float32),
            "jet_phi": np.arctan2(py, px).astype(np.float32), "jet_mass": mass.astype(np.float32)}


def _labels(y: np.ndarray, where: str) -> np.ndarray:
    bad = (y != 0) & (y != 1)
    if np.any(bad):
        raise DataError(f"{where}: label y = {y[bad][0]!r} at row {int(np.flatnonzero(bad)[0])}; expected 0 (gluon) "
                        "or 1 (quark)")
    return y.astype(np.int64)


def convert_split(files: list[Path], out: Path, split: str, *, subset: int | None, keep_source: bool,
                  shard_size: int, row_group_size: int, chunk: int, metadata: dict) -> list[Path]:
    """Write the jets of ``files`` (in order, the first ``subset``) as ``out/SPLIT_NNN.parquet``."""
    counts = [npz_info(p, "X")[0][0] for p in files]
    total = sum(counts) if subset is None else min(subset, sum(counts))
    meta = {**metadata, "split": split, "sources": [p.name for p in files]}
    with ShardedParquetWriter(folder=out, stem=split, total=total, shard_size=shard_size,
                              row_group_size=row_group_size, metadata=meta) as writer:
        left = total
        for path, n_file in zip(files, counts):
            n = min(n_file, left)
            if n == 0:
                break
            labels = next(iter_npz_rows(path, "y", n, stop=n))
            start = 0
            for X in iter_npz_rows(path, "X", chunk, stop=n):
                writer.write(qg_jets(X, labels[start:start + len(X)], keep_source=keep_source,
                                     where=f"{path.name} rows {start}-{start + len(X) - 1}"))
                start += len(X)
            left -= n
    return writer.paths
