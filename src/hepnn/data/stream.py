"""Streaming jets from files larger than memory, with reader processes that prefetch batches.

The files are cut into units (a parquet row group, or a whole file of another format) and the units
are dealt round-robin to ``workers`` reader processes (``torch.utils.data.DataLoader`` workers,
spawned once, persistent across epochs). Each reader takes its own units in a per-epoch random
order, reads them chunk by chunk (parquet: straight to flat arrays, ``hepnn.data.io_flat``; other
formats and jet-level features: through awkward, ``hepnn.data.io.iter_chunks``) in a thread, keeps a
shuffle buffer of jets, and builds finished ``Batch``es while the main process trains. Multiplicity
bucketing works within each emitted pool. The main process takes the readers' batches in turn.

Memory is bounded by the chunk and buffer sizes, never by the dataset: each reader holds at most
``shuffle_buffer + batch_size + 2 * chunk_size`` jets (the buffer, the chunk being merged into it,
and the one chunk read ahead), reported as ``max_buffered_jets`` (the largest of any reader).

Resume is exact: the position is the number of batches taken from each reader (and which reader is
next); a resumed epoch replays each reader's random draws and skips its taken batches unbuilt.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from hepnn.data.batch import Batch
from hepnn.data.io_flat import Unit
from hepnn.data.jagged import JaggedJets, bucket_batches, plain_batches
from hepnn.data.loader import BatchBuilder, check_resume
from hepnn.data.stream_reader import ChunkReader
from hepnn.errors import ConfigError


def make_units(files: list[str], *, flat: bool, max_jets: int | None) -> list[Unit]:
    """Units of work in file order (row groups when ``flat``, else whole files), the last one cut
    short so that they hold ``max_jets`` jets in all (the first ones in file order)."""
    from hepnn.data.io import count_jets
    from hepnn.data.io_flat import parquet_units

    units = parquet_units(files) if flat else [Unit(f, -1, count_jets(f)) for f in files]
    if max_jets is None:
        return units
    out, left = [], max_jets
    for u in units:
        if left <= 0:
            break
        out.append(u._replace(rows=min(u.rows, left)))
        left -= out[-1].rows
    return out


def n_batches(n_jets: int, batch_size: int, drop_last: bool) -> int:
    full, rest = divmod(n_jets, batch_size)
    return full + (rest > 0 and not drop_last)


class _JetStream(IterableDataset):
    """The reader side: units -> chunks -> shuffle buffer -> pools of batches -> (reader, ``Batch``).

    Epoch, per-reader resume positions and the rotation of readers are shared ``multiprocessing``
    values, so persistent readers see the main process's ``set_epoch``/``load_state_dict``.
    """

    def __init__(self, shards: list[list[Unit]], builder: BatchBuilder, *, batch_size: int, chunk_size: int,
                 shuffle_buffer: int, shuffle: bool, seed: int, bucketing: bool, pool: int, drop_last: bool,
                 jets_kw: dict[str, Any], flat: bool, columns: list[str] | None, optional: tuple[str, ...],
                 ctx: Any) -> None:
        self.shards, self.builder = shards, builder
        self.batch_size, self.chunk_size, self.shuffle_buffer = batch_size, chunk_size, shuffle_buffer
        self.shuffle, self.seed, self.bucketing, self.pool = shuffle, seed, bucketing, pool
        self.drop_last, self.jets_kw, self.flat, self.columns = drop_last, jets_kw, flat, columns
        self.optional = optional
        self.epoch, self.rotation = ctx.Value("q", 0), ctx.Value("q", 0)
        self.skip, self.max_held = ctx.Array("q", len(shards)), ctx.Value("q", 0)

    def __iter__(self) -> Iterator[tuple[int, Batch]]:
        info = get_worker_info()  # None: read in the main process (one reader)
        slot = 0 if info is None else info.id
        # DataLoader asks its workers in turn from worker 0; a resumed epoch starts at the reader
        # whose turn it was, so worker 0 plays that reader
        return self._reader((slot + self.rotation.value) % len(self.shards))

    def _reader(self, r: int) -> Iterator[tuple[int, Batch]]:
        rng = np.random.default_rng([self.seed, self.epoch.value, r])
        skip, k = self.skip[r], 0
        for jets, batches in self._pools(self.shards[r], rng):
            for indices in batches:
                if k >= skip:  # resumed epochs replay the same random draws but build nothing before
                    yield r, self.builder(jets, indices)
                k += 1

    def _pools(self, units: list[Unit], rng: np.random.Generator) -> Iterator[tuple[JaggedJets, list[np.ndarray]]]:
        if self.shuffle:
            units = [units[i] for i in rng.permutation(len(units))]
        reader = ChunkReader(units, self.chunk_size, self.jets_kw, flat=self.flat, columns=self.columns,
                             optional=self.optional)
        buffer: JaggedJets | None = None
        try:
            for chunk in reader:
                buffer = chunk if buffer is None else JaggedJets.concat([buffer, chunk])
                self._note_held(len(buffer) + reader.pending)
                keep = self.shuffle_buffer if self.shuffle else 0
                n_out = (len(buffer) - keep) // self.batch_size * self.batch_size  # whole batches only
                if n_out > 0:
                    # The jets handed out go to their own JaggedJets, so per-particle feature tables
                    # (BatchBuilder.feature_table) are computed for them alone, once.
                    order = rng.permutation(len(buffer)) if self.shuffle else np.arange(len(buffer))
                    used, buffer = buffer.take(order[:n_out]), buffer.take(order[n_out:])
                    yield used, self._batches(used.counts, np.arange(n_out), rng)
            if buffer is not None and len(buffer):
                yield buffer, self._batches(buffer.counts, np.arange(len(buffer)), rng)
        finally:
            reader.close()

    def _batches(self, counts: np.ndarray, jets: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Batches of the jets ``jets`` (indices into ``counts``), bucketed when shuffling."""
        seed = int(rng.integers(2**62))
        if self.shuffle and self.bucketing and self.builder.pads:
            cut = bucket_batches(counts[jets], self.batch_size, shuffle=True, seed=seed, pool=self.pool,
                                 drop_last=self.drop_last)
        else:
            cut = plain_batches(len(jets), self.batch_size, shuffle=self.shuffle, seed=seed, drop_last=self.drop_last)
        return [jets[b] for b in cut]

    def _note_held(self, n: int) -> None:
        with self.max_held.get_lock():
            self.max_held.value = max(self.max_held.value, n)


def _init_worker(worker_id: int) -> None:
    # Readers share the cores with the trainer: one thread each, or they oversubscribe (ENVIRONMENT.md).
    torch.set_num_threads(1)


class StreamingJetLoader:
    """Iterates over ``Batch``es streamed from files, read by background reader processes.

    Same interface as ``JetLoader``: ``len``, ``set_epoch``, ``state_dict``/``load_state_dict``
    (resume replays the epoch's random draws and skips the consumed batches without building them),
    and ``wait_fraction``, the fraction of the iteration time the consumer waited for data.

    Args:
        paths: files or globs (``hepnn.data.io.expand_paths``).
        builder: what each batch holds; batch_size: jets per batch.
        chunk_size: jets read at a time; shuffle_buffer: jets each reader keeps back for mixing
            (default chunk_size).
        shuffle, seed, bucketing, pool, drop_last: as in ``JetLoader`` (epoch ``e`` draws from ``seed``,
            ``e`` and the reader).
        workers: reader processes (spawned once, kept across epochs), each on its own row groups;
            0 = read in this process. An unshuffled stream (file order) needs at most one.
        prefetch: batches each reader keeps ready ahead of the consumer.
        pin_memory: batches arrive in page-locked memory (for CUDA: non-blocking copies).
        target, jet_features, weight: per-jet arrays, as in ``JaggedJets.from_awkward``.
        columns: columns to read (default all; only with jet features or non-parquet files);
            max_jets: only the first jets in file order.
    """

    def __init__(self, paths: str | Iterable[str], builder: BatchBuilder, *, batch_size: int = 256,
                 chunk_size: int = 100_000, shuffle_buffer: int | None = None, shuffle: bool = True,
                 seed: int = 0, bucketing: bool = True, pool: int = 50, drop_last: bool = False,
                 workers: int = 1, prefetch: int = 2, pin_memory: bool = False,
                 target: str | Sequence[str] | None = "label", jet_features: Sequence[str] = (),
                 weight: str | None = None, columns: Sequence[str] | None = None,
                 max_jets: int | None = None) -> None:
        from hepnn.data.io import expand_paths, file_format

        if workers < 0:
            raise ConfigError(f"data.workers must be >= 0, got {workers}")
        if workers > 1 and not shuffle:
            raise ConfigError("an unshuffled stream keeps file order, which needs one reader (workers <= 1)")
        files = [str(p) for p in expand_paths(paths)]
        # flat parquet reading, unless jet-level features (computed with awkward) are needed
        flat = not jet_features and all(file_format(f) == "parquet" for f in files)
        units = make_units(files, flat=flat, max_jets=max_jets)
        n_readers = max(workers, 1)
        if len(units) < n_readers:
            raise ConfigError(f"data.workers={workers} readers but only {len(units)} row groups/files to read; "
                              f"use at most {len(units)} workers or write smaller row groups")
        shards = [units[r::n_readers] for r in range(n_readers)]  # round-robin in file order
        self.n_jets = sum(u.rows for u in units)
        self.shard_batches = [n_batches(sum(u.rows for u in s), batch_size, drop_last) for s in shards]
        self.batch_size, self.seed, self.drop_last = batch_size, seed, drop_last
        self.workers, self.prefetch, self.pin_memory = workers, prefetch, pin_memory
        self.shuffle_buffer = chunk_size if shuffle_buffer is None else shuffle_buffer
        self.buffer_bound = self.shuffle_buffer + batch_size + 2 * chunk_size
        jets_kw = {"target": target, "jet_features": tuple(jet_features), "weight": weight}
        needs = set(builder.particle_features)  # charge and PDG id are read only for the features using them
        self.optional = tuple(c for c, used in (("part_charge", needs & {"charge", "pid_onehot"}),
                                                ("part_pid", needs & {"pid_onehot"})) if used)
        self.dataset = _JetStream(
            shards, builder, batch_size=batch_size, chunk_size=chunk_size, shuffle_buffer=self.shuffle_buffer,
            shuffle=shuffle, seed=seed, bucketing=bucketing, pool=pool, drop_last=drop_last, jets_kw=jets_kw,
            flat=flat, columns=None if columns is None else list(columns), optional=self.optional,
            ctx=mp.get_context("spawn"),
        )
        self.epoch, self.taken, self.next_reader = 0, [0] * n_readers, 0
        self._loader: DataLoader | None = None
        self._wait_s, self._total_s = 0.0, 0.0

    @property
    def position(self) -> int:
        """Batches of the current epoch already handed out."""
        return sum(self.taken)

    def __len__(self) -> int:
        return sum(self.shard_batches)

    def _dataloader(self) -> DataLoader:
        if self._loader is None:
            bg = self.workers > 0
            self._loader = DataLoader(
                self.dataset, batch_size=None, num_workers=self.workers, pin_memory=self.pin_memory,
                prefetch_factor=self.prefetch if bg else None, persistent_workers=bg,
                multiprocessing_context="spawn" if bg else None, worker_init_fn=_init_worker if bg else None,
            )
        return self._loader

    def __iter__(self) -> Iterator[Batch]:
        d = self.dataset
        d.epoch.value, d.rotation.value = self.epoch, self.next_reader
        d.skip[:] = self.taken
        start = time.perf_counter()
        try:
            it = iter(self._dataloader())
            while True:
                t0 = time.perf_counter()
                item = next(it, None)
                self._wait_s += time.perf_counter() - t0
                if item is None:
                    break
                reader, batch = item
                self.taken[reader] += 1  # counted before use: a checkpoint taken after the step resumes after it
                self.next_reader = self._after(reader)
                yield batch
            self.set_epoch(self.epoch + 1)
        finally:
            self._total_s += time.perf_counter() - start

    def _after(self, reader: int) -> int:
        """The reader whose batch comes next: the first one after ``reader`` with batches left."""
        n = len(self.taken)
        for step in range(1, n + 1):
            r = (reader + step) % n
            if self.taken[r] < self.shard_batches[r]:
                return r
        return 0

    @property
    def wait_fraction(self) -> float:
        """Fraction of the iteration time the consumer waited for the next batch (incl. reader start)."""
        return self._wait_s / self._total_s if self._total_s else 0.0

    @property
    def max_buffered_jets(self) -> int:
        """The most jets one reader held at once so far (bounded by ``buffer_bound``)."""
        return int(self.dataset.max_held.value)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (the same epoch again keeps a resumed position)."""
        if epoch != self.epoch:
            self.epoch, self.taken, self.next_reader = epoch, [0] * len(self.taken), 0

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batch": self.position, "seed": self.seed, "n_jets": self.n_jets,
                "batch_size": self.batch_size, "taken": list(self.taken), "next_reader": self.next_reader}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        check_resume(state, seed=self.seed, n_jets=self.n_jets, batch_size=self.batch_size)
        taken = list(state.get("taken", [state["batch"]]))
        if len(taken) != len(self.taken):
            raise ConfigError(f"cannot resume the data position: {len(taken)} readers were streaming, now "
                              f"{len(self.taken)} (data.workers changed)")
        self.epoch, self.taken, self.next_reader = int(state["epoch"]), taken, int(state.get("next_reader", 0))

    def close(self) -> None:
        """Stop the reader processes (they also stop when the loader is garbage collected)."""
        self._loader = None
