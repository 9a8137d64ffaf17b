"""Run a hyperparameter study with Optuna: one trial = one ``hepnn.train.fit.fit`` run.

Optuna (Akiba et al. 2019, arXiv:1907.10902) keeps the study in a storage that several processes
share; each process is an independent worker that asks the storage for its next trial, so trial
numbers are unique across processes and machines. Samplers: grid, random, TPE (``bayes``;
Bergstra et al. 2011) and a Gaussian process (``gp``). Pruners stop bad trials early from the
per-epoch validation metric (median rule, or successive halving: Li et al., arXiv:1810.05934).

Storage. By default an SQLite file ``STUDY_DIR/study.db``: safe for a few worker processes on one
machine (SQLite serialises writers with a file lock; we wait up to 60 s for it) and it supports
Optuna's heartbeat, so a trial whose process died is failed and retried. ``--storage`` takes an
RDB URL (``postgresql://...``, ``mysql://...``, ``sqlite:///...``) or a journal file path (an
append-only log with its own lock; works on NFS where SQLite does not; no heartbeat).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from hepnn.config import RunConfig, TuneConfig, dump_config
from hepnn.errors import ConfigError, HepnnError, missing_extra
from hepnn.log import get_logger
from hepnn.tune.results import StudyResult, write_results
from hepnn.tune.space import (base_raw, check_tune, direction_of, grid_values, label, n_trials_of,
                              report_metric_of, suggest, trial_config)

if TYPE_CHECKING:
    from hepnn.train.engine import Engine

log = get_logger(__name__)

HEARTBEAT_S = 15  # a running trial writes a heartbeat this often (RDB storages)
GRACE_S = 60  # ... and is declared dead (failed, then retried once) after this long without one
TrainFn = Callable[..., Any]  # fit(cfg, out, *, progress, extra_callbacks) -> run directory


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as err:
        raise missing_extra("tune", "optuna") from err
    return optuna


@dataclass(frozen=True)
class StudyPlan:
    """Everything a worker process needs (picklable: plain data only)."""

    base: dict[str, Any]  # the validated base config as plain data, tune section included
    study_dir: str
    storage: str  # RDB URL or journal file path
    study_name: str
    n_trials: int  # the study's total budget (finished trials), not per process
    workers: int = 1

    @property
    def tune(self) -> TuneConfig:
        return TuneConfig.model_validate(self.base["tune"])


class TrialReporter:
    """Engine callback: records every epoch's logs, reports ``metric`` to an Optuna trial, prunes.

    When the pruner says stop, the engine is asked to stop after this epoch and ``TrialPruned`` is
    raised from ``on_train_end``, after the other callbacks have closed their files.
    """

    def __init__(self, trial: Any, metric: str | None) -> None:
        self.trial, self.metric = trial, metric
        self.history: list[dict[str, float]] = []
        self.pruned_at: int | None = None

    def on_epoch_end(self, engine: Engine, logs: dict[str, float]) -> None:
        self.history.append(dict(logs))
        if self.metric is None:
            return
        if self.metric not in logs:
            raise ConfigError(f"tune: the run reports no per-epoch {self.metric!r}; "
                              f"available: {', '.join(sorted(logs))}")
        value = float(logs[self.metric])
        if not math.isfinite(value):
            return
        step = int(logs.get("epoch", len(self.history) - 1)) + 1  # epochs done (1-based)
        self.trial.report(value, step)
        if self.trial.should_prune():
            self.pruned_at = step
            engine.should_stop = True

    def on_train_end(self, engine: Engine) -> None:
        if self.pruned_at is not None:
            log.info("trial %d pruned after epoch %d", self.trial.number, self.pruned_at)
            raise _optuna().TrialPruned(f"pruned after epoch {self.pruned_at}")


def epoch_value(history: list[dict[str, float]], metric: str, cfg: RunConfig) -> float:
    """The per-epoch ``metric`` at the epoch whose weights the run keeps.

    That is the best epoch by the early-stopping metric when early stopping restores the best
    weights (first best on ties, like the checkpointer), else the last epoch.
    """
    rows = [r for r in history if metric in r]
    if not rows:
        raise HepnnError(f"tune.metric: the run reported no per-epoch {metric!r}")
    es = cfg.train.early_stopping
    if es is not None and es.restore_best and all(es.metric in r for r in rows):
        pick = (min if es.mode == "min" else max)(rows, key=lambda r: r[es.metric])
        return float(pick[metric])
    return float(rows[-1][metric])


def trial_value(run_dir: Path, metric: str, history: list[dict[str, float]], cfg: RunConfig) -> float:
    """The trial's objective: a metrics.json key of the run, or a per-epoch history value."""
    import json

    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    value = float(metrics[metric]) if metric in metrics else epoch_value(history, metric, cfg)
    if not math.isfinite(value):
        raise HepnnError(f"tune.metric: {metric} = {value} in {run_dir}")
    return value


class Objective:
    """Optuna objective: sample a point, train it into STUDY_DIR/trials/<number>, return the metric."""

    def __init__(self, plan: StudyPlan, train_fn: TrainFn) -> None:
        self.plan, self.tune, self.train_fn = plan, plan.tune, train_fn

    def __call__(self, trial: Any) -> float:
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        params = suggest(trial, self.tune.space, grid=self.tune.sampler == "grid")
        cfg = trial_config(self.plan.base, params, source=f"trial {trial.number}")
        run_dir = Path(self.plan.study_dir) / "trials" / str(trial.number)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("config", dump_config(cfg))
        reporter = TrialReporter(trial, report_metric_of(self.tune))
        log.info("trial %d: %s", trial.number, ", ".join(f"{k}={v}" for k, v in params.items()))
        try:
            self.train_fn(cfg, run_dir, progress=False, extra_callbacks=[reporter])
            value = trial_value(run_dir, self.tune.metric, reporter.history, cfg)
        except HepnnError as err:
            trial.set_user_attr("error", str(err))  # counts towards the budget (a killed trial does not)
            log.warning("trial %d failed: %s", trial.number, err)
            raise
        log.info("trial %d: %s = %.5g", trial.number, self.tune.metric, value)
        return value


def make_storage(url: str) -> Any:
    """An RDB storage with heartbeat (URL with ``://``) or a journal-file storage (a path)."""
    optuna = _optuna()
    if "://" not in url:
        from optuna.storages.journal import JournalFileBackend

        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(url)))
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():  # the heartbeat is marked experimental; it is what we rely on
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S,
                                          grace_period=GRACE_S, heartbeat_stale_trial_callback=retry)


def make_sampler(tune: TuneConfig, seed: int) -> Any:
    samplers = _optuna().samplers
    if tune.sampler == "grid":  # same seed in every worker: trial number k -> grid point k
        grid = {k: [label(v) for v in grid_values(p, k)] for k, p in tune.space.items()}
        return samplers.GridSampler(grid, seed=tune.seed)
    if tune.sampler == "random":
        return samplers.RandomSampler(seed=seed)
    if tune.sampler == "gp":
        return samplers.GPSampler(seed=seed, n_startup_trials=tune.n_startup_trials)
    return samplers.TPESampler(seed=seed, n_startup_trials=tune.n_startup_trials)


def make_pruner(tune: TuneConfig) -> Any:
    pruners = _optuna().pruners
    if tune.pruner == "median":
        return pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=tune.pruner_warmup)
    if tune.pruner == "halving":
        return pruners.SuccessiveHalvingPruner(min_resource=max(1, tune.pruner_warmup))
    return pruners.NopPruner()


def open_study(plan: StudyPlan, seed: int | None = None, storage: Any = None) -> Any:
    """Create the study in its storage, or load it (several processes and machines cooperate)."""
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # hepnn logs one line per trial instead
    tune = plan.tune
    storage = make_storage(plan.storage) if storage is None else storage
    study = optuna.create_study(storage=storage, study_name=plan.study_name,
                                sampler=make_sampler(tune, tune.seed if seed is None else seed),
                                pruner=make_pruner(tune), direction=direction_of(tune), load_if_exists=True)
    if study.direction.name.lower() != direction_of(tune):
        raise ConfigError(f"study {plan.study_name!r} in {plan.storage} was created to "
                          f"{study.direction.name.lower()}; tune.direction says {direction_of(tune)}")
    return study


def counted(study: Any) -> int:
    """Trials that used up the budget: complete, pruned, or failed with an error (not killed)."""
    states = _optuna().trial.TrialState
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in (states.COMPLETE, states.PRUNED) or (t.state == states.FAIL and "error" in t.user_attrs))


class _StopAtBudget:
    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials

    def __call__(self, study: Any, trial: Any) -> None:
        if counted(study) >= self.n_trials:
            study.stop()


def requeue_interrupted(study: Any, storage: Any) -> int:
    """Queue once more the trials an interruption cut short; returns how many.

    A RUNNING trial whose process on this host no longer exists (killed) is failed first. Every
    failed trial without an error of its own (Ctrl-C, kill) that has not been retried yet is queued
    again with the same parameters, so a rerun completes the grid and the budget. Trials of other
    hosts are left to the RDB heartbeat (failed and retried after ``GRACE_S``).
    """
    optuna = _optuna()
    states = optuna.trial.TrialState
    host = socket.gethostname()
    study_id = storage.get_study_id_from_name(study.study_name)
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        pid = t.user_attrs.get("pid")
        if t.state == states.RUNNING and t.user_attrs.get("host") == host and pid is not None and not _alive(int(pid)):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            storage.set_trial_state_values(trial_id, states.FAIL)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    n = 0
    for t in study.get_trials(deepcopy=False, states=(states.FAIL,)):
        if "error" in t.user_attrs or t.number in retried or t.system_attrs.get("retry_history"):
            continue  # a real failure, already queued again, or itself a retry (retried once at most)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)(study, t)
        log.warning("trial %d was interrupted: queued again with the same parameters", t.number)
        n += 1
    return n


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _work(plan: StudyPlan, index: int, n_trials: int, train_fn: TrainFn | None, seed: int, level: int | None) -> None:
    """One worker: run up to ``n_trials`` trials of the shared study (in this process)."""
    if level is not None:  # a spawned worker process sets up its own logging
        from hepnn.log import setup_logging

        setup_logging(level)
    if train_fn is None:
        from hepnn.train.fit import fit as train_fn
    study = open_study(plan, seed=seed)
    study.optimize(Objective(plan, train_fn), n_trials=n_trials, catch=(HepnnError,),
                   callbacks=[_StopAtBudget(plan.n_trials)])


def _seed(tune: TuneConfig, n_existing: int, index: int) -> int:
    """Distinct sampler seeds per worker and per resumption, reproducible from tune.seed."""
    import numpy as np

    if tune.sampler == "grid":
        return tune.seed
    return int(np.random.SeedSequence([tune.seed, n_existing, index]).generate_state(1)[0])


def _launch(plan: StudyPlan, shares: list[int], n_existing: int, train_fn: TrainFn | None) -> None:
    tune = plan.tune
    if len(shares) == 1:
        _work(plan, 0, shares[0], train_fn, _seed(tune, n_existing, 0), None)
        return
    import logging

    level = logging.getLogger("hepnn").getEffectiveLevel()
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
    procs = [ctx.Process(target=_work, args=(plan, k, n, train_fn, _seed(tune, n_existing, k), level),
                         name=f"hepnn-tune-{k}") for k, n in enumerate(shares) if n > 0]
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the spawned workers: one thread each
    try:
        for p in procs:
            p.start()
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS")
        else:
            os.environ["OMP_NUM_THREADS"] = old
    try:
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
    failed = [f"{p.name}: exit code {p.exitcode}" for p in procs if p.exitcode != 0]
    if failed:
        raise HepnnError(f"tune workers failed ({'; '.join(failed)}); finished trials are kept in "
                         f"{plan.storage}: rerun the same command to resume")


def run_study(cfg: RunConfig, study_dir: str | Path, *, workers: int = 1, storage: str | None = None,
              train_fn: TrainFn | None = None, plots: bool = True) -> StudyResult:
    """Run (or resume) the study described by ``cfg.tune``; write the results into ``study_dir``.

    Args:
        cfg: a validated run config with a ``tune`` section.
        study_dir: trials land in ``study_dir/trials/<number>``; tables, best.yaml and plots beside.
        workers: parallel worker processes on this machine (each with OMP_NUM_THREADS=1).
        storage: RDB URL or journal file; default ``sqlite:///<study_dir>/study.db``.
        train_fn: what trains one trial (default ``hepnn.train.fit.fit``; importable for workers > 1).
        plots: draw the optimization history and parameter importances.

    Returns the study's summary (also written to ``study_dir``). The budget ``n_trials``
    counts finished trials of the whole study, so rerunning the same command resumes it.
    """
    _optuna()
    tune = check_tune(cfg)
    if workers < 1:
        raise HepnnError(f"--workers must be at least 1, got {workers}")
    study_dir = Path(study_dir).resolve()
    study_dir.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{study_dir / 'study.db'}"
    plan = StudyPlan(base=base_raw(cfg), study_dir=str(study_dir), storage=url, workers=workers,
                     study_name=tune.study_name or f"{cfg.name}-{cfg.model.name}", n_trials=n_trials_of(tune))
    store = make_storage(url)
    study = open_study(plan, storage=store)
    _check_same_space(study, plan)
    requeue_interrupted(study, store)
    done = counted(study)
    remaining = plan.n_trials - done
    log.info("study %s: %d of %d trials done, %d to run with %d worker(s); storage %s",
             plan.study_name, done, plan.n_trials, max(remaining, 0), workers, url)
    if remaining > 0:
        shares = [remaining // workers + (k < remaining % workers) for k in range(workers)]
        _launch(plan, shares, len(study.get_trials(deepcopy=False)), train_fn)
    return write_results(open_study(plan, storage=store), study_dir, tune, plots=plots)


def _check_same_space(study: Any, plan: StudyPlan) -> None:
    """A study in a storage belongs to one search space: refuse to mix in another."""
    space = plan.base["tune"]["space"]
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", space)
    elif stored != space:
        raise ConfigError(f"study {plan.study_name!r} in {plan.storage} was run with another tune.space; "
                          "use another --out, --storage or tune.study_name")
