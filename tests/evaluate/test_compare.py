"""Comparison tables: grouping by seed, mean ± std by hand, markdown/CSV/rich output."""

import csv
import math

import pytest

from hepnn.errors import HepnnError
from hepnn.evaluate.compare import compare_runs, format_cell, to_csv, to_markdown, to_rich_table


def _run(name, model, seed, auc, rej50, group=None):
    run = {"name": name, "model": model, "seed": seed, "n_params": 1234567,
           "train_time_s": 10.0 + (seed or 0),
           "metrics": {"accuracy": 0.9, "auc": auc, "rej30": 2 * rej50, "rej50": rej50, "n_jets": 100}}
    if group:
        run["group"] = group
    return run


RUNS = [
    _run("mlp_seed1", "mlp", 1, 0.9800, 100.0),
    _run("part_seed1", "part", 1, 0.9850, 300.0),
    _run("mlp_seed2", "mlp", 2, 0.9810, 110.0),
    _run("mlp_seed3", "mlp", 3, 0.9820, 120.0),
    _run("my-pn", "particlenet", 0, 0.9840, 250.0, group="pn"),
]


def test_grouping_and_mean_std_by_hand():
    rows = compare_runs(RUNS)
    assert [r["name"] for r in rows] == ["mlp", "part", "pn"]
    mlp = rows[0]
    assert mlp["n_seeds"] == 3 and mlp["seeds"] == [1, 2, 3] and mlp["model"] == "mlp"
    assert mlp["auc"] == pytest.approx((0.9810, 0.0010))  # std of (0.980, 0.981, 0.982), ddof=1
    assert mlp["rej50"] == pytest.approx((110.0, 10.0))
    assert mlp["train_time_s"] == pytest.approx((12.0, 1.0))
    assert rows[1]["auc"] == (0.9850, 0.0)
    assert [r["name"] for r in compare_runs(RUNS, sort_by="rej50")] == ["part", "pn", "mlp"]


def test_inconsistent_groups_are_errors():
    with pytest.raises(HepnnError, match="different models"):
        compare_runs([_run("a_seed1", "mlp", 1, 0.9, 1.0), _run("a_seed2", "part", 2, 0.9, 1.0)])
    with pytest.raises(HepnnError, match="repeat a seed"):
        compare_runs([_run("a", "mlp", 1, 0.9, 1.0), _run("a", "mlp", 1, 0.9, 1.0)])


def test_format_cell():
    assert format_cell("auc", (0.98123, 0.00041)) == "0.9812 ± 0.0004"
    assert format_cell("rej50", (1234.56, 12.34)) == "1234.6 ± 12.3"
    assert format_cell("rej50", (math.inf, math.nan)) == "inf ± nan"
    assert format_cell("auc", (0.98123, 0.0), n_seeds=1) == "0.9812"
    assert format_cell("n_params", 1234567) == "1,234,567"
    assert format_cell("auc", None) == "–"
    assert format_cell("rej30", 123.456) == "123.5" and format_cell("auc", 0.5) == "0.5000"


def test_markdown_table():
    md = to_markdown(compare_runs(RUNS))
    lines = md.strip().splitlines()
    assert len(lines) == 2 + 3
    assert lines[0].startswith("| Run | Model | Seeds | Parameters | Accuracy | AUC |")
    row = "| mlp | mlp | 3 | 1,234,567 | 0.9000 ± 0.0000 | 0.9810 ± 0.0010 | 220.0 ± 20.0 | 110.0 ± 10.0 |"
    assert row in md
    assert "| part | part | 1 | 1,234,567 | 0.9000 | 0.9850 | 600.0 | 300.0 |" in md


def test_csv_roundtrip(tmp_path):
    path = to_csv(compare_runs(RUNS), tmp_path / "cmp" / "table.csv", ["name", "n_seeds", "auc", "rej50"])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["name", "n_seeds", "auc_mean", "auc_std", "rej50_mean", "rej50_std"]
    assert rows[0]["name"] == "mlp" and float(rows[0]["auc_std"]) == pytest.approx(0.001)
    assert float(rows[2]["rej50_mean"]) == 250.0
    assert [p.name for p in path.parent.iterdir()] == ["table.csv"]  # no temp file left behind


def test_rich_table():
    import io

    from rich.console import Console

    table = to_rich_table(compare_runs(RUNS), title="top tagging")
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(table)
    text = console.export_text()
    assert "top tagging" in text and "0.9810 ± 0.0010" in text and "particlenet" in text


def test_rich_table_keeps_names_whole_in_100_columns():
    import io

    from rich.console import Console

    def render(runs):
        console = Console(width=100, record=True, file=io.StringIO())
        console.print(to_rich_table(compare_runs(runs)))
        return console.export_text()

    demo = [_run(m, m, None, 0.98, 10.0) for m in ("bdt", "particlenet_lite", "part_lite", "lorentznet_lite")]
    text = render(demo)
    assert "particlenet_lite" in text and "lorentznet_lite" in text and "…" not in text.split("\n")[3]
    assert "Model" not in text  # every run is named after its model: one column says it
    text = render(RUNS)
    assert "Model" in text and "│ particlenet │" in text  # run "pn" (a group) of model particlenet
    assert max(len(line) for line in text.splitlines()) <= 100


def test_identity_fields_in_metrics_do_not_override_row():
    runs = [_run("a_seed1", "mlp", None, 0.9, 1.0), _run("a_seed2", "mlp", None, 0.92, 1.0)]
    for r in runs:  # evaluate writes model, n_params and train_time_s into metrics.json as well
        r["metrics"].update({"model": "mlp", "n_params": 1234567})
    (row,) = compare_runs(runs)
    assert row["n_params"] == 1234567 and row["n_seeds"] == 2
    assert "| a | mlp | 2 | 1,234,567 |" in to_markdown([row])


def test_seed_repeats_group_together_across_hepnn_versions():
    """A config written before a key existed (so without it) groups with one that has the default."""
    import yaml

    from hepnn.config import dump_config, load_config
    from hepnn.evaluate.comparison import _config_key

    new = yaml.safe_load(dump_config(load_config("configs/top_tagging/pfn.yaml", ["train.seed=1"])))
    old = yaml.safe_load(dump_config(load_config("configs/top_tagging/pfn.yaml", ["train.seed=2"])))
    del old["train"]["time_limit"], old["evaluate"]["overtraining_jets"]
    assert _config_key(yaml.safe_dump(new)) == _config_key(yaml.safe_dump(old))
    other = yaml.safe_load(dump_config(load_config("configs/top_tagging/pfn.yaml", ["train.optimizer.lr=0.01"])))
    assert _config_key(yaml.safe_dump(other)) != _config_key(yaml.safe_dump(new))
