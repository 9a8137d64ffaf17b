"""Every CLI command, given bad input, ends with one clear line naming the culprit and exit code 2.

Goes through ``hepnn.cli.run`` (the console script) so the generic handler for exceptions that are
not ``HepnnError`` (OSError, ValueError from torch, KeyboardInterrupt) is exercised too; ``--debug``
still shows the traceback.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch

from hepnn.data.io import write_parquet
from hepnn.errors import ConfigError
from tests.conftest import random_jets
from tests.hardening.conftest import PFN, ROOT, TINY_PFN, assert_one_line_error, hepnn

SAMPLE = str(ROOT / "data" / "toptag_small.parquet")
QUICK = ["data.max_jets=200", "train.epochs=1"]


# ---------------------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    "override, fragments",
    [
        ("train.optimizer.learning_rate=0.1", ["unknown key 'train.optimizer.learning_rate'", "allowed keys here"]),
        ("data.batch_size=abc", ["'data.batch_size' = 'abc'", "valid integer"]),
        ("train.optimizer.lr=-0.1", ["'train.optimizer.lr' = -0.1", "greater than 0"]),
        ("train.optimizer.lr=.inf", ["'train.optimizer.lr'", "finite number"]),
        ("train.epochs=.nan", ["'train.epochs'"]),
        ("evaluate.signal_efficiencies=[0.3, 1.2]", ["signal_efficiencies", "(0, 1)", "1.2"]),
        ("evaluate.signal_efficiencies=[0.0]", ["signal_efficiencies", "(0, 1)"]),
        ("train.optimizer.betas=[0.9, 1.5]", ["train.optimizer.betas", "[0, 1)"]),
        ("data.split.train=0.9", ["must be 1"]),
        ("train.amp=fp8", ["'train.amp' = 'fp8'"]),
        ("train.lr", ["'train.lr'", "key=value"]),
        ("model.name=nope", ["unknown model 'nope'"]),
    ],
)
def test_config_errors_name_the_key(capsys, tmp_path, override, fragments):
    code, out = hepnn(capsys, "train", str(PFN), override, "--out", str(tmp_path / "run"))
    assert_one_line_error(code, out, *fragments)
    assert not (tmp_path / "run").exists()  # validated before any work


@pytest.mark.parametrize("text, fragment", [("- 1\n- 2\n", "must hold a mapping"), ("a: [1, 2\n", "not valid YAML")])
def test_config_file_that_is_not_a_mapping(capsys, tmp_path, text, fragment):
    (tmp_path / "c.yaml").write_text(text)
    assert_one_line_error(*hepnn(capsys, "train", str(tmp_path / "c.yaml")), "c.yaml", fragment)


@pytest.mark.parametrize(
    "override, fragments",
    [
        ("model.params.phi=[-4, 8]", ["model.params", "'pfn'", "negative dimension"]),
        ("model.params.bogus=1", ["unknown parameter(s) bogus"]),
        ("data.jet_features=[nope]", ["unknown jet feature (data.jet_features) 'nope'"]),
        ("data.particle_features=[log_pt, nope]", ["data.particle_features", "'nope'"]),
        ("data.target=nope", ["target column(s) nope"]),
        ("train.class_weights=[1.0]", ["train.class_weights", "2 classes"]),
    ],
)
def test_config_values_only_the_model_or_data_can_refuse(capsys, tmp_path, override, fragments):
    code, out = hepnn(capsys, "-q", "train", str(PFN), *QUICK, "model.params.dropout=0", override,
                      "--out", str(tmp_path / "run"))
    assert_one_line_error(code, out, *fragments)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda(capsys, tmp_path):
    code, out = hepnn(capsys, "-q", "train", str(PFN), *QUICK, "train.device=cuda", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, out, "train.device=cuda", "no cuda device")


# ------------------------------------------------------------------------------------------ data
def _jets(n: int = 40):
    jets = random_jets(n, seed=5)
    for c in ("E", "px", "py", "pz"):
        jets[f"jet_{c}"] = ak.sum(jets[f"part_{c}"], axis=1)
    return jets


def _with(jets, name, fn):
    return ak.with_field(jets, fn(jets[name]), name)


def _set_row(column, row: int, value):
    """``column`` with jet ``row`` set to ``value`` (every constituent, for a jagged column)."""
    flat = ak.to_numpy(ak.flatten(column)).copy() if column.ndim == 2 else ak.to_numpy(column).astype(np.float64)
    if column.ndim == 2:
        counts = ak.to_numpy(ak.num(column))
        start = counts[:row].sum()
        flat[start:start + counts[row]] = value
        return ak.unflatten(flat, counts)
    flat[row] = value
    return flat


def _empty_jet(jets, row: int):
    """Jet ``row`` with no constituents (every particle column emptied)."""
    keep = np.where(np.arange(len(jets)) == row, 0, 999)  # (n,) slots kept per jet
    for c in ("part_E", "part_px", "part_py", "part_pz", "part_charge", "part_pid"):
        jets[c] = jets[c][ak.local_index(jets[c]) < keep]
    return jets


def _one_short(jets, name: str, row: int):
    """Jet ``row`` of column ``name`` with its last entry dropped (ragged against the other columns)."""
    keep = ak.num(jets[name]) - (np.arange(len(jets)) == row)  # (n,) entries kept per jet
    jets[name] = jets[name][ak.local_index(jets[name]) < keep]
    return jets


def _rename(jets, old: str, new: str):
    return ak.zip({(new if k == old else k): jets[k] for k in jets.fields}, depth_limit=1)


BAD_FILES = {
    "nan_momentum": (lambda j: _with(j, "part_px", lambda c: _set_row(c, 7, np.nan)), ["part_px", "row 7", "NaN"]),
    "inf_jet_pt": (lambda j: ak.with_field(j, _set_row(ak.sum(j.part_px, axis=1), 3, np.inf), "jet_pt"),
                   ["jet_pt", "row 3"]),
    "negative_label": (lambda j: _with(j, "label", lambda c: _set_row(c, 11, -1)), ["label", "row 11", "-1"]),
    "fractional_label": (lambda j: _with(j, "label", lambda c: _set_row(c, 2, 0.5)), ["label", "row 2", "0.5"]),
    "empty_jet": (lambda j: _empty_jet(j, 9), ["row 9", "zero constituents"]),
    "misnamed_column": (lambda j: _rename(j, "part_px", "part_momx"), ["missing column(s) part_px", "part_momx"]),
    "ragged_columns": (lambda j: _one_short(j, "part_py", 5), ["part_E and part_py", "row 5", "disagree"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_data_files_name_file_column_and_row(capsys, tmp_path, case):
    make, fragments = BAD_FILES[case]
    path = tmp_path / f"{case}.parquet"
    ak.to_parquet(make(_jets()), path)  # as given: write_parquet would cast a float label to int64
    assert_one_line_error(*hepnn(capsys, "inspect", str(path)), str(path), *fragments)


def test_bad_data_file_in_a_training_config(capsys, tmp_path):
    path = tmp_path / "nan.parquet"
    write_parquet(BAD_FILES["nan_momentum"][0](_jets()), path)
    code, out = hepnn(capsys, "-q", "train", str(PFN), f"data.train={path}", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, out, str(path), "part_px", "row 7")


def test_truncated_and_mixed_layout_files(capsys, tmp_path):
    good, other = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_parquet(_jets(), good)
    jets = _jets()
    write_parquet(ak.zip({k: jets[k] for k in jets.fields if k != "part_pid"}, depth_limit=1), other)
    code, out = hepnn(capsys, "-q", "train", str(PFN), f"data.train=[{good}, {other}]", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, out, "mixed layouts", "part_pid", str(other))
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert_one_line_error(*hepnn(capsys, "inspect", str(cut)), str(cut), "truncated or corrupt")
    for suffix in (".h5", ".root"):
        fake = tmp_path / f"fake{suffix}"
        fake.write_bytes(good.read_bytes())
        assert_one_line_error(*hepnn(capsys, "inspect", str(fake)), str(fake))
    assert_one_line_error(*hepnn(capsys, "inspect", str(tmp_path)), str(tmp_path), "file not found")


# -------------------------------------------------------------------------------- run directories
def test_damaged_run_directories(capsys, run_copy):
    run = str(run_copy)
    assert_one_line_error(*hepnn(capsys, "evaluate", str(run_copy / "checkpoints")), "not a run directory")
    (run_copy / "preprocess.json").rename(run_copy / "pre.bak")
    assert_one_line_error(*hepnn(capsys, "predict", run, SAMPLE), "preprocess.json is missing")
    (run_copy / "pre.bak").rename(run_copy / "preprocess.json")
    weights = (run_copy / "model.safetensors").read_bytes()
    (run_copy / "model.safetensors").write_bytes(weights[:100])
    assert_one_line_error(*hepnn(capsys, "evaluate", run), "model.safetensors", "not a valid safetensors")
    (run_copy / "model.safetensors").unlink()
    assert_one_line_error(*hepnn(capsys, "evaluate", run), "model.safetensors", "does not exist")


def test_weights_that_do_not_match_the_config(capsys, run_copy):
    """config.yaml edited after training (wider layers): the shapes are named, no torch RuntimeError."""
    cfg = run_copy / "config.yaml"
    cfg.write_text(cfg.read_text().replace("- 8\n", "- 16\n"))
    code, out = hepnn(capsys, "predict", str(run_copy), SAMPLE, "--out", str(run_copy / "s.parquet"))
    assert_one_line_error(code, out, "does not match the model", "(8,) in the file, (16,) in the model")


def test_preprocessing_fitted_on_other_features(capsys, run_copy):
    """preprocess.json from a run with one more particle feature: named, not a numpy broadcast error."""
    import json

    pre = json.loads((run_copy / "preprocess.json").read_text())
    block = pre["particle"]
    block["feature_names"].append("log_pt")
    state = block["steps"][0]["state"]  # standardize: mean_, scale_ per column
    state["n_features_in_"] += 1
    state["columns_"].append(len(state["columns_"]))
    state["mean_"].append(0.0)
    state["scale_"].append(1.0)
    (run_copy / "preprocess.json").write_text(json.dumps(pre))
    code, out = hepnn(capsys, "predict", str(run_copy), SAMPLE, "--out", str(run_copy / "s.parquet"))
    assert_one_line_error(code, out, "fitted on 8 features, got 7")
    assert not (run_copy / "s.parquet").exists()


# ----------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", str(PFN), "--seeds", "1,x"], ["--seeds", "'1,x'"]),
        (["train"], ["give a config file"]),
        (["generate", "--n-jets", "-5"], ["n_jets"]),
        (["generate", "--process", "higgs", "--n-jets", "3"], ["unknown process 'higgs'"]),
        (["compare", "/nonexistent/run"], ["/nonexistent/run"]),
        (["evaluate", "/nonexistent/run"], ["not a run directory"]),
    ],
)
def test_bad_arguments(capsys, args, fragments):
    assert_one_line_error(*hepnn(capsys, *args), *fragments)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", str(PFN), "--resume", "{run}"], ["--resume", "drop CONFIG"]),
        (["train", "--resume", "{run}", "--out", "{tmp}/x", "--seeds", "1,2"], ["drop --out, --seeds"]),
        (["compress", "{run}", "--quantize", "ptq", "--steps", "2", "--structured"],
         ["--structured, --steps does not apply to --quantize ptq"]),
        (["compress", "{run}", "--quantize", "ptq", "--finetune-epochs", "2"], ["--finetune-epochs", "--quantize ptq"]),
        (["compress", "{run}", "--quantize", "ptq", "--calib-jets", "64"], ["--calib-jets", "--quantize ptq"]),
        (["compress", "{run}", "--quantize", "qat", "--static"], ["--static", "--quantize qat"]),
        (["compress", "{run}", "--prune", "0.5", "--calib-jets", "64"], ["--calib-jets", "--prune"]),
        (["compress", "{run}", "--quantize", "int4"], ["--quantize must be ptq or qat"]),
        (["distill", "{run}", "--student", "mlp", "--config", str(PFN)], ["--student mlp", "--config", "not both"]),
        (["demo", "--models", "mlp,nope", "--out", "{tmp}/demo"], ["nope not registered"]),
        (["latency", "{run}", "--backends", "eager,tpu"], ["unknown latency backend(s) tpu"]),
    ],
)
def test_options_that_do_not_apply_are_refused(capsys, tmp_path, trained_run, args, fragments):
    """No option is accepted and ignored: a conflict is one line naming the options (nothing is written)."""
    fill = {"run": trained_run, "tmp": tmp_path}
    code, out = hepnn(capsys, *[a.format(**fill) for a in args])
    assert_one_line_error(code, out, *fragments)
    assert not (tmp_path / "demo").exists() and not (tmp_path / "x").exists()


def test_latency_of_a_quantized_run_measures_eager_only(capsys, tmp_path, trained_run):
    pytest.importorskip("torchao")
    from hepnn.compress.quantize import quantize_run

    quantize_run(trained_run, tmp_path / "q", "ptq")
    assert_one_line_error(*hepnn(capsys, "latency", str(tmp_path / "q"), "--backends", "eager,onnx"),
                          "is quantized", "drop onnx")
    code, out = hepnn(capsys, "latency", str(tmp_path / "q"), "--repeats", "2")
    assert code == 0 and "| eager |" in out and "| onnx |" not in out, out


def test_usage_errors_exit_2_without_traceback(capsys):
    for args in (["train", "--bogus"], ["predict"], ["nonexistent-command"]):
        code, out = hepnn(capsys, *args)
        assert code == 2 and "Traceback" not in out and "Usage" in out, (args, out)


def test_tune_without_a_tune_section(capsys, tmp_path):
    code, out = hepnn(capsys, "tune", str(PFN), "--out", str(tmp_path / "t"))
    assert code == 2 and "Traceback" not in out and "tune" in out


# ------------------------------------------------------------------------ the generic handler
@pytest.mark.parametrize(
    "args",
    [
        ["train", str(PFN), *TINY_PFN, "--out", "{file}/run"],
        ["predict", "{run}", SAMPLE, "--out", "{file}/scores.parquet"],
        ["predict", "{run}", SAMPLE, "--out", "{dir}"],
        ["compare", "{run}", "--out", "{file}/cmp"],
        ["generate", "--n-jets", "2", "--out", "{file}/jets.parquet"],
    ],
)
def test_output_path_that_cannot_be_written(capsys, tmp_path, trained_run, args):
    """A folder that is a regular file, or a file that is a folder: works as root too (unlike chmod)."""
    (tmp_path / "file").write_text("a regular file, not a folder")
    (tmp_path / "dir").mkdir()
    fill = {"file": tmp_path / "file", "dir": tmp_path / "dir", "run": trained_run}
    code, out = hepnn(capsys, "-q", *[a.format(**fill) for a in args])
    assert_one_line_error(code, out, str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"] and not any((tmp_path / "dir").iterdir())


def test_unexpected_exceptions_become_one_line_and_debug_shows_them(capsys, monkeypatch):
    from hepnn import registry

    def broken():
        raise ValueError("something deep in numpy\nwent wrong")

    monkeypatch.setattr(registry, "describe_models", broken)
    code, out = hepnn(capsys, "models")
    assert_one_line_error(code, out, "unexpected ValueError: something deep in numpy went wrong", "--debug")
    with pytest.raises(ValueError, match="something deep"):
        hepnn(capsys, "--debug", "models")
    with pytest.raises(ConfigError, match="does not exist"):  # HepnnError too: --debug is a traceback
        hepnn(capsys, "--debug", "train", "missing.yaml")


def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch):
    from hepnn import registry

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(registry, "describe_models", interrupted)
    code, out = hepnn(capsys, "models")
    assert code == 130 and "interrupted" in out and "--resume" in out and "Traceback" not in out
