"""Bad input is one clear HepnnError raised before any work, leaving no file behind."""

from __future__ import annotations

import builtins

import pytest

from hepnn.errors import ConfigError, HepnnError
from hepnn.generate import generate


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"process": "zprime"}, "unknown process 'zprime'"),
        ({"pt_min": 700.0, "pt_max": 650.0}, "pt_min (700) must be below pt_max (650)"),
        ({"n_jets": 0}, "n_jets"),
        ({"n_jets": -5}, "n_jets"),
        ({"mode": "fast"}, "mode"),
        ({"detector": "delphes"}, "detector"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_settings_raise_one_line_config_error(tmp_path, kwargs, message):
    args = {"process": "qcd", "n_jets": 10, **kwargs}
    with pytest.raises(ConfigError) as err:
        generate(args.pop("process"), args.pop("n_jets"), tmp_path / "out.parquet", progress=False, **args)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_gen_extra_names_the_extra(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "pythia8mc":
            raise ImportError("No module named 'pythia8mc'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(HepnnError, match=r"pip install 'hepnn\[gen\]'"):
        generate("top", 10, tmp_path / "top.parquet", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(HepnnError, match="is a file, not a directory"):
        generate("qcd", 10, blocker / "sub" / "qcd.parquet", progress=False)
    with pytest.raises(HepnnError, match="it exists and is a file"):
        generate("qcd", 10, blocker, progress=False)  # a directory was asked for (no suffix)


def test_single_file_output_needs_a_single_shard(tmp_path):
    with pytest.raises(ConfigError, match="need 3 shards"):
        generate("qcd", 25, tmp_path / "qcd.parquet", shard_size=10, progress=False)
    with pytest.raises(ConfigError, match="does not match fmt"):
        generate("qcd", 5, tmp_path / "qcd.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "toptag-100k", "--pt-min", "500"], "drop --pt-min"),
        (["--preset", "toptag-100k", "--pileup", "20"], "drop --pileup"),
        (["--preset", "toptag-100k", "--n-jets", "5"], "drop --n-jets"),
        (["--preset", "no-such-sample"], "unknown preset 'no-such-sample'"),
        (["--preset", "toptag-small", "--shards", "2:999"], "outside this preset's 0:4"),
        (["--shards", "a:b"], "--shards a:b: expected A:B"),
        (["--shards", "3:3"], "empty or negative range"),
        (["--n-jets", "5", "--shards", "4"], "shards: 4 is not a shard of this run (0..0)"),
        (["--pileup", "-1"], "pileup"),
        (["--jets", "second"], "jets"),
    ],
)
def test_cli_refuses_bad_preset_and_shard_options_in_one_line(tmp_path, args, message):
    from typer.testing import CliRunner

    from hepnn.cli import app

    result = CliRunner().invoke(app, ["generate", *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not list(tmp_path.iterdir())
