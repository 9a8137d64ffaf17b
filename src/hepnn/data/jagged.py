"""Jets as flat particle arrays + offsets, padded per batch; multiplicity bucketing.

The jagged layout is the one awkward/Arrow use internally: all constituents of all jets in one flat
array, and ``offsets`` such that jet ``j`` owns particles ``offsets[j]:offsets[j + 1]``. Padding is
done per batch, to the batch's own largest multiplicity, with numpy fancy indexing (no per-jet
Python loop): this is the hot path of every particle-level model.

Bucketing (grouping jets of similar multiplicity into the same batch) cuts the padded slots a model
computes on; the idea is the "bucket iterator" of sequence models (e.g. Khomenko et al.,
arXiv:1708.05604), applied to constituent counts.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import awkward as ak
import numpy as np

from hepnn.data import fields as F
from hepnn.errors import DataError


class Padded(NamedTuple):
    """A padded batch of constituents; padded slots are zero and ``mask`` is False there."""

    p4: np.ndarray  # (B, N, 4) float32, (E, px, py, pz)
    mask: np.ndarray  # (B, N) bool, True = real particle
    charge: np.ndarray | None  # (B, N) int8
    pid: np.ndarray | None  # (B, N) int32


def _with_sentinel(a: np.ndarray | None) -> np.ndarray | None:
    # One zero row after the last particle: padded slots gather from it, so no masking pass is needed.
    if a is None:
        return None
    out = np.zeros((len(a) + 1, *a.shape[1:]), dtype=a.dtype)
    out[:-1] = a
    return out


class JaggedJets:
    """Flat particle arrays + int64 offsets, and per-jet arrays (targets, jet features, weights).

    Args:
        p4: (P, 4) float32 constituent four-momenta (E, px, py, pz) of all jets, pT-ordered per jet.
        offsets: (n + 1,) int64, ``offsets[0] == 0``, ``offsets[-1] == P``.
        charge, pid: optional (P,) int8 / int32.
        y: optional (n,) or (n, T) targets; jet: optional (n, F) float32 jet-level features;
        weight: optional (n,) float32 per-jet weights.
    """

    def __init__(self, *, p4: np.ndarray, offsets: np.ndarray, charge: np.ndarray | None = None,
                 pid: np.ndarray | None = None, y: np.ndarray | None = None,
                 jet: np.ndarray | None = None, weight: np.ndarray | None = None) -> None:
        self._set(np.asarray(offsets, dtype=np.int64), _with_sentinel(np.asarray(p4, dtype=np.float32)),
                  _with_sentinel(None if charge is None else np.asarray(charge, dtype=np.int8)),
                  _with_sentinel(None if pid is None else np.asarray(pid, dtype=np.int32)), y, jet, weight)

    def _set(self, offsets: np.ndarray, p4: np.ndarray, charge: np.ndarray | None, pid: np.ndarray | None,
             y: np.ndarray | None, jet: np.ndarray | None, weight: np.ndarray | None) -> None:
        # Particle arrays arrive with their zero sentinel row already appended: (P + 1, ...).
        n_particles = len(p4) - 1
        if offsets.ndim != 1 or offsets[0] != 0 or offsets[-1] != n_particles or np.any(np.diff(offsets) < 0):
            raise DataError(f"offsets must rise from 0 to the particle count {n_particles}")
        n = len(offsets) - 1
        for name, a in (("y", y), ("jet", jet), ("weight", weight)):
            if a is not None and len(a) != n:
                raise DataError(f"{name} has {len(a)} rows but there are {n} jets")
        self.offsets, self.n_particles = offsets, n_particles
        self._p4, self._charge, self._pid = p4, charge, pid  # (P + 1, 4), (P + 1,), (P + 1,)
        self.y, self.jet, self.weight = y, jet, weight
        self.cache: dict[Any, np.ndarray] = {}  # per-particle tables derived once (see BatchBuilder)

    @classmethod
    def _assemble(cls, offsets: np.ndarray, p4: np.ndarray, charge: np.ndarray | None, pid: np.ndarray | None,
                  y: np.ndarray | None, jet: np.ndarray | None, weight: np.ndarray | None) -> "JaggedJets":
        obj = cls.__new__(cls)
        obj._set(offsets, p4, charge, pid, y, jet, weight)
        return obj

    # ---------------------------------------------------------------------------------------------
    # construction

    @classmethod
    def from_awkward(cls, arrays: ak.Array, *, target: str | Sequence[str] | None = F.LABEL,
                     jet_features: Sequence[str] = (), weight: str | None = None) -> "JaggedJets":
        """Flatten a canonical-layout jet array (one row per jet, ``part_*`` jagged columns).

        Jet-level features are computed once here with ``hepnn.data.jet_features.jet_features``.
        ``target`` names one column (``(n,)``) or several (``(n, T)``); ``label`` stays int64.
        """
        fields = set(arrays.fields)
        missing = [c for c in F.PARTICLE_P4 if c not in fields]
        if missing:
            raise DataError(f"jet array lacks particle column(s) {', '.join(missing)}")
        counts = ak.to_numpy(ak.num(arrays[F.PARTICLE_P4[0]], axis=1)).astype(np.int64)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])

        def flat(name: str, out: np.ndarray) -> np.ndarray:  # fill ``out`` (P + 1 rows, sentinel last)
            out[:-1] = ak.to_numpy(ak.flatten(arrays[name], axis=1))
            return out

        n_part = int(offsets[-1])
        p4 = np.zeros((n_part + 1, 4), dtype=np.float32)  # (P + 1, 4)
        for i, c in enumerate(F.PARTICLE_P4):
            flat(c, p4[:, i])
        charge = flat("part_charge", np.zeros(n_part + 1, np.int8)) if "part_charge" in fields else None
        pid = flat("part_pid", np.zeros(n_part + 1, np.int32)) if "part_pid" in fields else None
        w = None if weight is None else np.asarray(ak.to_numpy(arrays[weight]), dtype=np.float32)
        return cls._assemble(offsets, p4, charge, pid, _targets(arrays, target),
                             _jet_features(arrays, jet_features), w)

    @classmethod
    def concat(cls, parts: Sequence["JaggedJets"]) -> "JaggedJets":
        """Jets of several ``JaggedJets`` one after the other (all must carry the same fields)."""
        if len(parts) == 1:
            return parts[0]
        shifts = np.cumsum([0] + [p.n_particles for p in parts[:-1]])
        offsets = np.concatenate([[0]] + [p.offsets[1:] + s for p, s in zip(parts, shifts)])

        def cat(get, particles: bool = False):  # None stays None; mixing present and absent is an error
            vals = [get(p) for p in parts]
            if all(v is None for v in vals):
                return None
            if any(v is None for v in vals):
                raise DataError("cannot concatenate jets with and without the same per-jet/particle field")
            if particles:  # drop every sentinel row but the last one
                vals = [v[:-1] for v in vals[:-1]] + vals[-1:]
            return np.concatenate(vals)

        return cls._assemble(offsets, cat(lambda p: p._p4, True), cat(lambda p: p._charge, True),
                             cat(lambda p: p._pid, True), cat(lambda p: p.y), cat(lambda p: p.jet),
                             cat(lambda p: p.weight))

    def take(self, indices: np.ndarray) -> "JaggedJets":
        """A new ``JaggedJets`` holding the selected jets, in the given order (e.g. a split)."""
        jets = np.asarray(indices, dtype=np.int64)
        starts, counts = self.offsets[jets], self.counts[jets]
        offsets = np.zeros(len(jets) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        # flat gather index: for each selected jet, starts[j] + 0..counts[j]-1, without a loop; the
        # last entry picks the zero sentinel. ``take`` is ~10x faster than ``a[idx]`` for (P, 4) rows.
        flat = np.empty(offsets[-1] + 1, dtype=np.int64)
        np.add(np.repeat(starts - offsets[:-1], counts), np.arange(offsets[-1]), out=flat[:-1])
        flat[-1] = self.n_particles
        return JaggedJets._assemble(offsets, self._p4.take(flat, axis=0), _pick(self._charge, flat),
                                    _pick(self._pid, flat), _pick(self.y, jets), _pick(self.jet, jets),
                                    _pick(self.weight, jets))

    def take_first(self, n: int) -> "JaggedJets":
        """The first ``n`` jets (a copy of their contiguous particle range, no gather)."""
        end = int(self.offsets[n])
        sentinel = lambda a: None if a is None else np.concatenate([a[:end], a[-1:]])  # noqa: E731
        first = lambda a: None if a is None else a[:n].copy()  # noqa: E731
        return JaggedJets._assemble(self.offsets[:n + 1].copy(), sentinel(self._p4), sentinel(self._charge),
                                    sentinel(self._pid), first(self.y), first(self.jet), first(self.weight))

    # ---------------------------------------------------------------------------------------------
    # the hot path

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def particles_p4(self) -> np.ndarray:
        """(P, 4) float32 four-momenta of every particle, jet after jet (a view, no padding row)."""
        return self._p4[:-1]

    @property
    def particles_charge(self) -> np.ndarray | None:
        """(P,) int8 charges of every particle (a view), or None."""
        return None if self._charge is None else self._charge[:-1]

    @property
    def particles_pid(self) -> np.ndarray | None:
        """(P,) int32 PDG ids of every particle (a view), or None."""
        return None if self._pid is None else self._pid[:-1]

    @property
    def counts(self) -> np.ndarray:
        """(n,) int64 particles per jet."""
        return np.diff(self.offsets)

    @property
    def nbytes(self) -> int:
        arrays = (self._p4, self._charge, self._pid, self.offsets, self.y, self.jet, self.weight)
        return sum(a.nbytes for a in arrays if a is not None)

    def gather_index(self, indices: np.ndarray, max_particles: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Flat particle index and mask of jets ``indices`` padded to the batch's largest multiplicity.

        Padded slots point at the zero sentinel row ``n_particles``, so any per-particle table with
        such a row (p4, charge, precomputed features) is padded by one ``take``.

        Shapes: indices (B,) -> idx (B, N) int64, mask (B, N) bool.
        """
        jets = np.asarray(indices, dtype=np.int64)
        starts = self.offsets[jets]  # (B,)
        counts = self.offsets[jets + 1] - starts  # (B,)
        n = int(counts.max()) if len(jets) else 0
        if max_particles is not None:
            n = min(n, max_particles)
        pos = np.arange(max(n, 1))  # (N,)
        mask = pos < counts[:, None]  # (B, N)
        return np.where(mask, starts[:, None] + pos, self.n_particles), mask

    def pad(self, indices: np.ndarray, max_particles: int | None = None) -> Padded:
        """Gather jets ``indices`` and zero-pad them to the batch's own largest multiplicity.

        N = min(max multiplicity in the batch, ``max_particles``) (at least 1). Constituents are
        pT-ordered, so the cap keeps the hardest particles.

        Shapes: indices (B,) -> p4 (B, N, 4), mask (B, N), charge (B, N), pid (B, N).
        """
        idx, mask = self.gather_index(indices, max_particles)
        return Padded(
            p4=self._p4.take(idx, axis=0),  # (B, N, 4)
            mask=mask,
            charge=None if self._charge is None else self._charge.take(idx),
            pid=None if self._pid is None else self._pid.take(idx),
        )


def _pick(a: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    return None if a is None else a.take(idx, axis=0)


def _targets(arrays: ak.Array, target: str | Sequence[str] | None) -> np.ndarray | None:
    if target is None:
        return None
    names = [target] if isinstance(target, str) else list(target)
    missing = [t for t in names if t not in arrays.fields]
    if missing:
        raise DataError(f"target column(s) {', '.join(missing)} not in the data (columns: {', '.join(arrays.fields)})")
    cols = [ak.to_numpy(arrays[t]) for t in names]
    return cols[0] if isinstance(target, str) else np.stack(cols, axis=1)  # (n,) or (n, T)


def _jet_features(arrays: ak.Array, names: Sequence[str]) -> np.ndarray | None:
    if not names:
        return None
    from hepnn.data.jet_features import jet_features

    return np.asarray(jet_features(arrays, list(names)), dtype=np.float32)  # (n, F)


# -------------------------------------------------------------------------------------------------
# batching


def plain_batches(n: int, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                  drop_last: bool = False) -> list[np.ndarray]:
    """Jet indices cut into batches: in order, or in a ``seed``-determined random order."""
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    return _cut(order, batch_size, drop_last)


def bucket_batches(counts: np.ndarray, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                   pool: int = 50, drop_last: bool = False) -> list[np.ndarray]:
    """Batches of jets with similar multiplicity, still random from epoch to epoch.

    Shuffle all jets; within consecutive pools of ``pool * batch_size`` jets sort by multiplicity;
    cut into batches; shuffle the batch order. Every jet appears exactly once (unless ``drop_last``
    drops the one partial batch). With ``shuffle=False`` the pools are the jets in file order and
    the batch order is kept (deterministic, but not file order).

    Args:
        counts: (n,) particles per jet.
        pool: batches per sorting pool; larger pools pad less but mix less.
    """
    counts = np.asarray(counts)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(counts)) if shuffle else np.arange(len(counts))
    pool_id = np.arange(len(counts)) // (max(pool, 1) * batch_size)
    order = order[np.lexsort((counts[order], pool_id))]  # sort by count within each pool (stable)
    batches = _cut(order, batch_size, drop_last)
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _cut(order: np.ndarray, batch_size: int, drop_last: bool) -> list[np.ndarray]:
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def padding_waste(counts: np.ndarray, batches: Sequence[np.ndarray], max_particles: int | None = None) -> float:
    """Fraction of padded slots: ``1 - real particles / (sum over batches of B * N_batch)``."""
    counts = np.asarray(counts)
    if max_particles is not None:
        counts = np.minimum(counts, max_particles)
    real = sum(int(counts[b].sum()) for b in batches)
    padded = sum(len(b) * int(counts[b].max()) for b in batches if len(b))
    return 1.0 - real / padded if padded else 0.0
