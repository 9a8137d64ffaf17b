"""Reports: both files written, metric values and relative image references present, HTML escaped."""

from hepnn.evaluate.compare import compare_runs
from hepnn.evaluate.report import write_comparison_report, write_report

CONFIG = "model:\n  name: part  # a < b & c > d\ntrain:\n  lr: 0.001\n"
METRICS = {"accuracy": 0.93456, "auc": 0.98123, "rej30": 1234.56, "rej50": 456.78, "n_jets": 2000,
           "overtraining": {"ks_pvalue_1": 0.5}}


def _fake_plots(run_dir):
    plots = []
    for stem in ("roc", "scores"):
        for ext in ("png", "pdf"):
            p = run_dir / "plots" / f"{stem}.{ext}"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"\x89PNG\r\n\x1a\n" if ext == "png" else b"%PDF-1.4")
            plots.append(p)
    return plots


def test_write_report_contents(tmp_path):
    md, page = write_report(tmp_path, title="Top tagging <ParT>", config_yaml=CONFIG, metrics=METRICS,
                            plots=_fake_plots(tmp_path), history=None)
    assert (md, page) == (tmp_path / "report.md", tmp_path / "report.html")
    text, htm = md.read_text(), page.read_text()
    for s in ("0.9346", "0.9812", "1234.6", "456.8", "2000", "overtraining.ks_pvalue_1"):
        assert s in text and s in htm, s
    assert "![roc](<plots/roc.png>)" in text and "(<plots/roc.pdf>)" in text
    assert '<img src="plots/roc.png" alt="roc">' in htm and 'href="plots/scores.pdf"' in htm
    assert str(tmp_path) not in htm  # references are relative
    # the config is in a collapsed block and every '<' from user text is escaped
    assert "<details>" in htm and "a &lt; b &amp; c &gt; d" in htm and "a < b" not in htm
    assert "<title>Top tagging &lt;ParT&gt;</title>" in htm and "<ParT>" not in htm
    assert "```yaml\n" + CONFIG in text
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_report_with_history_table(tmp_path):
    hist = {"epoch": [1, 2, 3], "train_loss": [0.7, 0.5, 0.45], "val_auc": [0.80, 0.90, 0.88]}
    plots = _fake_plots(tmp_path)
    (tmp_path / "plots" / "history.png").write_bytes(b"\x89PNG")
    md, page = write_report(tmp_path, title="t", config_yaml="a: 1", metrics={"auc": 0.9},
                            plots=plots + [tmp_path / "plots" / "history.png"], history=hist)
    text = md.read_text()
    assert "## Learning curves" in text
    assert "| train_loss | 3 | 0.7 | 0.45 | 0.45 | 3 |" in text  # best loss = min, at epoch 3
    assert "| val_auc | 3 | 0.8 | 0.88 | 0.9 | 2 |" in text  # best metric = max, at epoch 2
    assert "| epoch |" not in text
    assert '<img src="plots/history.png"' in page.read_text()


def test_write_comparison_report(tmp_path):
    runs = [{"name": f"mlp_seed{s}", "model": "mlp<x>", "seed": s, "n_params": 10, "train_time_s": 1.0,
             "metrics": {"accuracy": 0.9, "auc": 0.98 + s / 1000, "rej30": 50.0, "rej50": 20.0 + s}}
            for s in (1, 2)]
    roc = tmp_path / "cmp" / "roc.png"
    md, page = write_comparison_report(tmp_path / "cmp", compare_runs(runs), roc)
    assert (md.name, page.name) == ("report.md", "report.html")
    text, htm = md.read_text(), page.read_text()
    assert "0.9815 ± 0.0007" in text and "0.9815 ± 0.0007" in htm
    assert "21.5 ± 0.7" in text
    assert "![roc](<roc.png>)" in text and '<img src="roc.png"' in htm
    assert "mlp&lt;x&gt;" in htm and "mlp<x>" not in htm
