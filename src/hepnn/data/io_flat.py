"""Parquet row groups straight to ``JaggedJets``: Arrow list columns are already flat values + offsets.

The general reader (``hepnn.data.io.iter_chunks``) builds an awkward array per chunk, with every
column of the file, and ``JaggedJets.from_awkward`` flattens it again. For streaming training data
this module reads only the columns a batch needs (the constituents' four-momenta, charge and PDG id
when present, the target and the weight), takes each list column's values and offsets from Arrow
as numpy arrays without a copy, and checks them the same way (finite momenta, no missing values,
no empty jets, integer labels >= 0). Jet-level features still come from awkward (``iter_chunks``).

The unit of work is a parquet row group (``Unit``): reader processes each read their own units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from hepnn.data import fields as F
from hepnn.data.jagged import JaggedJets
from hepnn.errors import DataError


class Unit(NamedTuple):
    """One row group of one parquet file."""

    path: str
    row_group: int
    rows: int


def parquet_units(paths: Sequence[str]) -> list[Unit]:
    """The row groups of parquet ``paths``, in file order."""
    from hepnn.data.io import parquet_file

    units = []
    for path in paths:
        meta = parquet_file(Path(path)).metadata
        units += [Unit(str(path), g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
    return units


def _flat(column, path: str, name: str, offset: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Values (and offsets, for a list column) of an Arrow column as numpy; nulls are a DataError."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{path}: column {name} has a missing (null) value at row {offset + row}; fill or drop those jets")
    if not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type):
        return column.to_numpy(zero_copy_only=False), None
    offsets = column.offsets.to_numpy()
    values = column.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    if values.null_count:
        raise DataError(f"{path}: column {name} has a missing (null) value in rows {offset}-{offset + len(column) - 1}; "
                        "fill or drop those jets")
    return values.to_numpy(zero_copy_only=False), offsets - offsets[0]


def read_unit(unit: Unit, chunk_size: int, *, target: str | Sequence[str] | None = F.LABEL,
              weight: str | None = None, start: int = 0,
              optional: Sequence[str] = F.PARTICLE_OPTIONAL) -> Iterator[JaggedJets]:
    """The jets of one row group in chunks of at most ``chunk_size``, as ``JaggedJets``.

    ``start``: the row of the file where this row group begins (for error messages).
    ``optional``: the optional particle columns (charge, PDG id) to read when the file has them.
    """
    from hepnn.data.io import parquet_file

    pf = parquet_file(Path(unit.path))
    on_disk = {F.canonical_name(n): n for n in pf.schema_arrow.names}
    missing = [c for c in F.PARTICLE_P4 if c not in on_disk]
    targets = [] if target is None else [target] if isinstance(target, str) else list(target)
    missing += [t for t in targets + ([weight] if weight else []) if t not in on_disk]
    if missing:
        raise DataError(f"{unit.path}: missing column(s) {', '.join(missing)}; the file has {', '.join(on_disk)}")
    wanted = [*F.PARTICLE_P4, *(c for c in optional if c in on_disk), *targets, *([weight] if weight else [])]
    offset = start
    for batch in pf.iter_batches(batch_size=chunk_size, row_groups=[unit.row_group],
                                 columns=[on_disk[c] for c in dict.fromkeys(wanted)], use_threads=False):
        cols = {c: batch.column(on_disk[c]) for c in dict.fromkeys(wanted)}
        yield _jets(cols, unit.path, offset, targets, target, weight)
        offset += batch.num_rows


def _jets(cols: dict, path: str, offset: int, targets: list[str], target, weight: str | None) -> JaggedJets:
    values, offsets = _flat(cols[F.PARTICLE_P4[0]], path, F.PARTICLE_P4[0], offset)
    if offsets is None:
        raise DataError(f"{path}: column {F.PARTICLE_P4[0]} must be a list per jet")
    counts = np.diff(offsets)
    if np.any(counts == 0):
        empty = np.flatnonzero(counts == 0)
        raise DataError(f"{path}: jet at row {offset + empty[0]} has zero constituents (column {F.PARTICLE_P4[0]}; "
                        f"{len(empty)} such jets in rows {offset}-{offset + len(counts) - 1}); remove them "
                        "or read with drop_empty=True")
    p4 = np.empty((len(values) + 1, 4), dtype=np.float32)  # (P + 1, 4), zero sentinel row last
    p4[-1] = 0.0
    for k, name in enumerate(F.PARTICLE_P4):
        v, o = (values, offsets) if k == 0 else _flat(cols[name], path, name, offset)
        if o is None or len(v) != len(values) or not np.array_equal(o, offsets):
            raise DataError(f"{path}: particle columns {F.PARTICLE_P4[0]} and {name} differ in length "
                            f"in rows {offset}-{offset + len(counts) - 1}")
        p4[:-1, k] = v
    if not np.isfinite(p4).all():
        row = int(np.searchsorted(offsets, np.flatnonzero(~np.isfinite(p4[:-1]).all(1))[0], side="right")) - 1
        raise DataError(f"{path}: column(s) {', '.join(F.PARTICLE_P4)} hold a non-finite value (NaN or inf) at row "
                        f"{offset + row}; fix or drop those jets")
    extra = {}
    for name, dtype in (("part_charge", np.int8), ("part_pid", np.int32)):
        if name in cols:
            v, _ = _flat(cols[name], path, name, offset)
            extra[name] = np.append(v.astype(dtype, copy=False), np.zeros(1, dtype))  # (P + 1,)
    ys = [_target(cols[t], path, t, offset) for t in targets]
    y = None if target is None else ys[0] if isinstance(target, str) else np.stack(ys, axis=1)
    w = None if weight is None else _flat(cols[weight], path, weight, offset)[0].astype(np.float32)
    return JaggedJets._assemble(offsets.astype(np.int64), p4, extra.get("part_charge"), extra.get("part_pid"),
                                y, None, w)


def _target(column, path: str, name: str, offset: int) -> np.ndarray:
    """A per-jet target: labels as int64 >= 0 (checked), anything else as read."""
    y, _ = _flat(column, path, name, offset)
    if name != F.LABEL:
        return y
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    bad = ~np.isfinite(y) if y.dtype.kind == "f" else np.zeros(len(y), bool)
    with np.errstate(invalid="ignore"):
        bad |= (y < 0) | (np.round(y) != y) if y.dtype.kind == "f" else (y < 0)
    if np.any(bad):
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: {F.LABEL} at row {offset + row} is {y[row]!r}; labels must be integers >= 0")
    return y.astype(np.int64)
