"""Contract tests derived from each registered model's spec (a new model is covered for free).

Every torch model: the output shape its task reads ((B, num_classes) logits for a factory with
``num_classes``, checked at 3 classes; an autoencoder's reconstruction has its target's shape),
finite outputs, a gradient on every parameter, padding invariance, state-dict round trip.
By tag: ``permutation`` -> invariance under reordering particles; ``lorentz`` -> invariance under
Lorentz transformations (the beam-axis rotations only while beam spurions are on); ``irc_safe`` ->
unchanged by a soft particle or a collinear split. By kind: ``generative`` models satisfy the
``Generator`` protocol and sample finite jets; ``tree`` models the ``TreeModel`` protocol.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hepnn.data.batch import Batch
from hepnn.data.features import feature_dim, particle_features
from hepnn.data.jagged import JaggedJets
from hepnn.nn.lorentz import boost_matrix, rotation_matrix, transform
from hepnn.registry import (Generator, ParticleGenerator, TreeModel, create_model, get_model_spec,
                            list_models)
from tests.conftest import random_jets

FEATURES = ["deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr"]
N_JET_FEATURES = 5


def models_where(test) -> list[str]:
    return [m for m in list_models() if test(get_model_spec(m))]


TORCH_MODELS = models_where(lambda s: s.is_torch)
CLASSIFIERS = models_where(lambda s: s.is_torch and "num_classes" in s.params())


def input_kwargs(name: str, **kw) -> dict:
    """Input sizes for the factory (and ``kw``, for the parameters it has)."""
    params = get_model_spec(name).params()
    out = {k: v for k, v in kw.items() if k in params}
    if "in_features" in params:
        out["in_features"] = feature_dim(FEATURES)
    if "jet_features" in params:
        out["jet_features"] = N_JET_FEATURES
    return out


def batch_from_p4(name: str, p4: torch.Tensor, mask: torch.Tensor, seed: int = 0) -> Batch:
    """A Batch with the fields ``name`` reads, all derived from ``p4`` and ``mask`` (jet features random)."""
    spec = get_model_spec(name)
    n_jets = p4.shape[0]
    batch = Batch(mask=mask, y=torch.zeros(n_jets, dtype=torch.long))
    if "x" in spec.inputs:
        batch.x = particle_features(p4, mask, FEATURES)
    if "p4" in spec.inputs:
        batch.p4 = p4
    if "jet" in spec.inputs:
        batch.jet = torch.randn(n_jets, N_JET_FEATURES, generator=torch.Generator().manual_seed(seed), dtype=p4.dtype)
    if "image" in spec.inputs:
        from hepnn.data.images import jet_images

        batch.image = jet_images(p4, mask).to(p4.dtype)
    return batch


def jets_p4(n_jets: int = 6, extra_pad: int = 0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random jets as (p4 (B, N, 4) float64, mask (B, N)), padded with ``extra_pad`` empty slots."""
    jets = JaggedJets.from_awkward(random_jets(n_jets, seed=seed, max_particles=12), target="label")
    padded = jets.pad(np.arange(n_jets))
    p4, mask = torch.from_numpy(padded.p4).double(), torch.from_numpy(padded.mask)
    p4 = torch.cat([p4, torch.zeros(n_jets, extra_pad, 4, dtype=p4.dtype)], dim=1)
    mask = torch.cat([mask, torch.zeros(n_jets, extra_pad, dtype=torch.bool)], dim=1)
    return p4, mask


def make_batch(name: str, n_jets: int = 6, extra_pad: int = 0, seed: int = 0) -> Batch:
    return batch_from_p4(name, *jets_p4(n_jets, extra_pad, seed), seed=seed)


def build(name: str, seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **input_kwargs(name, **kw)).double().eval()


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_output_shape_finite_and_gradients(name):
    model = build(name, num_classes=3).train()
    batch = make_batch(name)
    out = model(batch)
    if name in CLASSIFIERS:
        assert out.shape == (len(batch), 3)
    elif hasattr(model, "target"):  # an autoencoder reconstructs its target
        assert out.shape == model.target(batch).shape
    else:  # a generative model's per-jet training quantity
        assert out.shape[0] == len(batch)
    assert torch.isfinite(out).all()
    out.float().pow(2).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not no_grad, f"parameters without gradient: {no_grad}"


@pytest.mark.parametrize("name", models_where(lambda s: s.is_torch and {"x", "p4", "image"} & set(s.inputs)))
def test_padding_invariance(name):
    model = build(name)
    with torch.no_grad():
        a = model(make_batch(name))
        b = model(make_batch(name, extra_pad=7))
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", models_where(lambda s: "permutation" in s.tags))
def test_permutation_invariance(name):
    model = build(name)
    batch = make_batch(name)
    perm = torch.randperm(batch.mask.shape[1], generator=torch.Generator().manual_seed(3))
    shuffled = Batch(**{k: (v[:, perm] if k in ("x", "mask", "p4") and v is not None else v)
                        for k, v in vars(batch).items()})
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(shuffled), rtol=1e-9, atol=1e-9)


def random_lorentz(seed: int) -> torch.Tensor:
    """A boost with |β| in [0.3, 0.9] in a random direction composed with a random rotation (4, 4)."""
    g = np.random.default_rng(seed)
    direction = g.normal(size=3)
    beta = torch.from_numpy(direction / np.linalg.norm(direction) * g.uniform(0.3, 0.9))
    rot = rotation_matrix(torch.from_numpy(g.normal(size=3)), g.uniform(0, 2 * math.pi))
    return boost_matrix(beta) @ rot


@pytest.mark.parametrize("name", models_where(lambda s: "lorentz" in s.tags))
@pytest.mark.parametrize("seed", [0, 1])
def test_lorentz_invariance(name, seed):
    """Full invariance without beam spurions; with them (the default), rotations about the beam."""
    p4, mask = jets_p4(5, extra_pad=3, seed=seed)
    spurions = "spurions" in get_model_spec(name).params()
    z_rotation = rotation_matrix(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), 1.1)
    cases = [({}, z_rotation)] if spurions else []
    cases.append(({"spurions": False} if spurions else {}, random_lorentz(seed)))
    for kw, lam in cases:
        model = build(name, **kw)
        moved = transform(p4, lam) * mask[..., None]  # padded particles stay exactly zero
        assert not torch.allclose(moved, p4)
        with torch.no_grad():
            torch.testing.assert_close(model(batch_from_p4(name, moved, mask)), model(batch_from_p4(name, p4, mask)),
                                       rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", models_where(lambda s: "irc_safe" in s.tags))
def test_infrared_and_collinear_safety(name):
    model = build(name)
    p4, mask = jets_p4(5, extra_pad=2)
    n = mask.sum(1)  # (B,) each jet's first free slot
    rows = torch.arange(len(n))
    soft, soft_mask = p4.clone(), mask.clone()
    soft[rows, n] = 1e-7 * p4[:, 0]  # a particle along the hardest one with 1e-7 of its momentum
    soft_mask[rows, n] = True
    split, split_mask = p4.clone(), mask.clone()
    split[:, 0] = 0.3 * p4[:, 0]  # the hardest particle split into two collinear ones: 30 % + 70 %
    split[rows, n] = 0.7 * p4[:, 0]
    split_mask[rows, n] = True
    with torch.no_grad():
        out = model(batch_from_p4(name, p4, mask))
        torch.testing.assert_close(model(batch_from_p4(name, split, split_mask)), out, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(model(batch_from_p4(name, soft, soft_mask)), out, rtol=1e-5, atol=1e-6)
        hard = soft.clone()
        hard[rows, n] = 0.5 * p4[:, 0] + torch.tensor([0.0, 0.0, 0.0, 20.0], dtype=p4.dtype)
        assert not torch.allclose(model(batch_from_p4(name, hard, soft_mask)), out)  # a hard particle counts


@pytest.mark.parametrize("name", models_where(lambda s: s.kind == "generative"))
def test_generators_follow_the_protocol(name):
    model = build(name)
    assert isinstance(model, Generator) and model.space in ("jet", "particles")
    torch.manual_seed(0)
    with torch.no_grad():
        samples = model.sample(4)
    assert samples.shape[0] == 4 and torch.isfinite(samples).all()
    if model.space == "particles":
        assert isinstance(model, ParticleGenerator)
        p4, mask = model.to_p4(samples)
        assert p4.shape == (4, model.k, 4) and mask.shape == (4, model.k) and mask.dtype == torch.bool
    else:
        assert samples.shape == (4, N_JET_FEATURES)


@pytest.mark.parametrize("name", models_where(lambda s: s.kind == "tree"))
def test_tree_models_follow_the_protocol(name):
    pytest.importorskip("xgboost")
    assert isinstance(create_model(name, **input_kwargs(name)), TreeModel)


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_state_dict_round_trip(name, tmp_path):
    from hepnn.train.checkpoint import load_weights, save_weights

    model, other = build(name, seed=0), build(name, seed=1)
    save_weights(model, tmp_path / "w.safetensors")
    load_weights(other, tmp_path / "w.safetensors")
    batch = make_batch(name)
    with torch.no_grad():
        torch.testing.assert_close(model(batch), other(batch))
