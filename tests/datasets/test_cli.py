"""`hepnn datasets` commands: help, list, convert through the CLI, and one-line refusals."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hepnn.cli import app
from hepnn.datasets.sources import JETNET_TYPES
from tests.datasets import layouts

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["-q", "datasets", *args], catch_exceptions=False)


@pytest.mark.parametrize("command", ["list", "get", "verify", "convert"])
def test_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.output


def test_list_names_every_dataset_with_size_licence_and_citation():
    out = invoke("list").output
    for name, cite in (("toptagging", "arXiv:1902.09914"), ("jetclass", "arXiv:2202.03772"),
                       ("quarkgluon", "arXiv:1810.05165"), ("jetnet", "arXiv:2106.11535")):
        assert f"\n{name} " in "\n" + out and cite in out
    assert "1.73 GB" in out and "436 MB" in out and out.count("licence") == 4 and out.count("hepnn reads") == 4


def test_convert_through_the_cli(tmp_path):
    folder = tmp_path / "jn"
    folder.mkdir()
    for i, t in enumerate(JETNET_TYPES):
        layouts.jetnet_h5(folder / f"{t}.hdf5", n=8, seed=i)
    result = invoke("convert", "jetnet", "--dir", str(folder), "--split", "train,test", "--jet-types", "t,w",
                    "--keep-source")
    assert result.exit_code == 0, result.output
    assert (folder / "parquet" / "train_000.parquet").is_file()
    assert not (folder / "parquet" / "val_000.parquet").exists()
    assert f"data.train={folder}/parquet/train_*.parquet" in result.output


@pytest.mark.parametrize("args, text", [
    (("convert", "toptagging"), "needs no conversion"),
    (("convert", "quarkgluon", "--jet-types", "g"), "--jet-types applies to jetnet only"),
    (("convert", "jetnet", "--shard-size", "0"), "--shard-size must be a positive number"),
    (("verify", "jetnet", "--split", "train"), "draws every split from every file"),
    (("get", "quarkgluon", "--retries", "-1"), "--retries >= 0"),
])
def test_refusals_are_one_line(args, text, tmp_path):
    result = invoke(*args, "--dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], result.output
