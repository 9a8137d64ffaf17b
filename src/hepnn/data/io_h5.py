"""The public Top Tagging dataset's HDF5 layout (pandas "fixed" frame), written and read with h5py.

Kasieczka et al., "The Machine Learning Landscape of Top Taggers", arXiv:1902.09914; data on zenodo
(record 2603256). Each file holds one pandas DataFrame under key ``table``, one row per jet:
``E_0, PX_0, PY_0, PZ_0, ..., PZ_199`` (constituents zero padded, pT ordered), ``truthE, truthPX,
truthPY, truthPZ`` (the top quark; zero for QCD), ``ttv`` (0 train, 1 test, 2 validation) and
``is_signal_new`` (1 = top). pandas stores a frame as blocks of same-dtype columns:

    table/axis0          (n_columns,) bytes    column names, frame order
    table/axis1          (n_rows,) int64       row index
    table/blockK_items   (n_k,) bytes          the columns held by block K
    table/blockK_values  (n_rows, n_k)         their values (pandas' ``transposed`` flag)

We read those with h5py (no pandas / PyTables needed), finding columns through ``blockK_items`` so
the block order does not matter, and slice rows so a file is never loaded whole.
"""

from __future__ import annotations

import os

import awkward as ak
import numpy as np

from hepnn.data import fields as F
from hepnn.errors import DataError
from hepnn.io_utils import atomic_path

KEY = "table"
P4_PREFIXES = ("E", "PX", "PY", "PZ")  # the layout's names for part_E, part_px, part_py, part_pz
TRUTH_COLUMNS = ("truthE", "truthPX", "truthPY", "truthPZ")
LABEL_COLUMN = "is_signal_new"


def _set_str(node, key: str, text: str, encoding: str = "utf-8") -> None:
    # Fixed-length strings as PyTables writes them: it decodes UTF-8 ones to str and unpickles ASCII
    # ones that end in "." (pickles); pandas expects exactly that.
    import h5py

    data = text.encode()
    node.attrs.create(key, np.bytes_(data), dtype=h5py.string_dtype(encoding, max(1, len(data))))


def _pytables_attrs(node, cls: str, version: str) -> None:
    import h5py

    _set_str(node, "CLASS", cls)
    node.attrs["TITLE"] = h5py.Empty("S1")
    _set_str(node, "VERSION", version)


def _array_attrs(node, kind: str | None) -> None:
    _pytables_attrs(node, "ARRAY", "2.4")
    _set_str(node, "FLAVOR", "numpy")
    if kind is not None:
        _set_str(node, "kind", kind)
        _set_str(node, "name", "N.", encoding="ascii")  # the pickled ``None`` PyTables unpickles to index.name
    node.attrs["transposed"] = np.uint8(1)


def _jet_matrix(arrays: ak.Array, max_particles: int) -> tuple[np.ndarray, list[str]]:
    """Constituent four-momenta as the layout's zero-padded, pT-ordered (n, 4 * max_particles) block."""
    pt2 = arrays["part_px"] ** 2 + arrays["part_py"] ** 2
    order = ak.argsort(pt2, axis=1, ascending=False, stable=True)
    counts = ak.to_numpy(ak.num(order, axis=1))
    slot = ak.to_numpy(ak.flatten(ak.local_index(order, axis=1)))  # (total,) position in its jet
    jet = np.repeat(np.arange(len(arrays)), counts)  # (total,) jet index
    keep = slot < max_particles
    block = np.zeros((len(arrays), max_particles, 4), np.float32)  # (n, P, 4) as (E, px, py, pz)
    for k, name in enumerate(F.PARTICLE_P4):
        block[jet[keep], slot[keep], k] = ak.to_numpy(ak.flatten(arrays[name][order]))[keep]
    names = [f"{p}_{i}" for i in range(max_particles) for p in P4_PREFIXES]
    return block.reshape(len(arrays), 4 * max_particles), names


def _truth_matrix(arrays: ak.Array) -> np.ndarray:
    """The truth parton four-vector (E, px, py, pz) from truth_pt/eta/phi/mass; zeros where absent."""
    if not all(name in arrays.fields for name in F.TRUTH):
        return np.zeros((len(arrays), 4), np.float32)
    pt, eta, phi, m = (ak.to_numpy(arrays[n]).astype(np.float64) for n in F.TRUTH)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    return np.stack([e, px, py, pz], axis=1).astype(np.float32)


def write_toptagging_h5(arrays: ak.Array, path: str | os.PathLike[str], max_particles: int = 200) -> None:
    """Write jets in the Top Tagging dataset's HDF5 layout (pandas ``to_hdf(format="fixed")``), atomically.

    ``pandas.read_hdf(path, "table")`` reads the result. Floats are stored as float32; ``ttv`` is taken
    from an integer field ``ttv`` if present, else 0 (train).

    Args:
        arrays: jets in hepnn's native layout (part_E, part_px, part_py, part_pz, label, optional truth_*).
        path: output file (``.h5``).
        max_particles: constituents per jet; the hardest are kept, the rest zero padded.
    """
    import h5py

    n = len(arrays)
    p4, p4_names = _jet_matrix(arrays, max_particles)
    floats = np.concatenate([p4, _truth_matrix(arrays)], axis=1)  # (n, 4 P + 4)
    ttv = ak.to_numpy(arrays["ttv"]).astype(np.int64) if "ttv" in arrays.fields else np.zeros(n, np.int64)
    ints = np.stack([ttv, ak.to_numpy(arrays[F.LABEL]).astype(np.int64)], axis=1)  # (n, 2)
    float_names = [*p4_names, *TRUTH_COLUMNS]
    int_names = ["ttv", LABEL_COLUMN]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        # PyTables only decodes byte-string attributes in files that carry its format version.
        _pytables_attrs(f, "GROUP", "1.0")
        _set_str(f, "PYTABLES_FORMAT_VERSION", "2.1")
        g = f.create_group(KEY)
        _pytables_attrs(g, "GROUP", "1.0")
        for key, value in {"pandas_type": "frame",
                           "pandas_version": "0.15.2", "encoding": "UTF-8", "errors": "strict",
                           "axis0_variety": "regular", "axis1_variety": "regular",
                           "block0_items_variety": "regular", "block1_items_variety": "regular"}.items():
            _set_str(g, key, value)
        g.attrs["ndim"] = np.int64(2)
        g.attrs["nblocks"] = np.int64(2)
        _write_index(g, "axis0", np.array([*float_names, *int_names], dtype="S"), "string")
        _write_index(g, "axis1", np.arange(n, dtype=np.int64), "integer")
        for k, (names, values) in enumerate([(float_names, floats), (int_names, ints)]):
            _write_index(g, f"block{k}_items", np.array(names, dtype="S"), "string")
            _array_attrs(g.create_dataset(f"block{k}_values", data=values), None)


def _write_index(group, key: str, values: np.ndarray, kind: str) -> None:
    _array_attrs(group.create_dataset(key, data=values), kind)


def h5_columns(path: str | os.PathLike[str]) -> dict[str, tuple[str, int]]:
    """Map column name -> (block values dataset, position in it), read from ``blockK_items``."""
    where: dict[str, tuple[str, int]] = {}
    with _open(path) as f:
        g = _table(f, path)
        for key in g:
            if key.startswith("block") and key.endswith("_items"):
                values_key = key[: -len("_items")] + "_values"
                for i, name in enumerate(g[key][()]):
                    where[name.decode() if isinstance(name, bytes) else str(name)] = (values_key, i)
    return where


def _open(path: str | os.PathLike[str]):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: cannot open as HDF5 ({err}); the file is truncated or not HDF5") from err


def _table(f, path) -> "object":
    if KEY not in f:
        raise DataError(
            f"{path}: no group '{KEY}' (found {sorted(f.keys())}); expected the Top Tagging layout "
            "(pandas DataFrame written with to_hdf(key='table'))"
        )
    return f[KEY]


def count_h5(path: str | os.PathLike[str]) -> int:
    """Number of rows (jets), from the row index's shape."""
    with _open(path) as f:
        return int(_table(f, path)["axis1"].shape[0])


def max_particles_h5(columns: dict[str, tuple[str, int]]) -> int:
    """Number of constituent slots, i.e. the largest i with all of E_i, PX_i, PY_i, PZ_i present, plus one."""
    n = 0
    while all(f"{p}_{n}" in columns for p in P4_PREFIXES):
        n += 1
    return n


def read_h5_chunk(path: str | os.PathLike[str], start: int, stop: int,
                  columns: dict[str, tuple[str, int]]) -> ak.Array:
    """Rows [start, stop) in hepnn's canonical layout (padding with E = 0 dropped, truth → pt/eta/phi/mass).

    Shapes: reads (stop - start, n_k) slices of each block, never the whole file.
    """
    n_part = max_particles_h5(columns)
    if n_part == 0:
        raise DataError(f"{path}: no constituent columns E_0, PX_0, PY_0, PZ_0 (found {sorted(columns)[:12]} ...)")
    if LABEL_COLUMN not in columns:
        raise DataError(f"{path}: missing column '{LABEL_COLUMN}' (the label); found {_some(columns)}")
    p4_names = [f"{p}_{j}" for j in range(n_part) for p in P4_PREFIXES]
    has_truth = all(c in columns for c in TRUTH_COLUMNS)
    wanted = [*p4_names, LABEL_COLUMN, *(TRUTH_COLUMNS if has_truth else ())]
    p4 = _gather(path, start, stop, columns, p4_names, np.float32).reshape(-1, n_part, 4)  # (rows, P, 4)
    rest = _gather(path, start, stop, columns, wanted[4 * n_part:], np.float64)  # (rows, 1 or 5)
    truth = [rest[:, 1 + k] for k in range(4)] if has_truth else None
    return _to_awkward(p4, rest[:, 0], truth)


def _as_slice(idx: list[int]) -> slice | list[int]:
    # Consecutive columns (the usual E_0, PX_0, ... run) are read as a slice: fancy indexing is slow.
    if idx == list(range(idx[0], idx[0] + len(idx))):
        return slice(idx[0], idx[0] + len(idx))
    return idx


def _gather(path, start: int, stop: int, columns: dict[str, tuple[str, int]], wanted: list[str],
            dtype: type) -> np.ndarray:
    """Columns ``wanted`` of rows [start, stop) as one (rows, len(wanted)) array, block by block."""
    out = np.empty((stop - start, len(wanted)), dtype)
    by_block: dict[str, tuple[list[int], list[int]]] = {}
    for j, name in enumerate(wanted):
        key, i = columns[name]
        by_block.setdefault(key, ([], []))[0].append(j)
        by_block[key][1].append(i)
    with _open(path) as f:
        g = _table(f, path)
        for key, (dest, src) in by_block.items():
            try:
                out[:, _as_slice(dest)] = g[key][start:stop][:, _as_slice(src)]  # (rows, n_k) -> wanted
            except (OSError, ValueError, KeyError) as err:
                raise DataError(f"{path}: cannot read {key} rows {start}:{stop} ({err}); file corrupt?") from err
    return out


def _some(columns) -> str:
    names = sorted(columns)
    return ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")


def _to_awkward(p4: np.ndarray, label: np.ndarray, truth: list[np.ndarray] | None) -> ak.Array:
    """(n, P, 4) zero-padded four-momenta -> jagged canonical record array (padding: E == 0)."""
    real = p4[..., 0] != 0  # (n, P)
    counts = real.sum(axis=1)
    flat = p4[real]  # (sum counts, 4); rows keep order since real slots come first in pT order
    out = {name: ak.unflatten(flat[:, k], counts) for k, name in enumerate(F.PARTICLE_P4)}
    out[F.LABEL] = label
    if truth is not None:
        e, px, py, pz = (np.asarray(t, np.float64) for t in truth)
        pt = np.hypot(px, py)
        p = np.sqrt(pt**2 + pz**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.where(pt > 0, np.arcsinh(np.divide(pz, pt, where=pt > 0, out=np.zeros_like(pt))), 0.0)
        m = np.sqrt(np.clip(e**2 - p**2, 0.0, None))
        for name, v in zip(F.TRUTH, (pt, eta, np.arctan2(py, px), m)):
            out[name] = v.astype(np.float32)
    return ak.zip(out, depth_limit=1)
