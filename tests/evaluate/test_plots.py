"""Plots: files written (PNG and PDF, valid headers), clear errors on empty input, fast."""

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


def test_plot_roc(tmp_path, scores):
    s_tr, y_tr, s_te, y_te = scores
    eps_b, eps_s, _ = metrics.roc_curve(y_te, s_te)
    eps_b2, eps_s2, _ = metrics.roc_curve(y_tr, s_tr)
    paths = plots.plot_roc({"mlp": (eps_s, eps_b), "part": (eps_s2, eps_b2)}, tmp_path / "roc")
    _check(paths, tmp_path / "roc")


def test_plot_scores(tmp_path, scores):
    paths = plots.plot_scores(*scores, tmp_path / "sub" / "scores.png")  # suffix is stripped
    _check(paths, tmp_path / "sub" / "scores")


def test_plot_history(tmp_path):
    hist = {"epoch": [1, 2, 3], "train_loss": [0.7, 0.5, 0.4], "val_loss": [0.72, 0.55, 0.5],
            "val_auc": [0.8, 0.85, 0.87], "lr": [1e-3, 1e-3, 5e-4]}
    _check(plots.plot_history(hist, tmp_path / "history"), tmp_path / "history")
    only_loss = {"train_loss": [0.7, 0.5]}
    _check(plots.plot_history(only_loss, tmp_path / "h2"), tmp_path / "h2")


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
        plots.plot_scores([], [], [0.1], [1], tmp_path / "s")
    with pytest.raises(HepnnError, match="empty"):
        plots.plot_history({}, tmp_path / "h")
    with pytest.raises(HepnnError, match="empty"):
        plots.plot_distributions({"a": []}, tmp_path / "d", "x")
    assert not any(tmp_path.iterdir())
