"""Streaming jets from files larger than memory, with a background worker that prefetches batches.

One ``torch.utils.data.DataLoader`` worker process (spawned, persistent across epochs) reads the
files chunk by chunk (``hepnn.data.io.iter_chunks``), keeps a shuffle buffer of jets, and builds
finished ``Batch``es while the main process trains; inside the worker a reader thread converts the
next chunk while batches are cut from the current one. Per epoch the file order is shuffled and jets
are mixed within the buffer; multiplicity bucketing works within each emitted pool.

Memory is bounded by the chunk and buffer sizes, never by the dataset: the worker holds at most
``shuffle_buffer + batch_size + 2 * chunk_size`` jets (the buffer, the chunk being merged into it,
and the one chunk read ahead), reported as ``max_buffered_jets``.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from hepnn.data.batch import Batch
from hepnn.data.jagged import JaggedJets, bucket_batches, plain_batches
from hepnn.data.loader import BatchBuilder, check_resume
from hepnn.errors import ConfigError

_END = object()


class _ChunkReader:
    """Reads and flattens the next chunk in a thread while the consumer cuts batches from the last one."""

    def __init__(self, files: list[str], chunk_size: int, columns: list[str] | None,
                 jets_kw: dict[str, Any], max_jets: int | None) -> None:
        self._args = (files, chunk_size, columns, jets_kw, max_jets)
        self._queue: queue.Queue = queue.Queue()
        self._ahead = threading.Semaphore(1)  # read at most one chunk ahead of the consumer
        self._stop = threading.Event()
        self.produced = self.consumed = 0  # jets; each counter is written by one thread only
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jets read but not yet handed to the consumer."""
        return self.produced - self.consumed

    def _run(self) -> None:
        from hepnn.data.io import iter_chunks

        files, chunk_size, columns, jets_kw, max_jets = self._args
        try:
            chunks = iter_chunks(files, chunk_size, columns)
            while self._acquire():  # the slot is taken before reading, so no chunk waits unseen
                arrays = next(chunks, None)
                if arrays is None:
                    break
                if max_jets is not None:
                    arrays = arrays[: max_jets - self.produced]
                jets = JaggedJets.from_awkward(arrays, **jets_kw)
                self.produced += len(jets)
                self._queue.put(jets)
                if max_jets is not None and self.produced >= max_jets:
                    break
            self._queue.put(_END)
        except BaseException as err:  # handed to the consumer, which re-raises it
            self._queue.put(err)

    def _acquire(self) -> bool:
        while not self._stop.is_set():
            if self._ahead.acquire(timeout=0.1):
                return True
        return False

    def __iter__(self) -> Iterator[JaggedJets]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            self.consumed += len(item)
            self._ahead.release()
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class _JetStream(IterableDataset):
    """The worker side: chunks -> shuffle buffer -> pools of batches -> ``Batch``es.

    Epoch and resume position are shared ``multiprocessing.Value``s so a persistent worker sees the
    main process's ``set_epoch``/``load_state_dict``.
    """

    def __init__(self, files: list[str], builder: BatchBuilder, *, batch_size: int, chunk_size: int,
                 shuffle_buffer: int, shuffle: bool, seed: int, bucketing: bool, pool: int,
                 drop_last: bool, jets_kw: dict[str, Any], columns: list[str] | None,
                 max_jets: int | None, ctx: Any) -> None:
        self.files, self.builder = files, builder
        self.batch_size, self.chunk_size, self.shuffle_buffer = batch_size, chunk_size, shuffle_buffer
        self.shuffle, self.seed, self.bucketing, self.pool = shuffle, seed, bucketing, pool
        self.drop_last, self.jets_kw, self.columns, self.max_jets = drop_last, jets_kw, columns, max_jets
        self.epoch, self.skip, self.max_held = ctx.Value("q", 0), ctx.Value("q", 0), ctx.Value("q", 0)

    def __iter__(self) -> Iterator[Batch]:
        rng = np.random.default_rng(self.seed + self.epoch.value)
        skip, k = self.skip.value, 0
        for jets, batches in self._pools(rng):
            for indices in batches:
                if k >= skip:  # resumed epochs replay the same random draws but build nothing before
                    yield self.builder(jets, indices)
                k += 1

    def _pools(self, rng: np.random.Generator) -> Iterator[tuple[JaggedJets, list[np.ndarray]]]:
        files = list(self.files)
        if self.shuffle and self.max_jets is None:  # max_jets means "the first jets in file order"
            files = [files[i] for i in rng.permutation(len(files))]
        reader = _ChunkReader(files, self.chunk_size, self.columns, self.jets_kw, self.max_jets)
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
    # The worker shares 2 cores with the trainer: one thread, or both oversubscribe (ENVIRONMENT.md).
    torch.set_num_threads(1)


class StreamingJetLoader:
    """Iterates over ``Batch``es streamed from files, with a background prefetching worker.

    Same interface as ``JetLoader``: ``len``, ``set_epoch``, ``state_dict``/``load_state_dict``
    (resume replays the epoch's random draws and skips the consumed batches without building them),
    and ``wait_fraction``, the fraction of the iteration time the consumer waited for data.

    Args:
        paths: files or globs (``hepnn.data.io.expand_paths``).
        builder: what each batch holds; batch_size: jets per batch.
        chunk_size: jets read at a time; shuffle_buffer: jets kept back for mixing (default chunk_size).
        shuffle, seed, bucketing, pool, drop_last: as in ``JetLoader`` (epoch ``e`` uses ``seed + e``).
        workers: 1 = background process (spawned once, kept across epochs), 0 = in this process.
        prefetch: batches the worker keeps ready ahead of the consumer.
        target, jet_features, weight: per-jet arrays, as in ``JaggedJets.from_awkward``.
        columns: columns to read (default all); max_jets: only the first jets in file order.
    """

    def __init__(self, paths: str | Iterable[str], builder: BatchBuilder, *, batch_size: int = 256,
                 chunk_size: int = 100_000, shuffle_buffer: int | None = None, shuffle: bool = True,
                 seed: int = 0, bucketing: bool = True, pool: int = 50, drop_last: bool = False,
                 workers: int = 1, prefetch: int = 2, pin_memory: bool = False,
                 target: str | Sequence[str] | None = "label", jet_features: Sequence[str] = (),
                 weight: str | None = None, columns: Sequence[str] | None = None,
                 max_jets: int | None = None) -> None:
        from hepnn.data.io import count_jets, expand_paths

        if workers not in (0, 1):
            raise ConfigError(f"workers must be 0 or 1 (one reader keeps every jet once per epoch), got {workers}")
        files = [str(p) for p in expand_paths(paths)]
        total = sum(count_jets(f) for f in files)
        self.n_jets = total if max_jets is None else min(total, max_jets)
        self.batch_size, self.seed, self.drop_last = batch_size, seed, drop_last
        self.workers, self.prefetch, self.pin_memory = workers, prefetch, pin_memory
        self.shuffle_buffer = chunk_size if shuffle_buffer is None else shuffle_buffer
        self.buffer_bound = self.shuffle_buffer + batch_size + 2 * chunk_size
        jets_kw = {"target": target, "jet_features": tuple(jet_features), "weight": weight}
        self.dataset = _JetStream(
            files, builder, batch_size=batch_size, chunk_size=chunk_size, shuffle_buffer=self.shuffle_buffer,
            shuffle=shuffle, seed=seed, bucketing=bucketing, pool=pool, drop_last=drop_last, jets_kw=jets_kw,
            columns=None if columns is None else list(columns), max_jets=max_jets, ctx=mp.get_context("spawn"),
        )
        self.epoch, self.position = 0, 0
        self._loader: DataLoader | None = None
        self._wait_s, self._total_s = 0.0, 0.0

    def __len__(self) -> int:
        full, rest = divmod(self.n_jets, self.batch_size)
        return full + (rest > 0 and not self.drop_last)

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
        self.dataset.epoch.value, self.dataset.skip.value = self.epoch, self.position
        start = time.perf_counter()
        try:
            it = iter(self._dataloader())
            while True:
                t0 = time.perf_counter()
                batch = next(it, None)
                self._wait_s += time.perf_counter() - t0
                if batch is None:
                    break
                self.position += 1  # counted before use: a checkpoint taken after the step resumes after it
                yield batch
            self.epoch, self.position = self.epoch + 1, 0
        finally:
            self._total_s += time.perf_counter() - start

    @property
    def wait_fraction(self) -> float:
        """Fraction of the iteration time the consumer waited for the next batch (incl. worker start)."""
        return self._wait_s / self._total_s if self._total_s else 0.0

    @property
    def max_buffered_jets(self) -> int:
        """The most jets the reader held at once so far (bounded by ``buffer_bound``)."""
        return int(self.dataset.max_held.value)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (the same epoch again keeps a resumed position)."""
        if epoch != self.epoch:
            self.epoch, self.position = epoch, 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.position, "seed": self.seed,
                "n_jets": self.n_jets, "batch_size": self.batch_size}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        check_resume(state, seed=self.seed, n_jets=self.n_jets, batch_size=self.batch_size)
        self.epoch, self.position = int(state["epoch"]), int(state["batch"])

    def close(self) -> None:
        """Stop the background worker (it also stops when the loader is garbage collected)."""
        self._loader = None
