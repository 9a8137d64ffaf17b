"""What the weaver-core model wrappers here share: weaver's ``model_info`` and loss, and a train
function that times weaver's own ``train_classification`` in process CPU time.

The wrappers import it (``get_train_fn``, ``get_evaluate_fn``, ``get_loss``, ``model_info``): weaver's
loop runs unchanged; the loader is
wrapped only to read the clock when batch ``START`` is requested, so the first steps are left out: the
in-memory fetch of the whole file and lazy initialization (step 1, as hepnn's ``bench_train.py`` leaves
out its warm-up step), and ParT's five untrimmed warm-up steps (weaver's ``SequenceTrimmer`` pads to
128 for the first 5 steps of a run, then trims each batch to a random 90-100 % quantile of its
multiplicities), which would otherwise weigh on a short timed run far more than on a real one.
"""

import logging
import time

import torch
from weaver.utils.nn.tools import evaluate_classification, train_classification

log = logging.getLogger("weaver")


START = 5  # 0-based index of the first timed batch


class _ClockedLoader:
    """Iterates over ``loader``; records CPU and wall time from batch ``START`` on."""

    def __init__(self, loader):
        self.loader, self.dataset = loader, loader.dataset
        self.n, self.t0 = 0, None

    def __iter__(self):
        for i, (X, y, z) in enumerate(self.loader):
            if i == START:
                self.t0 = (time.process_time(), time.perf_counter())
            if i >= START:
                self.n += len(next(iter(y.values())))
            yield X, y, z


def timed_train(model, loss_func, opt, scheduler, train_loader, dev, epoch, **kw):
    torch.set_num_threads(1)
    clocked = _ClockedLoader(train_loader)
    train_classification(model, loss_func, opt, scheduler, clocked, dev, epoch, **kw)
    cpu, wall = time.process_time() - clocked.t0[0], time.perf_counter() - clocked.t0[1]
    log.info("CPU-TIMED: %d jets from batch %d on: %.2f jets/s (process CPU), %.2f jets/s (wall), threads=%d",
             clocked.n, START + 1, clocked.n / cpu, clocked.n / wall, torch.get_num_threads())


def get_train_fn(data_config, **kwargs):
    return timed_train


def get_evaluate_fn(data_config, **kwargs):
    return evaluate_classification


def model_info(data_config):
    """weaver's export description of a model reading the data config's inputs (dynamic batch and length)."""
    return {
        "input_names": list(data_config.input_names),
        "input_shapes": {k: ((1,) + s[1:]) for k, s in data_config.input_shapes.items()},
        "output_names": ["softmax"],
        "dynamic_axes": {**{k: {0: "N", 2: "n_" + k.split("_")[0]} for k in data_config.input_names},
                         "softmax": {0: "N"}},
    }


def get_loss(data_config, **kwargs):
    return torch.nn.CrossEntropyLoss()
