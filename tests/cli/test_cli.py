"""Every CLI command has a smoke test on tiny data; errors are one line and a non-zero exit."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hepnn import __version__
from hepnn.cli import app
from hepnn.data.io import write_parquet
from tests.conftest import random_jets

runner = CliRunner()
COMMANDS = ["generate", "inspect", "models", "train", "evaluate", "predict", "compare", "demo"]


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_version_and_help():
    assert __version__ in invoke("--version").output
    for cmd in COMMANDS:
        result = invoke(cmd, "--help")
        assert result.exit_code == 0, cmd
        assert "Usage" in result.output


def test_every_option_help_is_shown_as_written():
    """Typer renders help through rich, which takes "[default: ...]" for markup and drops it."""
    import typer

    from hepnn.reference import _walk_commands

    for path, cmd in _walk_commands(typer.main.get_command(app), []):
        shown = " ".join(runner.invoke(app, [*path, "--help"], env={"COLUMNS": "1000"}).output.split())
        for param in cmd.params:
            if getattr(param, "help", None):
                assert " ".join(param.help.split()) in shown, (path, param.name)


def test_models_lists_the_zoo():
    out = invoke("models").output
    for name in ("mlp", "pfn", "efn", "bdt", "logistic", "cnn", "lstm"):
        assert f"\n{name} " in "\n" + out


@pytest.fixture(scope="module")
def jets_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "jets.parquet"
    write_parquet(random_jets(300, seed=3), path)
    return path


def test_inspect_counts_jets(jets_file):
    result = invoke("inspect", str(jets_file))
    assert result.exit_code == 0
    assert "jets: 300" in result.output


@pytest.fixture(scope="module")
def run_dir(jets_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pfn"
    result = invoke("-q", "train", "configs/top_tagging/pfn.yaml", f"data.train={jets_file}", "train.epochs=1",
                    "model.params.phi=[8, 8]", "model.params.f=[8]", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_a_run_directory(run_dir):
    for name in ("config.yaml", "metrics.json", "model.safetensors", "preprocess.json", "history.csv",
                 "report.md", "test_scores.parquet"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"accuracy", "auc", "rej30", "rej50"} <= set(metrics)


def test_evaluate_predict_compare(run_dir, jets_file, tmp_path):
    assert "auc:" in invoke("-q", "evaluate", str(run_dir)).output
    out = tmp_path / "scores.parquet"
    assert invoke("-q", "predict", str(run_dir), str(jets_file), "--out", str(out)).exit_code == 0
    import awkward as ak

    scores = ak.from_parquet(out)
    assert len(scores) == 300 and {"score", "label", "jet_pt", "jet_mass"} <= set(scores.fields)
    result = invoke("-q", "compare", str(run_dir), "--out", str(tmp_path / "cmp"))
    assert result.exit_code == 0 and (tmp_path / "cmp" / "comparison.md").is_file()


def test_evaluate_on_other_files_keeps_the_runs_own_test_results(run_dir, jets_file, tmp_path):
    own = {name: (run_dir / name).read_bytes() for name in ("metrics.json", "test_scores.parquet", "report.md")}
    result = invoke("-q", "evaluate", str(run_dir), "--data", str(jets_file))
    assert result.exit_code == 0 and "auc:" in result.output
    assert {name: (run_dir / name).read_bytes() for name in own} == own
    held_out = run_dir / f"eval-{jets_file.name.split('.')[0]}"
    assert json.loads((held_out / "metrics.json").read_text())["n_jets"] == 300  # every jet of the file
    assert (held_out / "report.md").is_file() and (held_out / "test_scores.parquet").is_file()
    assert invoke("-q", "evaluate", str(run_dir), "--data", str(jets_file), "--out", str(tmp_path / "e")).exit_code == 0
    assert (tmp_path / "e" / "metrics.json").is_file()
    for args, message in [(["--out", str(tmp_path / "x")], "--out is for evaluating on other files"),
                          (["--data", str(jets_file), "--out", str(run_dir)], "is the run directory")]:
        result = invoke("evaluate", str(run_dir), *args)
        assert result.exit_code == 2 and message in result.output


def test_existing_run_is_not_overwritten(run_dir):
    result = invoke("-q", "train", "configs/top_tagging/pfn.yaml", "--out", str(run_dir))
    assert result.exit_code == 2 and "--resume" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "configs/top_tagging/pfn.yaml", "train.lr=1"], "unknown key 'train.lr'"),
        (["train", "missing.yaml"], "does not exist"),
        (["train"], "give a config file"),
        (["evaluate", "."], "not a run directory"),
        (["inspect", "nope.parquet"], "nope.parquet"),
        (["train", "configs/top_tagging/pfn.yaml", "model.name=nope"], "unknown model 'nope'"),
    ],
)
def test_errors_are_one_clear_line(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
