"""Validation of jet chunks read from disk, vectorized over jets (no per-jet Python loops).

Each check raises :class:`hepnn.errors.DataError` naming the file, the column, the first bad row
(counted from the start of the file) and what to do about it.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np

from hepnn.data import fields as F
from hepnn.errors import DataError
from hepnn.log import get_logger

log = get_logger(__name__)

# On-disk dtypes of the native layout; list columns give the dtype of their items.
NATIVE_TYPES: dict[str, type] = {
    **{name: np.float32 for name in (*F.PARTICLE_P4, *F.JET_P4, *F.JET_KINEMATICS, *F.TRUTH)},
    "part_charge": np.int8,
    "part_pid": np.int32,
    F.LABEL: np.int64,
}


# Columns whose values must be finite: constituent and jet momenta.
FINITE = (*F.PARTICLE_P4, *F.JET_P4, "jet_pt", "jet_mass")


class LayoutGuard:
    """Remembers the first file's columns and rejects files of a dataset that differ from it."""

    def __init__(self) -> None:
        self.first: tuple[Path, set[str], object] | None = None

    def check(self, path: Path, chunk: ak.Array) -> None:
        cols, classes = set(chunk.fields), ak.parameters(chunk).get("classes")
        if self.first is None:
            self.first = (path, cols, classes)
            return
        first_path, first_cols, first_classes = self.first
        if classes != first_classes:
            raise DataError(
                f"mixed layouts in one dataset: {first_path} has classes {first_classes} and {path} has "
                f"{classes} (label_* branches in a different order?); use files with the same classes"
            )
        if cols != first_cols:
            only_first = sorted(first_cols - cols)
            only_this = sorted(cols - first_cols)
            detail = "; ".join(
                s for s in (
                    f"{first_path} has {', '.join(only_first)} and {path} does not" if only_first else "",
                    f"{path} has {', '.join(only_this)} and {first_path} does not" if only_this else "",
                ) if s
            )
            raise DataError(
                f"mixed layouts in one dataset: {detail}; use files with the same columns "
                "(or select common ones with columns=[...])"
            )


def validate_chunk(chunk: ak.Array, path: Path, offset: int, *, drop_empty: bool = False) -> ak.Array:
    """Check one chunk (rows ``offset ...`` of ``path``) and return it with an int64 label.

    Checks: the jagged particle columns hold one entry per constituent each; momenta finite; label
    finite, integer and >= 0; every jet has a constituent (``drop_empty=True`` drops such jets with a
    warning instead).
    """
    check_jagged_lengths(chunk, path, offset)
    for name in FINITE:
        if name in chunk.fields:
            _check_finite(chunk[name], path, name, offset)
    if F.LABEL in chunk.fields:
        chunk = ak.with_field(chunk, _check_label(chunk[F.LABEL], path, offset), F.LABEL)
    counts = _multiplicity(chunk)
    if counts is not None and np.any(counts == 0):
        empty = np.flatnonzero(counts == 0)
        if not drop_empty:
            raise DataError(
                f"{path}: jet at row {offset + empty[0]} has zero constituents (column {F.PARTICLE_P4[0]}; "
                f"{len(empty)} such jets in rows {offset}-{offset + len(chunk) - 1}); "
                "remove them or read with drop_empty=True"
            )
        log.warning("%s: dropping %d jets with zero constituents (first at row %d)", path, len(empty),
                    offset + empty[0])
        chunk = chunk[counts > 0]
    return chunk


def check_jagged_lengths(chunk: ak.Array, path: Path, offset: int) -> None:
    """Every jagged column of ``chunk`` has the same number of entries per jet (one per constituent)."""
    jagged = [name for name in chunk.fields if chunk[name].ndim > 1]
    if len(jagged) < 2:
        return
    counts = {name: ak.to_numpy(ak.num(chunk[name], axis=1)) for name in jagged}
    first = jagged[0]
    for name in jagged[1:]:
        bad = np.flatnonzero(counts[name] != counts[first])
        if len(bad):
            row = int(bad[0])
            raise DataError(
                f"{path}: particle columns {first} and {name} disagree in length at row {offset + row} "
                f"({counts[first][row]} vs {counts[name][row]} entries; {len(bad)} such jets in rows "
                f"{offset}-{offset + len(chunk) - 1}); every per-particle column needs one entry per constituent"
            )


def _multiplicity(chunk: ak.Array) -> np.ndarray | None:
    for name in F.PARTICLE_P4:
        if name in chunk.fields:
            return ak.to_numpy(ak.num(chunk[name], axis=1))
    return None


def _check_finite(x: ak.Array, path: Path, name: str, offset: int) -> None:
    if x.ndim == 1:
        bad = ~np.isfinite(ak.to_numpy(x))
    else:
        bad = ak.to_numpy(ak.any(~np.isfinite(x), axis=1))  # (n,) True if any constituent is NaN/inf
    if np.any(bad):
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: column {name} has NaN or inf at row {offset + row} ({int(bad.sum())} bad jets in "
            "this chunk); fix or drop those jets before training"
        )


def _check_label(x: ak.Array, path: Path, offset: int) -> np.ndarray:
    if x.ndim != 1:
        raise DataError(f"{path}: column {F.LABEL} must be one integer per jet, got type {x.type}")
    y = ak.to_numpy(x)
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind not in "iuf":
        raise DataError(f"{path}: column {F.LABEL} has dtype {y.dtype}; labels must be integers >= 0")
    bad = ~np.isfinite(y) if y.dtype.kind == "f" else np.zeros(len(y), bool)
    with np.errstate(invalid="ignore"):
        bad |= (y < 0) | (np.round(y) != y) if y.dtype.kind == "f" else (y < 0)
    if np.any(bad):
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: column {F.LABEL} has invalid value {y[row].item()!r} at row {offset + row}; "
            "labels must be finite integers >= 0 (0 = background, 1 = signal, ...)"
        )
    return y.astype(np.int64)


def strip_options(x: ak.Array, path: Path, name: str, offset: int) -> ak.Array:
    """Drop the option types arrow's nullable fields bring; a real missing value is a DataError."""
    bad = ak.to_numpy(ak.is_none(x, axis=0))  # (n,)
    if x.ndim == 2:
        bad = bad | ak.to_numpy(ak.fill_none(ak.any(ak.is_none(x, axis=1), axis=1), False))
    if np.any(bad):
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: column {name} has a missing (null) value at row {offset + row}; "
                        "fill or drop those jets")

    def strip(layout):
        if layout.is_option:
            return strip(layout.project())
        if layout.is_list:
            lo = layout.to_ListOffsetArray64(False)
            return ak.contents.ListOffsetArray(lo.offsets, strip(lo.content), parameters=lo.parameters)
        return layout

    return ak.Array(strip(x.layout))


def to_native_types(arrays: ak.Array) -> ak.Array:
    """Cast known columns to the native dtypes (float32 momenta, int8 charge, int32 pid, int64 label)."""
    out = {}
    for name in arrays.fields:
        x = arrays[name]
        out[name] = ak.values_astype(x, NATIVE_TYPES[name]) if name in NATIVE_TYPES else x
    return ak.with_parameter(ak.zip(out, depth_limit=1), "classes", ak.parameters(arrays).get("classes"))


def select_columns(path: Path, available: list[str], columns: list[str] | None) -> list[str]:
    """The canonical columns to read: all (checking the required ones exist) or the requested ones."""
    if columns is None:
        missing = [c for c in F.REQUIRED if c not in available]
        wanted = available
    else:
        missing = [c for c in columns if c not in available]
        wanted = columns
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; the file has {', '.join(available)}"
        )
    return list(wanted)
