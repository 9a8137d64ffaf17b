"""configs/published: every recipe validates and states what it should reach; the documented path
(`hepnn datasets get` then `hepnn train configs/published/...`) runs end to end on loopback data (CPU,
tiny sizes: a smoke test of the path, not of the published numbers)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hepnn.cli import app
from hepnn.config import load_config
from hepnn.datasets.convert import convert_dataset
from hepnn.datasets.sources import QUARKGLUON, TOPTAGGING
from tests.datasets import layouts
from tests.datasets.conftest import serve, small_entry

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "configs" / "published").glob("*.yaml"))
runner = CliRunner()
CPU = ["train.epochs=1", "train.amp=none", "train.device=cpu", "data.batch_size=32", "data.max_particles=30",
       "evaluate.plots=false", "evaluate.overtraining_jets=0"]


def test_every_recipe_is_there_and_validates():
    names = {p.stem for p in RECIPES}
    assert {"part_toptagging", "particlenet_toptagging", "lorentznet_toptagging", "pelican_toptagging",
            "part_jetclass", "particlenet_jetclass", "pfn_quarkgluon"} <= names
    from hepnn.registry import create_model, list_models

    for path in RECIPES:
        cfg = load_config(path)
        header = path.read_text().split("\nname:")[0]
        assert re.search(r"Published \(arXiv:\d{4}\.\d{5}, .*[Tt]able", header), path.name
        assert "torchrun --standalone --nproc_per_node=" in header and "Compute:" in header, path.name
        assert "Where hepnn differs" in header, path.name
        assert cfg.model.name in list_models()
        create_model(cfg.model.name, **cfg.model.params)  # every parameter exists on the factory
        assert cfg.data.train and cfg.data.val and cfg.data.test  # the published division, by file


def test_get_then_train_part_toptagging_runs_on_loopback(server, use_catalogue, tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    layouts.toptagging_files(src, n=48)
    use_catalogue(small_entry(TOPTAGGING, serve(server, src)))
    monkeypatch.chdir(tmp_path)  # the recipe's data paths are datasets/toptagging/*.h5, as `get` writes them
    got = runner.invoke(app, ["-q", "datasets", "get", "toptagging", "--mirror", server.url], catch_exceptions=False)
    assert got.exit_code == 0, got.output
    small_part = ["model.params.embed_dims=[16, 16]", "model.params.pair_embed_dims=[8]", "model.params.num_heads=2",
                  "model.params.num_layers=1", "model.params.num_cls_layers=1", "model.params.expansion=1"]
    result = runner.invoke(app, ["-q", "train", str(ROOT / "configs/published/part_toptagging.yaml"), *CPU,
                                 *small_part, "--out", "runs/part"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "runs/part/metrics.json").read_text())
    assert {"auc", "rej30", "rej50"} <= set(metrics)


def test_pfn_quarkgluon_smoke_trains_on_converted_data(tmp_path):
    folder = tmp_path / "qg"
    folder.mkdir()
    for i, f in enumerate(QUARKGLUON.files):
        layouts.qg_npz(folder / f.name, n=12, seed=i)
    out = convert_dataset("quarkgluon", folder, tmp_path / "pq")
    data = [f"data.{s}={out[s][0].parent}/{s}_*.parquet" for s in ("train", "val", "test")]
    result = runner.invoke(app, ["-q", "train", str(ROOT / "configs/published/pfn_quarkgluon.yaml"), *CPU, *data,
                                 "model.params.phi=[8, 8]", "model.params.f=[8]", "--out", str(tmp_path / "run")],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run/metrics.json").read_text())["n_jets"] == 24  # files 18-19: the test split


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_data_paths_match_what_get_and_convert_write(path):
    cfg = load_config(path)
    dataset = path.stem.split("_", 1)[1]
    for entry in (*cfg.data.train, *cfg.data.val, *cfg.data.test):
        assert entry.startswith(f"datasets/{dataset}/"), entry  # `get`'s default --dir is datasets/NAME
