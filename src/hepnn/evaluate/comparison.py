"""``hepnn compare``: read run directories, group seed repeats, write the table and ROC overlay."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hepnn.errors import HepnnError


def _config_key(cfg_text: str) -> str:
    """Hash of the resolved config with the seed removed: runs with equal keys differ only by seed.

    The config goes through the schema first, so a key added to hepnn later (present with its default
    in new runs, absent from old ones) does not split runs that differ only by seed."""
    import yaml

    from hepnn.config import RunConfig

    cfg = RunConfig.model_validate(yaml.safe_load(cfg_text)).model_dump(mode="json")
    cfg["train"].pop("seed", None)
    return hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:8]


def read_run(run_dir: Path) -> dict[str, Any]:
    """The comparison record of one run directory (metrics.json, run.json, config.yaml)."""
    run_dir = Path(run_dir)
    missing = [f for f in ("metrics.json", "run.json", "config.yaml") if not (run_dir / f).is_file()]
    if missing:
        raise HepnnError(f"{run_dir} lacks {', '.join(missing)}: is it a finished `hepnn train` run?")
    info = json.loads((run_dir / "run.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    name = f"{info.get('name', run_dir.name)}/{info['model']}"
    return {"name": name, "group": f"{name}#{_config_key((run_dir / 'config.yaml').read_text())}",
            "model": info["model"], "seed": info.get("seed"), "n_params": info.get("n_params"),
            "train_time_s": info.get("train_time_s"), "metrics": metrics, "dir": run_dir}


def _short_names(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs named "RUN_NAME/MODEL" all with one RUN_NAME (the demo's "top_tagging/...") are named by
    their model alone, in the table and in the plot legends."""
    prefixes = {r["name"].split("/")[0] for r in runs}
    if len(prefixes) == 1 and all("/" in r["name"] for r in runs):
        cut = len(prefixes.pop()) + 1
        for r in runs:
            r["name"], r["group"] = r["name"][cut:], r["group"][cut:]
    return runs


def _roc_curves(runs: Sequence[dict[str, Any]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One ROC per group (its first seed) from the runs' test_scores.parquet."""
    import awkward as ak

    from hepnn.evaluate.metrics import roc_curve

    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    groups: set[str] = set()
    for run in runs:
        path = Path(run["dir"]) / "test_scores.parquet"
        if run["group"] in groups or not path.is_file():
            continue
        groups.add(run["group"])
        # two configurations with one name (e.g. an override): tell their curves apart by config hash
        label = run["name"] if run["name"] not in curves else run["group"].replace("#", " #")
        t = ak.from_parquet(path)
        if "score" in t.fields and "label" in t.fields:
            eps_b, eps_s, _ = roc_curve(ak.to_numpy(t["label"]) == 1, ak.to_numpy(t["score"]))
            curves[label] = (eps_s, eps_b)
    return curves


def compare_dirs(run_dirs: Sequence[Path], out: Path, *, title: str = "Comparison",
                 notes: Sequence[str] = ()) -> Any:
    """Write ``comparison.md``, ``comparison.csv``, ``roc`` and ``rejection`` png/pdf and a report (with
    ``notes`` under the table) into ``out``.

    Returns a rich table for the terminal.
    """
    from hepnn.evaluate.compare import compare_runs, to_csv, to_markdown, to_rich_table
    from hepnn.evaluate.report import write_comparison_report
    from hepnn.io_utils import write_text_atomic

    if not run_dirs:
        raise HepnnError("give at least one run directory to compare")
    runs = _short_names([read_run(d) for d in run_dirs])
    rows = compare_runs(runs)
    for row in rows:  # show the readable name, not the name#hash group key
        row["name"] = row["name"].split("#")[0]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "comparison.md", to_markdown(rows) + "\n")
    to_csv(rows, out / "comparison.csv")
    plots: list[Path] = []
    curves = _roc_curves(runs)
    if curves:
        from hepnn.evaluate.plots import plot_rejection, plot_roc

        plots = plot_roc(curves, out / "roc") + plot_rejection(curves, out / "rejection")
    write_comparison_report(out, rows, [p for p in plots if p.suffix == ".png"], title=title, notes=notes)
    return to_rich_table(rows, title=title)
