import json

import hepnn
from hepnn.data.io import write_parquet
from tests.conftest import random_jets


def test_public_api_runs_a_whole_tagger(tmp_path):
    write_parquet(random_jets(200, seed=7), tmp_path / "jets.parquet")
    cfg = hepnn.load_config("configs/top_tagging/logistic.yaml",
                            [f"data.train={tmp_path / 'jets.parquet'}", "train.epochs=1", "data.jet_features=[mass, pt]"])
    run_dir = hepnn.fit(cfg, tmp_path / "run", progress=False)
    metrics = hepnn.evaluate_run(run_dir)
    assert metrics == json.loads((run_dir / "metrics.json").read_text())
    out = hepnn.predict_run(run_dir, [str(tmp_path / "jets.parquet")], tmp_path / "scores.parquet")
    assert out.is_file()
    assert "pfn" in hepnn.list_models() and isinstance(hepnn.create_model("mlp"), object)


def test_evaluation_can_skip_the_overtraining_check_and_reports_inference_speed(tmp_path):
    write_parquet(random_jets(200, seed=3), tmp_path / "jets.parquet")
    overrides = [f"data.train={tmp_path / 'jets.parquet'}", "train.epochs=1", "data.jet_features=[mass, pt]",
                 "evaluate.plots=false"]
    with_ks = hepnn.evaluate_run(hepnn.fit(hepnn.load_config("configs/top_tagging/logistic.yaml", overrides),
                                           tmp_path / "a", progress=False))
    cfg = hepnn.load_config("configs/top_tagging/logistic.yaml", [*overrides, "evaluate.overtraining_jets=0"])
    without = hepnn.evaluate_run(hepnn.fit(cfg, tmp_path / "b", progress=False))
    ks_keys = {k for k in with_ks if k.startswith("ks")}
    assert ks_keys and not ks_keys & set(without)
    assert without["auc"] == with_ks["auc"]  # same seed, same data: only the KS test is gone
    assert without["inference_jets_per_cpu_s"] > 0


def test_unlabelled_files_can_be_inspected_and_scored_but_not_trained_on(tmp_path):
    import awkward as ak
    import pytest

    from hepnn.data.inspect import inspect_files, render_inspect
    from hepnn.errors import DataError

    jets = random_jets(120, seed=5)
    write_parquet(jets, tmp_path / "labelled.parquet")
    write_parquet(jets[[f for f in jets.fields if f != "label"]], tmp_path / "new.parquet")
    assert "labels: none" in render_inspect(inspect_files([tmp_path / "new.parquet"]))

    cfg = hepnn.load_config("configs/top_tagging/pfn.yaml", [f"data.train={tmp_path / 'labelled.parquet'}",
                                                              "train.epochs=1", "evaluate.plots=false"])
    run_dir = hepnn.fit(cfg, tmp_path / "run", progress=False)
    scores = ak.from_parquet(hepnn.predict_run(run_dir, [str(tmp_path / "new.parquet")], tmp_path / "s.parquet"))
    assert len(scores) == 120 and "score" in scores.fields and "label" not in scores.fields

    cfg = hepnn.load_config("configs/top_tagging/pfn.yaml", [f"data.train={tmp_path / 'new.parquet'}"])
    with pytest.raises(DataError, match="label"):
        hepnn.fit(cfg, tmp_path / "run2", progress=False)
