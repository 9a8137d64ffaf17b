"""benchmarks/pretraining_study.py: every row and pre-training is a valid `hepnn train` command line.

The study runs for hours, so a typo in one row's overrides (a key the config schema does not know,
a placeholder left unfilled) would surface only at the end of a sweep. Here each row's config and
overrides go through the same validation `hepnn train` applies, in a second per row.
"""

from __future__ import annotations

import argparse
import re

import pytest

from hepnn.config import load_config
from tests.benchmarks import benchmark_script
from tests.conftest import ROOT


STUDY = benchmark_script("pretraining_study")
RUNS = argparse.Namespace(backbone="runs/pre", gpt="runs/pre_gpt", tokenizer="runs/pre_vq", supervised="runs/pre_wqcd")


@pytest.mark.parametrize("row", list(STUDY.ROWS))
def test_every_row_is_a_valid_config_with_its_placeholders_filled(row):
    config, extra = STUDY.ROWS[row]
    overrides = [STUDY.fill(o, RUNS) for o in extra]
    assert not [o for o in overrides if re.search(r"\{[a-z_]+\}", o)], f"unfilled placeholder in {row!r}: {overrides}"
    cfg = load_config(ROOT / "configs" / config, [*overrides, "train.seed=1", "train.epochs=30", "data.max_particles=64"])
    if any(o.startswith("train.init_from=") for o in extra):
        assert cfg.train.init_from in vars(RUNS).values()


@pytest.mark.parametrize("task", list(STUDY.PRETRAININGS))
def test_every_pretraining_is_a_valid_config(task):
    config, _, start, extra = STUDY.PRETRAININGS[task]
    assert start is None or start in {name for _, name, _, _ in STUDY.PRETRAININGS.values()}
    cfg = load_config(ROOT / "configs" / "pretrain" / config, [*extra, "train.epochs=6"])
    if task == "supervised":
        assert cfg.data.num_classes == 2  # W vs QCD: the top-vs-QCD head keeps its shape


def test_an_unknown_row_is_refused_by_name(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["pretraining_study.py", "table", "--rows", "part_lite scratch,no such row"])
    with pytest.raises(SystemExit):
        STUDY.main()
    assert "no such row" in capsys.readouterr().err


def test_files_names_the_missing_shards_and_how_to_make_them(tmp_path, monkeypatch):
    (tmp_path / "shards" / "test-top").mkdir(parents=True)
    (tmp_path / "shards" / "test-top" / "shard-00000.parquet").touch()
    monkeypatch.setattr("sys.argv", ["pretraining_study.py", "files", "--shards", str(tmp_path / "shards"),
                                     "--out", str(tmp_path / "study")])
    with pytest.raises(SystemExit) as err:
        STUDY.main()
    message = str(err.value)
    assert "test-qcd/shard-00000.parquet" in message and "test-top/shard-00000.parquet" not in message
    assert "hepnn generate --preset toptag-100k" in message
    assert not (tmp_path / "study" / "data").exists()  # nothing half-made


def test_validation_takes_what_is_left_after_a_large_size_and_too_large_a_size_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"label": list(range(10_000))}), tmp_path / "train.parquet")
    a = argparse.Namespace(train=tmp_path / "train.parquet", out=tmp_path / "study")
    train, val = STUDY.size_files(a, 9_000)  # size/4 = 2250 jets wanted, 1000 left
    assert pq.read_table(train)["label"].to_pylist() == list(range(9_000))
    assert pq.read_table(val)["label"].to_pylist() == list(range(9_000, 10_000))
    _, val = STUDY.size_files(a, 2_000)
    assert pq.read_table(val)["label"].to_pylist() == list(range(2_000, 2_500))  # size/4, as for the small sizes
    with pytest.raises(SystemExit, match=r"train\.parquet has 10000 jets.*--sizes to 9500"):
        STUDY.size_files(a, 9_800)


def test_two_sweeps_slicing_the_same_file_at_once_leave_one_whole_file(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"label": list(range(50_000))}), tmp_path / "train.parquet")
    dst = tmp_path / "study" / "data" / "train40000.parquet"
    with ThreadPoolExecutor(4) as pool:  # .result() re-raises what a slicing thread raised
        for f in [pool.submit(STUDY.slice_file, tmp_path / "train.parquet", dst, 0, 40_000) for _ in range(4)]:
            assert f.result() == dst
    assert pq.read_table(dst)["label"].to_pylist() == list(range(40_000))
    assert [p.name for p in dst.parent.iterdir()] == [dst.name]  # no temporary file left behind
