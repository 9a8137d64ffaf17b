"""One-page run reports in Markdown and HTML, to paste into a talk: a header (model, parameters,
training time and throughput), the metrics table, ROC and rejection curves, score distributions with
the overtraining test, learning curves, the configuration; and the comparison page of several runs.

Plain string templates (no Jinja); every piece of text that goes into HTML passes through
``html.escape``. Images are referenced by paths relative to the report, so a run directory can be
moved or zipped whole. Both files are written atomically.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hepnn.evaluate.compare import DEFAULT_COLUMNS, HEADERS, format_cell, table_cells, to_markdown
from hepnn.evaluate.plots import curve_label
from hepnn.io_utils import write_text_atomic

__all__ = ["write_comparison_report", "write_report"]

_CSS = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}"
    "td:first-child,th:first-child{text-align:left}img{max-width:100%}figure{margin:1em 0}"
    "pre{background:#f5f5f5;padding:1em;overflow-x:auto}.row{display:flex;gap:1em}.row figure{flex:1}"
    "figcaption{font-size:small;color:#555}"
)
_NOT_CURVES = {"epoch", "step", "lr", "time", "time_s", "epoch_time_s", "jets_per_s", "data_wait"}


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
    """Per curve (readable name): epochs, first, last, best value (min for losses, max otherwise), its epoch."""
    rows = []
    for key, values in history.items():
        if key in _NOT_CURVES or len(values) == 0:
            continue
        v = [float(x) for x in values]
        best = min(v) if "loss" in key else max(v)
        first, last = f"{v[0]:.4g}", f"{v[-1]:.4g}"
        rows.append([curve_label(key), str(len(v)), first, last, f"{best:.4g}", str(v.index(best) + 1)])
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


_SECTIONS = (  # (title, plot stems, caption): the order a talk shows them in
    ("ROC and background rejection", ("roc", "rejection"),
     "ROC curve (its area is the AUC) and background rejection 1/εB against signal efficiency εS on "
     "a log scale; the markers are the working points quoted in the metrics table."),
    ("Score distributions", ("scores",),
     "Classifier output per class, train (filled) and test (points), normalised to unit area."),
    ("Learning curves", ("history",), ""),
)
_HEADLINE = ("accuracy", "auc")
_CLASS_NAMES = {"0": "background", "1": "signal"}
_IDENTITY = {"model", "n_params", "train_time_s", "inference_jets_per_cpu_s"}  # in the header, not the table


def _metric_name(key: str) -> str:
    m = re.fullmatch(r"rej(\d+)", key)
    if m:
        return f"Background rejection 1/εB at εS = {int(m.group(1))}%"
    m = re.fullmatch(r"ks_(pvalue|stat)_(\d+)", key)
    if m:
        what = "p-value" if m.group(1) == "pvalue" else "statistic"
        return f"KS {what} train vs test, {_CLASS_NAMES.get(m.group(2), 'class ' + m.group(2))}"
    names = {"accuracy": "Accuracy", "auc": "AUC (area under the ROC curve)", "n_jets": "Test jets"}
    return names.get(key, key)


def _metric_rows(flat: Mapping[str, Any]) -> list[list[str]]:
    """Headline metrics first (accuracy, AUC, rejections, test jets), then the rest as dotted keys."""
    first = [k for k in _HEADLINE if k in flat] + sorted(k for k in flat if re.fullmatch(r"rej\d+", k))
    first += ["n_jets"] if "n_jets" in flat else []
    first += sorted(k for k in flat if re.fullmatch(r"ks_pvalue_\d+", k))
    rest = [k for k in flat if k not in first and k not in _IDENTITY]
    return [[_metric_name(k), format_cell(k, flat[k], n_seeds=2)] for k in first + rest]


def _summary(
    metrics: Mapping[str, Any], info: Mapping[str, Any], history: Mapping[str, Sequence[float]]
) -> list[list[str]]:
    """The header: model, parameters, training time and speed, data sizes, seed (what is known)."""

    def get(key: str) -> Any:
        return info.get(key, metrics.get(key))

    rows = []
    if get("model") is not None:
        rows.append(["Model", str(get("model"))])
    if get("n_params") is not None:
        rows.append(["Trainable parameters", format_cell("n_params", int(get("n_params")))])
    epochs = len(next((v for k, v in history.items() if "loss" in k), []))
    if get("train_time_s") is not None:
        per_epoch = f" ({epochs} epochs)" if epochs else ""
        rows.append(["Training time", f"{float(get('train_time_s')):.1f} s{per_epoch}"])
    speed = [float(x) for x in history.get("jets_per_s", []) if x == x]
    if speed:
        median = sorted(speed)[len(speed) // 2]
        rows.append(["Training throughput", f"{median:,.0f} jets/s (median over epochs)"])
    if get("inference_jets_per_cpu_s") is not None:
        rows.append(["Inference speed", f"{float(get('inference_jets_per_cpu_s')):,.0f} jets per CPU second"])
    sizes = [f"{info[k]:,} {k[2:]}" for k in ("n_train", "n_val", "n_test") if info.get(k) is not None]
    if sizes:
        rows.append(["Jets", " / ".join(sizes)])
    if info.get("seed") is not None:
        rows.append(["Seed", str(info["seed"])])
    return rows


def _ks_sentence(flat: Mapping[str, Any]) -> str:
    """The Kolmogorov-Smirnov overtraining result of metrics.json in words ("" when absent)."""
    found = sorted((m.group(1), float(v)) for k, v in flat.items()
                   if (m := re.search(r"ks_pvalue_(\d+)$", k)) and isinstance(v, (int, float)))
    if not found:
        return ""
    ps = ", ".join(f"{_CLASS_NAMES.get(c, 'class ' + c)} p = {p:.3f}" for c, p in found)
    verdict = ("no sign of overtraining (all p ≥ 0.05)" if min(p for _, p in found) >= 0.05
               else "p < 0.05: the train and test scores differ, a sign of overtraining")
    return f"Kolmogorov–Smirnov test of train against test scores: {ps}; {verdict}."


def _group_images(
    images: Sequence[tuple[str, str | None, str | None]], keep: Sequence[str] = ()
) -> list[tuple[str, list, str]]:
    """Images sorted into the report sections (title, images, caption); unknown stems go to "Other plots".

    A section without images is left out unless its title is in ``keep`` (it has text of its own).
    """
    out, used = [], set()
    for title, stems, caption in _SECTIONS:
        group = [im for stem in stems for im in images if im[0] == stem]
        used.update(im[0] for im in group)
        if group or title in keep:
            out.append((title, group, caption))
    other = [im for im in images if im[0] not in used]
    if other:
        out.append(("Other plots", other, ""))
    return out


def _sections(
    groups: list[tuple[str, list, str]], extra: Mapping[str, tuple[str, str]]
) -> tuple[list[str], list[str]]:
    """Markdown and HTML of the plot sections; ``extra`` maps a title to (markdown, html) after its images."""
    md, page = [], []
    for title, images, caption in groups:
        md += [f"## {title}\n", _md_figures(images)]
        figures = _html_figures(images)
        if len(images) > 1:  # e.g. ROC and rejection side by side, as on a slide
            figures = f'<div class="row">{figures}</div>\n'
        page += [f"<h2>{html.escape(title)}</h2>\n", figures]
        if caption:
            md.append(f"_{caption}_\n")
            page.append(f"<p><em>{html.escape(caption)}</em></p>\n")
        text_md, text_html = extra.get(title, ("", ""))
        md += [text_md] if text_md else []
        page += [text_html] if text_html else []
    return md, page


def write_report(
    run_dir: str | Path,
    *,
    title: str,
    config_yaml: str,
    metrics: Mapping[str, Any],
    plots: Sequence[str | Path] = (),
    history: Mapping[str, Sequence[float]] | None = None,
    info: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``run_dir``: one page to paste into a talk.

    Sections: a header (model, parameters, training time and throughput, inference jets per CPU second,
    jets per split, seed;
    from ``info`` = run.json, else from ``metrics``), the metrics table (headline metrics first; nested
    dicts flattened to dotted keys; rejections with 1 decimal, ``(mean, std)`` as "mean ± std"), the
    ROC and rejection plots side by side, the score distributions with the Kolmogorov-Smirnov
    overtraining result in words, the learning curves (plot plus a first/last/best table of
    ``history``), any other plots, and the resolved configuration (collapsed in HTML). Plots are
    sorted into sections by file stem (``roc``, ``rejection``, ``scores``, ``history``); PNGs are
    embedded, PDFs linked. Draws nothing itself.

    Returns:
        ``(markdown_path, html_path)``.
    """
    run_dir = Path(run_dir)
    history = dict(history or {})
    flat = _flatten(metrics)
    summary = _summary(metrics, dict(info or {}), history)
    metric_rows = _metric_rows(flat)
    hist_rows = _history_rows(history)
    fence = "````" if "```" in config_yaml else "```"
    groups = _group_images(_images([Path(p) for p in plots], run_dir), keep=["Learning curves"] if hist_rows else [])
    ks = _ks_sentence(flat)
    extra = {"Score distributions": (f"{ks}\n", f"<p>{html.escape(ks)}</p>\n") if ks else ("", ""),
             "Learning curves": (_md_table(_HISTORY_HEADER, hist_rows), _html_table(_HISTORY_HEADER, hist_rows))
             if hist_rows else ("", "")}
    if ks and not any(t == "Score distributions" for t, _, _ in groups):
        metric_rows.append(["Overtraining check", ks])

    md = [f"# {title}\n", f"_{_stamp()}_\n"]
    page = []
    if summary:
        md.append(_md_table(["Run", ""], summary))
        page.append(_html_table(["Run", ""], summary))
    md += ["## Metrics\n", _md_table(["Metric", "Value"], metric_rows)]
    page += ["<h2>Metrics</h2>\n", _html_table(["Metric", "Value"], metric_rows)]
    sec_md, sec_html = _sections(groups, extra)
    md += sec_md
    page += sec_html
    md += ["## Configuration\n", f"{fence}yaml\n{config_yaml.rstrip()}\n{fence}\n"]
    page.append(
        "<h2>Configuration</h2>\n<details>\n<summary>Resolved config.yaml</summary>\n"
        f"<pre>{html.escape(config_yaml.rstrip())}</pre>\n</details>\n"
    )
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    write_text_atomic(md_path, "\n".join(md))
    write_text_atomic(html_path, _html_page(title, "".join(page)))
    return md_path, html_path


def write_comparison_report(
    out_dir: str | Path,
    rows: Sequence[Mapping[str, Any]],
    plots: str | Path | Sequence[str | Path] | None = None,
    *,
    title: str = "Model comparison",
    columns: Sequence[str] = DEFAULT_COLUMNS,
    notes: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``: the table of
    :func:`hepnn.evaluate.compare.compare_runs` rows (mean ± std over seeds where a row has several),
    ``notes`` (one sentence per row or finding, under "Reading the table") and the overlaid ROC and
    rejection plots (``plots``: one path or several; sorted into sections by stem as in :func:`write_report`).

    Returns:
        ``(markdown_path, html_path)``.
    """
    out_dir = Path(out_dir)
    if plots is None:
        paths: list[Path] = []
    elif isinstance(plots, (str, Path)):
        paths = [Path(plots)]
    else:
        paths = [Path(p) for p in plots]
    groups = _group_images(_images(paths, out_dir))
    seeds = sorted({int(r.get("n_seeds", 1)) for r in rows})
    note = (f"{len(rows)} configuration(s). Where a row has several seeds, its numbers are the mean ± "
            f"standard deviation over them (seeds per row: {', '.join(map(str, seeds))}); the curves "
            "show each row's first seed.")
    md = [f"# {title}\n", f"_{_stamp()}_\n", "## Metrics\n", note + "\n", to_markdown(rows, columns)]
    header = [HEADERS.get(c, c) for c in columns]
    page = ["<h2>Metrics</h2>\n", f"<p>{html.escape(note)}</p>\n", _html_table(header, table_cells(rows, columns))]
    if notes:
        md += ["\n## Reading the table\n", *(f"* {n}" for n in notes), ""]
        page += ["<h2>Reading the table</h2>\n<ul>", *(f"<li>{html.escape(n)}</li>" for n in notes), "</ul>\n"]
    sec_md, sec_html = _sections(groups, {})
    md += sec_md
    page += sec_html
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    write_text_atomic(md_path, "\n".join(md))
    write_text_atomic(html_path, _html_page(title, "".join(page)))
    return md_path, html_path
