"""StreamingJetLoader: every jet once per epoch, bounded buffer, resume, background worker."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepnn.data.io import write_parquet
from hepnn.data.jagged import JaggedJets
from hepnn.data.loader import BatchBuilder, JetLoader
from hepnn.data.stream import StreamingJetLoader

N_FILES, PER_FILE = 2, 200


def write_files(folder, n_files: int = N_FILES, per_file: int = PER_FILE) -> list[str]:
    """Parquet shards whose ``jet_id`` column numbers the jets 0..n-1 across files."""
    g = np.random.default_rng(0)
    paths = []
    for f in range(n_files):
        counts = g.integers(1, 20, per_file)
        flat = g.uniform(1, 50, (int(counts.sum()), 4)).astype(np.float32)
        cols = {c: ak.unflatten(np.ascontiguousarray(flat[:, i]), counts) for i, c in enumerate(("part_E", "part_px", "part_py", "part_pz"))}
        cols["label"] = np.arange(per_file) % 2
        cols["jet_id"] = np.arange(f * per_file, (f + 1) * per_file, dtype=np.float32)
        path = folder / f"shard{f}.parquet"
        write_parquet(ak.zip(cols, depth_limit=1), path, row_group_size=50)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("stream"))


def builder() -> BatchBuilder:
    return BatchBuilder(fields=("x", "mask", "y"), particle_features=["px", "log_pt"], task="regress")


def stream(files, **kw) -> StreamingJetLoader:
    kw = {"batch_size": 16, "chunk_size": 50, "shuffle_buffer": 50, "seed": 5, "workers": 0,
          "target": "jet_id", **kw}
    return StreamingJetLoader(files, builder(), **kw)


def epoch_ids(loader) -> list[list[int]]:
    return [[int(v) for v in b.y.tolist()] for b in loader]


def test_every_jet_once_per_epoch_with_bounded_buffer(files):
    loader = stream(files)
    n = N_FILES * PER_FILE
    first, second = epoch_ids(loader), epoch_ids(loader)
    for ids in (first, second):
        assert sorted(sum(ids, [])) == list(range(n))
        assert len(ids) == len(loader) == -(-n // 16)
    assert first != second
    assert 0 < loader.max_buffered_jets <= loader.buffer_bound < n / 2  # bounded by chunks, not data
    assert sum(sum(first, [])[:100]) != sum(range(100))  # the first jets are not the file's first


def test_unshuffled_stream_keeps_file_order(files):
    loader = stream(files, shuffle=False)
    assert sum(epoch_ids(loader), []) == list(range(N_FILES * PER_FILE))


def test_drop_last_and_max_jets(files):
    loader = stream(files, max_jets=250, drop_last=True)
    ids = epoch_ids(loader)
    assert len(ids) == len(loader) == 250 // 16 and all(len(b) == 16 for b in ids)
    assert set(sum(ids, [])) <= set(range(250)) and len(set(sum(ids, []))) == 250 // 16 * 16


def test_stream_resume_yields_the_same_remaining_batches(files):
    kw = {"chunk_size": 100}
    full = stream(files[:1], **kw)
    full.set_epoch(1)
    expected = epoch_ids(full) + epoch_ids(full)
    run = stream(files[:1], **kw)
    run.set_epoch(1)
    it = iter(run)
    consumed = [[int(v) for v in next(it).y.tolist()] for _ in range(5)]
    resumed = stream(files[:1], **kw)
    resumed.load_state_dict(run.state_dict())
    assert consumed + epoch_ids(resumed) + epoch_ids(resumed) == expected


@pytest.mark.slow
def test_background_worker_streams_every_jet(files):
    loader = stream(files, workers=1, prefetch=2)
    try:
        for _ in range(2):  # the spawned worker persists across epochs and sees the new epoch
            ids = sum(epoch_ids(loader), [])
            assert sorted(ids) == list(range(N_FILES * PER_FILE))
        assert 0 < loader.max_buffered_jets <= loader.buffer_bound
        assert 0 <= loader.wait_fraction <= 1
    finally:
        loader.close()


def test_memory_and_stream_give_the_same_jets(files):
    """Unshuffled, the streamed file and the file read into memory give the same jets in file order."""
    from hepnn.data.io import read_jets

    kw = {"batch_size": 32, "shuffle": False, "bucketing": False}
    mem = JetLoader(JaggedJets.from_awkward(read_jets(files[:1]), target="jet_id"), builder(), **kw)
    streamed = StreamingJetLoader(files[:1], builder(), chunk_size=50, target="jet_id", **kw)
    streamed.workers = 0
    assert sum(epoch_ids(streamed), []) == sum(epoch_ids(mem), []) == list(range(PER_FILE))


def test_flat_parquet_reader_equals_the_awkward_reader(tmp_path):
    from hepnn.data.io import read_jets
    from hepnn.data.io_flat import parquet_units, read_unit
    from hepnn.data.jagged import JaggedJets
    from tests.conftest import random_jets

    arrays = random_jets(120, seed=3)
    arrays = ak.with_field(arrays, ak.values_astype(arrays.part_E > 30, np.int8), "part_charge")
    path = tmp_path / "j.parquet"
    write_parquet(arrays, path, row_group_size=50)
    units = parquet_units([str(path)])
    assert [u.rows for u in units] == [50, 50, 20]
    flat = JaggedJets.concat([j for u in units for j in read_unit(u, 32)])
    ref = JaggedJets.from_awkward(read_jets(path), target="label")
    np.testing.assert_array_equal(flat.offsets, ref.offsets)
    np.testing.assert_array_equal(flat.particles_p4, ref.particles_p4)
    np.testing.assert_array_equal(flat.particles_charge, ref.particles_charge)
    np.testing.assert_array_equal(flat.y, ref.y)
    assert flat.y.dtype == np.int64 and flat.particles_p4.dtype == np.float32


@pytest.mark.parametrize("damage, message", [
    ("nan", "non-finite value .* row 7"), ("empty", "zero constituents"), ("label", "labels must be integers"),
    ("null", "missing \\(null\\) value"),
])
def test_flat_reader_checks_like_the_awkward_reader(tmp_path, damage, message):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hepnn.data.io_flat import parquet_units, read_unit
    from hepnn.errors import DataError

    counts = [3, 2, 4, 1, 2, 3, 2, 5, 1, 2]
    e = [[float(i + k + 1) for k in range(c)] for i, c in enumerate(counts)]
    label = [i % 2 for i in range(10)]
    if damage == "nan":
        e[7][1] = float("nan")
    elif damage == "empty":
        e[4] = []
    elif damage == "label":
        label = [0.5 if i == 2 else float(v) for i, v in enumerate(label)]
    cols = {c: pa.array(e, type=pa.list_(pa.float32())) for c in ("part_E", "part_px", "part_py", "part_pz")}
    if damage == "null":
        cols["part_px"] = pa.array([None if i == 5 else v for i, v in enumerate(e)], type=pa.list_(pa.float32()))
    cols["label"] = pa.array(label)
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(cols), path)
    with pytest.raises(DataError, match=message):
        [j for u in parquet_units([str(path)]) for j in read_unit(u, 4)]


@pytest.mark.slow
def test_several_readers_stream_every_jet_and_resume_exactly(files):
    """Two reader processes, each on its own row groups: every jet once per epoch, and a run resumed
    mid-epoch (from another loader, as after a restart) continues with the same batches."""
    kw = {"workers": 2, "prefetch": 2, "shuffle_buffer": 20}
    full = stream(files, **kw)
    try:
        expected = epoch_ids(full) + epoch_ids(full)
        for ids in (expected[:len(full)], expected[len(full):]):
            assert sorted(sum(ids, [])) == list(range(N_FILES * PER_FILE))
        assert len(full) == sum(full.shard_batches) >= -(-N_FILES * PER_FILE // 16)
    finally:
        full.close()
    run = stream(files, **kw)
    try:
        it = iter(run)
        consumed = [[int(v) for v in next(it).y.tolist()] for _ in range(7)]
        state = run.state_dict()
    finally:
        run.close()
    resumed = stream(files, **kw)
    try:
        resumed.load_state_dict(state)
        assert consumed + epoch_ids(resumed) + epoch_ids(resumed) == expected
    finally:
        resumed.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_data_workers_reaches_the_training_stream(files, tmp_path, workers):
    """data.workers sets the training stream's reader processes (hepnn.runs.make_loaders)."""
    from pathlib import Path

    from hepnn.config import load_config
    from hepnn.data.dataset import fit_preprocessors, load_splits
    from hepnn.errors import ConfigError
    from hepnn.runs import make_loaders as fit_loaders

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "configs/top_tagging/pfn.yaml", [
        f"data.train=[{files[0]}, {files[1]}]", f"data.val={files[0]}", f"data.test={files[1]}",
        "data.loader=stream", "data.chunk_size=50", "data.target=jet_id", f"data.workers={workers}"])
    fields = ("x", "mask", "y")
    splits = load_splits(cfg.data, fields=fields, task="regress", seed=0, mode="stream")
    pre = fit_preprocessors(cfg.preprocess, splits.train_sample, data=cfg.data, fields=fields, seed=0)
    train, _ = fit_loaders(cfg, splits, pre, kind="regress", fields=fields)
    assert isinstance(train, StreamingJetLoader) and train.workers == workers
    assert len(train.shard_batches) == max(workers, 1)
    with pytest.raises(ConfigError, match="data.workers"):
        load_config(root / "configs/top_tagging/pfn.yaml", ["data.workers=-1"])
