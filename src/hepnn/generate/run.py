"""``generate``: the library entry point behind ``hepnn generate`` (validation, resume, progress)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hepnn.errors import ConfigError, missing_extra
from hepnn.generate.settings import GenerationSettings, make_settings
from hepnn.generate.shards import check_writable, is_complete, run_shards
from hepnn.log import get_logger

log = get_logger(__name__)


def generate(
    process: str,
    n_jets: int,
    out: str | os.PathLike[str],
    *,
    seed: int = 1,
    workers: int = 1,
    pt_min: float = 550.0,
    pt_max: float = 650.0,
    eta_max: float = 2.0,
    R: float = 0.8,
    mpi: bool = False,
    pileup: float = 0.0,
    detector: str = "simple",
    jets: str = "leading",
    max_constituents: int | None = 200,
    mode: str = "unbiased",
    fmt: str = "parquet",
    shard_size: int = 10_000,
    batch_events: int = 100,
    progress: bool = True,
    shards: Sequence[int] | None = None,
) -> list[Path]:
    """Generate ``n_jets`` boosted jets of ``process`` ("top", "qcd", "w") with Pythia 8 + FastJet.

    The defaults follow the Top Tagging reference sample (arXiv:1902.09914, Zenodo 2603256):
    Delphes-ATLAS-like energy flow, leading jet only, 200 constituents, no MPI, no pile-up; see
    docs/generation.md for the measurements behind each choice.

    Args:
        process: "top" (hadronic tt̄, label 1), "qcd" (dijets, label 0) or "w" (hadronic WW, label 1).
        n_jets: jets in total.
        out: a file with the format's suffix (``.parquet`` / ``.h5``) when the run is one shard
            (``n_jets <= shard_size``), otherwise a directory that receives ``shard-00000.parquet``, ...
        seed: shard ``i`` uses ``Random:seed = seed * 1000 + i``.
        workers: processes generating shards in parallel.
        pt_min, pt_max, eta_max, R: jet selection (GeV, exclusive) and anti-kT radius.
        mpi: multiparton interactions on/off.
        pileup: mean number μ of Pythia minimum-bias events overlaid on each event (Poisson), 0 = none.
        detector: "simple" (Delphes ATLAS energy flow, ``hepnn.generate.detector``) or "none"
            (particle level).
        jets: "leading" (each event's hardest jet, if it passes the cuts) or "all" jets passing them.
        max_constituents: keep the leading N constituents of a jet (None = all); the jet
            four-vector and the cuts use all of them.
        mode: "unbiased" (low p̂T cut + parton-level prefilter) or "window" (fast, biased p̂T window).
        fmt: "parquet" (native layout) or "toptagging-h5" (the public top-tagging HDF5 layout).
        shard_size: jets per shard file.
        batch_events: events per ``pythia.nextBatch`` call.
        progress: show a rich progress bar with jets/s and ETA.
        shards: generate only these shard indices (one machine's part of a larger run); None = all.
    Returns:
        The shard paths, in shard order (finished shards found on disk are reused, not regenerated).
    Raises:
        HepnnError: bad settings, missing ``gen`` extra, unwritable output, or a shard on disk made
            with other settings — all before any event is generated.
    """
    settings = make_settings(
        process=process, n_jets=n_jets, seed=seed, workers=workers, pt_min=pt_min, pt_max=pt_max,
        eta_max=eta_max, R=R, mpi=mpi, pileup=pileup, detector=detector, jets=jets,
        max_constituents=max_constituents, mode=mode, fmt=fmt, shard_size=shard_size,
        batch_events=batch_events, progress=progress,
    )
    _require_gen_extra()
    out = Path(out)
    paths = settings.shard_paths(out)
    check_writable(out, is_file=paths == [out])
    wanted = range(len(paths)) if shards is None else _check_shards(shards, len(paths))
    todo = [(i, paths[i]) for i in wanted if not is_complete(settings, i, paths[i])]
    if len(todo) < len(wanted):
        log.info("resuming: %d of %d shards already complete in %s", len(wanted) - len(todo), len(wanted), out)
    if todo:
        total = sum(settings.shard_jets(i) for i, _ in todo)
        with _progress_bar(settings, total) as advance:
            run_shards(settings, todo, advance)
    return paths


def _check_shards(shards: Sequence[int], n_shards: int) -> list[int]:
    bad = [i for i in shards if not 0 <= i < n_shards]
    if bad:
        raise ConfigError(f"generate: shards: {bad[0]} is not a shard of this run (0..{n_shards - 1})")
    return sorted(set(shards))


def _require_gen_extra() -> None:
    for package in ("pythia8mc", "fastjet"):
        try:
            __import__(package)
        except ImportError:
            raise missing_extra("gen", package) from None


class _progress_bar:
    """Context manager yielding ``advance(n_jets)``: a rich bar with jets/s and ETA, or a no-op."""

    def __init__(self, settings: GenerationSettings, total: int) -> None:
        self.settings, self.total, self.bar = settings, total, None

    def __enter__(self):
        if not self.settings.progress:
            return lambda n: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from hepnn.log import console

        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} jets/s"), TimeRemainingColumn(), console=console,
        )
        self.bar.start()
        task = self.bar.add_task(f"generate {self.settings.process}", total=self.total, rate="-")

        def advance(n: int) -> None:
            self.bar.advance(task, n)
            speed = self.bar.tasks[task].speed
            self.bar.update(task, rate=f"{speed:.1f}" if speed else "-")

        return advance

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def merge_files(
    paths: list[Path],
    out: str | os.PathLike[str],
    *,
    shuffle_seed: int | None = None,
    labels: Sequence[int | None] | None = None,
) -> Path:
    """Concatenate parquet shards (in the order given) into one parquet file, atomically.

    ``shuffle_seed`` permutes the jets (seeded), so that the first N jets of the file mix every
    input (e.g. signal and background), as quick runs with ``data.max_jets`` expect. ``labels``
    (one per path, None = keep) rewrites the ``label`` column of that input, e.g. 2 for W jets in a
    three-class sample. The metadata keeps every input's metadata under ``"merged_from"`` (in
    order), the shuffle seed and the labels. The same inputs give a byte-identical file.
    """
    import awkward as ak
    import numpy as np

    from hepnn.data.io import read_jets, read_metadata, write_parquet

    parts = [read_jets(p) for p in paths]
    if labels is not None:
        parts = [a if lab is None else ak.with_field(a, np.full(len(a), lab, np.int64), "label")
                 for a, lab in zip(parts, labels, strict=True)]  # fmt: skip
    arrays = ak.concatenate(parts)
    if shuffle_seed is not None:
        arrays = arrays[np.random.default_rng(shuffle_seed).permutation(len(arrays))]
    meta = {"merged_from": [read_metadata(p) for p in paths], "shuffle_seed": shuffle_seed}
    if labels is not None:
        meta["labels"] = list(labels)
    write_parquet(arrays, out, meta)
    return Path(out)
