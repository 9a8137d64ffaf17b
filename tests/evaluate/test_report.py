"""Reports: every section present, every referenced image exists, values formatted, HTML escaped."""

import re

from hepnn.evaluate.compare import compare_runs
from hepnn.evaluate.report import write_comparison_report, write_report

CONFIG = "model:\n  name: part  # a < b & c > d\ntrain:\n  lr: 0.001\n"
METRICS = {"accuracy": 0.93456, "auc": 0.98123, "rej30": 1234.56, "rej50": 456.78, "n_jets": 2000,
           "ks_pvalue_0": 0.5, "ks_pvalue_1": 0.012, "model": "part", "n_params": 123456,
           "train_time_s": 61.25, "inference_jets_per_cpu_s": 12345.6, "extra": {"<weird>": 1.5}}
INFO = {"model": "part", "n_params": 123456, "train_time_s": 61.25, "n_train": 3000, "n_val": 1000,
        "n_test": 2000, "seed": 7}
HISTORY = {"loss": [0.7, 0.5, 0.45], "val_loss": [0.72, 0.6, 0.61], "val_auc": [0.80, 0.90, 0.88],
           "jets_per_s": [800.0, 1000.0, 900.0]}
STEMS = ("roc", "rejection", "scores", "history", "latent")


def _fake_plots(run_dir, stems=STEMS):
    plots = []
    for stem in stems:
        for ext in ("png", "pdf"):
            p = run_dir / "plots" / f"{stem}.{ext}"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"\x89PNG\r\n\x1a\n" if ext == "png" else b"%PDF-1.4")
            plots.append(p)
    return plots


def _references(md_text, html_text):
    """Every file a report points at: markdown ``(<path>)`` links, HTML src= and href= attributes."""
    return set(re.findall(r"\(<([^>]+)>\)", md_text)) | set(re.findall(r'(?:src|href)="([^"]+)"', html_text))


def test_run_report_sections_and_images(tmp_path):
    md, page = write_report(tmp_path, title="Top tagging", config_yaml=CONFIG, metrics=METRICS,
                            plots=_fake_plots(tmp_path), history=HISTORY, info=INFO)
    assert (md, page) == (tmp_path / "report.md", tmp_path / "report.html")
    text, htm = md.read_text(), page.read_text()
    sections = ["## Metrics", "## ROC and background rejection", "## Score distributions",
                "## Learning curves", "## Other plots", "## Configuration"]
    assert [text.index(s) for s in sections] == sorted(text.index(s) for s in sections)  # in this order
    for s in sections:
        assert f"<h2>{s[3:]}</h2>" in htm
    refs = _references(text, htm)
    assert {f"plots/{s}.{e}" for s in STEMS for e in ("png", "pdf")} <= refs
    assert all((tmp_path / r).is_file() for r in refs), refs
    assert str(tmp_path) not in htm and str(tmp_path) not in text  # references are relative
    # the roc and rejection plots sit side by side in the HTML
    assert re.search(r'<div class="row"><figure><img src="plots/roc.png".*?plots/rejection.png', htm, re.S)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_run_report_header_metrics_and_history(tmp_path):
    md, page = write_report(tmp_path, title="t", config_yaml=CONFIG, metrics=METRICS,
                            plots=_fake_plots(tmp_path), history=HISTORY, info=INFO)
    text = md.read_text()
    for row in ("| Model | part |", "| Trainable parameters | 123,456 |", "| Training time | 61.2 s (3 epochs) |",
                "| Training throughput | 900 jets/s (median over epochs) |",
                "| Inference speed | 12,346 jets per CPU second |",
                "| Jets | 3,000 train / 1,000 val / 2,000 test |", "| Seed | 7 |",
                "| Accuracy | 0.9346 |", "| AUC (area under the ROC curve) | 0.9812 |",
                "| Background rejection 1/εB at εS = 30% | 1234.6 |",
                "| Background rejection 1/εB at εS = 50% | 456.8 |", "| Test jets | 2000 |",
                "| KS p-value train vs test, signal | 0.0120 |", "| extra.<weird> | 1.5000 |"):
        assert row in text, row
    assert "| model |" not in text and "| n_params |" not in text  # identity is in the header only
    assert "inference_jets_per_cpu_s" not in text
    # the KS verdict in words: signal p = 0.012 < 0.05
    assert "background p = 0.500, signal p = 0.012; p < 0.05" in text
    # best loss = min at epoch 2, best AUC = max at epoch 2; throughput is not a learning curve
    assert "| train loss | 3 | 0.7 | 0.45 | 0.45 | 3 |" in text
    assert "| validation loss | 3 | 0.72 | 0.61 | 0.6 | 2 |" in text
    assert "| validation AUC | 3 | 0.8 | 0.88 | 0.9 | 2 |" in text
    assert "jets_per_s |" not in text
    assert "```yaml\n" + CONFIG in text


def test_run_report_falls_back_to_metrics_without_info(tmp_path):
    metrics = {"auc": 0.9, "ks_pvalue_0": 0.3, "ks_pvalue_1": 0.4, "model": "pfn", "n_params": 10}
    md, _ = write_report(tmp_path, title="t", config_yaml="a: 1", metrics=metrics)
    text = md.read_text()
    assert "| Model | pfn |" in text and "| Trainable parameters | 10 |" in text
    assert "## ROC" not in text and "## Learning curves" not in text  # no plots, no history
    # without a score plot the KS result still appears, as a metrics row
    assert "| Overtraining check | Kolmogorov–Smirnov test of train against test scores: background p = 0.300" in text
    assert "no sign of overtraining" in text


def test_html_is_escaped(tmp_path):
    (tmp_path / "plots").mkdir()
    odd = tmp_path / "plots" / 'a"<b>.png'
    odd.write_bytes(b"\x89PNG")
    info = {"model": "m<script>alert(1)</script>"}
    _, page = write_report(tmp_path, title="Top tagging <ParT>", config_yaml=CONFIG, metrics=METRICS,
                           plots=[odd], info=info)
    htm = page.read_text()
    assert "<script>" not in htm and "m&lt;script&gt;alert(1)&lt;/script&gt;" in htm
    assert "<title>Top tagging &lt;ParT&gt;</title>" in htm and "<ParT>" not in htm
    assert "a &lt; b &amp; c &gt; d" in htm and "a < b" not in htm  # the config
    assert "extra.&lt;weird&gt;" in htm and "<weird>" not in htm
    assert 'src="plots/a%22%3Cb%3E.png"' in htm  # a file name cannot break out of the attribute
    assert "<details>" in htm


def test_comparison_report(tmp_path):
    runs = [{"name": f"mlp_seed{s}", "model": "mlp<x>", "seed": s, "n_params": 10, "train_time_s": 1.0,
             "metrics": {"accuracy": 0.9, "auc": 0.98 + s / 1000, "rej30": 50.0, "rej50": 20.0 + s}}
            for s in (1, 2)]
    runs.append({"name": "part", "model": "part", "seed": 0, "n_params": 99, "train_time_s": 5.0,
                 "metrics": {"accuracy": 0.95, "auc": 0.99, "rej30": 90.0, "rej50": 40.0}})
    out = tmp_path / "cmp"
    plots = [p for p in _fake_plots(out, ("roc", "rejection")) if p.suffix == ".png"]
    md, page = write_comparison_report(out, compare_runs(runs), [p.parent.parent / p.name for p in plots])
    assert (md.name, page.name) == ("report.md", "report.html")
    text, htm = md.read_text(), page.read_text()
    # mean ± std (ddof=1) where a row has two seeds; a single seed shows the bare value
    assert "| mlp | mlp<x> | 2 | 10 | 0.9000 ± 0.0000 | 0.9815 ± 0.0007 | 50.0 ± 0.0 | 21.5 ± 0.7 |" in text
    assert "| part | part | 1 | 99 | 0.9500 | 0.9900 | 90.0 | 40.0 | 5.0 |" in text
    assert "0.9815 ± 0.0007" in htm
    assert "## Metrics" in text and "## ROC and background rejection" in text
    assert "![roc](<roc.png>)" in text and "![rejection](<rejection.png>)" in text
    assert '<img src="roc.png"' in htm and '<img src="rejection.png"' in htm
    assert "mlp&lt;x&gt;" in htm and "mlp<x>" not in htm
