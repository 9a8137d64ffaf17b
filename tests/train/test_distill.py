"""hepnn.train.distill (the distillation task): soft_loss by hand and its properties (zero for a perfect
student, the T^2 scale, jet weights, one-logit outputs), DistillTask's loss mix with a frozen teacher,
teacher_batch rebuilding the teacher's inputs like its own loader, and check_compatible's refusals.
The `hepnn distill` command and its learning gain: tests/compress/test_runs.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hepnn.config import load_config
from hepnn.data.batch import Batch
from hepnn.errors import ConfigError
from hepnn.train.distill import DistillTask, Teacher, check_compatible, soft_loss, teacher_batch, two_class_logits
from hepnn.train.losses import build_loss

FEATURES = ["deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr"]


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


def test_soft_loss_is_zero_only_for_the_teachers_distribution(rng):
    zt = torch.tensor(rng.normal(size=(5, 3)))
    assert float(soft_loss(zt, zt, 2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(soft_loss(zt + 7.0, zt, 2.0)) == pytest.approx(0.0, abs=1e-6)  # a shift per jet: same softmax
    other = zt.clone()
    other[0, 0] += 1.0
    assert float(soft_loss(other, zt, 2.0)) > 1e-4


def test_soft_loss_carries_t_squared(rng):
    """Logits scaled by T at temperature T give the T = 1 distributions: the loss is T^2 times the T = 1 loss."""
    zs, zt = torch.tensor(rng.normal(size=(6, 2))), torch.tensor(rng.normal(size=(6, 2)))
    for t in (2.0, 5.0):
        assert float(soft_loss(zs * t, zt * t, t)) == pytest.approx(t * t * float(soft_loss(zs, zt, 1.0)), rel=1e-5)


def test_weighted_soft_loss(rng):
    zs, zt = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    s, t = torch.tensor(zs), torch.tensor(zt)
    w = torch.tensor([1.0, 0.0, 0.0, 0.0])  # only the first jet counts
    assert float(soft_loss(s, t, 2.0, w)) == pytest.approx(_kl_by_hand(zs[:1], zt[:1], 2.0), rel=1e-4)
    w = torch.tensor([1.0, 2.0, 0.5, 3.0])
    assert float(soft_loss(s, t, 2.0, 10 * w)) == pytest.approx(float(soft_loss(s, t, 2.0, w)), rel=1e-6)
    assert float(soft_loss(s, t, 2.0, torch.ones(4))) == pytest.approx(float(soft_loss(s, t, 2.0)), rel=1e-6)


def test_single_logit_is_the_binary_kl():
    z = torch.tensor([0.3, -1.2])  # one bce logit: sigmoid(z) = softmax((0, z))[1]
    assert torch.allclose(torch.softmax(two_class_logits(z), -1)[:, 1], torch.sigmoid(z))
    assert torch.equal(two_class_logits(z.reshape(2, 1)), two_class_logits(z))
    zs, zt, t = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 1.0]), 2.0
    ps, pt = torch.sigmoid(zs / t), torch.sigmoid(zt / t)
    kl = pt * torch.log(pt / ps) + (1 - pt) * torch.log((1 - pt) / (1 - ps))
    assert float(soft_loss(zs, zt, t)) == pytest.approx(float(t * t * kl.mean()), rel=1e-5)


class OnJet(nn.Module):
    """Logits (0, jet . w): a student or teacher reading jet features."""

    def __init__(self, w) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, batch: Batch) -> torch.Tensor:
        z = batch.jet @ self.w  # (B,)
        return torch.stack([torch.zeros_like(z), z], dim=-1)


def distill_task(loads: list, alpha=0.7, temperature=2.0) -> DistillTask:
    """A DistillTask whose teacher (an OnJet) is built on demand; ``loads`` counts the loads."""
    def load():
        loads.append(1)
        return Teacher(load_config(None, []), OnJet([1.0, -1.0]).train(), {}, ("jet",))

    return DistillTask(build_loss("ce", num_classes=2), "ce", 2, teacher=load, temperature=temperature, alpha=alpha)


def jet_batch() -> Batch:
    jet = torch.tensor([[0.5, 1.0], [2.0, -1.0], [0.0, 0.3]])
    return Batch(jet=jet, p4=torch.ones(3, 2, 4), mask=torch.ones(3, 2, dtype=torch.bool), y=torch.tensor([1, 0, 1]))


def test_distill_step_mixes_soft_and_hard_losses():
    loads: list = []
    task, student, batch = distill_task(loads), OnJet([0.2, 0.4]), jet_batch()
    loss, logs = task.step(student, batch)
    zs, zt = student(batch), OnJet([1.0, -1.0])(batch)
    soft, hard = soft_loss(zs, zt, 2.0), F.cross_entropy(zs, batch.y)
    torch.testing.assert_close(loss, 0.7 * soft + 0.3 * hard)
    assert logs["soft_loss"] == pytest.approx(float(soft.detach())) and logs["loss"] == pytest.approx(float(loss.detach()))
    loss.backward()
    assert student.w.grad is not None and task.teacher().model.w.grad is None  # the teacher is frozen
    assert not task.teacher().model.training and not task.teacher().model.w.requires_grad
    task.step(student, batch)
    assert len(loads) == 1  # loaded once, on the first step


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_alpha_picks_one_loss(alpha):
    task, student, batch = distill_task([], alpha=alpha), OnJet([0.2, 0.4]), jet_batch()
    zs = student(batch)
    expected = soft_loss(zs, OnJet([1.0, -1.0])(batch), 2.0) if alpha == 1.0 else F.cross_entropy(zs, batch.y)
    torch.testing.assert_close(task.step(student, batch)[0], expected)


def test_evaluation_is_plain_classification_without_a_teacher():
    loads: list = []
    task, student, batch = distill_task(loads), OnJet([0.2, 0.4]), jet_batch()
    out = task.outputs(student, batch)
    torch.testing.assert_close(out["loss"], F.cross_entropy(student(batch), batch.y).reshape(1))
    assert loads == []


def test_teacher_inputs_rebuilt_like_the_loader(sample_path):
    """x rebuilt from p4 and mask with the teacher's features and preprocessing equals what the
    teacher's own loader builds (no particle cap: the loader's jet axis is the full jet's)."""
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
    assert torch.equal(capped.mask, rebuilt.mask[:, :16])


def test_teacher_batch_passes_p4_mask_and_jet_through():
    batch = jet_batch()
    tcfg = load_config(None, ["data.max_particles=1"])
    out = teacher_batch(batch, tcfg, {}, ("p4", "mask", "jet"))
    assert torch.equal(out.p4, batch.p4[:, :1]) and torch.equal(out.mask, batch.mask[:, :1])
    assert out.jet is batch.jet and out.x is None and out.y is None  # the teacher never sees the labels


def teacher_of(overrides: list[str], inputs: tuple[str, ...]) -> Teacher:
    return Teacher(load_config(None, overrides), nn.Identity(), {}, inputs)


def test_check_compatible_refusals(caplog):
    student = load_config(None, [])
    check_compatible(student, teacher_of([], ("jet",)))  # same jet features: fine
    with pytest.raises(ConfigError, match="same data.jet_features"):
        check_compatible(student, teacher_of(["data.jet_features=[mass, pt]"], ("jet",)))
    with pytest.raises(ConfigError, match="charge/pid"):
        check_compatible(student, teacher_of(["data.particle_features=[log_pt, charge]"], ("x", "mask")))
    check_compatible(student, teacher_of(["data.jet_features=[mass]"], ("x", "mask")))  # jet features unread
    with caplog.at_level("WARNING"):
        check_compatible(student, teacher_of(["train.seed=3"], ("x", "mask")))
    assert "data split differs" in caplog.text
