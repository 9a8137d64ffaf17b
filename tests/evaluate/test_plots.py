"""Plots: files written (PNG and PDF, valid headers), working-point markers equal to the metrics
(by hand and via metrics.json), readable curve names, clear errors on empty input."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("mplhep")

from hepnn.errors import HepnnError  # noqa: E402
from hepnn.evaluate import metrics, plots  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check(paths, stem):
    assert [p.name for p in paths] == [f"{stem.name}.png", f"{stem.name}.pdf"]
    png, pdf = paths
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000
    leftovers = [p for p in stem.parent.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, leftovers


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    y_tr, y_te = rng.integers(0, 2, 500), rng.integers(0, 2, 300)
    s_tr = 1 / (1 + np.exp(-(rng.normal(size=500) + 1.5 * (2 * y_tr - 1))))
    s_te = 1 / (1 + np.exp(-(rng.normal(size=300) + 1.5 * (2 * y_te - 1))))
    return s_tr, y_tr, s_te, y_te


@pytest.mark.slow  # several figures, PNG and PDF each
def test_plot_roc_and_rejection(tmp_path, scores):
    s_tr, y_tr, s_te, y_te = scores
    eps_b, eps_s, _ = metrics.roc_curve(y_te, s_te)
    eps_b2, eps_s2, _ = metrics.roc_curve(y_tr, s_tr)
    curves = {"mlp": (eps_s, eps_b), "part": (eps_s2, eps_b2)}
    _check(plots.plot_roc(curves, tmp_path / "roc"), tmp_path / "roc")
    _check(plots.plot_rejection(curves, tmp_path / "rej"), tmp_path / "rej")


def _marked_points(curves, effs=(0.3, 0.5)):
    """(x, y) of the working-point markers the rejection plot draws, per curve label."""
    with plots.figure() as (_, ax):
        plots._draw_rejection(ax[0, 0], curves, effs)
        lines = {ln.get_gid(): ln for ln in ax[0, 0].get_lines() if ln.get_gid()}
        return {gid[3:]: (list(ln.get_xdata()), list(ln.get_ydata())) for gid, ln in lines.items()}


def test_rejection_markers_by_hand():
    # 10 signal jets 0.95 ... 0.05; 20 background jets, three of them above 0.55.
    # εS = 0.3 keeps signal >= 0.75: one background (0.88) passes -> εB = 1/20, rejection 20.
    # εS = 0.5 keeps signal >= 0.55: three backgrounds (0.88, 0.62, 0.58) -> rejection 20/3.
    sig = np.arange(0.95, 0.0, -0.1)
    bkg = np.array([0.88, 0.62, 0.58] + [0.01] * 17)
    y = np.r_[np.ones(10), np.zeros(20)]
    eps_b, eps_s, _ = metrics.roc_curve(y, np.r_[sig, bkg])
    x, rej = _marked_points({"by hand": (eps_s, eps_b)})["by hand"]
    np.testing.assert_allclose(x, [0.3, 0.5])
    np.testing.assert_allclose(rej, [20.0, 20.0 / 3.0])


def test_rejection_markers_equal_metrics_json(tmp_path):
    """The numbers a reader sees on the plot are the rej30/rej50 that metrics.json records."""
    import json

    rng = np.random.default_rng(3)
    y_te = rng.integers(0, 2, 2000)
    s_te = rng.normal(size=2000) + 1.0 * y_te  # overlapping classes: finite rejections
    (tmp_path / "metrics.json").write_text(json.dumps(metrics.classification_metrics(y_te, s_te)))
    written = json.loads((tmp_path / "metrics.json").read_text())
    eps_b, eps_s, _ = metrics.roc_curve(y_te, s_te)
    _, rej = _marked_points({"mlp": (eps_s, eps_b)})["mlp"]
    np.testing.assert_allclose(rej, [written["rej30"], written["rej50"]], rtol=1e-12)


def test_curve_label():
    assert [plots.curve_label(k) for k in ("loss", "train_loss", "val_loss", "val_auc", "val_acc", "val_mae")] == [
        "train loss", "train loss", "validation loss", "validation AUC", "validation accuracy", "validation MAE"]


def test_plot_scores(tmp_path, scores):
    paths = plots.plot_scores(*scores, tmp_path / "sub" / "scores.png")  # suffix is stripped
    _check(paths, tmp_path / "sub" / "scores")


def test_plot_history(tmp_path):
    hist = {"epoch": [1, 2, 3], "train_loss": [0.7, 0.5, 0.4], "val_loss": [0.72, 0.55, 0.5],
            "val_auc": [0.8, 0.85, 0.87], "lr": [1e-3, 1e-3, 5e-4], "jets_per_s": [800.0, 900.0, 850.0]}
    _check(plots.plot_history(hist, tmp_path / "history"), tmp_path / "history")
    only_loss = {"train_loss": [0.7, 0.5]}
    _check(plots.plot_history(only_loss, tmp_path / "h2"), tmp_path / "h2")


@pytest.mark.slow  # several figures, PNG and PDF each
def test_plot_response_and_distributions(tmp_path):
    rng = np.random.default_rng(1)
    t = rng.uniform(100, 500, 1000)
    p = t * rng.normal(1.0, 0.1, 1000)
    resp = metrics.binned_response(t, p, t, 8, relative=True)
    _check(plots.plot_response({"mlp": resp}, tmp_path / "resp"), tmp_path / "resp")
    (png,) = plots.plot_response(resp, tmp_path / "resp1", formats=("png",))  # a bare dict works too
    assert png.read_bytes()[:8] == PNG_MAGIC
    dists = {"real": rng.normal(size=500), "generated": rng.normal(0.1, 1.1, 400)}
    _check(plots.plot_distributions(dists, tmp_path / "dist", "mass [GeV]"), tmp_path / "dist")


def test_empty_input_raises(tmp_path):
    with pytest.raises(HepnnError, match="empty"):
        plots.plot_roc({}, tmp_path / "roc")
    with pytest.raises(HepnnError, match="empty"):
        plots.plot_rejection({"a": ([], [])}, tmp_path / "rej")
    with pytest.raises(HepnnError, match="empty"):
        plots.plot_scores([], [], [0.1], [1], tmp_path / "s")
    with pytest.raises(HepnnError, match="empty"):
        plots.plot_history({}, tmp_path / "h")
    with pytest.raises(HepnnError, match="empty"):
        plots.plot_distributions({"a": []}, tmp_path / "d", "x")
    assert not any(tmp_path.iterdir())
