"""Next-particle GPT: causality, the token sequence and its targets, sampling, and the parameter
names shared with the VQ-VAE run and the downstream classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hepnn.data.batch import Batch
from hepnn.registry import create_model

SMALL = dict(codebook_size=16, tokenizer_hidden=(8,), dim=16, num_heads=2, num_layers=2, max_particles=10)


def build(name: str = "gpt_particles", seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **{**SMALL, **kw}).double().eval()


def _batch(seed: int = 0, counts=(3, 12, 1, 7), n: int = 14) -> Batch:
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(n).unsqueeze(0) < torch.tensor(counts).unsqueeze(1)
    pt = torch.rand(len(counts), n, generator=g, dtype=torch.float64) * 100 + 1
    eta, phi = (torch.randn(len(counts), n, generator=g, dtype=torch.float64) * 0.2 for _ in range(2))
    p4 = torch.stack([pt * torch.cosh(eta), pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta)], -1)
    return Batch(p4=p4 * mask.unsqueeze(-1), mask=mask)  # particles in random pT order


def test_output_at_position_i_does_not_depend_on_later_positions():
    model = build()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 16, (3, 9), generator=g)
    seq_mask = torch.ones(3, 9, dtype=torch.bool)
    seq_mask[1, 6:] = False  # padding behind the end of the second sequence
    for i in range(8):
        later = ids.clone()
        later[:, i + 1:] = torch.randint(0, 16, (3, 8 - i), generator=g)
        with torch.no_grad():
            a, b = model.encode(ids, seq_mask), model.encode(later, seq_mask)
        torch.testing.assert_close(a[:, : i + 1], b[:, : i + 1], rtol=0, atol=1e-12)
        changed = (later[0, i + 1:] != ids[0, i + 1:]).nonzero()
        if len(changed):  # the test can fail: a changed token changes its own and later outputs
            j = i + 1 + int(changed[0])
            assert (a[0, j] - b[0, j]).abs().max() > 1e-6


def test_sequence_is_pt_ordered_with_start_token_and_cut_at_max_particles():
    model = build()
    batch = _batch()
    ids, seq_mask, cut = model.sequence(batch)
    assert ids.shape == (4, 11) and (ids[:, 0] == model.start_id).all()
    assert seq_mask.sum(1).tolist() == [4, 11, 2, 8] and cut.tolist() == [False, True, False, False]
    pt = torch.hypot(batch.p4[1, :, 1], batch.p4[1, :, 2])
    order = pt.masked_fill(~batch.mask[1], -1).argsort(descending=True)
    sorted_p4 = batch.p4[1, order].unsqueeze(0)
    expected = model.tokenizer.tokenize(sorted_p4, batch.mask[1, order].unsqueeze(0))[0, :10]
    assert ids[1, 1:].tolist() == expected.tolist()


def test_loss_is_next_token_cross_entropy_with_stop_and_no_stop_for_cut_jets():
    model = build()
    batch = _batch()
    ids, seq_mask, cut = model.sequence(batch)
    with torch.no_grad():
        got = model(batch)[:, 0]
        logits = model.lm_head(model.encode(ids, seq_mask))
    for b in range(4):
        n = int(seq_mask[b].sum()) - 1
        targets = ids[b, 1: n + 1].tolist() + ([] if cut[b] else [model.stop_id])
        ce = F.cross_entropy(logits[b, : len(targets)], torch.tensor(targets))
        torch.testing.assert_close(got[b], ce)


def test_output_does_not_depend_on_the_input_particle_order():
    model = build("gpt_classifier")
    batch = _batch()
    perm = torch.randperm(14, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(Batch(p4=batch.p4[:, perm], mask=batch.mask[:, perm])),
                                   rtol=0, atol=0)


def test_samples_are_finite_jets():
    model = build()
    torch.manual_seed(3)
    slots = model.sample(6)
    assert slots.shape == (6, 10, 4) and torch.isfinite(slots).all()
    exists = slots[..., 3] > 0
    assert (exists.sum(1) >= 1).all()
    assert (exists[:, 1:] <= exists[:, :-1]).all()  # the particles of a jet come first
    p4, mask = model.to_p4(slots)
    assert torch.isfinite(p4).all() and torch.equal(mask.sum(1), exists.sum(1))
    pt = torch.hypot(p4[..., 1], p4[..., 2])
    assert (pt[:, :-1] >= pt[:, 1:]).all() and (p4[~mask] == 0).all()
    e2 = p4[..., 0] ** 2 - (p4[..., 1:] ** 2).sum(-1)
    assert e2.abs().max() < 1e-6 * p4[..., 0].max() ** 2  # massless


def test_classifier_loads_the_generator_and_the_generator_loads_the_tokenizer():
    gen = build("gpt_particles", seed=1)
    clf = build("gpt_classifier", seed=2)
    missing, unexpected = clf.load_state_dict(gen.state_dict(), strict=False)
    assert {k.split(".")[0] for k in missing} == {"head"}
    assert {k.split(".")[0] for k in unexpected} == {"lm_head"}
    shared = gen.state_dict().keys() & clf.state_dict().keys()
    assert {k.split(".")[0] for k in shared} == {"tokenizer", "token_embed", "pos_embed", "blocks", "norm"}
    assert all(torch.equal(gen.state_dict()[k], clf.state_dict()[k]) for k in shared)
    vq = create_model("vqvae_particles", codebook_size=16, hidden=(8,)).double()
    missing, unexpected = gen.load_state_dict(vq.state_dict(), strict=False)
    assert set(unexpected) == {"usage", "steps"}  # the VQ-VAE's own training state
    assert not any(k.startswith("tokenizer.") for k in missing)
    assert torch.equal(gen.tokenizer.codebook, vq.tokenizer.codebook)


def test_tokenizer_is_frozen_while_the_gpt_trains():
    model = build().train()
    before = {k: v.clone() for k, v in model.tokenizer.state_dict().items()}
    assert not any(p.requires_grad for p in model.tokenizer.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(_batch())[:, 0].mean().backward()
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in model.tokenizer.state_dict().items())


@pytest.mark.parametrize("counts", [(1,), (10,), (11,)])
def test_padding_and_cut_do_not_break_shapes(counts):
    model = build()
    out = model(_batch(counts=counts, n=12))
    assert out.shape == (1, 2) and np.isfinite(out.detach().numpy()).all()
