"""Sharded, resumable, atomic generation: one file per shard, spread over worker processes.

Shard ``i`` runs Pythia with ``Random:seed = seed * 1000 + i`` (the detector's numpy RNG with
``[seed * 1000 + i, 7]``, the pile-up overlay its own seeds derived from the same number), so a shard's content depends only on the settings and its index: the
same seed gives the same file, and an interrupted run resumes by skipping the complete shards whose
stored settings match (a shard with other settings is an error, never silently overwritten).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

import awkward as ak
import numpy as np

from hepnn.errors import ConfigError, HepnnError
from hepnn.generate.settings import GenerationSettings
from hepnn.log import get_logger

log = get_logger(__name__)

MAX_EMPTY_BATCHES = 500  # give up when this many batches in a row yield no jet (impossible cuts)
PREFILTER_CONE = 1.5  # × R: cone around each parton-level seed in the unbiased prefilter
PREFILTER_MARGIN = 50.0  # GeV below pt_min: hadronization never moves a jet by this much

_QUEUE = None  # progress queue in worker processes


def package_versions() -> dict[str, str]:
    out = {}
    for name in ("hepnn", "pythia8mc", "fastjet", "awkward", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def shard_key(settings: GenerationSettings, i: int) -> dict:
    """What a shard's content depends on; stored in its metadata and compared on resume."""
    return {
        "settings": settings.content_key(),
        "shard": i,
        "shard_seed": settings.shard_seed(i),
        "shard_jets": settings.shard_jets(i),
    }


def pileup_shift(settings: GenerationSettings) -> float:
    """GeV by which pile-up can raise a jet's pT; the unbiased cuts are lowered by it."""
    from hepnn.generate.pileup import PT_PER_EVENT

    return PT_PER_EVENT * settings.pileup


def make_prefilter_hook(settings: GenerationSettings, veto: bool = True):
    """The unbiased mode's parton-level prefilter for these settings (None in window mode)."""
    from hepnn.generate.pythia import make_prefilter

    if settings.mode != "unbiased":
        return None
    return make_prefilter(
        pt_threshold=settings.pt_min - PREFILTER_MARGIN - pileup_shift(settings),
        cone=PREFILTER_CONE * settings.R,
        eta_max=settings.eta_max + settings.R,
        veto=veto,
    )


def generate_shard(
    settings: GenerationSettings, i: int, report: Callable[[int], None] | None = None
) -> tuple[ak.Array, dict]:
    """Generate shard ``i``: exactly ``settings.shard_jets(i)`` jets and the shard's metadata."""
    from hepnn.generate import detector
    from hepnn.generate.jets import JetCuts, events_to_jets
    from hepnn.generate.pileup import PileupOverlay
    from hepnn.generate.pythia import PROCESSES, make_pythia, pythia_settings

    seed = settings.shard_seed(i)
    lines = pythia_settings(
        settings.process, seed=seed, pt_min=settings.pt_min, pt_max=settings.pt_max, mode=settings.mode,
        mpi=settings.mpi, pt_shift=pileup_shift(settings),
    )
    hook = make_prefilter_hook(settings)
    pythia = make_pythia(lines, hook)
    proc = PROCESSES[settings.process]
    cuts = JetCuts(
        settings.pt_min, settings.pt_max, settings.eta_max, settings.R,
        leading_only=settings.jets == "leading", max_constituents=settings.max_constituents,
    )
    rng = np.random.default_rng([seed, 7])
    smear = partial(detector.smear, rng=rng) if settings.detector == "simple" else None
    overlay = PileupOverlay(mu=settings.pileup, shard_seed=seed) if settings.pileup > 0 else None
    target, parts, n, n_events, empty = settings.shard_jets(i), [], 0, 0, 0
    while n < target:
        events = pythia.nextBatch(settings.batch_events)
        jets = events_to_jets(events, pythia.particleData, cuts, proc["resonance"], proc["label"], smear, overlay)
        n_events += len(events)
        empty = 0 if len(jets) else empty + 1
        if empty >= MAX_EMPTY_BATCHES:
            raise HepnnError(f"generate: no jet passed the cuts in {empty * settings.batch_events} events; check pt/eta")
        take = min(len(jets), target - n)
        parts.append(jets[:take])
        n += take
        if report is not None and take:
            report(take)
    meta = {
        "generator": "hepnn.generate",
        **shard_key(settings, i),
        "pythia_settings": lines,
        "events_generated": n_events,
        "events_tried_parton_level": hook.n_seen if hook is not None else n_events,
        "versions": package_versions(),
    }
    if overlay is not None:
        meta["pileup_pythia_settings"] = overlay.lines
        meta["pileup_events"] = overlay.n_minbias
    return ak.concatenate(parts), meta


def write_shard(arrays: ak.Array, path: Path, meta: dict, fmt: str) -> None:
    """Write one shard atomically; toptagging-h5 keeps the metadata in a ``<file>.json`` sidecar."""
    from hepnn.data.io import write_parquet, write_toptagging_h5
    from hepnn.io_utils import write_json_atomic

    if fmt == "parquet":
        write_parquet(arrays, path, meta)
    else:
        write_toptagging_h5(arrays, path)
        write_json_atomic(sidecar(path), meta)  # written last: the shard counts as done only then


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def is_complete(settings: GenerationSettings, i: int, path: Path) -> bool:
    """True if ``path`` is a finished shard ``i`` of these settings; error if it holds other settings."""
    from hepnn.data.io import count_jets, read_metadata

    if not path.exists():
        return False
    if settings.fmt == "parquet":
        meta = read_metadata(path)
    elif sidecar(path).exists():
        meta = json.loads(sidecar(path).read_text())
    else:
        return False  # interrupted between the data file and its sidecar: regenerate
    want = shard_key(settings, i)
    for key, value in want.items():
        got = meta.get(key)
        if key == "settings" and isinstance(got, dict):
            diff = [k for k in value if got.get(k) != value[k]]
            if diff:
                k = diff[0]
                raise ConfigError(
                    f"{path} was generated with {k}={got.get(k)!r}, not {value[k]!r}; "
                    "delete it or write to another output"
                )
        elif got != value:
            raise ConfigError(f"{path} was generated with {key}={got!r}, not {value!r}; delete it or write elsewhere")
    if meta.get("versions") != package_versions():
        log.warning("%s was made with other package versions (%s); reusing it", path, meta.get("versions"))
    return count_jets(path) == want["shard_jets"]


def _init_worker(queue) -> None:
    global _QUEUE
    _QUEUE = queue


def _run_shard(settings_json: str, i: int, path: str) -> int:
    """Worker entry: generate, write, return the shard index (progress goes through the queue)."""
    settings = GenerationSettings.model_validate_json(settings_json)
    report = _QUEUE.put if _QUEUE is not None else None
    arrays, meta = generate_shard(settings, i, report)
    write_shard(arrays, Path(path), meta, settings.fmt)
    return i


def run_shards(settings: GenerationSettings, todo: list[tuple[int, Path]], progress) -> None:
    """Generate the pending shards, in this process (one worker) or a spawn process pool."""
    if settings.workers == 1 or len(todo) == 1:
        for i, path in todo:
            arrays, meta = generate_shard(settings, i, progress)
            write_shard(arrays, path, meta, settings.fmt)
            log.info("wrote %s (%d jets)", path, len(arrays))
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # no fork after awkward/Pythia state, no inherited threads
    queue = ctx.Queue()
    payload = settings.model_dump_json()
    n_workers = min(settings.workers, len(todo))
    with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker, initargs=(queue,)) as pool:
        pending = {pool.submit(_run_shard, payload, i, str(p)) for i, p in todo}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(queue, progress)
            for fut in done:
                i = fut.result()  # re-raises a worker's error
                log.info("wrote %s", todo[[j for j, _ in todo].index(i)][1])
        _drain(queue, progress)


def _drain(queue, progress) -> None:
    import queue as q

    while True:
        try:
            n = queue.get_nowait()
        except q.Empty:
            return
        progress(n)


def check_writable(out: Path, *, is_file: bool) -> None:
    """Error unless ``out`` (a file if ``is_file``, else a directory) can be written: it must not
    exist as the other kind, and its nearest existing ancestor must be a writable directory."""
    if out.exists() and out.is_dir() == is_file:
        kind = "a directory" if is_file else "a file"
        raise HepnnError(f"cannot write {out}: it exists and is {kind}")
    parent = out if (out.is_dir() and not is_file) else out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise HepnnError(f"cannot write {out}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise HepnnError(f"cannot write {out}: {parent} is not writable")
