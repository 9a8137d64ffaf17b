"""JetClass-style ROOT files (weaver ntuples) -> hepnn's canonical layout, read with uproot in chunks.

JetClass (Qu, Li, Qian, "Particle Transformer for Jet Tagging", arXiv:2202.03772) stores one TTree
``tree``, one entry per jet, with jagged ``part_*`` branches (part_px, part_py, part_pz, part_energy,
part_charge, ...), jet-level ``jet_*`` branches, the matched parton as ``aux_genpart_*`` and the class
as one-hot ``label_*`` branches (label_QCD, label_Hbb, ..., label_Tbqq, ...).

The integer ``label`` is the position of the set ``label_*`` branch, in the order the branches appear
in the tree; the class names (the branch names without ``label_``) are returned by
:func:`root_metadata` and attached to every chunk as the array parameter ``"classes"``. A tree with
an integer ``label`` branch instead is read as it is. Branches not listed in :data:`ROOT_NAMES`
are not read. uproot is an optional extra (``pip install 'hepnn[root]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import awkward as ak
import numpy as np

from hepnn.data import fields as F
from hepnn.data.io_checks import select_columns
from hepnn.errors import DataError, missing_extra

TREE = "tree"
LABEL_PREFIX = "label_"

# ROOT branch -> canonical column. jet_sdmass is the soft-drop mass, kept under its own name
# (it is not the plain jet mass); canonical names are accepted as they are.
ROOT_NAMES: dict[str, str] = {
    "part_energy": "part_E", "part_E": "part_E",
    "part_px": "part_px", "part_py": "part_py", "part_pz": "part_pz",
    "part_charge": "part_charge", "part_pid": "part_pid", "part_pdgid": "part_pid",
    "jet_energy": "jet_E", "jet_E": "jet_E", "jet_px": "jet_px", "jet_py": "jet_py", "jet_pz": "jet_pz",
    "jet_pt": "jet_pt", "jet_eta": "jet_eta", "jet_phi": "jet_phi", "jet_mass": "jet_mass",
    "jet_sdmass": "jet_sdmass",
    "aux_genpart_pt": "truth_pt", "aux_genpart_eta": "truth_eta", "aux_genpart_phi": "truth_phi",
    "aux_genpart_mass": "truth_mass",
    "label": "label",
}


def _uproot():
    try:
        import uproot
    except ImportError as err:
        raise missing_extra("root", "uproot") from err
    return uproot


def _errors() -> tuple[type[BaseException], ...]:
    uproot = _uproot()
    return (OSError, ValueError, KeyError, EOFError, uproot.DeserializationError)


def _open_tree(path: Path):
    """The tree named ``tree``, else the only TTree in the file."""
    uproot = _uproot()
    try:
        f = uproot.open(path)
        classes = {k.split(";")[0]: cls for k, cls in f.classnames().items()}
    except _errors() as err:
        raise DataError(f"{path}: cannot read as ROOT ({err}); the file is truncated or corrupt") from err
    trees = sorted(k for k, cls in classes.items() if cls == "TTree")
    if TREE in trees:
        return f[TREE]
    if len(trees) == 1:
        return f[trees[0]]
    others = ", ".join(f"{k} ({cls})" for k, cls in sorted(classes.items())) or "nothing"
    raise DataError(
        f"{path}: expected a TTree named '{TREE}' or exactly one TTree; found {trees or 'none'} "
        f"among {others} (RNTuples are not read: write a TTree with uproot's mktree or convert to parquet)"
    )


def _layout(tree) -> tuple[dict[str, str], list[str]]:
    """(canonical column -> branch, label_* branches in tree order)."""
    names = list(tree.keys())
    mapped: dict[str, str] = {}
    for branch in names:
        canon = ROOT_NAMES.get(branch)
        if canon is not None and canon not in mapped:
            mapped[canon] = branch
    label_branches = [b for b in names if b.startswith(LABEL_PREFIX)]
    if label_branches and F.LABEL not in mapped:
        mapped[F.LABEL] = ""  # built from the one-hot branches
    return mapped, label_branches


def count_root(path: Path) -> int:
    """Number of entries (jets) in the tree."""
    return int(_open_tree(path).num_entries)


def root_metadata(path: Path) -> dict:
    """Layout, tree name and class names (label_* order) of a ROOT file."""
    tree = _open_tree(path)
    _, label_branches = _layout(tree)
    return {"layout": "jetclass", "tree": tree.name,
            "classes": [b[len(LABEL_PREFIX):] for b in label_branches]}


def root_chunks(path: Path, chunk_size: int, columns: list[str] | None) -> Iterator[ak.Array]:
    """Chunks of at most ``chunk_size`` jets in the canonical layout (one-hot labels -> integer)."""
    tree = _open_tree(path)
    mapped, label_branches = _layout(tree)
    read = select_columns(path, list(mapped), columns)
    one_hot = F.LABEL in read and mapped[F.LABEL] == ""
    branches = [mapped[c] for c in read if mapped[c]] + (label_branches if one_hot else [])
    classes = [b[len(LABEL_PREFIX):] for b in label_branches]
    offset = 0
    try:
        for arr in tree.iterate(branches, step_size=chunk_size, library="ak"):
            out = {c: arr[mapped[c]] for c in read if mapped[c]}
            if one_hot:
                out[F.LABEL] = _one_hot_to_index(arr, label_branches, path, offset)
            offset += len(arr)
            chunk = ak.zip({c: out[c] for c in read}, depth_limit=1)
            yield ak.with_parameter(chunk, "classes", classes) if classes else chunk
    except _errors() as err:
        raise DataError(f"{path}: cannot read ROOT branches ({err}); the file is truncated or corrupt") from err


def _one_hot_to_index(arr: ak.Array, label_branches: list[str], path: Path, offset: int) -> np.ndarray:
    """(n, K) one-hot label_* -> (n,) class index; a row that is not exactly one-hot is a DataError."""
    onehot = np.stack([ak.to_numpy(arr[b]).astype(np.float64) for b in label_branches], axis=1)  # (n, K)
    bad = ~np.all((onehot == 0) | (onehot == 1), axis=1) | (onehot.sum(axis=1) != 1)
    if np.any(bad):
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: label_* branches are not one-hot at row {offset + row} "
            f"({dict(zip(label_branches, onehot[row].tolist()))}); exactly one label_* must be 1"
        )
    return onehot.argmax(axis=1).astype(np.int64)
