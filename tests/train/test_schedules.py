"""Schedules: each follows its closed form step by step, warm-up ramps linearly, resume is exact."""

import copy
import io
import math

import pytest
import torch
from torch import nn

from hepnn.errors import ConfigError
from hepnn.train.optim import build_optimizer
from hepnn.train.schedules import SCHEDULE_NAMES, build_schedule

LR = 0.1


def _setup(name="constant", opt_name="sgd", lr=LR, **kw):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))  # two param groups
    opt = build_optimizer(model, opt_name, lr=lr, weight_decay=0.01)
    kw = {"total_steps": 40, "steps_per_epoch": 4, **kw}
    return opt, build_schedule(opt, name, **kw)


def _run(opt, sched, steps, metrics=None, steps_per_epoch=4):
    """lr used by each of ``steps`` optimizer steps (group 0); ``metrics`` fed at epoch ends."""
    used = []
    for t in range(steps):
        assert len(set(sched.lrs)) == 1  # both groups follow the same schedule
        used.append(sched.lrs[0])
        opt.step()  # no gradients: parameters stay, but the step counts for the scheduler
        sched.step_batch()
        if metrics is not None and (t + 1) % steps_per_epoch == 0:
            sched.step_epoch(metrics[(t + 1) // steps_per_epoch - 1])
    return used


def _close(got, want):
    assert len(got) == len(want)
    for t, (g, w) in enumerate(zip(got, want)):
        assert g == pytest.approx(w, rel=1e-9, abs=1e-12), f"step {t}: {g} != {w}"


def test_constant():
    _close(_run(*_setup("constant"), 10), [LR] * 10)


def test_time_decay():
    _close(_run(*_setup("time_decay", decay=0.25), 12), [LR / (1 + 0.25 * t) for t in range(12)])


def test_step_decays_every_step_size_epochs():
    # E = 4 steps per epoch, gamma 0.5 every 2 epochs = every 8 steps
    want = [LR * 0.5 ** (t // 8) for t in range(20)]
    _close(_run(*_setup("step", step_size=2, gamma=0.5), 20), want)
    assert want[7] == LR and want[8] == LR / 2 and want[16] == LR / 4


def test_exponential_is_gamma_per_epoch_smooth_per_step():
    used = _run(*_setup("exponential", gamma=0.8), 13)
    _close(used, [LR * 0.8 ** (t / 4) for t in range(13)])
    assert used[4] == pytest.approx(LR * 0.8) and used[8] == pytest.approx(LR * 0.64)


def test_cosine_to_min_lr_then_held():
    T, m = 20, 0.01
    used = _run(*_setup("cosine", total_steps=T, min_lr=m), T + 3)
    want = [m + (LR - m) * 0.5 * (1 + math.cos(math.pi * t / T)) for t in range(T)] + [m] * 3
    _close(used, want)
    assert used[10] == pytest.approx((LR + m) / 2)


def test_cosine_floor_is_absolute_per_group():
    p1, p2 = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([{"params": [p1], "lr": 0.1}, {"params": [p2], "lr": 0.01}], lr=0.1)
    sched = build_schedule(opt, "cosine", total_steps=10, steps_per_epoch=5, min_lr=0.001)
    for _ in range(10):
        opt.step()
        sched.step_batch()
    assert sched.lrs == pytest.approx([0.001, 0.001])


@pytest.mark.parametrize("name", ["constant", "time_decay", "step", "cosine"])
def test_warmup_ramps_linearly_then_starts_the_schedule(name):
    W, T = 5, 25
    used = _run(*_setup(name, warmup_steps=W, total_steps=T, decay=0.5, step_size=1, gamma=0.5), T)
    _close(used[:W], [LR * (t + 1) / W for t in range(W)])  # LR/5, 2LR/5, ..., LR
    assert used[W] == pytest.approx(LR)  # the schedule's clock starts at 0 after the warm-up
    s = 3
    after = {"constant": LR, "time_decay": LR / (1 + 0.5 * s), "step": LR,
             "cosine": LR * 0.5 * (1 + math.cos(math.pi * s / (T - W)))}[name]
    assert used[W + s] == pytest.approx(after)
    if name == "step":
        assert used[W + 4] == pytest.approx(LR / 2)  # one epoch (4 steps) after the warm-up


def test_onecycle_shape():
    T = 40
    used = _run(*_setup("onecycle", opt_name="adam", total_steps=T), T + 5)  # stepping past T is held
    assert used[0] == pytest.approx(LR / 25)  # torch's div_factor
    peak = max(range(T), key=lambda t: used[t])
    assert used[peak] == pytest.approx(LR) and peak == round(0.3 * T) - 1
    assert used[T - 1] == pytest.approx(LR / 25 / 1e4)  # final_div_factor
    assert used[T:] == [used[T - 1]] * 5
    assert all(a <= b for a, b in zip(used[:peak], used[1 : peak + 1]))  # rises, then falls
    assert all(a >= b for a, b in zip(used[peak:T - 1], used[peak + 1 : T]))


def test_onecycle_warmup_sets_the_ramp_and_plain_sgd_keeps_no_momentum():
    opt, sched = _setup("onecycle", total_steps=40, warmup_steps=10)
    used = _run(opt, sched, 40)
    assert max(range(40), key=lambda t: used[t]) == 9
    assert all(g["momentum"] == 0.0 for g in opt.param_groups)


def test_plateau_reduces_after_patience_epochs_by_hand():
    # best 0.9 at epoch 1; epochs 2, 3 bad (= patience 2); epoch 4 bad -> lr * 0.5; epochs 5-7 bad -> again
    metrics = [1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0]
    used = _run(*_setup("plateau", patience=2, gamma=0.5), 8 * 4 + 1, metrics)
    per_epoch = used[::4]
    _close(per_epoch, [LR] * 5 + [LR / 2] * 3 + [LR / 4])


def test_plateau_floor_and_warmup():
    metrics = [1.0] * 12
    opt, sched = _setup("plateau", patience=0, gamma=0.5, min_lr=0.03, warmup_steps=6)
    used = _run(opt, sched, 48, metrics)
    _close(used[:6], [LR * (t + 1) / 6 for t in range(6)])
    # epoch 1 ends inside the warm-up (ignored); epoch 2 sets the best; epochs 3, 4 halve; floor 0.03
    _close(used[6:8], [LR, LR])
    _close(used[8:48:4], [LR, LR / 2, 0.03] + [0.03] * 7)
    with pytest.raises(ValueError):
        sched.step_epoch(None)


def _train_like(name):
    kw = {"warmup_steps": 3, "decay": 0.1, "gamma": 0.7, "min_lr": 1e-3, "patience": 0}
    return _setup(name, opt_name="adam", **kw)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_state_dict_round_trip_continues_identically(name):
    metrics = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.75, 0.8, 0.9, 0.99]
    opt, sched = _train_like(name)
    _run(opt, sched, 12, metrics)
    buf = io.BytesIO()  # through a weights_only checkpoint, as the engine stores it
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    reference = _run(opt, sched, 28, metrics[3:])

    opt2, sched2 = _train_like(name)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    assert sched2.step_count == 12
    resumed = _run(opt2, sched2, 28, metrics[3:])
    assert resumed == reference
    assert len(set(reference)) > 1 or name == "constant"


def test_load_restores_lr_without_optimizer_state():
    opt, sched = _setup("cosine", total_steps=20)
    _run(opt, sched, 7)
    state = copy.deepcopy(sched.state_dict())
    opt2, sched2 = _setup("cosine", total_steps=20)
    sched2.load_state_dict(state)
    assert sched2.lrs == sched.lrs and _run(opt2, sched2, 5) == _run(opt, sched, 5)


def test_errors():
    opt, _ = _setup()
    with pytest.raises(ConfigError):
        build_schedule(opt, "cyclic", total_steps=10, steps_per_epoch=2)
    with pytest.raises(ConfigError):
        build_schedule(opt, "cosine", total_steps=10, steps_per_epoch=2, warmup_steps=10)
    with pytest.raises(ConfigError):
        build_schedule(opt, "cosine", total_steps=10, steps_per_epoch=2, min_lr=1.0)
    with pytest.raises(ConfigError):
        build_schedule(opt, "constant", total_steps=0, steps_per_epoch=2)
    _, sched = _setup("step")
    _, other = _setup("cosine")
    with pytest.raises(ConfigError):
        sched.load_state_dict(other.state_dict())
