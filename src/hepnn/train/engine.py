"""The one training loop. Tasks say what a step computes; the engine owns everything around it:
devices, mixed precision, torch.compile, gradient clipping, schedules, callbacks, DDP, resuming.

Modeled on minGPT's trainer: a small class with a tiny callback system. Every task (classify,
regress, reconstruct, ELBO, adversarial, ...) runs through ``Engine.fit``.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.errors import HepnnError
from hepnn.log import get_logger
from hepnn.train.amp import autocast, resolve_amp
from hepnn.train.distributed import agree, world_size, wrap_ddp
from hepnn.train.tasks import Task

log = get_logger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """auto -> cuda if available, else mps, else cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    mps = getattr(torch.backends, "mps", None)
    if (name == "cuda" and not torch.cuda.is_available()) or (name == "mps" and not (mps and mps.is_available())):
        raise HepnnError(f"train.device={name} but no {name} device is available here; use train.device=auto or cpu")
    return torch.device(name)


class Engine:
    """Fits a model with a task. ``state`` holds the counters a resumed run continues from."""

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        optimizer: torch.optim.Optimizer,
        schedule: Any,
        *,
        device: str | torch.device = "cpu",
        amp: str = "auto",
        grad_clip: float | None = None,
        compile: bool = False,
        callbacks: Sequence[Any] = (),
        progress: bool = True,
        time_limit: float | None = None,
        time_clock: str = "wall",
    ) -> None:
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.model = model.to(self.device)
        self.task, self.optimizer, self.schedule = task, optimizer, schedule
        self.amp_dtype = resolve_amp(amp, self.device)  # None = fp32; "auto" is decided and logged here
        # fp16 needs loss scaling against gradient underflow; bf16 has fp32's exponent range.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.grad_clip = grad_clip
        self.callbacks = list(callbacks)
        self.progress = progress
        self.net = self._wrap(self.model, compile)
        # train_time: the budget's clock over training steps; spent: wall and CPU seconds of every epoch
        # (training and validation), both summed over resumes so that a resumed run reports its whole cost
        self.state: dict[str, Any] = {"epoch": 0, "step": 0, "history": [], "train_time": 0.0,
                                      "spent": {"wall": 0.0, "cpu": 0.0}}
        self.should_stop = False
        # A compute budget: stop after the step that crosses it (summed over epochs and resumes).
        # "process" counts this process's CPU seconds, robust to other jobs sharing the cores.
        self.time_limit = time_limit
        self.clock = {"wall": time.perf_counter, "process": time.process_time}[time_clock]

    def _wrap(self, model: nn.Module, compile: bool) -> nn.Module:
        net = wrap_ddp(model, self.device)
        # dynamic=True: bucketed batches change N every step; without it every new N recompiles.
        return torch.compile(net, dynamic=True) if compile else net

    # ---------------------------------------------------------------- training
    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.amp_dtype)

    def train_step(self, batch: Batch) -> dict[str, float]:
        self.net.train()
        with self.autocast():
            loss, logs = self.task.step(self.net, batch)
        if not torch.isfinite(loss):
            raise HepnnError(self._nonfinite_message("loss", loss, batch))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        max_norm = self.grad_clip if self.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), max_norm)
        if not torch.isfinite(grad_norm) and not self.scaler.is_enabled():
            raise HepnnError(self._nonfinite_message("gradient norm", grad_norm, batch))
        self.scaler.step(self.optimizer)  # skips the step when fp16 gradients overflowed
        self.scaler.update()
        self.schedule.step_batch()
        self.state["step"] += 1
        logs["lr"] = self.optimizer.param_groups[0]["lr"]
        return logs

    def _nonfinite_message(self, what: str, value: torch.Tensor, batch: Batch) -> str:
        stats = []
        for name in ("x", "jet", "p4"):
            t = getattr(batch, name)
            if t is not None:
                finite = torch.isfinite(t)
                stats.append(f"{name}: {int((~finite).sum())} non-finite, max |value| "
                             f"{float(t[finite].abs().max()) if finite.any() else float('nan'):.3g}")
        return (
            f"non-finite {what} ({float(value.detach())}) at epoch {self.state['epoch']}, step {self.state['step']} "
            f"({'; '.join(stats)}). Likely causes: a learning rate too high (lower train.optimizer.lr or "
            f"add train.grad_clip), unscaled inputs (add a preprocess standardize step), or a log of "
            f"zero/negative values in the features."
        )

    def fit(self, train: Iterable[Batch], val: Iterable[Batch] | None, epochs: int) -> list[dict[str, float]]:
        """Train from ``state['epoch']`` up to ``epochs``; returns the per-epoch history."""
        for cb in self.callbacks:
            getattr(cb, "on_train_begin", lambda e: None)(self)
        while self.state["epoch"] < epochs and not self.should_stop:
            epoch = self.state["epoch"]
            wall, cpu = time.perf_counter(), time.process_time()
            logs = self._train_epoch(train, epoch, epochs)
            if val is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(val).items()})
            spent = self.state["spent"]
            spent["wall"] += time.perf_counter() - wall
            spent["cpu"] += time.process_time() - cpu
            logs["epoch"] = epoch
            self.state["history"].append(logs)
            self.state["epoch"] = epoch + 1
            self.schedule.step_epoch(logs.get("val_loss"))
            log.info("epoch %d/%d  %s", epoch + 1, epochs,
                     "  ".join(f"{k}={v:.4g}" for k, v in logs.items() if k != "epoch"))
            for cb in self.callbacks:
                cb.on_epoch_end(self, logs)
            self.should_stop = bool(agree(self.should_stop, "max", self.device))  # one rank stopping stops all
        for cb in self.callbacks:
            getattr(cb, "on_train_end", lambda e: None)(self)
        return self.state["history"]

    def _train_epoch(self, loader: Iterable[Batch], epoch: int, epochs: int) -> dict[str, float]:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        from hepnn.train.progress import EpochProgress

        totals: dict[str, float] = {}
        n_jets, wait, t0, c0 = 0, 0.0, time.perf_counter(), self.clock()
        steps = _len(loader)
        if world_size() > 1:  # every rank takes the same number of steps (see ``agree``)
            steps = agree(steps if steps is not None else 2**62, "min", self.device)
        with EpochProgress(f"epoch {epoch + 1}/{epochs}", total=steps, enabled=self.progress) as bar:
            it = iter(loader)
            for _ in range(steps if steps is not None else 2**62):
                t_wait = time.perf_counter()
                batch = next(it, None)
                wait += time.perf_counter() - t_wait
                if batch is None:
                    break
                logs = self.train_step(batch.to(self.device, non_blocking=True))
                n = len(batch)
                n_jets += n
                for k, v in logs.items():
                    totals[k] = totals.get(k, 0.0) + v * n
                bar.advance(loss=logs["loss"], jets_per_s=n_jets / (time.perf_counter() - t0))
                if self.time_limit is not None and agree(
                        self.state["train_time"] + self.clock() - c0 >= self.time_limit, "max", self.device):
                    log.info("time budget of %.0f s reached at step %d", self.time_limit, self.state["step"])
                    self.should_stop = True
                    break
        self.state["train_time"] += self.clock() - c0
        elapsed = time.perf_counter() - t0
        out = {k: v / max(n_jets, 1) for k, v in totals.items()}
        out.update(jets_per_s=n_jets / max(elapsed, 1e-9), data_wait=wait / max(elapsed, 1e-9), time_s=elapsed)
        return out

    # ---------------------------------------------------------------- evaluation
    def predict(self, loader: Iterable[Batch]) -> dict[str, np.ndarray]:
        """Concatenated task outputs over a loader (score/pred, y, per-batch loss)."""
        return predict_outputs(self.net, self.task, loader, self.device, self.amp_dtype)

    def evaluate(self, loader: Iterable[Batch]) -> dict[str, float]:
        """Validation loss plus the task's headline metrics (accuracy and AUC, or MAE)."""
        from hepnn.evaluate.summary import quick_metrics

        out = self.predict(loader)
        return quick_metrics(self.task.kind, out)

    # ---------------------------------------------------------------- state for resuming
    def state_dict(self) -> dict[str, Any]:
        from hepnn.train.checkpoint import unwrap

        return {
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "epoch": self.state["epoch"],
            "step": self.state["step"],
            "history": self.state["history"],
            "train_time": self.state["train_time"],
            "spent": dict(self.state["spent"]),
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks if hasattr(cb, "state_dict")},
            # a task with state of its own (e.g. a GAN's discriminator optimizer) resumes with it
            "task": self.task.state_dict() if hasattr(self.task, "state_dict") else {},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from hepnn.train.checkpoint import unwrap

        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.state = {"epoch": state["epoch"], "step": state["step"], "history": list(state["history"]),
                      "train_time": state.get("train_time", 0.0),
                      "spent": dict(state.get("spent", {"wall": 0.0, "cpu": 0.0}))}
        if state.get("task") and hasattr(self.task, "load_state_dict"):
            self.task.load_state_dict(state["task"])
        for cb in self.callbacks:
            if hasattr(cb, "load_state_dict") and type(cb).__name__ in state["callbacks"]:
                cb.load_state_dict(state["callbacks"][type(cb).__name__])


@torch.no_grad()
def predict_outputs(model: nn.Module, task: Task, loader: Iterable[Batch], device: torch.device | str = "cpu",
                    amp: str | torch.dtype | None = "auto") -> dict[str, np.ndarray]:
    """Run ``task.outputs`` over every batch in eval mode and concatenate (numpy, float32).

    Precision: ``amp`` as ``train.amp`` ("auto": bf16 autocast where the hardware runs it fast, see
    ``hepnn.train.amp``), or an autocast dtype already resolved (None = fp32, as the engine passes).

    Per-jet outputs come back in the jets' own order, also from a loader that sorts them by
    multiplicity (one with ``order()``); "loss" stays one value per batch."""
    model.eval()
    dtype = resolve_amp(amp, device) if isinstance(amp, str) else amp
    order = loader.order() if hasattr(loader, "order") else None
    parts: dict[str, list[torch.Tensor]] = {}
    for batch in loader:
        with autocast(device, dtype):
            out = task.outputs(model, batch.to(device))
        for k, v in out.items():
            if v is not None:
                parts.setdefault(k, []).append(v.detach().float().cpu())
    result = {k: torch.cat(v).numpy() for k, v in parts.items()}
    if order is not None and len(order) and np.any(order != np.arange(len(order))):
        inverse = np.argsort(order)
        result.update({k: v[inverse] for k, v in result.items() if k != "loss"})
    return result


def _len(loader: Iterable[Batch]) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None
