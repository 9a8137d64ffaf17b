"""Knowledge distillation: the loss by hand, the teacher's inputs rebuilt exactly, and learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepnn.train.distill import soft_loss, teacher_batch, two_class_logits

from .conftest import FEATURES


def _kl_by_hand(zs: np.ndarray, zt: np.ndarray, t: float) -> float:
    def softmax(z):
        e = np.exp(z / t - (z / t).max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    ps, pt = softmax(zs), softmax(zt)
    return float(t * t * np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), axis=1)))


@pytest.mark.parametrize("t", [1.0, 4.0])
def test_soft_loss_matches_numpy(t, rng):
    zs, zt = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) * 3
    got = soft_loss(torch.tensor(zs), torch.tensor(zt), t)
    assert float(got) == pytest.approx(_kl_by_hand(zs, zt, t), rel=1e-5)
    assert float(soft_loss(torch.tensor(zt), torch.tensor(zt), t)) == pytest.approx(0.0, abs=1e-6)


def test_weighted_soft_loss_and_single_logit(rng):
    zs, zt = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    w = torch.tensor([1.0, 0.0, 0.0, 0.0])  # only the first jet counts
    assert float(soft_loss(torch.tensor(zs), torch.tensor(zt), 2.0, w)) == pytest.approx(
        _kl_by_hand(zs[:1], zt[:1], 2.0), rel=1e-4)
    z = torch.tensor([0.3, -1.2])  # one bce logit: sigmoid(z) = softmax((0, z))[1]
    assert torch.allclose(torch.softmax(two_class_logits(z), -1)[:, 1], torch.sigmoid(z))


def test_teacher_inputs_rebuilt_like_the_loader(sample_path):
    """x rebuilt from p4 and mask with the teacher's features and preprocessing equals what the
    teacher's own loader builds (no particle cap: the loader's jet axis is the full jet's)."""
    from hepnn.config import load_config
    from hepnn.data.io import read_jets
    from hepnn.data.jagged import JaggedJets
    from hepnn.data.loader import BatchBuilder
    from hepnn.data.preprocess import Preprocessor

    jets = JaggedJets.from_awkward(read_jets(str(sample_path), max_jets=40))
    x_all = BatchBuilder(fields=("x", "mask"), particle_features=FEATURES)(jets, np.arange(40))
    pre = Preprocessor([{"kind": "standardize"}], feature_names=FEATURES).fit(x_all.x[x_all.mask].numpy())
    tcfg = load_config(None, [f"data.particle_features={FEATURES}", "data.max_particles=null"])
    teacher_loader = BatchBuilder(fields=("x", "mask"), particle_features=FEATURES, particle_preprocessor=pre,
                                  max_particles=None)
    student = BatchBuilder(fields=("p4", "mask"), max_particles=None)(jets, np.arange(10))
    rebuilt = teacher_batch(student, tcfg, {"particle": pre}, ("x", "mask"))
    want = teacher_loader(jets, np.arange(10))
    assert rebuilt.x.shape == want.x.shape
    assert torch.allclose(rebuilt.x, want.x, atol=1e-4)
    assert torch.equal(rebuilt.mask, want.mask)
    capped = teacher_batch(student, tcfg.model_copy(update={"data": tcfg.data.model_copy(update={"max_particles": 16})}),
                           {"particle": pre}, ("x", "mask"))
    assert capped.x.shape[1] == 16  # the teacher's cap keeps the hardest particles
