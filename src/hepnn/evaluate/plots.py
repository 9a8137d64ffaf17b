"""Standard HEP plots of a run: ROC (εS vs εB), background rejection (1/εB vs εS), score overlays
with a KS test, learning curves, regression response, generic distribution overlays.

Every figure uses the mplhep CMS *style* (fonts, ticks, sizes) applied through a style context, with
no experiment label, and is drawn on a ``matplotlib.figure.Figure`` (no pyplot): nothing global is
changed, no figure is left open, and the Agg renderer is used regardless of the session's backend.
Each function takes arrays and an output path *stem*, writes ``<stem>.png`` and ``<stem>.pdf``
atomically and returns the written paths. matplotlib and mplhep are the optional extra ``plot``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hepnn.errors import HepnnError, missing_extra
from hepnn.evaluate.metrics import interpolate_eps_b, ks_overtraining
from hepnn.io_utils import atomic_path

__all__ = [
    "curve_label",
    "plot_distributions",
    "plot_history",
    "plot_rejection",
    "plot_response",
    "plot_roc",
    "plot_scores",
]

FORMATS = ("png", "pdf")
_DPI = 100
_SUFFIXES = {".png", ".pdf", ".svg"}


@contextlib.contextmanager
def figure(nrows: int = 1, ncols: int = 1, *, legend: float = 0.0, **kw: Any) -> Iterator[tuple[Any, Any]]:
    """A fresh Figure and its axes inside the mplhep CMS style context; ``legend`` inches of room on the
    right for a legend outside the axes (``outside_legend``), so that it never covers a curve."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as e:
        raise missing_extra("plot", "matplotlib") from e
    try:
        import mplhep
    except ImportError as e:
        raise missing_extra("plot", "mplhep") from e
    with matplotlib.style.context(mplhep.style.CMS):
        # fixed margins instead of a layout engine: constrained layout doubled the drawing time
        width = 8.0 * ncols
        fig = Figure(figsize=(width + legend, 6.5 * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
        scale = width / (width + legend)  # the axes keep their size; the legend gets the extra width
        fig.subplots_adjust(left=0.18 / ncols * scale, right=(1 - 0.03 / ncols) * scale, bottom=0.13 / nrows,
                            top=1 - 0.04 / nrows, wspace=0.3, hspace=0.08 if kw.get("sharex") else 0.3)
        yield fig, axes


def save_figure(fig: Any, path: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``fig`` to ``<stem>.<fmt>`` for each format, each file atomically."""
    stem = Path(path)
    if stem.suffix.lower() in _SUFFIXES:  # tolerate "roc.png": the stem is "roc"
        stem = stem.with_suffix("")
    written = []
    for fmt in formats:
        out = stem.parent / f"{stem.name}.{fmt}"
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=fmt, dpi=_DPI)
        written.append(out)
    return written


LEGEND_INCHES = 4.2  # room for "particlenet_lite (AUC 0.9421)" at x-small


def outside_legend(ax: Any, **kw: Any) -> None:
    """The legend to the right of the axes (the figure was made with ``legend=LEGEND_INCHES``)."""
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              frameon=False, **kw)


def _require(name: str, obj: Any) -> None:
    if obj is None or len(obj) == 0:
        raise HepnnError(f"cannot plot: {name} is empty")


def _auc(eps_s: np.ndarray, eps_b: np.ndarray) -> float:
    return float(np.sum(np.diff(eps_b) * (eps_s[1:] + eps_s[:-1])) / 2.0)


def _curve_arrays(label: str, curve: tuple[Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    es, eb = (np.asarray(a, dtype=float) for a in curve)
    _require(f"curve {label!r}", es)
    return es, eb


def plot_roc(
    curves: Mapping[str, tuple[Any, Any]],
    path: str | Path,
    *,
    effs: Sequence[float] = (0.3, 0.5),
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """The receiver operating characteristic: signal efficiency εS against background efficiency εB.

    Linear axes, so the area under each line is the AUC quoted in the legend; the dashed diagonal is a
    random classifier and the dotted lines and markers show the working points ``effs``. For the
    tails that matter in an analysis, see :func:`plot_rejection`.

    Args:
        curves: label -> ``(eps_s, eps_b)`` arrays, e.g. from :func:`hepnn.evaluate.metrics.roc_curve`
            (which returns ``eps_b, eps_s, thresholds``: mind the order).
        path: output path stem.
    """
    _require("curves", curves)
    with figure(legend=LEGEND_INCHES) as (fig, ax):
        ax = ax[0, 0]
        for label, curve in curves.items():
            es, eb = _curve_arrays(label, curve)
            (line,) = ax.plot(eb, es, label=f"{label} (AUC {_auc(es, eb):.4f})")
            ax.plot([interpolate_eps_b(es, eb, e) for e in effs], list(effs), "o", color=line.get_color())
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="random")
        for e in effs:
            ax.axhline(e, color="grey", lw=0.8, ls=":")
        ax.set(xlim=(0, 1), ylim=(0, 1.02))
        ax.set_xlabel(r"Background efficiency $\varepsilon_B$")
        ax.set_ylabel(r"Signal efficiency $\varepsilon_S$")
        outside_legend(ax)
        return save_figure(fig, path, formats)


def _draw_rejection(ax: Any, curves: Mapping[str, tuple[Any, Any]], effs: Sequence[float]) -> None:
    """Rejection curves on ``ax``; each curve's working-point markers are one line with gid "wp:<label>".

    The dash-dotted line is the largest 1/εB the test split can resolve (one background jet passing,
    1/min εB): a curve that reaches it is limited by the number of test jets, not by the tagger.
    """
    limit = 0.0
    for label, curve in curves.items():
        es, eb = _curve_arrays(label, curve)
        keep = eb > 0  # εB = 0: infinite rejection, not drawable on a log axis
        (line,) = ax.plot(es[keep], 1.0 / eb[keep], label=f"{label} (AUC {_auc(es, eb):.4f})")
        limit = max(limit, 1.0 / eb[keep].min()) if keep.any() else limit
        points = [(e, interpolate_eps_b(es, eb, e)) for e in effs]
        points = [(e, 1.0 / b) for e, b in points if b > 0]
        if points:
            x, y = zip(*points)
            ax.plot(x, y, "o", ms=7, color=line.get_color(), gid=f"wp:{label}")
            for xi, yi in points if len(curves) == 1 else ():  # one curve: its numbers beside the markers
                ax.annotate(f"{yi:.1f}", (xi, yi), xytext=(6, 6), textcoords="offset points",
                            fontsize="x-small", color=line.get_color())
    grid = np.linspace(0.01, 1.0, 100)
    ax.plot(grid, 1.0 / grid, "k--", lw=1, label="random")
    if limit > 0:
        ax.axhline(limit, color="0.4", lw=1, ls="-.", gid="resolution-limit",
                   label=f"test-split limit 1/εB = {limit:.0f}")
    for e in effs:
        ax.axvline(e, color="grey", lw=0.8, ls=":")
    ax.set(yscale="log", xlim=(0, 1), xlabel=r"Signal efficiency $\varepsilon_S$")
    ax.set_ylabel(r"Background rejection $1/\varepsilon_B$")
    ax.set_ylim(bottom=0.8, top=ax.get_ylim()[1] * 1.5)
    wp = ", ".join(f"{100 * e:g}%" for e in effs)
    outside_legend(ax, title=f"markers: $\\varepsilon_S$ = {wp}" if effs else None, title_fontsize="x-small")


def plot_rejection(
    curves: Mapping[str, tuple[Any, Any]],
    path: str | Path,
    *,
    effs: Sequence[float] = (0.3, 0.5),
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Background rejection 1/εB (log scale) against signal efficiency εS, one line per model.

    The physics convention of arXiv:1902.09914 (their Fig. 3). Markers (labelled with their values
    when one curve is drawn) show the working points ``effs``, interpolated as the ``rej30``/``rej50`` of
    :func:`hepnn.evaluate.metrics.classification_metrics`; the dashed line is a random classifier
    (εB = εS). Points with εB = 0 are not drawn.

    Args:
        curves: label -> ``(eps_s, eps_b)`` arrays, as for :func:`plot_roc`.
        path: output path stem.
    """
    _require("curves", curves)
    with figure(legend=LEGEND_INCHES) as (fig, ax):
        _draw_rejection(ax[0, 0], curves, effs)
        return save_figure(fig, path, formats)


def plot_scores(
    score_train: Any,
    y_train: Any,
    score_test: Any,
    y_test: Any,
    path: str | Path,
    *,
    bins: int = 40,
    class_names: Mapping[int, str] | None = None,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Classifier output per class: train as filled histograms, test as points with Poisson errors.

    The TMVA-style overtraining plot; the legend title carries the per-class KS p-value of
    :func:`hepnn.evaluate.metrics.ks_overtraining`. All histograms are normalised to unit area.

    Shapes: ``score_train (n_train,)``, ``score_test (n_test,)`` one discriminant per jet.
    """
    s_tr, s_te = np.asarray(score_train, dtype=float), np.asarray(score_test, dtype=float)
    y_tr, y_te = np.asarray(y_train), np.asarray(y_test)
    _require("score_train", s_tr)
    _require("score_test", s_te)
    if s_tr.ndim != 1 or s_te.ndim != 1:
        raise HepnnError("plot_scores needs one discriminant per jet (1-D scores); pass one column")
    ks = ks_overtraining(s_tr, y_tr, s_te, y_te)
    names = dict(class_names or {0: "background", 1: "signal"})
    lo, hi = min(s_tr.min(), s_te.min()), max(s_tr.max(), s_te.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    centers, width = 0.5 * (edges[1:] + edges[:-1]), np.diff(edges)
    classes = np.union1d(np.unique(y_tr), np.unique(y_te))
    with figure() as (fig, ax):
        ax = ax[0, 0]
        for i, c in enumerate(classes):
            color, name = f"C{i}", names.get(int(c), f"class {int(c)}")
            a = s_tr[y_tr == c]
            if a.size:
                ax.hist(a, bins=edges, density=True, alpha=0.35, color=color, label=f"{name}, train")
            b = s_te[y_te == c]
            if b.size:
                counts, _ = np.histogram(b, bins=edges)
                norm = b.size * width
                ax.errorbar(centers, counts / norm, yerr=np.sqrt(counts) / norm, fmt="o", ms=4,
                            color=color, label=f"{name}, test")
        p_values = [(names.get(int(c), f"class {int(c)}"), ks.get(f"ks_pvalue_{int(c)}")) for c in classes]
        title = "KS test, train vs test:\n" + ", ".join(f"{n} p = {p:.3f}" for n, p in p_values if p is not None)
        ax.set(xlabel="Classifier output (signal score)", ylabel="Normalised entries")
        ax.set_ylim(top=ax.get_ylim()[1] * 1.6)  # room for the legend above the peaks
        ax.legend(fontsize="x-small", ncol=2, loc="upper center", frameon=False,
                  title=title if "p =" in title else None, title_fontsize="x-small")
        return save_figure(fig, path, formats)


_NOT_METRICS = {"epoch", "step", "lr", "time", "time_s", "epoch_time_s", "jets_per_s", "data_wait"}
_WORDS = {"loss": "loss", "acc": "accuracy", "auc": "AUC", "mae": "MAE"}


def curve_label(key: str) -> str:
    """Readable name of a history column: ``loss`` -> "train loss", ``val_auc`` -> "validation AUC"."""
    split, _, name = key.partition("_") if key.startswith(("train_", "val_")) else ("train", "", key)
    return f"{'validation' if split == 'val' else 'train'} {_WORDS.get(name, name.replace('_', ' '))}"


def plot_history(
    history: Mapping[str, Sequence[float]], path: str | Path, *, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """Learning curves: every ``*loss*`` key on the left panel, other metrics (e.g. ``val_auc``) on the
    right, named by :func:`curve_label`. ``epoch`` (if present) is the x axis (shown from 1);
    ``step``, ``lr``, throughput and timing keys are not drawn.

    Args:
        history: name -> one value per epoch, e.g. ``{"train_loss": [...], "val_loss": [...]}``.
    """
    _require("history", history)
    series = {k: np.asarray(v, dtype=float) for k, v in history.items() if k not in _NOT_METRICS}
    series = {k: v for k, v in series.items() if v.size}
    _require("history (no values)", series)
    losses = {k: v for k, v in series.items() if "loss" in k}
    others = {k: v for k, v in series.items() if "loss" not in k}
    panels = [p for p in (losses, others) if p]
    with figure(1, len(panels)) as (fig, axes):
        from matplotlib.ticker import MaxNLocator  # importable: figure checked matplotlib

        for ax, panel in zip(axes[0], panels):
            for name, v in panel.items():
                x = np.arange(1, v.size + 1)  # epochs counted from 1, whatever history.csv's base
                ax.plot(x, v, marker="o" if v.size < 30 else None, ms=4,
                        ls="--" if name.startswith("val_") else "-", label=curve_label(name))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set(xlabel="Epoch", ylabel="Loss" if panel is losses else "Validation metric")
            ax.legend(fontsize="small", frameon=False)
        return save_figure(fig, path, formats)


def plot_response(
    responses: Mapping[str, Any],
    path: str | Path,
    *,
    xlabel: str = r"Truth $p_T$ [GeV]",
    ylabel: str = "Residual",  # what was binned, e.g. r"$(p_T^{reco}-p_T^{true})/p_T^{true}$"
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Regression bias (top) and resolution (bottom) against a binned variable.

    Args:
        responses: label -> the dict of :func:`hepnn.evaluate.metrics.binned_response`; a single
            such dict (it has ``bin_edges``) is also accepted. The resolution is the IQR/1.349
            width (solid) and the standard deviation (dashed).
    """
    _require("responses", responses)
    if "bin_edges" in responses:
        responses = {"": responses}
    with figure(2, 1, sharex=True) as (fig, axes):
        top, bottom = axes[0, 0], axes[1, 0]
        for i, (label, r) in enumerate(responses.items()):
            edges = np.asarray(r["bin_edges"], dtype=float)
            centers, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
            kw = {"color": f"C{i}", "fmt": "o", "ms": 4}
            top.errorbar(centers, r["bias"], xerr=half, label=label or None, **kw)
            bottom.errorbar(centers, r["resolution_iqr"], xerr=half, label=f"{label} IQR/1.349".strip(), **kw)
            bottom.plot(centers, r["resolution_std"], "--", color=f"C{i}", label=f"{label} std".strip())
        top.axhline(0.0, color="grey", lw=0.8)
        top.set_ylabel("Bias")
        bottom.set(xlabel=xlabel, ylabel="Resolution")
        if any(responses):
            top.legend(fontsize="small", title=ylabel)  # the residual's definition, once
        else:
            top.set_title(ylabel, fontsize="small", loc="right")
        bottom.legend(fontsize="small")
        return save_figure(fig, path, formats)


def plot_distributions(
    samples: Mapping[str, Any],
    path: str | Path,
    xlabel: str,
    *,
    bins: int | Sequence[float] = 50,
    density: bool = True,
    logy: bool = False,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Overlay of 1-D distributions with common binning (e.g. generated vs real jet mass).

    Args:
        samples: label -> values ``(n,)``; NaN and inf are dropped.
    """
    _require("samples", samples)
    data = {k: np.asarray(v, dtype=float).ravel() for k, v in samples.items()}
    data = {k: v[np.isfinite(v)] for k, v in data.items()}
    for k, v in data.items():
        _require(f"sample {k!r}", v)
    edges = np.histogram_bin_edges(np.concatenate(list(data.values())), bins=bins)
    with figure() as (fig, ax):
        ax = ax[0, 0]
        for label, v in data.items():
            ax.hist(v, bins=edges, density=density, histtype="step", lw=1.5, label=label)
        ax.set(xlabel=xlabel, ylabel="Normalised entries" if density else "Entries")
        if logy:
            ax.set_yscale("log")
        ax.legend(fontsize="small")
        return save_figure(fig, path, formats)
