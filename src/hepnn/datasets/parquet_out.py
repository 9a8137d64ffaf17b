"""Streamed writing of converted jets into hepnn's native parquet: balanced shards, fixed row groups.

The converters hand over jets chunk by chunk; this writer buffers at most one row group, writes row
groups of exactly ``row_group_size`` jets (the streaming loader reads a file by row groups, see
``hepnn.data.io.iter_chunks``), and closes a shard after its share of the split. Shards have equal
sizes (within one jet) so that under DDP every rank streams about as many jets. Each shard is written
under a temporary name and renamed when complete (``hepnn.io_utils.atomic_path``): an interrupted
conversion leaves no half-written ``.parquet``.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import awkward as ak

from hepnn.data.io import METADATA_KEY
from hepnn.data.io_checks import to_native_types
from hepnn.io_utils import json_default, atomic_path

# Jets per row group: the streaming loader's default chunk (DataConfig.chunk_size), so that each chunk
# it reads is one row group.
DEFAULT_ROW_GROUP = 100_000


def shard_sizes(total: int, shard_size: int) -> list[int]:
    """``total`` jets in ceil(total / shard_size) shards of equal size (the first ones one jet larger)."""
    n = max(1, math.ceil(total / shard_size))
    base, extra = divmod(total, n)
    return [base + (i < extra) for i in range(n)]


class ShardedParquetWriter:
    """Writes ``total`` jets as ``FOLDER/STEM_000.parquet, STEM_001.parquet, ...``; use as a context manager.

    Args:
        folder: output folder.
        stem: file name stem (the split name).
        total: jets that will be written in all (known up front, so shards can be balanced).
        shard_size: at most this many jets per file.
        row_group_size: jets per parquet row group.
        metadata: JSON-serializable; stored under the "hepnn" schema key like ``write_parquet`` does.
    """

    def __init__(self, *, folder: Path, stem: str, total: int, shard_size: int = 1_000_000,
                 row_group_size: int = DEFAULT_ROW_GROUP, metadata: dict[str, Any] | None = None) -> None:
        self.folder, self.stem, self.total = Path(folder), stem, total
        self.sizes = shard_sizes(total, shard_size)
        self.row_group_size = row_group_size
        self.metadata = json.dumps(metadata or {}, sort_keys=True, default=json_default).encode()
        self.paths: list[Path] = []
        self._buffer: list[ak.Array] = []
        self._buffered = 0
        self._shard_left = 0
        self._stack = contextlib.ExitStack()
        self._writer: Any = None
        self.written = 0

    def __enter__(self) -> "ShardedParquetWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self._flush(final=True)
            if self.written == self.total:
                return
            exc = RuntimeError(f"{self.stem}: {self.written} jets written, {self.total} announced")
            self._abort(exc)
            raise exc
        self._abort(exc)

    def _abort(self, exc: BaseException) -> None:
        """Remove the open shard's temporary file and the finished shards: no partial split is left."""
        if self._writer is not None:
            self._writer.close()
        self._stack.__exit__(type(exc), exc, exc.__traceback__)
        for path in self.paths:
            path.unlink(missing_ok=True)

    def write(self, arrays: ak.Array) -> None:
        """Add jets (native layout, one record per jet); full row groups are written at once."""
        if len(arrays):
            self._buffer.append(arrays)
            self._buffered += len(arrays)
        self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        while self._buffered and (final or self._buffered >= self._next_group()):
            take = min(self._next_group(), self._buffered)
            merged = self._buffer[0] if len(self._buffer) == 1 else ak.concatenate(self._buffer)
            self._write_group(merged[:take])
            rest = ak.to_packed(merged[take:])  # its own buffers: a slice would keep all of ``merged`` alive
            self._buffer, self._buffered = ([rest] if len(rest) else []), len(rest)

    def _next_group(self) -> int:
        """Jets in the next row group: a full group, or what is left of the current shard."""
        if self._writer is None and len(self.paths) == len(self.sizes):
            raise RuntimeError(f"{self.stem}: more jets than the {self.total} announced")
        left = self._shard_left if self._writer is not None else self.sizes[len(self.paths)]
        return min(self.row_group_size, left)

    def _write_group(self, arrays: ak.Array) -> None:
        import pyarrow.parquet as pq

        table = ak.to_arrow_table(to_native_types(arrays), extensionarray=False)
        if self._writer is None:
            path = self.folder / f"{self.stem}_{len(self.paths):03d}.parquet"
            tmp = self._stack.enter_context(atomic_path(path))
            meta = dict(table.schema.metadata or {})
            meta[METADATA_KEY] = self.metadata
            self._schema = table.schema.with_metadata(meta)
            self._writer = pq.ParquetWriter(tmp, self._schema, compression="zstd")
            self.paths.append(path)
            self._shard_left = self.sizes[len(self.paths) - 1]
        self._writer.write_table(table.cast(self._schema), row_group_size=len(table))
        self._shard_left -= len(table)
        self.written += len(table)
        if self._shard_left == 0:
            self._writer.close()
            self._writer = None
            self._stack.close()  # fsync + rename of this shard
            self._stack = contextlib.ExitStack()
