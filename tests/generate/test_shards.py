"""Same seed → identical files; resume skips finished shards; metadata holds settings and versions."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepnn.data.io import read_jets, read_metadata
from hepnn.errors import ConfigError
from hepnn.generate import generate

FAST = {"mode": "window", "progress": False, "batch_events": 20}


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "qcd"
    paths = generate("qcd", 30, out, seed=4, shard_size=15, **FAST)
    return out, paths


def test_same_seed_gives_identical_files_and_other_seed_differs(two_shards, tmp_path):
    _, paths = two_shards
    (again,) = generate("qcd", 15, tmp_path / "again.parquet", seed=4, shard_size=15, **FAST)
    assert again.read_bytes() == paths[0].read_bytes()  # no time-dependent metadata
    (other,) = generate("qcd", 15, tmp_path / "other.parquet", seed=5, shard_size=15, **FAST)
    assert not np.array_equal(ak.to_numpy(read_jets(other).jet_E), ak.to_numpy(read_jets(again).jet_E))


def test_shards_have_distinct_seeds_and_full_metadata(two_shards):
    _, paths = two_shards
    assert [p.name for p in paths] == ["shard-00000.parquet", "shard-00001.parquet"]
    metas = [read_metadata(p) for p in paths]
    assert [m["shard_seed"] for m in metas] == [4000, 4001]
    assert "Random:seed = 4001" in metas[1]["pythia_settings"]
    assert metas[0]["settings"]["mode"] == "window" and metas[0]["settings"]["R"] == 0.8
    assert set(metas[0]["versions"]) >= {"pythia8mc", "fastjet", "hepnn"}
    assert [len(read_jets(p)) for p in paths] == [15, 15]
    e0, e1 = (ak.to_numpy(read_jets(p).jet_E) for p in paths)
    assert not np.isin(e0, e1).any()  # independent shards, not copies


def test_resume_regenerates_only_missing_shards(two_shards):
    out, paths = two_shards
    before = paths[0].stat().st_mtime_ns
    content = paths[1].read_bytes()
    paths[1].unlink()
    (out / ".shard-00001.parquet.abc.tmp").write_bytes(b"half a file from a killed run")
    again = generate("qcd", 30, out, seed=4, shard_size=15, **FAST)
    assert again == paths
    assert paths[0].stat().st_mtime_ns == before  # skipped, not rewritten
    assert paths[1].read_bytes() == content  # regenerated identically


def test_resume_with_other_settings_is_a_clear_error(two_shards):
    out, _ = two_shards
    with pytest.raises(ConfigError, match="was generated with pt_max=650.0, not 700.0"):
        generate("qcd", 30, out, seed=4, shard_size=15, pt_max=700.0, **FAST)


@pytest.mark.slow  # spawning two worker processes costs several seconds
def test_two_workers_give_the_same_shards_as_one(two_shards, tmp_path):
    _, paths = two_shards
    parallel = generate("qcd", 30, tmp_path / "par", seed=4, shard_size=15, workers=2, **FAST)
    assert [p.read_bytes() for p in parallel] == [p.read_bytes() for p in paths]


def test_toptagging_h5_format(tmp_path):
    import h5py

    (path,) = generate("qcd", 8, tmp_path / "qcd.h5", seed=2, fmt="toptagging-h5", **FAST)
    assert path.with_name("qcd.h5.json").exists()
    with h5py.File(path) as f:
        assert "table" in f
    jets = read_jets(path)
    assert len(jets) == 8 and np.all(ak.to_numpy(jets.label) == 0)
    # resume: the sidecar marks it complete
    mtime = path.stat().st_mtime_ns
    generate("qcd", 8, tmp_path / "qcd.h5", seed=2, fmt="toptagging-h5", **FAST)
    assert path.stat().st_mtime_ns == mtime
