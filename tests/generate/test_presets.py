"""Presets: shipped definitions, seeds and shard numbering, byte-reproducible split runs, caching."""

from __future__ import annotations

import json

import pytest

from hepnn.errors import ConfigError
from hepnn.generate.presets import components, global_shards, load_preset, preset_names, run_preset, sha256

TINY = """
description: tiny test preset
seed: 7
shard_size: 3
settings: {mode: window, batch_events: 20}
files:
  a: {top: 4, qcd: 3}
  b: {qcd: 3}
"""


def test_shipped_presets_load_and_have_the_sizes_the_team_needs():
    assert {"toptag-small", "toptag-100k", "toptag-3class"} <= set(preset_names())
    _, small = load_preset("toptag-small")
    assert small.files == {"toptag_small": {"top": 2500, "qcd": 2500}} and small.settings == {}
    _, big = load_preset("toptag-100k")
    assert sum(big.files["train"].values()) >= 100_000 and big.files["test"]["qcd"] >= 20_000
    seeds = [c.seed for name in preset_names() for c in components(load_preset(name)[1])]
    assert len(seeds) == len(set(seeds))  # no two components of any presets share a seed
    assert len(global_shards(components(big))) == 56  # 140k jets in shards of 2500
    _, background = load_preset("toptag-qcd-test")  # with toptag-100k's test file: 100k QCD test jets
    assert background.files == {"test_qcd": {"qcd": 80_000}}


def test_generate_help_names_every_shipped_preset():
    from typer.testing import CliRunner

    from hepnn.cli import app

    text = CliRunner().invoke(app, ["generate", "--help"], env={"COLUMNS": "400"}).output
    assert all(name in text for name in preset_names()), text


def test_components_number_seeds_and_shards_in_file_then_process_order(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    _, preset = load_preset(str(tmp_path / "tiny.yaml"))
    comps = components(preset)
    assert [(c.file, c.process, c.seed, c.n_shards) for c in comps] == [("a", "top", 7, 2), ("a", "qcd", 8, 1),
                                                                       ("b", "qcd", 9, 1)]  # fmt: skip
    assert [(c.process, i) for c, i in global_shards(comps)] == [("top", 0), ("top", 1), ("qcd", 0), ("qcd", 0)]


@pytest.mark.parametrize(
    "text, message",
    [
        ("seed: 1\nshard_size: 5\nfiles: {a: {top: 3}}", "description"),
        ("description: x\nseed: 1\nshard_size: 5\nsettings: {seed: 3}\nfiles: {a: {top: 3}}", "settings.seed"),
        ("description: x\nseed: 1\nshard_size: 0\nfiles: {a: {top: 3}}", "shard_size"),
    ],
)
def test_bad_presets_are_one_line_errors(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_preset(str(tmp_path / "bad.yaml"))
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_preset("nope")


@pytest.mark.slow  # ~20 s: the tiny preset is generated twice (one go, and split over two "machines")
def test_split_run_merges_to_the_same_bytes_as_one_go_and_reruns_are_no_ops(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    preset = str(tmp_path / "tiny.yaml")
    one = run_preset(preset, tmp_path / "one", progress=False)
    assert one["files"]["a.parquet"]["jets"] == 7 and one["files"]["b.parquet"]["jets"] == 3
    for name, entry in one["files"].items():
        assert sha256(tmp_path / "one" / name) == entry["sha256"]
    assert run_preset(preset, tmp_path / "split", shards=range(0, 2), progress=False) is None  # machine 1
    assert run_preset(preset, tmp_path / "split", shards=range(2, 4), progress=False) is None  # machine 2
    assert not (tmp_path / "split" / "a.parquet").exists()
    split = run_preset(preset, tmp_path / "split", progress=False)  # merge only: every shard exists
    for name in ("a.parquet", "b.parquet", "manifest.json"):
        assert (tmp_path / "split" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    mtime = (tmp_path / "split" / "a.parquet").stat().st_mtime_ns
    assert run_preset(preset, tmp_path / "split", progress=False) == split  # cached: nothing rewritten
    assert (tmp_path / "split" / "a.parquet").stat().st_mtime_ns == mtime
    with pytest.raises(ConfigError, match="outside this preset's 0:4"):
        run_preset(preset, tmp_path / "split", shards=range(3, 9), progress=False)
    manifest = json.loads((tmp_path / "one" / "manifest.json").read_text())
    assert manifest["command"] == "hepnn generate --preset tiny --out DIR" and "pythia8mc" in manifest["versions"]
