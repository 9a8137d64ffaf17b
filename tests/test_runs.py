"""hepnn.runs, the run-assembly layer: task kinds, the model's input sizes (PCA widths, clashes), model
errors, the batch fields of training, evaluation and distillation, bucketing, the task class per run,
and run directories: a tiny PFN run and a tiny BDT run load back to the scores they wrote."""

from __future__ import annotations

import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hepnn.config import dump_config, load_config
from hepnn.data.batch import Batch
from hepnn.errors import ConfigError, HepnnError
from hepnn.registry import TreeModel, get_model_spec
from hepnn.runs import (build_model, load_run, load_run_data, make_task, model_inputs, require_run_dir, run_fields,
                        task_kind, teacher_config, train_bucketing)
from hepnn.train.distill import DistillTask
from hepnn.train.tasks import ClassifyTask, RegressTask

ROOT = Path(__file__).resolve().parents[1]
TINY_PFN = ["data.max_jets=300", "train.epochs=1", "model.params.phi=[8, 8]", "model.params.f=[8]",
            "evaluate.plots=false"]
TINY_BDT = ["data.max_jets=300", "data.jet_features=[mass, pt, tau32]", "model.params={n_estimators: 5, max_depth: 2}",
            "evaluate.plots=false"]


def cfg_of(*overrides: str):
    return load_config(None, list(overrides))


def tiny_run(tmp_path_factory, name: str, overrides: list[str]) -> Path:
    from hepnn.train.fit import fit

    cfg = load_config(ROOT / f"configs/top_tagging/{name}.yaml", overrides)
    return fit(cfg, tmp_path_factory.mktemp("runs") / name, progress=False)


@pytest.fixture(scope="module")
def pfn_run(tmp_path_factory) -> Path:
    """A tiny PFN run of the committed sample: one epoch on 300 jets (a few seconds)."""
    return tiny_run(tmp_path_factory, "pfn", TINY_PFN)


@pytest.fixture(scope="module")
def bdt_run(tmp_path_factory) -> Path:
    """A tiny BDT run (5 trees) of the committed sample."""
    pytest.importorskip("xgboost")
    return tiny_run(tmp_path_factory, "bdt", TINY_BDT)


@pytest.fixture(params=["pfn", "bdt"])
def any_run(request) -> tuple[str, Path]:
    """Each tiny run in turn: (model name, run directory)."""
    return request.param, request.getfixturevalue(f"{request.param}_run")


# ------------------------------------------------------------------------------------ config -> model


@pytest.mark.parametrize("overrides, kind", [
    ([], "classify"),
    (["data.target=jet_mass"], "regress"),
    (["data.target=jet_mass", "train.task=classify"], "classify"),
    (["train.task=reconstruct"], "reconstruct"),
])
def test_task_kind(overrides, kind):
    assert task_kind(cfg_of(*overrides)) == kind


@pytest.mark.parametrize("model, overrides, expected", [
    ("pfn", [], {"in_features": 7, "num_classes": 2}),
    ("pfn", ["train.loss=bce"], {"in_features": 7, "num_classes": 1}),
    ("pfn", ["data.target=jet_mass"], {"in_features": 7, "num_classes": 1}),
    ("pfn", ["data.particle_features=[log_pt, dr]"], {"in_features": 2, "num_classes": 2}),
    ("mlp", ["data.num_classes=3"], {"jet_features": 5, "num_classes": 3}),
    ("cnn", ["data.image_size=16"], {"num_classes": 2, "image_size": 16}),
    ("efn", [], {"num_classes": 2}),
])
def test_model_inputs_from_the_data_config(model, overrides, expected):
    cfg = cfg_of(f"model.name={model}", *overrides)
    assert model_inputs(cfg, get_model_spec(model)) == expected


@pytest.mark.parametrize("step, width", [
    ("{block: particle, kind: pca, params: {n_components: 3}}", 3),  # every column replaced
    ("{block: particle, kind: pca, columns: [deta, dphi], params: {n_components: 3}}", 7 - 2 + 3),
    ("{block: particle, kind: pca}", 7),  # no n_components: all components kept
    ("{block: jet, kind: pca, params: {n_components: 2}}", 7),  # another block
])
def test_pca_sets_the_particle_width(step, width):
    cfg = cfg_of("model.name=pfn", f"preprocess=[{step}]")
    assert model_inputs(cfg, get_model_spec("pfn"))["in_features"] == width


def test_pca_on_jet_features_sets_the_jet_width():
    step = "{block: jet, kind: pca, columns: [mass, pt, tau21], params: {n_components: 1}}"
    cfg = cfg_of("model.name=mlp", f"preprocess=[{step}]")
    assert model_inputs(cfg, get_model_spec("mlp"))["jet_features"] == 5 - 3 + 1


@pytest.mark.parametrize("k", ["0", "2.5", "true", "'3'"])
def test_pca_components_must_be_a_whole_number(k):
    cfg = cfg_of("model.name=pfn", f"preprocess=[{{block: particle, kind: pca, params: {{n_components: {k}}}}}]")
    with pytest.raises(ConfigError, match="pca n_components=.* on the particle block: give a whole number"):
        model_inputs(cfg, get_model_spec("pfn"))


def test_params_set_from_the_data_config_clash():
    cfg = cfg_of("model.name=pfn", "model.params.in_features=5")
    with pytest.raises(ConfigError, match="model.params.in_features is set from the data config"):
        model_inputs(cfg, get_model_spec("pfn"))


def test_build_model_sizes_the_network_from_the_data():
    model = build_model(cfg_of("model.name=pfn", "model.params={phi: [4], f: [3]}", "data.num_classes=3"))
    out = model.eval()(Batch(x=torch.randn(2, 5, 7), mask=torch.ones(2, 5, dtype=torch.bool)))  # 7 default features
    assert out.shape == (2, 3) and model.phi[0].in_features == 7


@pytest.mark.parametrize("overrides, message", [
    (["model.name=nope"], "unknown model 'nope'; known models: .*pfn"),
    (["model.name=pfn", "model.params.phi=[-3]"], r"cannot build model 'pfn'.*widths and counts must be > 0"),
    (["model.name=pfn", "model.params.bogus=3"], "unknown parameter.*bogus.*allowed: .*phi"),
])
def test_build_model_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_model(cfg_of(*overrides))


def test_tree_models_get_the_run_seed():
    pytest.importorskip("xgboost")
    model = build_model(cfg_of("model.name=bdt", "train.seed=7"))
    assert isinstance(model, TreeModel) and model.model.get_params()["random_state"] == 7


# ------------------------------------------------------------------------------------ fields and tasks


def teacher_dir(tmp_path: Path, *overrides: str) -> Path:
    """A folder that names a teacher run (its config.yaml is all that ``run_fields`` reads)."""
    folder = tmp_path / "teacher"
    folder.mkdir(exist_ok=True)
    (folder / "config.yaml").write_text(dump_config(cfg_of(*overrides)))
    return folder


def test_run_fields_for_evaluation_and_training():
    assert run_fields(cfg_of("model.name=pfn")) == ("x", "mask", "y")
    assert run_fields(cfg_of("model.name=pfn"), train=True) == ("x", "mask", "y", "weight")
    assert run_fields(cfg_of("model.name=part"), train=True) == ("x", "mask", "p4", "y", "weight")


@pytest.mark.parametrize("student, teacher, expected", [
    ("mlp", "pfn", ("jet", "y", "weight", "p4", "mask")),  # the teacher's x is rebuilt from p4 and mask
    ("pfn", "mlp", ("x", "mask", "y", "weight", "p4", "jet")),  # a jet-feature teacher needs jet too
    ("pfn", "pfn", ("x", "mask", "y", "weight", "p4")),
])
def test_run_fields_for_distillation(tmp_path, student, teacher, expected):
    cfg = cfg_of(f"model.name={student}", f"distill.teacher={teacher_dir(tmp_path, f'model.name={teacher}')}")
    assert run_fields(cfg, train=True) == expected
    assert run_fields(cfg) == (*get_model_spec(student).inputs, "y")  # scoring needs no teacher


def test_teacher_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no distill section"):
        teacher_config(cfg_of())
    with pytest.raises(ConfigError, match="distill.teacher: .*nowhere is not a run directory"):
        teacher_config(cfg_of(f"distill.teacher={tmp_path / 'nowhere'}"))


@pytest.mark.parametrize("setting, model, expected", [
    (True, nn.BatchNorm1d(3), True),
    (False, nn.Linear(2, 2), False),
    ("auto", None, True),
    ("auto", nn.Sequential(nn.Linear(2, 2), nn.ReLU()), True),
    ("auto", nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), False),
])
def test_train_bucketing(setting, model, expected):
    assert train_bucketing(setting, model) is expected


def test_make_task_classify_with_balanced_class_weights():
    cfg = cfg_of("train.class_weights=balanced", "train.l1=0.5", "train.grad_penalty=0.25")
    labels = np.array([0, 0, 0, 1])
    task = make_task(cfg, "classify", 2, labels)
    assert type(task) is ClassifyTask and task.loss_name == "ce" and task.num_classes == 2
    assert (task.reg.l1, task.reg.l2, task.reg.grad_penalty) == (0.5, 0.0, 0.25)
    assert task.reg.inputs == get_model_spec(cfg.model.name).inputs  # the penalty differentiates what the model reads
    z, y = torch.tensor([[0.2, -0.1], [1.0, 0.5], [0.0, 0.3], [-1.0, 2.0]]), torch.tensor([0, 1, 0, 1])
    weights = torch.tensor([4 / (2 * 3), 4 / (2 * 1)])  # n / (K n_c)
    torch.testing.assert_close(task.loss_fn(z, y, None), F.cross_entropy(z, y, weight=weights))
    unweighted = make_task(cfg, "classify", 2, None)  # scoring: no labels, no class weights
    torch.testing.assert_close(unweighted.loss_fn(z, y, None), F.cross_entropy(z, y))


def test_make_task_explicit_class_weights_and_bce():
    task = make_task(cfg_of("train.loss=bce", "train.class_weights=[1.0, 3.0]"), "classify", 2, None)
    z, y = torch.tensor([0.5, -0.2, 1.5]), torch.tensor([1, 0, 1])
    w = torch.tensor([3.0, 1.0, 3.0])
    expected = (w * F.binary_cross_entropy_with_logits(z, y.float(), reduction="none")).sum() / w.sum()
    assert task.loss_name == "bce"
    torch.testing.assert_close(task.loss_fn(z, y, None), expected)


@pytest.mark.parametrize("loss, fn", [("auto", F.mse_loss), ("mae", F.l1_loss)])
def test_make_task_regress(loss, fn):
    task = make_task(cfg_of("data.target=jet_mass", f"train.loss={loss}"), "regress", 1, None)
    assert type(task) is RegressTask
    pred, y = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.5, 2.0, 1.0])
    torch.testing.assert_close(task.loss_fn(pred, y, None), fn(pred, y))


def test_make_task_unsupervised_kinds():
    from hepnn.train.tasks_unsupervised import DenoiseTask, ELBOTask

    assert type(make_task(cfg_of("train.task=elbo", "train.unsupervised.beta=0.5"), "elbo", 2, None)) is ELBOTask
    task = make_task(cfg_of("train.unsupervised.noise=0.3"), "denoise", 2, None)
    assert type(task) is DenoiseTask and task.noise == 0.3


def test_make_task_distills_only_when_training(tmp_path):
    cfg = cfg_of("model.name=mlp", f"distill.teacher={teacher_dir(tmp_path, 'model.name=pfn')}",
                 "distill.temperature=3", "distill.alpha=0.25")
    task = make_task(cfg, "classify", 2, np.array([0, 1]))
    assert type(task) is DistillTask and (task.temperature, task.alpha) == (3.0, 0.25)
    assert type(make_task(cfg, "classify", 2, None)) is ClassifyTask  # scoring a distilled run


# ------------------------------------------------------------------------------------ run directories


def test_require_run_dir(tmp_path, pfn_run):
    assert require_run_dir(str(pfn_run)) == pfn_run
    with pytest.raises(HepnnError, match="is not a run directory .*no config.yaml.*hepnn train"):
        require_run_dir(tmp_path)


def written_scores(run_dir: Path) -> np.ndarray:
    return ak.to_numpy(ak.from_parquet(run_dir / "test_scores.parquet")["score"])


def test_load_run_reproduces_the_written_scores(any_run):
    """The loaded model, preprocessing and fields score the test jets exactly as training did."""
    from hepnn.evaluate.scores import predict_jets

    name, run_dir = any_run
    run = load_run(run_dir)
    assert run.cfg == load_config(run_dir / "config.yaml") and run.kind == "classify"
    _, _, splits, kind, inputs = load_run_data(run_dir)
    assert kind == "classify" and inputs == get_model_spec(name).inputs
    out = predict_jets(run.cfg, run.model, run.pre, splits.test, run.kind)
    np.testing.assert_array_equal(out["score"], written_scores(run_dir))


def test_load_run_of_a_torch_run(pfn_run):
    from safetensors.torch import load_file

    run = load_run(pfn_run)
    assert isinstance(run.model, nn.Module) and not run.model.training
    stored = load_file(str(pfn_run / "model.safetensors"))
    assert all(torch.equal(v, stored[k]) for k, v in run.model.state_dict().items())
    assert set(run.pre) == {"particle"}


def test_load_run_of_a_tree_run(bdt_run):
    run = load_run(bdt_run)
    assert isinstance(run.model, TreeModel) and run.pre == {}
    assert run.model.n_params() > 0  # trees were read from model.json, not a fresh booster


def test_edited_or_unfinished_torch_run(tmp_path, pfn_run):
    run_dir = Path(shutil.copytree(pfn_run, tmp_path / "pfn"))
    cfg = load_config(run_dir / "config.yaml")
    params = {**cfg.model.params, "phi": [8, 6]}  # the second phi layer 6 wide instead of 8
    edited = cfg.model_copy(update={"model": cfg.model.model_copy(update={"params": params})})
    (run_dir / "config.yaml").write_text(dump_config(edited))
    with pytest.raises(HepnnError, match=r"does not match the model in the run config: .*\(8, 8\) in the file, \(6, 8\) in"):
        load_run(run_dir)
    (run_dir / "model.safetensors").unlink()
    with pytest.raises(HepnnError, match="model.safetensors does not exist; was the run trained to the end"):
        load_run(run_dir)


def test_unfinished_tree_run(tmp_path, bdt_run):
    run_dir = Path(shutil.copytree(bdt_run, tmp_path / "bdt"))
    (run_dir / "model.json").unlink()
    with pytest.raises(HepnnError, match="model.json is missing; the bdt run did not finish"):
        load_run(run_dir)
