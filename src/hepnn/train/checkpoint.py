"""Checkpoint I/O: weights in safetensors, training state in a torch file loaded with weights_only.

Nothing here unpickles arbitrary objects: ``torch.load(..., weights_only=True)`` accepts tensors,
numbers, strings, lists and dicts only, and refuses a crafted pickle payload. Every file is written
atomically (temporary file + rename), so a ``kill -9`` never leaves a half-written checkpoint.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hepnn.errors import HepnnError
from hepnn.io_utils import atomic_path


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def save_weights(model: nn.Module, path: str | Path) -> None:
    """Model weights as safetensors (shared tensors are cloned so every key is stored)."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().clone().cpu() for k, v in unwrap(model).state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load safetensors weights into ``model``; a mismatch names the missing/unexpected keys."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise HepnnError(f"weights file {path} does not exist; was the run trained to the end?")
    try:
        state = load_file(str(path))
    except SafetensorError as err:
        raise HepnnError(f"{path} is not a valid safetensors file ({err}); retrain or restore it") from None
    own = unwrap(model).state_dict()
    wrong = [f"{k} {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the model"
             for k, v in state.items() if k in own and v.shape != own[k].shape]
    if wrong:
        raise HepnnError(f"{path} does not match the model in the run config: {'; '.join(wrong[:3])}"
                         f"{' ...' if len(wrong) > 3 else ''}; was config.yaml edited after training?")
    missing, unexpected = unwrap(model).load_state_dict(state, strict=False)
    if missing or unexpected:
        raise HepnnError(
            f"{path} does not match the model in the run config: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}; was config.yaml edited after training?"
        )
    return model


def save_state(state: dict[str, Any], path: str | Path) -> None:
    """Training state (optimizer, schedule, RNG, counters, history) as a weights-only torch file."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: str | Path) -> dict[str, Any]:
    """Load a training state; refuses anything that is not plain tensors and containers."""
    path = Path(path)
    if not path.is_file():
        raise HepnnError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise HepnnError(
            f"refusing to load {path}: it contains objects other than tensors and plain data "
            f"(possibly a malicious pickle). Only load checkpoints written by hepnn. ({err})"
        ) from None
    except (RuntimeError, EOFError) as err:
        raise HepnnError(f"checkpoint {path} is corrupt or truncated ({err}); delete it to restart") from None
