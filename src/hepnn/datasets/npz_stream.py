"""Rows of an array inside a NumPy ``.npz`` file, streamed: a 100k-jet quark-gluon file is never loaded whole.

An ``.npz`` is a zip of ``.npy`` members (stored or deflated). The member is opened as a stream, its
``.npy`` header read with ``numpy.lib.format``, and then rows are read ``chunk`` at a time. Memory is
bounded by one chunk (rows x row bytes), whatever the file size.
"""

from __future__ import annotations

import os
import zipfile
from typing import IO, Iterator

import numpy as np

from hepnn.errors import DataError


def _header(fp: IO[bytes], where: str) -> tuple[tuple[int, ...], np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fp)
        else:
            raise DataError(f"{where}: .npy format version {version} is not read here (1.0 and 2.0 are)")
    except ValueError as err:
        raise DataError(f"{where}: not a valid .npy member ({err}); the file is damaged: download it again") from err
    if fortran or dtype.hasobject:
        raise DataError(f"{where}: Fortran-ordered or object arrays cannot be streamed by rows")
    return tuple(shape), dtype


def _open_member(path: str | os.PathLike[str], key: str) -> tuple[zipfile.ZipFile, IO[bytes]]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{path}: not a readable .npz ({err}); the file is damaged: download it again") from err
    try:
        return zf, zf.open(f"{key}.npy")
    except KeyError:
        names = [n.removesuffix(".npy") for n in zf.namelist()]
        zf.close()
        raise DataError(f"{path}: no array {key!r} (found {', '.join(names)})") from None


def npz_info(path: str | os.PathLike[str], key: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of array ``key``, from its header only."""
    zf, fp = _open_member(path, key)
    with zf, fp:
        return _header(fp, f"{path}:{key}")


def iter_npz_rows(path: str | os.PathLike[str], key: str, chunk: int, stop: int | None = None) -> Iterator[np.ndarray]:
    """Arrays of at most ``chunk`` consecutive rows of ``key`` (the first ``stop`` rows, default all).

    Shapes: each yield is (k, *shape[1:]) with k <= chunk, in the file's dtype.
    """
    zf, fp = _open_member(path, key)
    with zf, fp:
        shape, dtype = _header(fp, f"{path}:{key}")
        n = shape[0] if stop is None else min(stop, shape[0])
        row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
        done = 0
        while done < n:
            k = min(chunk, n - done)
            buf = fp.read(k * row_bytes)
            if len(buf) != k * row_bytes:
                raise DataError(f"{path}:{key}: the array ends after {done + len(buf) // max(row_bytes, 1)} of "
                                f"{shape[0]} rows; the file is truncated: download it again")
            yield np.frombuffer(buf, dtype=dtype).reshape(k, *shape[1:])
            done += k
