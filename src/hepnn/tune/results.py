"""What a study leaves in its directory: the trials table, best.yaml, plots and a summary.

    trials.csv, trials.md     number, state, metric, epochs, duration, one column per parameter
    best.yaml                 the full resolved config of the best trial (`hepnn train best.yaml`)
    plots/history.png         the metric per trial and the best so far
    plots/importance.png      parameter importances (fANOVA, Hutter et al. 2014; needs scikit-learn)
    summary.json              best trial, its value and parameters, trial counts by state
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepnn.config import TuneConfig
from hepnn.io_utils import atomic_path, write_json_atomic, write_text_atomic
from hepnn.log import get_logger
from hepnn.tune.space import direction_of

log = get_logger(__name__)


@dataclass
class StudyResult:
    """Summary of a study after ``run_study``."""

    study_dir: Path
    metric: str
    direction: str
    n_trials: int  # trials in the storage, every state
    states: dict[str, int]  # COMPLETE / PRUNED / FAIL / RUNNING / WAITING -> count
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    table_md: str = ""


def trial_rows(study: Any, tune: TuneConfig) -> list[dict[str, Any]]:
    """One row per trial: number, state, metric value, epochs reported, duration, parameters."""
    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            tune.metric: t.value if t.value is not None else "",
            "epochs": len(t.intermediate_values),
            "duration_s": round(t.duration.total_seconds(), 1) if t.duration is not None else "",
        }
        row.update({k: t.params.get(k, "") for k in tune.space})
        rows.append(row)
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no trials)\n"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(r[k]) for k in header) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_results(study: Any, study_dir: Path, tune: TuneConfig, *, plots: bool = True) -> StudyResult:
    """Write trials.csv/md, best.yaml, plots and summary.json; return the summary."""
    study_dir = Path(study_dir)
    rows = trial_rows(study, tune)
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_text_atomic(study_dir / "trials.csv", buf.getvalue())
    table = markdown_table(rows)
    write_text_atomic(study_dir / "trials.md", table)
    states: dict[str, int] = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    result = StudyResult(study_dir, tune.metric, direction_of(tune), len(rows), states, table_md=table)
    complete = [t for t in study.get_trials(deepcopy=False) if t.value is not None and t.state.name == "COMPLETE"]
    if complete:
        best = study.best_trial
        result.best_number, result.best_value, result.best_params = best.number, best.value, dict(best.params)
        write_text_atomic(study_dir / "best.yaml", f"# best trial {best.number} of study {study.study_name}: "
                          f"{tune.metric} = {best.value:.6g}\n" + best.user_attrs["config"])
    else:
        log.warning("no trial of the study has finished: no best.yaml")
    write_json_atomic(study_dir / "summary.json", {
        "study": study.study_name, "metric": tune.metric, "direction": result.direction,
        "n_trials": result.n_trials, "states": states, "best_trial": result.best_number,
        "best_value": result.best_value, "best_params": result.best_params})
    if plots:
        write_plots(study, study_dir / "plots", tune)
    return result


def write_plots(study: Any, plots_dir: Path, tune: TuneConfig) -> list[Path]:
    """Optimization history and parameter importances as PNG (skipped without matplotlib)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("matplotlib is not installed: no study plots (pip install 'hepnn[plot]')")
        return []
    done = sorted((t for t in study.get_trials(deepcopy=False) if t.value is not None), key=lambda t: t.number)
    if not done:
        return []
    written = [_history_plot(Figure, done, plots_dir / "history.png", tune)]
    importances = _importances(study)
    if importances:
        written.append(_importance_plot(Figure, importances, plots_dir / "importance.png"))
    return written


def _history_plot(Figure: Any, trials: list[Any], path: Path, tune: TuneConfig) -> Path:
    """Complete trials (dots), pruned ones at their last reported value (crosses), best so far."""
    better = max if direction_of(tune) == "maximize" else min
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    ax.plot([t.number for t in complete], [t.value for t in complete], "o", color="tab:blue", label="complete")
    if pruned:
        ax.plot([t.number for t in pruned], [t.value for t in pruned], "x", color="tab:gray",
                label="pruned (last epoch)")
    if complete:
        best = [better(t.value for t in complete[: i + 1]) for i in range(len(complete))]
        numbers = [t.number for t in complete] + [trials[-1].number]
        ax.step(numbers, best + best[-1:], where="post", color="tab:red", label=f"best so far ({direction_of(tune)})")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("trial")
    ax.set_ylabel(tune.metric)
    ax.legend(frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def _importances(study: Any) -> dict[str, float]:
    """fANOVA importances of the parameters (empty when they cannot be computed yet)."""
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 2 or not complete[0].params:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (ImportError, RuntimeError, ValueError) as err:  # no scikit-learn, or too few distinct points
        log.warning("no parameter importances: %s", err)
        return {}


def _importance_plot(Figure: Any, importances: dict[str, float], path: Path) -> Path:
    names = list(importances)[::-1]  # most important at the top
    values = [importances[n] if math.isfinite(importances[n]) else 0.0 for n in names]
    fig = Figure(figsize=(7, 1.2 + 0.5 * len(names)))
    ax = fig.subplots()
    ax.barh(names, values, color="tab:blue")
    ax.set_xlabel("importance (fANOVA)")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path
