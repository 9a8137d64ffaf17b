"""Callbacks: early stopping, checkpoints (last + best, atomic), history (CSV + TensorBoard).

A callback implements ``on_epoch_end(engine, logs)`` and optionally ``on_train_begin``,
``on_train_end``, ``state_dict`` and ``load_state_dict`` (so a resumed run keeps its patience
counter and best score).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepnn.errors import ConfigError
from hepnn.io_utils import write_text_atomic
from hepnn.log import get_logger
from hepnn.train.checkpoint import load_weights, save_state, save_weights
from hepnn.train.distributed import is_main

if TYPE_CHECKING:
    from hepnn.train.engine import Engine

log = get_logger(__name__)


class EarlyStopping:
    """Stop when ``metric`` has not improved for ``patience`` epochs; optionally restore the best."""

    def __init__(self, metric: str = "val_loss", mode: str = "min", patience: int = 5,
                 restore_best: bool = True, best_path: Path | None = None) -> None:
        self.metric, self.mode, self.patience = metric, mode, patience
        self.restore_best, self.best_path = restore_best, best_path
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0

    def _better(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, engine: Engine, logs: dict[str, float]) -> None:
        if self.metric not in logs:
            raise ConfigError(
                f"train.early_stopping.metric: {self.metric!r} is not produced by this task; "
                f"available: {', '.join(sorted(logs))}"
            )
        value = logs[self.metric]
        if self._better(value):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                log.info("early stopping: %s has not improved for %d epochs (best %.5g)",
                         self.metric, self.bad_epochs, self.best)
                engine.should_stop = True

    def on_train_end(self, engine: Engine) -> None:
        if self.restore_best and self.best_path is not None and self.best_path.is_file():
            load_weights(engine.model, self.best_path)
            log.info("restored the best weights (%s = %.5g)", self.metric, self.best)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


class Checkpointer:
    """Each epoch: the full training state to ``last.pt``; the best weights to ``best.safetensors``.

    The state is written last, after the best weights, so a resumed run never points at a best
    checkpoint from its future.
    """

    def __init__(self, directory: Path, metric: str = "val_loss", mode: str = "min") -> None:
        self.directory = Path(directory)
        self.metric, self.mode = metric, mode
        self.best = math.inf if mode == "min" else -math.inf

    @property
    def last_path(self) -> Path:
        return self.directory / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.directory / "best.safetensors"

    def on_epoch_end(self, engine: Engine, logs: dict[str, float]) -> None:
        if not is_main():
            return
        value = logs.get(self.metric)
        if value is not None and (value < self.best if self.mode == "min" else value > self.best):
            self.best = value
            save_weights(engine.model, self.best_path)
        save_state(engine.state_dict(), self.last_path)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]


class HistoryWriter:
    """Per-epoch history as ``history.csv`` (rewritten atomically) and TensorBoard scalars if available."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.tensorboard = tensorboard
        self._tb: Any = None

    def on_train_begin(self, engine: Engine) -> None:
        if self.tensorboard and is_main():
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the optional `tb` extra is not installed: CSV only
                log.debug("tensorboard not installed; writing history.csv only")
                return
            self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))

    def on_epoch_end(self, engine: Engine, logs: dict[str, float]) -> None:
        if not is_main():
            return
        history = engine.state["history"]
        keys = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
        write_text_atomic(self.run_dir / "history.csv", buf.getvalue())
        if self._tb is not None:
            for k, v in logs.items():
                if k != "epoch":
                    self._tb.add_scalar(k, v, int(logs["epoch"]))
            self._tb.flush()

    def on_train_end(self, engine: Engine) -> None:
        if self._tb is not None:
            self._tb.close()
