"""One-page run reports in Markdown and HTML: metrics, plots, learning curves, configuration.

Plain string templates (no Jinja); every piece of text that goes into HTML passes through
``html.escape``. Images are referenced by paths relative to the report, so a run directory can be
moved or zipped whole. Both files are written atomically.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hepnn.evaluate.compare import DEFAULT_COLUMNS, HEADERS, format_cell, table_cells, to_markdown
from hepnn.io_utils import write_text_atomic

__all__ = ["write_comparison_report", "write_report"]

_CSS = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}"
    "td:first-child,th:first-child{text-align:left}img{max-width:100%}figure{margin:1em 0}"
    "pre{background:#f5f5f5;padding:1em;overflow-x:auto}"
)
_NOT_CURVES = {"epoch", "step", "lr", "time", "time_s", "epoch_time_s"}


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _stamp() -> str:
    from hepnn import __version__

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"Generated {now} by hepnn {__version__}"


def _images(paths: Sequence[Path], base: Path) -> list[tuple[str, str | None, str | None]]:
    """``(name, raster, pdf)`` per plot stem, as paths relative to ``base`` (posix separators)."""
    by_stem: dict[str, dict[str, str]] = {}
    for p in map(Path, paths):
        rel = Path(os.path.relpath(p, base)).as_posix()
        by_stem.setdefault(Path(rel).with_suffix("").as_posix(), {})[p.suffix.lower()] = rel
    out = []
    for stem, files in by_stem.items():
        raster = files.get(".png") or files.get(".svg") or files.get(".jpg")
        out.append((Path(stem).name, raster, files.get(".pdf")))
    return out


def _history_rows(history: Mapping[str, Sequence[float]]) -> list[list[str]]:
    """Per curve: epochs, first, last, best value (min for losses, max otherwise) and its epoch."""
    rows = []
    for key, values in history.items():
        if key in _NOT_CURVES or len(values) == 0:
            continue
        v = [float(x) for x in values]
        best = min(v) if "loss" in key else max(v)
        rows.append([key, str(len(v)), f"{v[0]:.4g}", f"{v[-1]:.4g}", f"{best:.4g}", str(v.index(best) + 1)])
    return rows


_HISTORY_HEADER = ["Curve", "Epochs", "First", "Last", "Best", "Best epoch"]


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    esc = [[c.replace("|", r"\|") for c in r] for r in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in esc]) + "\n"


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>\n" for r in rows
    )
    return f"<table>\n<tr>{head}</tr>\n{body}</table>\n"


def _md_figures(images: Sequence[tuple[str, str | None, str | None]]) -> str:
    parts = []
    for name, raster, pdf in images:
        link = f" ([PDF](<{pdf}>))" if pdf else ""
        parts.append(f"![{name}](<{raster}>){link}\n" if raster else f"[{name} (PDF)](<{pdf}>)\n")
    return "\n".join(parts)


def _html_figures(images: Sequence[tuple[str, str | None, str | None]]) -> str:
    parts = []
    for name, raster, pdf in images:
        n = html.escape(name)
        pdf_link = f' · <a href="{html.escape(quote(pdf))}">PDF</a>' if pdf else ""
        img = f'<img src="{html.escape(quote(raster))}" alt="{n}">' if raster else ""
        parts.append(f"<figure>{img}<figcaption>{n}{pdf_link}</figcaption></figure>\n")
    return "".join(parts)


def _html_page(title: str, body: str) -> str:
    t = html.escape(title)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{t}</title>\n'
        f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>{t}</h1>\n"
        f"<p><small>{html.escape(_stamp())}</small></p>\n{body}</body>\n</html>\n"
    )


def write_report(
    run_dir: str | Path,
    *,
    title: str,
    config_yaml: str,
    metrics: Mapping[str, Any],
    plots: Sequence[str | Path] = (),
    history: Mapping[str, Sequence[float]] | None = None,
) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``run_dir``: one page to paste into a talk.

    Sections: metrics table (nested dicts flattened to dotted keys; rejections with 1 decimal,
    ``(mean, std)`` pairs as "mean ± std"), plots (PNG embedded, PDF linked; pass the learning-curve
    plot of :func:`hepnn.evaluate.plots.plot_history` here), a first/last/best table of the learning
    curves in ``history``, and the resolved configuration (collapsed in HTML). Draws nothing itself.

    Returns:
        ``(markdown_path, html_path)``.
    """
    run_dir = Path(run_dir)
    plot_paths = [Path(p) for p in plots]
    flat = _flatten(metrics)
    metric_rows = [[k, format_cell(k, v, n_seeds=2)] for k, v in flat.items()]
    images = _images(plot_paths, run_dir)
    hist_rows = _history_rows(history) if history else []
    fence = "````" if "```" in config_yaml else "```"

    md = [f"# {title}\n", f"_{_stamp()}_\n", "## Metrics\n", _md_table(["Metric", "Value"], metric_rows)]
    page = ["<h2>Metrics</h2>\n", _html_table(["Metric", "Value"], metric_rows)]
    if images:
        md += ["## Plots\n", _md_figures(images)]
        page += ["<h2>Plots</h2>\n", _html_figures(images)]
    if hist_rows:
        md += ["## Learning curves\n", _md_table(_HISTORY_HEADER, hist_rows)]
        page += ["<h2>Learning curves</h2>\n", _html_table(_HISTORY_HEADER, hist_rows)]
    md += ["## Configuration\n", f"{fence}yaml\n{config_yaml.rstrip()}\n{fence}\n"]
    page.append(
        "<details>\n<summary>Configuration</summary>\n"
        f"<pre>{html.escape(config_yaml.rstrip())}</pre>\n</details>\n"
    )
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    write_text_atomic(md_path, "\n".join(md))
    write_text_atomic(html_path, _html_page(title, "".join(page)))
    return md_path, html_path


def write_comparison_report(
    out_dir: str | Path,
    rows: Sequence[Mapping[str, Any]],
    roc_plot: str | Path | Sequence[str | Path] | None = None,
    *,
    title: str = "Model comparison",
    columns: Sequence[str] = DEFAULT_COLUMNS,
) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``: the table of
    :func:`hepnn.evaluate.compare.compare_runs` rows (mean ± std over seeds) and the overlaid ROC plot.

    Returns:
        ``(markdown_path, html_path)``.
    """
    out_dir = Path(out_dir)
    if roc_plot is None:
        plots: list[Path] = []
    elif isinstance(roc_plot, (str, Path)):
        plots = [Path(roc_plot)]
    else:
        plots = [Path(p) for p in roc_plot]
    images = _images(plots, out_dir)
    seeds = sorted({int(r.get("n_seeds", 1)) for r in rows})
    note = f"Mean ± standard deviation over seeds (per row: {', '.join(map(str, seeds))})."
    md = [f"# {title}\n", f"_{_stamp()}_\n", note + "\n", to_markdown(rows, columns)]
    header = [HEADERS.get(c, c) for c in columns]
    page = [f"<p>{html.escape(note)}</p>\n", _html_table(header, table_cells(rows, columns))]
    if images:
        md += ["## ROC curves\n", _md_figures(images)]
        page += ["<h2>ROC curves</h2>\n", _html_figures(images)]
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    write_text_atomic(md_path, "\n".join(md))
    write_text_atomic(html_path, _html_page(title, "".join(page)))
    return md_path, html_path
