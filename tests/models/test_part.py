"""Particle Transformer: pair features enter the attention, empty/padded rows stay finite; learning."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from hepnn.data.batch import Batch
from hepnn.data.features import particle_features
from hepnn.data.jagged import JaggedJets
from hepnn.registry import create_model
from tests.conftest import assert_beats_mass, random_jets, train_metrics

FEATURES = ["deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr"]


def make_batch(n_jets=5, seed=0) -> Batch:
    jets = JaggedJets.from_awkward(random_jets(n_jets, seed=seed, max_particles=10), target="label")
    padded = jets.pad(np.arange(n_jets))
    p4 = torch.from_numpy(padded.p4).double()
    mask = torch.from_numpy(padded.mask)
    return Batch(x=particle_features(p4, mask, FEATURES), mask=mask, p4=p4)


def lite(**kw):
    torch.manual_seed(0)
    return create_model("part_lite", in_features=len(FEATURES), **kw).double().eval()


def test_pair_features_change_the_output():
    """Same particle features x, different four-momenta: only the pair bias U can see the change."""
    model, batch = lite(), make_batch()
    other = Batch(x=batch.x, mask=batch.mask, p4=batch.p4 * torch.linspace(0.5, 2.0, batch.p4.shape[1])[None, :, None])
    with torch.no_grad():
        assert not torch.allclose(model(batch), model(other))


def test_empty_and_single_particle_jets_are_finite():
    model, batch = lite(), make_batch()
    batch.mask[0] = False  # an empty jet: every particle row is padded
    batch.mask[1, 1:] = False  # a one-particle jet
    batch.x = batch.x * batch.mask[..., None]
    batch.p4 = batch.p4 * batch.mask[..., None]
    model.train()  # also the masked batch-norm statistics
    out = model(batch)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_float32_matches_float64():
    model, batch = lite(), make_batch()
    with torch.no_grad():
        ref = model(batch)
        out = model.float()(Batch(x=batch.x.float(), mask=batch.mask, p4=batch.p4.float()))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)


def test_paper_size():
    n = sum(p.numel() for p in create_model("part", in_features=17).parameters())
    assert 2.10e6 < n < 2.18e6  # the paper quotes 2.14 M parameters for ParT on JetClass (17 inputs)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_packed_layout_equals_dense_layout(mode):
    """The packed, grouped forward (training and eager use) is the dense one: outputs, gradients and
    the pair embedding's running statistics agree (float64, dropout off so that both draw nothing)."""
    torch.manual_seed(0)
    model = create_model("part_lite", in_features=len(FEATURES), num_layers=2).double()
    batch = make_batch(n_jets=24, seed=3)  # 3 groups of 8 jets
    batch.mask[2] = False  # an empty jet
    batch.x, batch.p4 = batch.x * batch.mask[..., None], batch.p4 * batch.mask[..., None]
    model.attention_groups = 3
    results = []
    for forward in (model.forward_dense, model.forward_packed):
        twin = copy.deepcopy(model)
        getattr(twin, mode)()
        out = getattr(twin, forward.__name__)(batch)
        out.pow(2).sum().backward()
        results.append((out, [p.grad for p in twin.parameters()], [b.clone() for b in twin.buffers()]))
    (a, ga, ba), (b, gb, bb) = results
    torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    for x, y in zip(gb, ga):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-10)
    for x, y in zip(bb, ba):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_output_does_not_depend_on_the_grouping():
    model, batch = lite(), make_batch(n_jets=40, seed=4)
    outs = []
    for groups in (1, 2, 5):  # at least 8 jets per group
        model.attention_groups = groups
        with torch.no_grad():
            outs.append(model(batch))
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], rtol=1e-12, atol=1e-12)


def test_attention_groups_follow_the_device_unless_set(monkeypatch):
    """None (the default): 16 multiplicity groups on a CPU, 1 on a GPU (where each group costs kernel
    launches: 3.4x slower with 16 on an H200); a value set in the config is used as given."""
    from hepnn.models import part as part_module

    assert part_module.attention_groups_for(torch.device("cpu")) == 16
    assert part_module.attention_groups_for(torch.device("cuda")) == 1
    asked = []
    from_mask = part_module.JetGroups.from_mask
    monkeypatch.setattr(part_module.JetGroups, "from_mask",
                        staticmethod(lambda mask, groups: asked.append(groups) or from_mask(mask, groups)))
    model, batch = lite(), make_batch(n_jets=16, seed=5)
    assert model.attention_groups is None
    with torch.no_grad():
        model(batch)
        model.attention_groups = 2
        model(batch)
    assert asked == [16, 2]


@pytest.mark.slow
def test_part_lite_learns_top_tagging(sample_path, tmp_path):
    """Measured AUC 0.938 against the jet mass's 0.922 (3 epochs of batch 64, N ≤ 32, 2 blocks, seed 0)."""
    metrics = train_metrics("configs/top_tagging/part_lite.yaml",
                            ["train.epochs=3", "data.max_particles=32", "model.params.num_layers=2", "data.batch_size=64"],
                            tmp_path / "run")
    assert_beats_mass(metrics)
