"""Comparison tables over runs: group runs that differ only by seed, report mean ± std.

The layout of the results tables of arXiv:1902.09914 (accuracy, AUC, 1/εB at εS = 30 % and 50 %,
parameter count), with the spread over seeds that the paper quotes for its ensembles.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hepnn.errors import HepnnError
from hepnn.evaluate.metrics import mean_std_over_seeds
from hepnn.io_utils import atomic_path

__all__ = [
    "DEFAULT_COLUMNS",
    "HEADERS",
    "compare_runs",
    "format_cell",
    "table_cells",
    "to_csv",
    "to_markdown",
    "to_rich_table",
]

DEFAULT_COLUMNS = ("name", "model", "n_seeds", "n_params", "accuracy", "auc", "rej30", "rej50",
                   "train_time_s")
HEADERS = {
    "name": "Run", "model": "Model", "n_seeds": "Seeds", "n_params": "Parameters",
    "accuracy": "Accuracy", "auc": "AUC", "rej30": "1/εB (εS=30%)", "rej50": "1/εB (εS=50%)",
    "train_time_s": "Train time [s]",
}
_SEED_SUFFIX = re.compile(r"[-_.]?seed[-_=]?\d+$")


def _group_key(run: Mapping[str, Any]) -> str:
    """A run's group: its ``group`` if given, else its ``name`` without a ``_seedN`` suffix."""
    if run.get("group"):
        return str(run["group"])
    return _SEED_SUFFIX.sub("", str(run["name"]))


def compare_runs(runs: Sequence[Mapping[str, Any]], *, sort_by: str | None = None) -> list[dict]:
    """Aggregate runs that differ only by seed into one row each.

    Args:
        runs: dicts with ``name``, ``model``, ``seed``, ``metrics`` (the metrics.json content),
            ``n_params``, ``train_time_s`` and optionally ``group`` (see :func:`_group_key`).
        sort_by: a metric name to sort the rows by, best (largest) first; default keeps the order in
            which groups first appear.

    Returns:
        One dict per group: ``name``, ``model``, ``n_seeds``, ``seeds``, ``n_params`` and, for every
        numeric metric and ``train_time_s``, a ``(mean, std)`` tuple (std with ddof = 1; 0 for one seed).
    """
    if not runs:
        raise HepnnError("compare_runs: no runs to compare")
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        groups.setdefault(_group_key(run), []).append(run)
    rows = [_aggregate(name, members) for name, members in groups.items()]
    if sort_by is not None:
        rows.sort(key=lambda r: -r[sort_by][0] if sort_by in r else math.inf)
    return rows


def _aggregate(name: str, members: list[Mapping[str, Any]]) -> dict[str, Any]:
    models = {str(m.get("model")) for m in members}
    if len(models) > 1:
        raise HepnnError(f"runs grouped as {name!r} use different models {sorted(models)}; give each a group")
    seeds = [m.get("seed") for m in members]
    known = [s for s in seeds if s is not None]
    if len(set(known)) < len(known):
        raise HepnnError(f"runs grouped as {name!r} repeat a seed {seeds}: the same run listed twice?")
    row: dict[str, Any] = {
        "name": name,
        "model": models.pop(),
        "n_seeds": len(members),
        "seeds": seeds,
        "n_params": members[0].get("n_params"),
    }
    stats = [dict(m.get("metrics") or {}) for m in members]
    if all(m.get("train_time_s") is not None for m in members):
        for s, m in zip(stats, members):
            s["train_time_s"] = m["train_time_s"]
    # metrics.json may repeat identity fields (n_params, ...): the row's own values win
    row.update({k: v for k, v in mean_std_over_seeds(stats).items() if k not in row})
    return row


def format_cell(key: str, value: Any, n_seeds: int = 2) -> str:
    """One table cell: ``(mean, std)`` as "0.9812 ± 0.0004"; rejections (``rej*``) and times (``*_s``)
    with 1 decimal, other floats with 4.

    A single seed shows only the mean (a std of one run is no measurement); missing values are "–".
    """
    if value is None:
        return "–"
    digits = 1 if key.startswith("rej") or key.endswith("_s") else 4
    if isinstance(value, tuple):
        mean, std = value
        text = _fmt_float(mean, digits)
        return text if n_seeds <= 1 else f"{text} ± {_fmt_float(std, digits)}"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if key == "n_params" else str(value)
    if isinstance(value, float):
        return _fmt_float(value, digits)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _fmt_float(x: float, digits: int) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if math.isnan(x):
        return "nan"
    return f"{x:.{digits}f}"


def table_cells(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[list[str]]:
    """Formatted cells (:func:`format_cell`) of ``rows``, one list per row, in ``columns`` order."""
    return [[format_cell(c, r.get(c), int(r.get("n_seeds", 1))) for c in columns] for r in rows]


def to_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = DEFAULT_COLUMNS) -> str:
    """A GitHub-flavoured markdown table of ``rows`` (from :func:`compare_runs`)."""
    header = [HEADERS.get(c, c) for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for cells in table_cells(rows, columns):
        lines.append("| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(
    rows: Sequence[Mapping[str, Any]], path: str | Path, columns: Sequence[str] | None = None
) -> Path:
    """Write ``rows`` as CSV atomically; a ``(mean, std)`` column becomes ``<key>_mean, <key>_std``.

    ``columns`` defaults to every key of the rows (first-seen order). Returns the path.
    """
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    fields: list[str] = []
    for c in columns:
        is_pair = any(isinstance(r.get(c), tuple) for r in rows)
        fields += [f"{c}_mean", f"{c}_std"] if is_pair else [c]
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            out: dict[str, Any] = {}
            for c in columns:
                v = r.get(c)
                if f"{c}_mean" in fields:
                    out[f"{c}_mean"], out[f"{c}_std"] = v if isinstance(v, tuple) else (v, None)
                else:
                    out[c] = " ".join(map(str, v)) if isinstance(v, list) else v
            writer.writerow(out)
    return path


def to_rich_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = DEFAULT_COLUMNS, title: str | None = None
) -> Any:
    """The comparison as a ``rich.table.Table`` for the terminal (numbers right-aligned).

    Names are never cut: the name and model columns keep their longest entry's width (headers of the
    number columns wrap instead), and the model column is left out when every run is named after its
    model (the demo's table), so it reads in a 100-column terminal.
    """
    from rich.table import Table

    columns = list(columns)
    if "name" in columns and "model" in columns and rows and all(r.get("name") == r.get("model") for r in rows):
        columns.remove("model")
    cells = table_cells(rows, columns)
    table = Table(title=title)
    for i, c in enumerate(columns):
        if c in ("name", "model"):
            width = max([len(HEADERS.get(c, c)), *(len(row[i]) for row in cells)])
            table.add_column(HEADERS.get(c, c), justify="left", no_wrap=True, min_width=min(width, 40))
        else:
            table.add_column(HEADERS.get(c, c), justify="right")
    for row in cells:
        table.add_row(*row)
    return table
