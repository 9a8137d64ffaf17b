"""Masked particle modeling: no leak from hidden particles, the hidden-set rule, and the backbone's
parameter names, which the downstream classifiers (part_lite, part, transformer) load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepnn.data.batch import Batch
from hepnn.models.masked import choose_hidden, particle_hash
from hepnn.registry import create_model

FEATURES = ["deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr"]
SMALL_TRANSFORMER = dict(dim=32, num_heads=4, num_layers=2, expansion=2, dropout=0.0)


@pytest.fixture(scope="module")
def jets_batch(sample_path) -> Batch:
    """Six real jets of the committed sample (N capped at 24), float64, standardized-like features."""
    from hepnn.data.io import read_jets
    from hepnn.data.jagged import JaggedJets
    from hepnn.data.loader import BatchBuilder

    jets = JaggedJets.from_awkward(read_jets(str(sample_path), max_jets=6))
    b = BatchBuilder(fields=("x", "mask", "p4"), particle_features=FEATURES, max_particles=24)(jets, np.arange(6))
    x = (b.x - b.x[b.mask].mean(0)) / b.x[b.mask].std(0)
    return Batch(x=(x * b.mask.unsqueeze(-1)).double(), mask=b.mask, p4=b.p4.double())


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    kw = SMALL_TRANSFORMER if name == "mpm_transformer" else {}
    return create_model(name, in_features=len(FEATURES), **kw).double()


def _pt_eta_phi(p4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pt = torch.hypot(p4[..., 1], p4[..., 2])
    return pt, torch.asinh(p4[..., 3] / pt), torch.atan2(p4[..., 2], p4[..., 1])


def _massive(pt: torch.Tensor, eta: torch.Tensor, phi: torch.Tensor, m: float) -> torch.Tensor:
    p = torch.stack([pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta)], -1)
    return torch.cat([(p.pow(2).sum(-1, keepdim=True) + m * m).sqrt(), p], -1)


def _altered(batch: Batch, jet: int, slot: int) -> Batch:
    """The same jets with particle (jet, slot) moved in η and φ, given a mass and random features;
    its pT (hence its pT rank) is kept."""
    x, p4 = batch.x.clone(), batch.p4.clone()
    pt, eta, phi = _pt_eta_phi(p4[jet, slot])
    p4[jet, slot] = _massive(pt, eta + 0.6, phi - 0.5, 3.0)
    x[jet, slot] = torch.randn(x.shape[-1], generator=torch.Generator().manual_seed(1), dtype=x.dtype) * 3
    return Batch(x=x, mask=batch.mask, p4=p4)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", ["mpm_part_lite", "mpm_transformer"])
def test_hidden_particles_do_not_leak(name, mode, jets_batch):
    """Changing a hidden particle's features and four-momentum changes no prediction anywhere;
    changing a visible one does change the prediction at a hidden particle (the test can fail)."""
    model = build(name).train(mode == "train")
    hidden = choose_hidden(jets_batch.mask, 0.3, particle_hash(jets_batch.p4))
    jet = 0
    slots = hidden[jet].nonzero().squeeze(1)
    visible = (jets_batch.mask[jet] & ~hidden[jet]).nonzero().squeeze(1)
    with torch.no_grad():
        ref = model.predict(jets_batch, hidden)
        moved_hidden = model.predict(_altered(jets_batch, jet, int(slots[0])), hidden)
        moved_visible = model.predict(_altered(jets_batch, jet, int(visible[0])), hidden)
    torch.testing.assert_close(moved_hidden, ref, rtol=0, atol=1e-12)
    assert (moved_visible[jet, slots] - ref[jet, slots]).abs().max() > 1e-4


def test_hidden_set_size_and_subset():
    mask = torch.zeros(5, 12, dtype=torch.bool)
    for j, n in enumerate([0, 1, 2, 7, 12]):
        mask[j, :n] = True
    hidden = choose_hidden(mask, 0.3, torch.rand(5, 12, generator=torch.Generator().manual_seed(0)))
    assert not (hidden & ~mask).any()
    # clamp(round(0.3 n), 1, max(n - 1, 1)); an empty jet hides nothing
    assert hidden.sum(1).tolist() == [0, 1, 1, 2, 4]


def test_evaluation_hides_a_fixed_set_independent_of_padding_and_order(jets_batch):
    model = build("mpm_part_lite").eval()
    a = model.hidden(jets_batch)
    assert torch.equal(a, model.hidden(jets_batch))
    pad = Batch(x=torch.cat([jets_batch.x, jets_batch.x.new_zeros(6, 5, len(FEATURES))], 1),
                mask=torch.cat([jets_batch.mask, torch.zeros(6, 5, dtype=torch.bool)], 1),
                p4=torch.cat([jets_batch.p4, jets_batch.p4.new_zeros(6, 5, 4)], 1))
    assert torch.equal(model.hidden(pad)[:, : a.shape[1]], a) and not model.hidden(pad)[:, a.shape[1]:].any()
    perm = torch.randperm(a.shape[1], generator=torch.Generator().manual_seed(2))
    shuffled = Batch(x=jets_batch.x[:, perm], mask=jets_batch.mask[:, perm], p4=jets_batch.p4[:, perm])
    assert torch.equal(model.hidden(shuffled), a[:, perm])
    model.train()
    assert not torch.equal(model.hidden(jets_batch), model.hidden(jets_batch))  # a fresh draw per step


# pre-training model, downstream classifier, the classifier's keys that start new, the pre-training-only keys
PART_NEW, MPM_OWN = {"cls_blocks", "cls_token", "norm", "head"}, {"mask_token", "rank_embed", "predictor"}
CONTRACT = [
    ("mpm_part_lite", "part_lite", PART_NEW, MPM_OWN),
    ("mpm_part", "part", PART_NEW, MPM_OWN),
    ("mpm_transformer", "transformer", {"norm", "head"}, MPM_OWN),
]


@pytest.mark.parametrize("pre, down, new, own", CONTRACT, ids=[c[0] for c in CONTRACT])
def test_backbone_keys_load_into_the_classifier(pre, down, new, own):
    """Every key the two models share has the same shape; loading fills all of the classifier's
    backbone (embed, pair_embed, blocks) and only its head-side modules start new."""
    source = create_model(pre).state_dict()
    classifier = create_model(down)
    target = classifier.state_dict()
    assert all(source[k].shape == target[k].shape for k in source.keys() & target.keys())
    missing, unexpected = classifier.load_state_dict(source, strict=False)
    assert {k.split(".")[0] for k in missing} == new
    assert {k.split(".")[0] for k in unexpected} == own
    backbone = {k for k in target if k.split(".")[0] not in new}
    assert backbone and all(torch.equal(classifier.state_dict()[k], source[k]) for k in backbone)


def test_loaded_part_lite_computes_the_pretrained_representation(jets_batch):
    """With nothing hidden, MPM's encoder and the classifier that loaded it give the same particle
    states (captured after the last particle block): the same computation, not only the same names."""
    mpm = build("mpm_part_lite").eval()
    part = create_model("part_lite", in_features=len(FEATURES)).double().eval()
    part.load_state_dict(mpm.state_dict(), strict=False)
    seen = {}
    part.blocks[-1].register_forward_hook(lambda m, i, o: seen.setdefault("h", o))
    with torch.no_grad():
        # the dense (B, N, C) layout; the packed one that training runs equals it (tests/models/test_part.py)
        part.forward_dense(jets_batch)
        h = mpm.encode(jets_batch, torch.zeros_like(jets_batch.mask))
    real = jets_batch.mask
    torch.testing.assert_close(h[real], seen["h"][real], rtol=1e-10, atol=1e-10)
