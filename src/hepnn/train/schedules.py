"""Learning-rate schedules behind one small ``Schedule`` object that the engine steps the same way.

The engine calls ``schedule.step_batch()`` after every ``optimizer.step()`` and
``schedule.step_epoch(val_metric)`` after every epoch. ``t`` counts optimizer steps from 0; the lr used
by step t is ``lr0 * f(t)``. With ``warmup_steps = W > 0`` the first W steps ramp linearly,
``f(t) = (t + 1) / W`` (so step 0 uses lr0 / W and step W - 1 uses lr0; a zero-lr step would be wasted),
and the schedule's own clock starts after the warm-up: ``s = t - W``. E = ``steps_per_epoch``.

================  ================================================================================
name              f(s) after warm-up
================  ================================================================================
``constant``      1
``time_decay``    1 / (1 + k s)                                   (k = ``decay``, per step)
``step``          gamma ** floor(floor(s / E) / step_size)        (gamma every ``step_size`` epochs)
``exponential``   gamma ** (s / E)                                (gamma per epoch, smooth per step)
``cosine``        m + (1 - m) (1 + cos(pi s / (T - W))) / 2,  m = min_lr / lr0, held at m after
                  T = ``total_steps``                              (SGDR, arXiv:1608.03983)
``onecycle``      ``torch.optim.lr_scheduler.OneCycleLR`` with max_lr = lr0 over T steps
                  (arXiv:1803.09820); its ramp is W / T of the cycle when W > 0 (else 30 %);
                  momentum/beta1 cycles too when the optimizer has one
``plateau``       ``ReduceLROnPlateau``: lr *= gamma after ``patience`` epochs without improvement
                  of the metric (lower is better), floor ``min_lr``; epochs ending inside the
                  warm-up are not counted
================  ================================================================================

``constant`` to ``cosine`` are one ``LambdaLR`` (warm-up included); ``state_dict``/``load_state_dict`` restore the step count,
the inner scheduler and the current learning rates exactly, so a resumed run continues identically.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR, ReduceLROnPlateau

from hepnn.errors import ConfigError

SCHEDULE_NAMES = ("constant", "time_decay", "step", "exponential", "cosine", "onecycle", "plateau")


def _warmup(f: Callable[[int], float], warmup_steps: int) -> Callable[[int], float]:
    """Linear warm-up over ``warmup_steps`` steps, then ``f`` on a clock that starts after it."""
    if warmup_steps <= 0:
        return f
    return lambda t: (t + 1) / warmup_steps if t < warmup_steps else f(t - warmup_steps)


def _cosine(span: int, floor: float) -> Callable[[int], float]:
    def f(s: int) -> float:
        progress = min(s / span, 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def _lambda(name: str, base_lr: float, *, steps_per_epoch: int, span: int, **kw: Any) -> Callable[[int], float]:
    """The multiplier f(s) of one per-step schedule, for a param group with initial lr ``base_lr``."""
    E = steps_per_epoch
    if name == "constant":
        return lambda s: 1.0
    if name == "time_decay":
        return lambda s: 1.0 / (1.0 + kw["decay"] * s)
    if name == "step":
        return lambda s: kw["gamma"] ** ((s // E) // kw["step_size"])
    if name == "exponential":
        return lambda s: kw["gamma"] ** (s / E)
    if name == "cosine":
        if kw["min_lr"] > base_lr:
            raise ConfigError(f"cosine min_lr ({kw['min_lr']:g}) is above the learning rate ({base_lr:g})")
        return _cosine(span, kw["min_lr"] / base_lr)
    raise ConfigError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULE_NAMES)}")


class Schedule:
    """One interface over every schedule: ``step_batch``, ``step_epoch``, ``state_dict``, ``load_state_dict``.

    Build it with :func:`build_schedule`. ``inner`` is the torch scheduler driven per step (a
    ``LambdaLR`` or ``OneCycleLR``; for ``plateau`` the warm-up ``LambdaLR``, or None without warm-up)
    and ``plateau`` the ``ReduceLROnPlateau`` (plateau only).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        name: str,
        inner: LambdaLR | OneCycleLR | None,
        *,
        warmup_steps: int = 0,
        total_steps: int | None = None,
        plateau: ReduceLROnPlateau | None = None,
    ) -> None:
        self.optimizer = optimizer
        self.name = name
        self.inner = inner
        self.plateau = plateau
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.step_count = 0  # optimizer steps taken so far (t of the next step)

    @property
    def lrs(self) -> list[float]:
        """Current learning rate of every param group (what the next optimizer step uses)."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def step_batch(self) -> None:
        """Advance by one optimizer step; call right after ``optimizer.step()``."""
        self.step_count += 1
        if self.inner is None:
            return
        if self.plateau is not None and self.step_count > self.warmup_steps:
            return  # warm-up over: the plateau scheduler owns the lr from here on
        if self.total_steps is not None and self.step_count >= self.total_steps:
            return  # OneCycleLR's cycle ends at step T - 1 (it refuses to go past T); hold the final lr
        self.inner.step()

    def step_epoch(self, metric: float | None = None) -> None:
        """End of an epoch: feeds ``metric`` (lower is better) to ``plateau``; a no-op for the others."""
        if self.plateau is None or self.step_count < self.warmup_steps:
            return
        if metric is None or not math.isfinite(metric):
            raise ValueError(f"schedule 'plateau' needs a finite metric at the end of every epoch, got {metric}")
        self.plateau.step(metric)

    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "step_count": self.step_count,
            "lrs": self.lrs,
            "inner": None if self.inner is None else self.inner.state_dict(),
            "plateau": None if self.plateau is None else self.plateau.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` of a schedule built with the same arguments."""
        if state["name"] != self.name:
            raise ConfigError(f"checkpoint has schedule {state['name']!r}, the run is configured for {self.name!r}")
        self.step_count = int(state["step_count"])
        if self.inner is not None:
            self.inner.load_state_dict(state["inner"])
        if self.plateau is not None:
            self.plateau.load_state_dict(state["plateau"])
        for group, lr in zip(self.optimizer.param_groups, state["lrs"]):
            group["lr"] = lr

    def __repr__(self) -> str:
        return f"Schedule({self.name!r}, step_count={self.step_count}, lrs={self.lrs})"


def build_schedule(
    optimizer: torch.optim.Optimizer,
    name: str,
    *,
    total_steps: int,
    steps_per_epoch: int,
    warmup_steps: int = 0,
    decay: float = 0.0,
    step_size: int = 1,
    gamma: float = 0.5,
    min_lr: float = 0.0,
    patience: int = 2,
) -> Schedule:
    """Build the schedule ``name`` (table in the module doc) on ``optimizer``.

    Args:
        optimizer: its groups' current ``lr`` is lr0 (the peak after warm-up).
        name: one of ``SCHEDULE_NAMES``.
        total_steps: optimizer steps in the whole run (epochs x steps_per_epoch), warm-up included.
        steps_per_epoch: optimizer steps per epoch E (converts epoch-based rates to steps).
        warmup_steps: W, linear warm-up steps before the schedule.
        decay: k of ``time_decay``. step_size: epochs between ``step`` decays.
        gamma: factor of ``step``, ``exponential`` and ``plateau``.
        min_lr: floor of ``cosine`` and ``plateau``. patience: epochs ``plateau`` waits.
    """
    if name not in SCHEDULE_NAMES:
        raise ConfigError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULE_NAMES)}")
    if total_steps < 1 or steps_per_epoch < 1:
        raise ConfigError(
            f"schedule needs total_steps >= 1 and steps_per_epoch >= 1, got {total_steps}, {steps_per_epoch}"
        )
    if name in ("cosine", "onecycle") and warmup_steps >= total_steps:
        raise ConfigError(f"warm-up ({warmup_steps} steps) must be shorter than the run ({total_steps} steps)")
    if name == "onecycle":
        return _build_onecycle(optimizer, total_steps, warmup_steps)
    if name == "plateau":
        plateau = ReduceLROnPlateau(optimizer, mode="min", factor=gamma, patience=patience, min_lr=min_lr)
        inner = LambdaLR(optimizer, _warmup(lambda s: 1.0, warmup_steps)) if warmup_steps > 0 else None
        return Schedule(optimizer, name, inner, warmup_steps=warmup_steps, plateau=plateau)
    kw = dict(decay=decay, step_size=step_size, gamma=gamma, min_lr=min_lr)
    span = total_steps - warmup_steps  # steps the schedule's own clock runs for
    lambdas = [
        _warmup(_lambda(name, g["lr"], steps_per_epoch=steps_per_epoch, span=span, **kw), warmup_steps)
        for g in optimizer.param_groups  # one multiplier per group: cosine's floor is min_lr / group lr
    ]
    return Schedule(optimizer, name, LambdaLR(optimizer, lambdas), warmup_steps=warmup_steps)


def _build_onecycle(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int) -> Schedule:
    defaults = optimizer.defaults
    # Cycling momentum only makes sense where there is one; it would turn plain SGD into momentum SGD.
    cycle_momentum = "betas" in defaults or defaults.get("momentum", 0.0) > 0
    pct_start = warmup_steps / total_steps if warmup_steps > 0 else 0.3
    inner = OneCycleLR(
        optimizer,
        max_lr=[g["lr"] for g in optimizer.param_groups],
        total_steps=total_steps,
        pct_start=pct_start,
        cycle_momentum=cycle_momentum,
    )
    return Schedule(optimizer, "onecycle", inner, warmup_steps=0, total_steps=total_steps)
