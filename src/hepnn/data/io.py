"""Jet files -> awkward arrays in hepnn's canonical layout: parquet (native), ROOT, HDF5 (top tagging).

The format is chosen by extension (``.parquet``/``.pq``, ``.root``, ``.h5``/``.hdf5``); globs are
expanded. Files are read in chunks (parquet row groups, ROOT baskets, HDF5 row slices) so a large
file is never held whole; ``read_jets`` concatenates the chunks for data that fits in memory.
Every chunk is validated, vectorized over jets: a bad file raises :class:`hepnn.errors.DataError`
naming the file, the column and the first bad row.

Canonical layout (``hepnn.data.fields``): part_E, part_px, part_py, part_pz (list<float32>, GeV),
optional part_charge (list<int8>), part_pid (list<int32>), jet_* and truth_* (float32), label (int64).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
from pathlib import Path
from typing import Iterable, Iterator

import awkward as ak

from hepnn.data import fields as F
from hepnn.data import io_h5
from hepnn.data.io_checks import (
    NATIVE_TYPES, LayoutGuard, select_columns, strip_options, to_native_types, validate_chunk,
)
from hepnn.data.io_h5 import write_toptagging_h5
from hepnn.errors import DataError, HepnnError
from hepnn.io_utils import atomic_path

__all__ = [
    "write_parquet", "write_toptagging_h5", "read_jets", "iter_chunks", "count_jets", "read_metadata",
    "expand_paths", "file_format", "NATIVE_TYPES",
]

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".root": "root", ".h5": "h5", ".hdf5": "h5"}
METADATA_KEY = b"hepnn"

def write_parquet(
    arrays: ak.Array,
    path: str | os.PathLike[str],
    metadata: dict | None = None,
    row_group_size: int = 50_000,
) -> None:
    """Write jets in the native parquet layout (zstd), atomically, with ``metadata`` as JSON under "hepnn".

    Known columns are cast to the native dtypes (float32 momenta, int8 charge, int32 pid, int64 label);
    other columns are written as they are.

    Args:
        arrays: one record per jet (``hepnn.data.fields`` names).
        path: output ``.parquet`` file.
        metadata: JSON-serializable settings (seeds, generator settings, package versions).
        row_group_size: jets per parquet row group, the unit of streaming reads.
    """
    import pyarrow.parquet as pq

    from hepnn.io_utils import json_default

    table = ak.to_arrow_table(to_native_types(arrays), extensionarray=False)
    meta = dict(table.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(metadata or {}, sort_keys=True, default=json_default).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_size)


def file_format(path: str | os.PathLike[str]) -> str:
    """'parquet', 'root' or 'h5' from the file extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(
            f"{path}: unknown file type '{suffix}'; hepnn reads {', '.join(sorted(FORMATS))} "
            "(convert other formats to parquet with hepnn.data.io.write_parquet)"
        )
    return FORMATS[suffix]


def expand_paths(path_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named by a path, a glob, or a list of them (sorted within each glob); missing -> DataError."""
    items = [path_or_paths] if isinstance(path_or_paths, (str, os.PathLike)) else list(path_or_paths)
    out: list[Path] = []
    for item in items:
        text = str(item)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise DataError(f"{text}: the pattern matches no file; check the path in data.train (or data.val, data.test)")
            out.extend(Path(m) for m in matches)
        else:
            if not Path(text).is_file():
                raise DataError(f"{text}: file not found; check the path in data.train (or data.val, data.test)")
            out.append(Path(text))
    if not out:
        raise DataError("no data files given; set data.train to one or more paths or globs")
    for p in out:
        file_format(p)
    return out


def count_jets(path: str | os.PathLike[str]) -> int:
    """Number of jets in one file, from its metadata (no data are read)."""
    path = expand_paths(path)[0]
    fmt = file_format(path)
    if fmt == "parquet":
        return parquet_file(path).metadata.num_rows
    with _damaged_file_is_data_error(path):
        if fmt == "h5":
            return io_h5.count_h5(path)
        from hepnn.data import io_root

        return io_root.count_root(path)


def read_metadata(path: str | os.PathLike[str]) -> dict:
    """File-level metadata: the writer's "hepnn" JSON for parquet; layout and class names otherwise."""
    path = expand_paths(path)[0]
    fmt = file_format(path)
    if fmt == "parquet":
        raw = (parquet_file(path).schema_arrow.metadata or {}).get(METADATA_KEY)
        try:
            return json.loads(raw) if raw else {}
        except ValueError as err:  # JSONDecodeError or UnicodeDecodeError
            raise DataError(f"{path}: parquet metadata 'hepnn' is not valid JSON ({err})") from err
    with _damaged_file_is_data_error(path):
        if fmt == "h5":
            return {"layout": "toptagging", "classes": ["QCD", "top"],
                    "max_particles": io_h5.max_particles_h5(io_h5.h5_columns(path))}
        from hepnn.data import io_root

        return io_root.root_metadata(path)


def iter_chunks(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    chunk_size: int = 100_000,
    columns: Iterable[str] | None = None,
    *,
    drop_empty: bool = False,
) -> Iterator[ak.Array]:
    """Stream jets file by file in chunks of at most ``chunk_size``, canonical layout, validated.

    Args:
        paths: file(s) or glob(s); every file must have the same columns.
        chunk_size: jets per chunk (parquet chunks also end at row-group boundaries).
        columns: canonical column names to return (default: all the file has).
        drop_empty: drop jets with no constituents (with a warning) instead of raising DataError.
    """
    if chunk_size < 1:
        raise DataError(f"chunk_size must be >= 1, got {chunk_size}")
    wanted = None if columns is None else list(columns)
    guard = LayoutGuard()
    for path in expand_paths(paths):
        offset = 0
        for chunk in _raw_chunks(path, chunk_size, wanted):
            guard.check(path, chunk)
            rows = len(chunk)
            chunk = to_native_types(validate_chunk(chunk, path, offset, drop_empty=drop_empty))
            offset += rows
            if len(chunk):
                yield chunk
        if offset == 0:
            raise DataError(f"{path}: the file holds 0 jets; remove it from data.train (or data.val, data.test) or regenerate it")


def read_jets(
    path_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    columns: Iterable[str] | None = None,
    max_jets: int | None = None,
    drop_empty: bool = False,
) -> ak.Array:
    """Read whole files into memory (for data that fits), canonical layout, validated.

    Args:
        path_or_paths: file(s) or glob(s).
        columns: canonical column names to return (default: all).
        max_jets: stop after this many jets (the first ones, in file order).
        drop_empty: drop jets with no constituents (with a warning) instead of raising DataError.
    """
    parts, n = [], 0
    chunk_size = 100_000 if max_jets is None else max(1, min(max_jets, 100_000))
    for chunk in iter_chunks(path_or_paths, chunk_size, columns, drop_empty=drop_empty):
        if max_jets is not None:
            chunk = chunk[: max_jets - n]
        parts.append(chunk)
        n += len(chunk)
        if max_jets is not None and n >= max_jets:
            break
    if not parts:
        raise DataError(f"{path_or_paths}: no jets left after dropping jets with zero constituents")
    return parts[0] if len(parts) == 1 else ak.concatenate(parts)


@contextlib.contextmanager
def _damaged_file_is_data_error(path: Path) -> Iterator[None]:
    """A damaged HDF5 or ROOT file makes h5py/uproot raise almost anything (KeyError, RuntimeError,
    TypeError, zlib.error, RecursionError, ...) depending on which bytes are hit: name the file instead."""
    try:
        yield
    except HepnnError:
        raise
    except Exception as err:
        text = " ".join(str(err).split())[:200]
        raise DataError(f"{path}: cannot read the file ({type(err).__name__}: {text}); it is truncated or "
                        "corrupt: regenerate or re-download it") from err


def _raw_chunks(path: Path, chunk_size: int, columns: list[str] | None) -> Iterator[ak.Array]:
    fmt = file_format(path)
    if fmt == "parquet":
        yield from _parquet_chunks(path, chunk_size, columns)
        return
    with _damaged_file_is_data_error(path):
        if fmt == "h5":
            yield from _h5_chunks(path, chunk_size, columns)
        else:
            from hepnn.data import io_root

            yield from io_root.root_chunks(path, chunk_size, columns)


def parquet_file(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pre_buffer=False: with it, Arrow keeps every row group iter_batches has read (apache/arrow#39808)
        return pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowException, OSError, ValueError) as err:  # ValueError: undecodable bytes in a corrupt footer
        raise DataError(f"{path}: cannot read as parquet ({err}); the file is truncated or corrupt") from err


def _parquet_chunks(path: Path, chunk_size: int, columns: list[str] | None) -> Iterator[ak.Array]:
    import pyarrow as pa

    pf = parquet_file(path)
    on_disk = {F.canonical_name(name): name for name in pf.schema_arrow.names}
    read = select_columns(path, list(on_disk), columns)
    offset = 0
    try:
        for batch in pf.iter_batches(batch_size=chunk_size, columns=[on_disk[c] for c in read]):
            arr = ak.from_arrow(batch)
            yield ak.zip({c: strip_options(arr[on_disk[c]], path, c, offset) for c in read}, depth_limit=1)
            offset += len(arr)
    except (pa.ArrowException, OSError, ValueError) as err:  # ValueError: corrupt schema metadata (bad UTF-8/JSON)
        raise DataError(f"{path}: cannot read parquet data ({err}); the file is truncated or corrupt") from err


def _h5_chunks(path: Path, chunk_size: int, columns: list[str] | None) -> Iterator[ak.Array]:
    where = io_h5.h5_columns(path)
    n = io_h5.count_h5(path)
    for start in range(0, n, chunk_size):
        chunk = io_h5.read_h5_chunk(path, start, min(n, start + chunk_size), where)
        yield chunk if columns is None else ak.zip(
            {c: chunk[c] for c in select_columns(path, chunk.fields, columns)}, depth_limit=1
        )
