"""hepnn.train.callbacks: early stopping (patience counted exactly, min/max mode, best weights restored,
state survives a resume), the checkpointer's best tracking and write order, and the history writer."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from hepnn.errors import ConfigError
from hepnn.train import callbacks
from hepnn.train.callbacks import Checkpointer, EarlyStopping, HistoryWriter
from hepnn.train.checkpoint import load_state, load_weights, save_weights


def fake_engine(history=None):
    """What callbacks use of an Engine: model, state (history), should_stop, state_dict()."""
    model = nn.Linear(2, 1)
    engine = SimpleNamespace(model=model, state={"history": history or [], "epoch": 0}, should_stop=False)
    engine.state_dict = lambda: {"epoch": engine.state["epoch"], "w": model.weight.detach().clone()}
    return engine


def stops_after(stopper: EarlyStopping, values: list[float], metric: str = "val_loss") -> int | None:
    """The 1-based epoch after which ``stopper`` asks to stop (None: never)."""
    engine = fake_engine()
    for epoch, v in enumerate(values, start=1):
        stopper.on_epoch_end(engine, {metric: v, "epoch": epoch - 1})
        if engine.should_stop:
            return epoch
    return None


def test_patience_counts_epochs_without_improvement():
    # best at epoch 2; epochs 3, 4, 5 do not improve (an equal value is no improvement): with patience
    # 2 the third bad epoch stops
    assert stops_after(EarlyStopping(patience=2), [1.0, 0.5, 0.6, 0.5, 0.7, 0.1]) == 5
    assert stops_after(EarlyStopping(patience=3), [1.0, 0.5, 0.6, 0.5, 0.7, 0.1]) is None
    assert stops_after(EarlyStopping(patience=0), [1.0, 0.5, 0.6]) == 3


def test_an_improvement_resets_the_count():
    assert stops_after(EarlyStopping(patience=1), [1.0, 1.1, 0.9, 1.0, 0.8, 0.9, 0.9]) == 7


def test_max_mode_for_scores():
    stopper = EarlyStopping(metric="val_auc", mode="max", patience=1)
    assert stops_after(stopper, [0.7, 0.8, 0.75, 0.79, 0.99], metric="val_auc") == 4
    assert stopper.best == 0.8


def test_unknown_metric_names_the_available_ones():
    with pytest.raises(ConfigError, match=r"'val_auc' is not produced.*available: epoch, loss, val_loss"):
        EarlyStopping(metric="val_auc").on_epoch_end(fake_engine(), {"val_loss": 1.0, "loss": 2.0, "epoch": 0})


def test_state_survives_a_resume():
    first = EarlyStopping(patience=2)
    assert stops_after(first, [1.0, 0.5, 0.6]) is None  # one bad epoch so far
    resumed = EarlyStopping(patience=2)
    resumed.load_state_dict(first.state_dict())
    assert resumed.state_dict() == {"best": 0.5, "bad_epochs": 1}
    assert stops_after(resumed, [0.7, 0.8]) == 2  # bad epochs 2 and 3: stops; a fresh stopper would not


@pytest.mark.parametrize("restore", [True, False])
def test_restore_best_weights_at_the_end(tmp_path, restore):
    best_model = nn.Linear(2, 1)
    save_weights(best_model, tmp_path / "best.safetensors")
    engine = fake_engine()
    before = engine.model.weight.detach().clone()
    EarlyStopping(restore_best=restore, best_path=tmp_path / "best.safetensors").on_train_end(engine)
    expected = best_model.weight if restore else before
    assert torch.equal(engine.model.weight, expected)


def test_restore_best_without_a_best_file_keeps_the_model(tmp_path):
    engine = fake_engine()
    before = engine.model.weight.detach().clone()
    EarlyStopping(best_path=tmp_path / "best.safetensors").on_train_end(engine)
    assert torch.equal(engine.model.weight, before)


def run_checkpointer(ckpt: Checkpointer, values: list[float | None], metric: str = "val_loss"):
    """Epochs with the given metric values; the model's weight is set to the epoch number each time."""
    engine = fake_engine()
    for epoch, v in enumerate(values):
        with torch.no_grad():
            engine.model.weight.fill_(float(epoch))
        engine.state["epoch"] = epoch + 1
        ckpt.on_epoch_end(engine, {} if v is None else {metric: v})
    return engine


def best_epoch(path) -> float:
    """The epoch whose weights ``path`` holds (run_checkpointer fills the weight with it)."""
    model = load_weights(nn.Linear(2, 1), path)
    return float(model.weight[0, 0].detach())


def test_checkpointer_keeps_the_best_and_the_last(tmp_path):
    ckpt = Checkpointer(tmp_path)
    run_checkpointer(ckpt, [0.9, 0.4, 0.6, 0.4, 0.5])
    assert best_epoch(ckpt.best_path) == 1.0 and ckpt.best == 0.4  # a tie does not replace the best
    last = load_state(ckpt.last_path)
    assert last["epoch"] == 5 and torch.equal(last["w"], torch.full((1, 2), 4.0))


def test_checkpointer_max_mode_and_a_missing_metric(tmp_path):
    ckpt = Checkpointer(tmp_path / "a", metric="val_auc", mode="max")
    run_checkpointer(ckpt, [0.6, 0.8, 0.7], metric="val_auc")
    assert best_epoch(ckpt.best_path) == 1.0
    no_metric = Checkpointer(tmp_path / "b")
    run_checkpointer(no_metric, [None, None])
    assert not no_metric.best_path.exists() and load_state(no_metric.last_path)["epoch"] == 2


def test_checkpointer_writes_the_best_before_the_state(monkeypatch, tmp_path):
    """A crash between the two writes must never leave last.pt pointing past best.safetensors."""
    order = []
    monkeypatch.setattr(callbacks, "save_weights", lambda model, path: order.append(path.name))
    monkeypatch.setattr(callbacks, "save_state", lambda state, path: order.append(path.name))
    run_checkpointer(Checkpointer(tmp_path), [0.5])
    assert order == ["best.safetensors", "last.pt"]


def test_checkpointer_state_resumes_the_best(tmp_path):
    first = Checkpointer(tmp_path)
    run_checkpointer(first, [0.5, 0.3])
    resumed = Checkpointer(tmp_path)
    resumed.load_state_dict(first.state_dict())
    run_checkpointer(resumed, [0.4])  # worse than the resumed best: best.safetensors stays epoch 1's
    assert best_epoch(resumed.best_path) == 1.0


def test_history_csv_is_rewritten_every_epoch(tmp_path):
    history = [{"epoch": 0, "loss": 0.5, "val_loss": 0.6}]
    engine = fake_engine(history)
    writer = HistoryWriter(tmp_path, tensorboard=False)
    writer.on_train_begin(engine)
    writer.on_epoch_end(engine, history[-1])
    history.append({"epoch": 1, "loss": 0.25, "val_loss": 0.5, "lr": 0.1})  # a new column appears
    writer.on_epoch_end(engine, history[-1])
    writer.on_train_end(engine)
    with open(tmp_path / "history.csv") as f:
        rows = list(csv.reader(f))
    assert rows == [["epoch", "loss", "lr", "val_loss"], ["0", "0.5", "", "0.6"], ["1", "0.25", "0.1", "0.5"]]
    assert not (tmp_path / "tensorboard").exists()


def test_history_tensorboard_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    history = [{"epoch": 0, "loss": 0.5}, {"epoch": 1, "loss": 0.25}]
    engine = fake_engine([])
    writer = HistoryWriter(tmp_path)
    writer.on_train_begin(engine)
    for row in history:
        engine.state["history"].append(row)
        writer.on_epoch_end(engine, row)
    writer.on_train_end(engine)
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert acc.Tags()["scalars"] == ["loss"]
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(0, 0.5), (1, 0.25)]
