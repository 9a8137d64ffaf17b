"""``hepnn inspect``: what is in a set of jet files, read in chunks, and how much memory training needs.

Per file: format, columns and types, number of jets, label balance, constituent multiplicity
(mean, min, max, percentiles), statistics (mean, std, min, max) of the jet pT, mass and eta
(from the summed constituents) and of the constituent pT, and a memory estimate that says which
loader ("memory" or "stream") a memory limit would pick.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable

import awkward as ak
import numpy as np

from hepnn.data.io import expand_paths, file_format, iter_chunks, read_metadata
from hepnn.data.loader import estimate_jets_bytes

GiB = 1024**3
DEFAULT_LIMIT = 4 * GiB
PERCENTILES = (10, 50, 90, 99)


@dataclass
class _Moments:
    """Streaming count, sum, sum of squares, min and max of a quantity."""

    n: int = 0
    s: float = 0.0
    s2: float = 0.0
    lo: float = np.inf
    hi: float = -np.inf

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.size:
            self.n += x.size
            self.s += x.sum()
            self.s2 += (x * x).sum()
            self.lo, self.hi = min(self.lo, x.min()), max(self.hi, x.max())

    def summary(self) -> dict[str, float]:
        if self.n == 0:
            return {"mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan")}
        mean = self.s / self.n
        return {"mean": mean, "std": float(np.sqrt(max(self.s2 / self.n - mean**2, 0.0))),
                "min": float(self.lo), "max": float(self.hi)}


@dataclass
class _FileStats:
    columns: dict[str, str] = field(default_factory=dict)
    labels: dict[int, int] = field(default_factory=dict)
    counts: list[np.ndarray] = field(default_factory=list)
    moments: dict[str, _Moments] = field(default_factory=dict)

    def add(self, chunk: ak.Array) -> None:
        if not self.columns:
            self.columns = {name: str(chunk[name].type.content) for name in chunk.fields}
        if "label" in chunk.fields:  # unlabelled data (to predict on) has none
            values, n = np.unique(ak.to_numpy(chunk.label), return_counts=True)
            for v, c in zip(values.tolist(), n.tolist()):
                self.labels[v] = self.labels.get(v, 0) + c
        self.counts.append(ak.to_numpy(ak.num(chunk.part_E, axis=1)).astype(np.int32))
        # float64 sums: the jet mass is a difference of large numbers
        e, px, py, pz = (ak.to_numpy(ak.sum(ak.values_astype(chunk[c], np.float64), axis=1))
                         for c in ("part_E", "part_px", "part_py", "part_pz"))
        pt = np.hypot(px, py)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.arcsinh(np.where(pt > 0, pz / pt, 0.0))
        quantities = {
            "jet_pt": pt, "jet_eta": eta,
            "jet_mass": np.sqrt(np.clip(e**2 - px**2 - py**2 - pz**2, 0.0, None)),
            "part_pt": np.hypot(ak.to_numpy(ak.flatten(chunk.part_px)), ak.to_numpy(ak.flatten(chunk.part_py))),
        }
        for name, x in quantities.items():
            self.moments.setdefault(name, _Moments()).add(x)


def inspect_files(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    chunk_size: int = 100_000,
    n_jet_features: int = 9,
    memory_limit: int = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """One summary dict per file (read chunk by chunk; a 10 GB file is never held whole).

    Keys: path, format, jets, columns ({name: type}), labels ({label: count}), classes (if known),
    multiplicity (mean, min, max, p10, p50, p90, p99), stats ({jet_pt, jet_mass, jet_eta, part_pt:
    {mean, std, min, max}}), memory_bytes, loader (for ``memory_limit``), metadata.
    """
    out = []
    for path in expand_paths(paths):
        stats = _FileStats()
        for chunk in iter_chunks(path, chunk_size=chunk_size):
            stats.add(chunk)
        counts = np.concatenate(stats.counts) if stats.counts else np.zeros(0, np.int32)
        meta = read_metadata(path)
        mult = {"mean": float(counts.mean()), "min": int(counts.min()), "max": int(counts.max()),
                **{f"p{q}": float(v) for q, v in zip(PERCENTILES, np.percentile(counts, PERCENTILES))}}
        mem = int(estimate_jets_bytes(len(counts), mult["mean"], n_jet_features))
        out.append({
            "path": str(path), "format": file_format(path), "jets": int(len(counts)),
            "columns": stats.columns, "labels": dict(sorted(stats.labels.items())),
            "classes": meta.get("classes"), "multiplicity": mult,
            "stats": {k: m.summary() for k, m in stats.moments.items()},
            "memory_bytes": mem, "loader": _loader(mem, memory_limit), "metadata": meta,
        })
    return out


def _loader(n_bytes: float, limit: int) -> str:
    """The loader ``data.loader=auto`` picks for data of ``n_bytes`` (see ``hepnn.data.loader.choose_loader``)."""
    return "memory" if n_bytes <= limit else "stream"


def render_inspect(summaries: list[dict[str, Any]], memory_limit: int = DEFAULT_LIMIT) -> str:
    """Plain-text report: a block per file, then ``jets: N`` in total and the loader for all files."""
    lines: list[str] = []
    for s in summaries:
        lines += [f"{s['path']} ({s['format']})", f"  jets: {s['jets']}"]
        lines.append("  columns: " + ", ".join(f"{k} [{t}]" for k, t in s["columns"].items()))
        names = s.get("classes") or []
        total = max(s["jets"], 1)
        lines.append("  labels: " + (", ".join(
            f"{lab}{f' ({names[lab]})' if lab < len(names) else ''}: {n} ({100 * n / total:.1f}%)"
            for lab, n in s["labels"].items()) or "none (no label column: fine to predict on, not to train)"))
        m = s["multiplicity"]
        lines.append("  multiplicity: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()))
        for name, st in s["stats"].items():
            lines.append(f"  {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in st.items()))
        lines.append(f"  memory (in-memory training): {s['memory_bytes'] / GiB:.3f} GiB -> loader {s['loader']}")
    n_total = sum(s["jets"] for s in summaries)
    mem_total = sum(s["memory_bytes"] for s in summaries)
    lines += [f"total over {len(summaries)} file(s):", f"jets: {n_total}",
              f"memory: {mem_total / GiB:.3f} GiB -> loader {_loader(mem_total, memory_limit)} "
              f"(limit {memory_limit / GiB:.3g} GiB)"]
    return "\n".join(lines)
