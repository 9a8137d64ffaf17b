"""Lorentz-symmetric models: the symmetry beam spurions break, LoLa's fixed-size input, and learning
on the sample (full Lorentz invariance of every model tagged ``lorentz``: tests/models/test_contract.py)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from hepnn.data.batch import Batch
from hepnn.data.jagged import JaggedJets
from hepnn.nn.lorentz import boost_matrix, rotation_matrix, transform
from hepnn.registry import create_model
from tests.conftest import assert_beats_mass, random_jets, train_metrics


def make_batch(n_jets=5, extra_pad=3, seed=0) -> Batch:
    jets = JaggedJets.from_awkward(random_jets(n_jets, seed=seed, max_particles=10), target="label")
    padded = jets.pad(np.arange(n_jets))
    p4 = torch.from_numpy(padded.p4).double()
    mask = torch.from_numpy(padded.mask)
    p4 = torch.cat([p4, torch.zeros(n_jets, extra_pad, 4, dtype=p4.dtype)], 1)
    mask = torch.cat([mask, torch.zeros(n_jets, extra_pad, dtype=torch.bool)], 1)
    return Batch(p4=p4, mask=mask)


def model(name: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, **kw).double().eval()


def transformed(batch: Batch, lam: torch.Tensor) -> Batch:
    p4 = transform(batch.p4, lam) * batch.mask[..., None]  # padded particles stay exactly zero
    return Batch(p4=p4, mask=batch.mask)


@pytest.mark.parametrize("name", ["lorentznet_lite", "pelican_lite"])
def test_spurions_keep_rotations_about_the_beam_only(name):
    net, batch = model(name, spurions=True), make_batch()
    rot_z = rotation_matrix(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), 1.1)
    boost_z = boost_matrix(torch.tensor([0.0, 0.0, 0.6], dtype=torch.float64))
    rot_x = rotation_matrix(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), 0.7)
    with torch.no_grad():
        a = net(batch)
        torch.testing.assert_close(net(transformed(batch, rot_z)), a, rtol=1e-6, atol=1e-8)
        # the beams (1, 0, 0, ±1) are not invariant under these, so the output must change
        assert not torch.allclose(net(transformed(batch, boost_z)), a, rtol=1e-4, atol=1e-6)
        assert not torch.allclose(net(transformed(batch, rot_x)), a, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["lorentznet_lite", "pelican_lite"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_packed_layout_equals_dense_layout(name, mode, monkeypatch):
    """Training and eager inference run on packed real pairs (and LorentzNet's fused, chunked edge
    MLPs); ONNX export runs the dense layout. Outputs, gradients and batch-norm statistics agree."""
    import hepnn.nn.edge_mlp as edge_mlp

    monkeypatch.setattr(edge_mlp, "CHUNK", 29)  # many chunks, some partial
    batch = make_batch(n_jets=7, seed=2)
    batch.mask[3, 1:] = False  # a one-particle jet
    batch.mask[4] = False  # an empty jet (two beams only, with spurions)
    batch.p4 = batch.p4 * batch.mask[..., None]
    net = model(name, dropout=0.0)
    results = []
    for forward in ("forward_dense", "forward_packed"):
        twin = copy.deepcopy(net)
        getattr(twin, mode)()
        out = getattr(twin, forward)(batch)
        out.pow(2).sum().backward()
        results.append((out, [p.grad for p in twin.parameters()], list(twin.buffers())))
    (a, ga, ba), (b, gb, bb) = results
    torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    for x, y in zip(gb, ga):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)
    for x, y in zip(bb, ba):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


def test_lola_runs_and_uses_a_fixed_number_of_particles():
    net = model("lola", n_particles=6, n_combinations=3)
    batch = make_batch(extra_pad=0)  # up to 10 particles: truncated to the first 6
    flipped = batch.p4.clone()
    flipped[:, 6:, 1:] *= -1  # particles after the 6th: new momenta, same energies (same jet energy)
    with torch.no_grad():
        out = net(batch)
        assert out.shape == (5, 2) and torch.isfinite(out).all()
        torch.testing.assert_close(net(Batch(p4=flipped, mask=batch.mask)), out, rtol=1e-12, atol=1e-12)
        first = batch.p4.clone()
        first[:, 0, 1:] *= -1  # the first 6 do enter
        assert not torch.allclose(net(Batch(p4=first, mask=batch.mask)), out)
        # LoLa's pT and E features are frame dependent: a boost changes the output
        boosted = transformed(batch, boost_matrix(torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64)))
        assert not torch.allclose(net(boosted), out)


def learn(config: str, tmp_path, overrides: list[str]) -> dict:
    return train_metrics(config, overrides, tmp_path / "run")  # the whole sample (5000 jets)


@pytest.mark.slow
def test_lola_learns_top_tagging(sample_path, tmp_path):
    """Measured AUC 0.937 against the jet mass's 0.922 (6 epochs, seed 0)."""
    metrics = learn("configs/top_tagging/lola.yaml", tmp_path, ["train.epochs=6"])
    assert_beats_mass(metrics)


@pytest.mark.slow
def test_lorentznet_lite_learns_top_tagging(sample_path, tmp_path):
    """Measured AUC 0.944 against the jet mass's 0.922 (4 epochs of batch 64, no dropout, lr 0.005, N ≤ 32)."""
    metrics = learn(
        "configs/top_tagging/lorentznet.yaml", tmp_path,
        ["train.epochs=4", "model.name=lorentznet_lite", "model.params={dropout: 0.0}", "data.max_particles=32",
         "data.batch_size=64", "train.optimizer.lr=0.005"],
    )  # fmt: skip
    assert_beats_mass(metrics)


@pytest.mark.slow
def test_pelican_lite_learns_top_tagging(sample_path, tmp_path):
    """Measured AUC 0.929 against the jet mass's 0.922 (1 epoch, N ≤ 32, seed 0)."""
    metrics = learn(
        "configs/top_tagging/pelican.yaml", tmp_path,
        ["train.epochs=1", "model.name=pelican_lite", "model.params={}", "data.max_particles=32"],
    )  # fmt: skip
    assert_beats_mass(metrics)
