"""Padding, bucketing, BatchBuilder and the in-memory JetLoader, against plain-Python references."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch

from hepnn.data.jagged import JaggedJets, bucket_batches, padding_waste, plain_batches
from hepnn.data.loader import BatchBuilder, JetLoader, choose_loader
from hepnn.errors import ConfigError


def make_jets(n: int = 40, seed: int = 0, lo: int = 1, hi: int = 12) -> ak.Array:
    """Jets as Python lists of particles, pT-sorted, with a ``jet_id`` column to trace them."""
    g = np.random.default_rng(seed)
    rows = []
    for j in range(n):
        k = int(g.integers(lo, hi + 1))
        pt = np.sort(g.uniform(1, 100, k))[::-1]
        phi, eta = g.uniform(-3, 3, k), g.normal(0, 1, k)
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        rows.append({
            "part_E": list(np.sqrt(px**2 + py**2 + pz**2)), "part_px": list(px), "part_py": list(py),
            "part_pz": list(pz), "part_charge": [int(c) for c in g.integers(-1, 2, k)],
            "part_pid": [int(p) for p in g.choice([211, 22, 130], k)],
            "label": j % 2, "jet_id": float(j),
        })
    return ak.Array(rows)


def reference_pad(arrays: ak.Array, jets, n_max: int):
    """Plain-list padding: (B, n_max, 4) p4, (B, n_max) mask, charge."""
    lists = arrays.to_list()
    p4, mask, charge = [], [], []
    for j in jets:
        r = lists[j]
        rows = [[r["part_E"][i], r["part_px"][i], r["part_py"][i], r["part_pz"][i]] for i in range(len(r["part_E"]))]
        rows, q = rows[:n_max], r["part_charge"][:n_max]
        pad = n_max - len(rows)
        p4.append(rows + [[0.0] * 4] * pad)
        mask.append([True] * len(rows) + [False] * pad)
        charge.append(q + [0] * pad)
    return np.array(p4, dtype=np.float32), np.array(mask), np.array(charge)


@pytest.fixture()
def arrays():
    return make_jets()


@pytest.fixture()
def jets(arrays):
    return JaggedJets.from_awkward(arrays, target="jet_id")


def test_pad_matches_reference(arrays, jets):
    idx = np.array([5, 0, 17, 17, 39, 2])
    n = max(len(arrays["part_E"][j]) for j in idx)
    ref_p4, ref_mask, ref_q = reference_pad(arrays, idx, n)
    out = jets.pad(idx)
    assert out.p4.dtype == np.float32 and out.mask.dtype == bool
    np.testing.assert_array_equal(out.p4, ref_p4)
    np.testing.assert_array_equal(out.mask, ref_mask)
    np.testing.assert_array_equal(out.charge, ref_q)
    assert out.pid.shape == out.mask.shape and np.all(out.pid[~out.mask] == 0)


def test_pad_uses_the_batch_maximum(jets):
    counts = jets.counts
    idx = np.flatnonzero(counts <= 4)[:5]
    out = jets.pad(idx, max_particles=200)
    assert out.mask.shape == (len(idx), counts[idx].max())
    assert out.mask.shape[1] <= 4


def test_cap_keeps_the_hardest_particles(arrays, jets):
    idx = np.flatnonzero(jets.counts > 5)[:4]
    out = jets.pad(idx, max_particles=3)
    ref_p4, ref_mask, _ = reference_pad(arrays, idx, 3)
    np.testing.assert_array_equal(out.p4, ref_p4)
    assert out.mask.all()
    pt_kept = np.hypot(out.p4[..., 1], out.p4[..., 2]).min(axis=1)
    pt_all = [np.hypot(np.asarray(arrays["part_px"][j]), np.asarray(arrays["part_py"][j])) for j in idx]
    assert all(kept >= np.sort(p)[-3] - 1e-3 for kept, p in zip(pt_kept, pt_all))


def test_take_and_concat_preserve_jets(arrays, jets):
    order = np.array([3, 1, 30])
    part = jets.take(order)
    both = JaggedJets.concat([part, jets.take(np.array([7]))])
    np.testing.assert_array_equal(both.y, [3.0, 1.0, 30.0, 7.0])
    ref_p4, ref_mask, _ = reference_pad(arrays, [3, 1, 30, 7], int(jets.counts[[3, 1, 30, 7]].max()))
    out = both.pad(np.arange(4))
    np.testing.assert_array_equal(out.p4, ref_p4)
    np.testing.assert_array_equal(out.mask, ref_mask)


def test_padding_waste_by_hand():
    counts = np.array([1, 3, 2, 2])
    assert padding_waste(counts, [np.array([0, 1]), np.array([2, 3])]) == pytest.approx(1 - 8 / 10)
    assert padding_waste(counts, [np.array([0, 1])], max_particles=2) == pytest.approx(1 - 3 / 4)


@pytest.mark.parametrize("drop_last", [False, True])
def test_bucketing_covers_every_jet_once(drop_last):
    counts = np.random.default_rng(0).integers(30, 101, 1000)
    batches = bucket_batches(counts, 64, shuffle=True, seed=3, pool=5, drop_last=drop_last)
    seen = np.concatenate(batches)
    expected = 1000 // 64 * 64 if drop_last else 1000
    assert len(seen) == expected and len(np.unique(seen)) == expected
    assert all(len(b) == 64 for b in batches[:-1] if len(b) != 1000 % 64)
    again = bucket_batches(counts, 64, shuffle=True, seed=3, pool=5, drop_last=drop_last)
    other = bucket_batches(counts, 64, shuffle=True, seed=4, pool=5, drop_last=drop_last)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))


def test_bucketing_lowers_waste():
    counts = np.random.default_rng(1).integers(30, 101, 20_000)  # 30-100 particles per jet
    bucketed = padding_waste(counts, bucket_batches(counts, 256, seed=0))
    plain = padding_waste(counts, plain_batches(len(counts), 256, shuffle=True, seed=0))
    assert bucketed < 0.15 < plain


def test_builder_jet_level_does_not_pad(monkeypatch):
    jets = JaggedJets.from_awkward(make_jets(8), target="label")
    jets.jet = np.arange(16, dtype=np.float32).reshape(8, 2)

    def no_pad(*a, **k):
        raise AssertionError("a jet-level batch must not pad")

    monkeypatch.setattr(JaggedJets, "pad", no_pad)
    batch = BatchBuilder(fields=("jet", "y"), jet_preprocessor=lambda a: a * 2)(jets, np.array([3, 1]))
    assert batch.x is None and batch.mask is None and batch.p4 is None
    np.testing.assert_array_equal(batch.jet.numpy(), [[12, 14], [4, 6]])
    assert batch.y.dtype == torch.int64 and batch.y.tolist() == [1, 1]


def test_builder_features_preprocess_real_particles_only(arrays, jets):
    idx = np.array([0, 1, 2, 3])
    builder = BatchBuilder(fields=("x", "mask", "y"), particle_features=["px", "py"],
                           particle_preprocessor=lambda a: a + 1.0, task="regress")
    batch = builder(jets, idx)
    _, ref_mask, _ = reference_pad(arrays, idx, int(jets.counts[idx].max()))
    ref_p4, _, _ = reference_pad(arrays, idx, int(jets.counts[idx].max()))
    np.testing.assert_array_equal(batch.mask.numpy(), ref_mask)
    assert batch.p4 is None and batch.y.dtype == torch.float32
    np.testing.assert_allclose(batch.x[..., 0].numpy()[ref_mask], ref_p4[..., 1][ref_mask] + 1, rtol=1e-6)
    np.testing.assert_allclose(batch.x[..., 1].numpy()[ref_mask], ref_p4[..., 2][ref_mask] + 1, rtol=1e-6)
    assert np.all(batch.x.numpy()[~ref_mask] == 0)


def test_builder_image_only(jets):
    batch = BatchBuilder(fields=("image", "y"), image_size=8)(jets, np.array([0, 5, 9]))
    assert batch.image.shape == (3, 1, 8, 8) and batch.x is None and batch.mask is None


def test_builder_rejects_unknown_field():
    with pytest.raises(ConfigError, match="pairs"):
        BatchBuilder(fields=("x", "pairs"), particle_features=["px"])


def epoch_ids(loader) -> list[list[float]]:
    return [b.y.tolist() for b in loader]


def test_loader_covers_every_jet_once_per_epoch(jets):
    loader = JetLoader(jets, BatchBuilder(fields=("mask", "y"), task="regress"), batch_size=6, seed=1)
    assert len(loader) == 7
    first, second = epoch_ids(loader), epoch_ids(loader)
    for ids in (first, second):
        assert sorted(sum(ids, [])) == list(range(40))
    assert first != second  # a new epoch reshuffles
    loader.set_epoch(0)
    assert epoch_ids(loader) == first  # seed + epoch determines the order
    assert 0 < loader.wait_fraction <= 1


def test_unshuffled_loader_keeps_file_order_without_bucketing(jets):
    loader = JetLoader(jets, BatchBuilder(fields=("p4", "y"), task="regress"), batch_size=16, shuffle=False,
                       bucketing=False)
    assert sum(epoch_ids(loader), []) == list(range(40))


def test_unshuffled_bucketed_loader_sorts_and_predictions_return_in_file_order(jets):
    from hepnn.train.engine import predict_outputs

    builder = BatchBuilder(fields=("p4", "mask", "y"), task="regress")
    loader = JetLoader(jets, builder, batch_size=8, shuffle=False, pool=10**6)
    ids = np.array(sum(epoch_ids(loader), []), dtype=np.int64)  # y = jet_id
    assert sorted(ids) == list(range(40)) and list(ids) == list(loader.order())
    assert list(jets.counts[ids]) == sorted(jets.counts)  # one pool: sorted by multiplicity

    class JetIndex(torch.nn.Module):  # "predicts" each jet's particle count from its mask
        def forward(self, batch):
            return batch.mask.sum(1, keepdim=True).float()

    class Task:
        def outputs(self, model, batch):
            return {"pred": model(batch)[:, 0], "y": batch.y, "loss": torch.zeros(1)}

    out = predict_outputs(JetIndex(), Task(), loader)
    np.testing.assert_array_equal(out["pred"], jets.counts)  # file order again
    assert out["loss"].shape == (len(loader),)  # one loss per batch, not reordered


def test_resume_yields_the_same_remaining_batches(jets):
    def make():
        return JetLoader(jets, BatchBuilder(fields=("x", "mask", "y"), particle_features=["px"], task="regress"),
                         batch_size=6, seed=7)

    full = make()
    full.set_epoch(2)
    expected = epoch_ids(full) + epoch_ids(full)  # epochs 2 and 3

    run = make()
    run.set_epoch(2)
    it = iter(run)
    consumed = [next(it).y.tolist() for _ in range(3)]
    state = run.state_dict()
    assert state["epoch"] == 2 and state["batch"] == 3

    resumed = make()
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # the engine calling set_epoch again keeps the position
    assert consumed + epoch_ids(resumed) + epoch_ids(resumed) == expected


def test_resume_rejects_other_data(jets):
    loader = JetLoader(jets, BatchBuilder(fields=("y",)), batch_size=6)
    with pytest.raises(ConfigError, match="batch_size"):
        loader.load_state_dict({"epoch": 0, "batch": 1, "batch_size": 8})


def test_choose_loader_modes():
    assert choose_loader(1_000, 50, 4, memory_limit_gb=1.0) == "memory"
    assert choose_loader(10**9, 50, 4, memory_limit_gb=1.0) == "stream"
    assert choose_loader(10**9, 50, 4, memory_limit_gb=1.0, mode="memory") == "memory"
    assert choose_loader(10, 50, 4, memory_limit_gb=1.0, mode="stream") == "stream"
    with pytest.raises(ConfigError):
        choose_loader(10, 50, 4, memory_limit_gb=1.0, mode="disk")


def test_trim_pads_to_the_quantile_and_keeps_the_hardest():
    jets = JaggedJets.from_awkward(make_jets(40, lo=1, hi=30), target="label")
    idx = np.arange(40)
    counts = jets.counts[idx]
    full = BatchBuilder(fields=("p4", "mask"))(jets, idx)
    trimmed = BatchBuilder(fields=("p4", "mask"), trim=0.5)(jets, idx)
    n = int(np.ceil(np.quantile(counts, 0.5)))
    assert trimmed.mask.shape == (40, n) < full.mask.shape
    assert trimmed.mask.sum(1).tolist() == np.minimum(counts, n).tolist()
    torch.testing.assert_close(trimmed.p4, full.p4[:, :n])  # pT-ordered: the softest particles go
