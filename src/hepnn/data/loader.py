"""From jets to ``Batch``es: what to build per batch, the in-memory loader, and memory vs streaming.

* ``BatchBuilder`` turns a list of jet indices into a ``Batch`` holding only the fields a model
  reads (the registry's ``inputs``): pad -> torch -> particle features -> preprocessing.
* ``JetLoader`` iterates over ``Batch``es of a ``JaggedJets`` held in memory, with multiplicity
  bucketing, a per-epoch seeded shuffle, and an exact resume position (``state_dict``).
* ``StreamingJetLoader`` (``hepnn.data.stream``) does the same for data larger than memory.
* ``choose_loader`` picks between the two from a memory estimate (``hepnn.runs.make_loaders`` builds them).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from hepnn.data.batch import Batch
from hepnn.data.jagged import JaggedJets, bucket_batches, plain_batches
from hepnn.errors import ConfigError, DataError
from hepnn.log import get_logger

log = get_logger(__name__)

BATCH_FIELDS = ("x", "mask", "p4", "jet", "image", "y", "weight")
PARTICLE_FIELDS = frozenset({"x", "mask", "p4", "image"})  # fields that need padded constituents
Transform = Callable[[np.ndarray], np.ndarray]  # numpy (n, F) -> (n, F), or an object with .transform


def _as_transform(pre: Any) -> Transform | None:
    # A fitted preprocessor (scikit-learn contract) or a plain function.
    return None if pre is None else getattr(pre, "transform", pre)


class BatchBuilder:
    """Builds a ``Batch`` with only the requested fields from jets ``indices`` of a ``JaggedJets``.

    Args:
        fields: Batch fields the model (and the loss) read, a subset of ``BATCH_FIELDS``.
        particle_features: names for ``hepnn.data.features.particle_features`` (needed for ``x``).
        particle_preprocessor: fitted transform of the real particles' features, (n, C) -> (n, C).
        jet_preprocessor: fitted transform of the jet-level features, (B, F) -> (B, F).
        target_preprocessor: fitted transform of regression targets, (B, T) -> (B, T) (the model
            learns standardized targets; predictions are transformed back by the caller).
        task: "classify" (``y`` int64) or "regress" (``y`` float32).
        max_particles: cap on N per batch (the hardest particles are kept); None = no cap.
        image_size: side of the jet images (``image`` field).
        trim: pad each batch to this quantile of its jets' multiplicities instead of its largest jet,
            dropping the softest particles beyond (weaver-core's sequence trimming, for unsorted
            training batches); None = no trimming.
    """

    def __init__(self, *, fields: Sequence[str], particle_features: Sequence[str] = (),
                 particle_preprocessor: Any = None, jet_preprocessor: Any = None, target_preprocessor: Any = None,
                 task: str = "classify", max_particles: int | None = None, image_size: int = 40,
                 trim: float | None = None) -> None:
        unknown = sorted(set(fields) - set(BATCH_FIELDS))
        if unknown:
            raise ConfigError(f"unknown Batch field(s) {', '.join(unknown)}; known: {', '.join(BATCH_FIELDS)}")
        if "x" in fields and not particle_features:
            raise ConfigError("data.particle_features is empty but the model reads particle features (x)")
        if task not in ("classify", "regress"):
            raise ConfigError(f"task must be 'classify' or 'regress', got {task!r}")
        self.fields = tuple(f for f in BATCH_FIELDS if f in set(fields))
        self.particle_features = tuple(particle_features)
        self.particle_preprocessor = particle_preprocessor
        self.jet_preprocessor = jet_preprocessor
        self.target_preprocessor = target_preprocessor
        self.task = task
        self.max_particles = max_particles
        self.image_size = image_size
        self.trim = trim

    @property
    def pads(self) -> bool:
        """Whether batches need padded constituents (a jet-level model needs none)."""
        return bool(PARTICLE_FIELDS & set(self.fields))

    def __call__(self, jets: JaggedJets, indices: np.ndarray) -> Batch:
        """Shapes: indices (B,) -> Batch with x (B, N, C), mask (B, N), p4 (B, N, 4), jet (B, F), ..."""
        idx = np.asarray(indices, dtype=np.int64)
        out: dict[str, torch.Tensor] = {}
        if self.pads:
            out.update(self._particles(jets, idx))
        if "jet" in self.fields:
            if jets.jet is None:
                raise DataError("the model reads jet-level features but none were computed (data.jet_features)")
            jet = jets.jet[idx]  # (B, F)
            pre = _as_transform(self.jet_preprocessor)
            out["jet"] = torch.from_numpy(np.ascontiguousarray(pre(jet) if pre else jet, dtype=np.float32))
        if "y" in self.fields:
            if jets.y is None:
                raise DataError("the batch needs targets (y) but the jets carry none (data.target)")
            y = jets.y[idx]
            pre = _as_transform(self.target_preprocessor) if self.task == "regress" else None
            if pre is not None:
                y = pre(y.reshape(len(y), -1).astype(np.float64)).reshape(y.shape)  # (B,) or (B, T)
            dtype = np.int64 if self.task == "classify" else np.float32
            out["y"] = torch.from_numpy(np.ascontiguousarray(y, dtype=dtype))
        if "weight" in self.fields and jets.weight is not None:
            out["weight"] = torch.from_numpy(np.ascontiguousarray(jets.weight[idx], dtype=np.float32))
        return Batch(**out)

    def _cap(self, jets: JaggedJets, idx: np.ndarray) -> int | None:
        """The particle cap of this batch: ``max_particles``, lowered by ``trim``."""
        if self.trim is None or len(idx) == 0:
            return self.max_particles
        counts = jets.counts[idx]
        if self.max_particles is not None:
            counts = np.minimum(counts, self.max_particles)
        return max(1, int(np.ceil(np.quantile(counts, self.trim))))

    def _particles(self, jets: JaggedJets, idx: np.ndarray) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        cap = self._cap(jets, idx)
        if {"p4", "mask", "image"} & set(self.fields):
            padded = jets.pad(idx, cap)
            p4 = torch.from_numpy(padded.p4)  # (B, N, 4)
            out.update({k: v for k, v in (("p4", p4), ("mask", torch.from_numpy(padded.mask))) if k in self.fields})
            if "image" in self.fields:
                from hepnn.data.images import jet_images

                out["image"] = jet_images(p4, out.get("mask", torch.from_numpy(padded.mask)), size=self.image_size)
        if "x" in self.fields:
            gather, mask = jets.gather_index(idx, cap)  # (B, N)
            out["x"] = torch.from_numpy(self.feature_table(jets).take(gather, axis=0))  # (B, N, C)
            out.setdefault("mask", torch.from_numpy(mask))
        return out

    def feature_table(self, jets: JaggedJets) -> np.ndarray:
        """Preprocessed particle features of every particle of ``jets``, computed once and cached.

        A particle's features depend only on the particle and its jet's axis (the sum of all its
        constituents), so they are computed a single time per dataset on padded chunks of jets and
        kept flat, (P + 1, C) float32 with a zero row for padding; a batch is then one gather.
        This is what keeps batch assembly at padding speed instead of recomputing logs and angles
        every epoch.
        """
        key = ("particle_features", self.particle_features, id(self.particle_preprocessor))
        if key not in jets.cache:
            jets.cache[key] = self._compute_table(jets)
        return jets.cache[key]

    def _compute_table(self, jets: JaggedJets, chunk: int = 16_384) -> np.ndarray:
        from hepnn.data.features import feature_dim, particle_features_flat

        table = np.zeros((jets.n_particles + 1, feature_dim(self.particle_features)), dtype=np.float32)
        pre = _as_transform(self.particle_preprocessor)
        counts = jets.counts
        for start in range(0, len(jets), chunk):  # jets [start, stop) own particles [lo, hi): no gather
            stop = min(start + chunk, len(jets))
            lo, hi = int(jets.offsets[start]), int(jets.offsets[stop])
            flat = lambda a: None if a is None else torch.from_numpy(a[lo:hi])  # noqa: E731
            x = particle_features_flat(
                torch.from_numpy(jets.particles_p4[lo:hi]), torch.from_numpy(counts[start:stop]),
                self.particle_features, charge=flat(jets.particles_charge), pid=flat(jets.particles_pid),
            ).numpy()  # (n_particles, C), real particles only
            # Preprocessing sees the real particles only, so padding never shifts a fitted mean.
            table[lo:hi] = pre(x) if pre is not None else x
        return table


class JetLoader:
    """Iterates over ``Batch``es of jets held in memory.

    The batches of epoch ``e`` are a pure function of (``seed + e``, the jets), so ``state_dict()``
    (epoch, batches consumed) is enough to resume exactly: a resumed run sees the same remaining
    batches. A completed pass moves on to the next epoch; ``set_epoch`` may also be called each epoch.
    Unshuffled passes are the same every epoch; with bucketing they are sorted by multiplicity
    within pools (far less padding for evaluation), and ``order()`` maps outputs back to file order
    (``predict_outputs`` does).

    Args:
        jets: the data; builder: what each batch holds; batch_size: jets per batch.
        shuffle: random order each epoch; seed: base seed (epoch ``e`` uses ``seed + e``).
        bucketing: group jets of similar multiplicity (see ``bucket_batches``).
        drop_last: drop the final partial batch.
    """

    def __init__(self, jets: JaggedJets, builder: BatchBuilder, *, batch_size: int = 256,
                 shuffle: bool = True, seed: int = 0, bucketing: bool = True, drop_last: bool = False,
                 pool: int = 50) -> None:
        self.jets, self.builder = jets, builder
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.bucketing, self.drop_last, self.pool = bucketing, drop_last, pool
        self.epoch, self.position = 0, 0  # batches of ``epoch`` already handed out
        self._wait_s, self._total_s = 0.0, 0.0

    def __len__(self) -> int:
        full, rest = divmod(len(self.jets), self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """Jet indices of every batch of ``epoch`` (default: the current one), in order."""
        seed = self.seed + (self.epoch if epoch is None else epoch)
        if self.bucketing and self.builder.pads:
            return bucket_batches(self.jets.counts, self.batch_size, shuffle=self.shuffle, seed=seed,
                                  pool=self.pool, drop_last=self.drop_last)
        return plain_batches(len(self.jets), self.batch_size, shuffle=self.shuffle, seed=seed,
                             drop_last=self.drop_last)

    def order(self) -> np.ndarray:
        """Jet indices in the order this epoch's batches hand them out."""
        batches = self.batches()
        return np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (the same epoch again keeps a resumed position)."""
        if epoch != self.epoch:
            self.epoch, self.position = epoch, 0

    def __iter__(self) -> Iterator[Batch]:
        start = time.perf_counter()
        try:
            for indices in self.batches()[self.position:]:
                t0 = time.perf_counter()
                batch = self.builder(self.jets, indices)
                self._wait_s += time.perf_counter() - t0
                self.position += 1  # counted before use: a checkpoint taken after the step resumes after it
                yield batch
            self.epoch, self.position = self.epoch + 1, 0
        finally:
            self._total_s += time.perf_counter() - start

    @property
    def wait_fraction(self) -> float:
        """Fraction of the iteration time spent assembling batches (the consumer's wait)."""
        return self._wait_s / self._total_s if self._total_s else 0.0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.position, "seed": self.seed,
                "n_jets": len(self.jets), "batch_size": self.batch_size}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        check_resume(state, seed=self.seed, n_jets=len(self.jets), batch_size=self.batch_size)
        self.epoch, self.position = int(state["epoch"]), int(state["batch"])


def check_resume(state: Mapping[str, int], **expected: int) -> None:
    for key, value in expected.items():
        if key in state and int(state[key]) != value:
            raise ConfigError(f"cannot resume the data position: {key} was {state[key]}, now {value}")


# -------------------------------------------------------------------------------------------------
# memory or streaming

# Bytes per constituent held by JaggedJets: float32 (E, px, py, pz) + int8 charge + int32 pid.
_BYTES_PER_PARTICLE = 4 * 4 + 1 + 4
# Reading builds the awkward array and the flat copies side by side: peak ~2x the final footprint.
_READ_OVERHEAD = 2.0


def estimate_jets_bytes(n_jets: int, mean_particles: float, n_features: int) -> float:
    """Peak bytes to read ``n_jets`` into a ``JaggedJets`` (``n_features`` jet-level float32 columns)."""
    per_jet = mean_particles * _BYTES_PER_PARTICLE + 8 + 8 + 4 * n_features  # + offset, target
    return _READ_OVERHEAD * n_jets * per_jet


def choose_loader(n_jets: int, mean_particles: float, n_features: int, memory_limit_gb: float,
                  mode: str = "auto") -> str:
    """"memory" or "stream": "auto" loads into memory when the estimate fits under the limit."""
    if mode not in ("auto", "memory", "stream"):
        raise ConfigError(f"data.loader must be 'auto', 'memory' or 'stream', got {mode!r}")
    need_gb = estimate_jets_bytes(n_jets, mean_particles, n_features) / 1e9
    choice = mode if mode != "auto" else ("memory" if need_gb <= memory_limit_gb else "stream")
    log.info("data: %d jets x %.1f particles need ~%.2f GB in memory (limit %.2f GB): %s loader (%s)",
             n_jets, mean_particles, need_gb, memory_limit_gb, choice, "auto" if mode == "auto" else "forced")
    return choice


def mean_particles(paths: Sequence[str], sample: int = 2_000) -> float:
    """Mean multiplicity of the first ``sample`` jets of ``paths`` (for the memory estimate)."""
    from hepnn.data.io import iter_chunks

    import awkward as ak

    first = next(iter(iter_chunks(paths, sample, columns=["part_E"])))
    return float(np.mean(ak.to_numpy(ak.num(first["part_E"], axis=1))))
