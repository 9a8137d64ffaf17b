"""A stand-in for ``hepnn.train.fit.fit`` whose metric is a known function of the config.

It writes what a real run writes for the tuner (metrics.json, per-epoch logs through the engine
callbacks), so the study machinery is tested without training. Module level, so spawned worker
processes can import it.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from types import SimpleNamespace

LR_BEST, DROPOUT_BEST = 10**-2.5, 0.2


def known_auc(lr: float, dropout: float) -> float:
    """Peaks at 0.9 for lr = 10^-2.5, dropout = 0.2; smooth in log10(lr) and dropout."""
    return 0.9 - 0.05 * (math.log10(lr) + 2.5) ** 2 - 0.5 * (dropout - DROPOUT_BEST) ** 2


def fake_fit(cfg, out, *, progress=False, extra_callbacks=()):
    out = Path(out)
    out.mkdir(parents=True)
    if os.environ.get("HEPNN_FAKE_INTERRUPT") == out.name:  # Ctrl-C during this trial number
        raise KeyboardInterrupt
    auc = known_auc(cfg.train.optimizer.lr, cfg.model.params.get("dropout", 0.0))
    if cfg.name == "nan":
        auc = float("nan")
    engine = SimpleNamespace(should_stop=False)
    for cb in extra_callbacks:
        getattr(cb, "on_train_begin", lambda e: None)(engine)
    for epoch in range(cfg.train.epochs):  # the per-epoch value climbs to the final one
        logs = {"epoch": epoch, "val_auc": auc - 0.01 * (cfg.train.epochs - 1 - epoch), "val_loss": 1 - auc}
        for cb in extra_callbacks:
            cb.on_epoch_end(engine, logs)
        if engine.should_stop:
            break
    for cb in extra_callbacks:
        getattr(cb, "on_train_end", lambda e: None)(engine)
    time.sleep(float(os.environ.get("HEPNN_FAKE_SLEEP", "0")))
    (out / "metrics.json").write_text(json.dumps({"auc": auc, "pid": os.getpid()}))
    return out
