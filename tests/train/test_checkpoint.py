"""hepnn.train.checkpoint: safetensors weights round trip (wrappers unwrapped, tied weights kept), atomic
writes that leave no partial file, weights-only training states, and load errors naming keys and shapes."""

from __future__ import annotations

import builtins

import pytest
import torch
from torch import nn

from hepnn.errors import HepnnError
from hepnn.train.checkpoint import load_state, load_weights, save_state, save_weights, unwrap


class Tiny(nn.Module):
    """Linear + BatchNorm (a buffer) + a head tied to the first layer's weight."""

    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.lin = nn.Linear(width, width)
        self.norm = nn.BatchNorm1d(width)
        self.head = nn.Linear(width, width, bias=False)
        self.head.weight = self.lin.weight  # shared tensor: safetensors refuses it unless cloned


def trained_tiny(seed: int = 0) -> Tiny:
    torch.manual_seed(seed)
    model = Tiny()
    model.norm(model.lin(torch.randn(8, 3)))  # training mode: moves the running statistics
    return model


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_weights_round_trip_through_safetensors(tmp_path):
    from safetensors.torch import load_file

    model = trained_tiny()
    save_weights(model, tmp_path / "w.safetensors")
    stored = load_file(str(tmp_path / "w.safetensors"))  # a plain safetensors file, no pickle
    assert set(stored) == set(model.state_dict())
    fresh = trained_tiny(seed=1)
    assert not torch.equal(fresh.lin.weight, model.lin.weight)
    assert load_weights(fresh, tmp_path / "w.safetensors") is fresh
    assert_same_state(fresh, model)
    assert torch.equal(fresh.norm.running_mean, model.norm.running_mean) and fresh.norm.num_batches_tracked == 1


def test_wrapped_models_save_and_load_the_plain_keys(tmp_path):
    model = trained_tiny()
    wrapped = nn.DataParallel(model)  # has .module, as DDP does
    assert unwrap(wrapped) is model
    save_weights(wrapped, tmp_path / "w.safetensors")
    fresh = nn.DataParallel(trained_tiny(seed=1))
    load_weights(fresh, tmp_path / "w.safetensors")
    assert_same_state(fresh.module, model)


def test_unwrap_compiled_module():
    class Compiled(nn.Module):  # what torch.compile returns: the model as ``_orig_mod``
        def __init__(self, inner):
            super().__init__()
            self._orig_mod = inner

    model = Tiny()
    assert unwrap(Compiled(model)) is model and unwrap(model) is model


def fail_half_way(monkeypatch, module, name):
    """Make ``module.name(obj, path)`` write half a file at ``path`` and then fail (a full disk)."""
    def writer(obj, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, name, writer)


def test_failed_weights_write_leaves_the_old_file_and_no_temporary(monkeypatch, tmp_path):
    import safetensors.torch

    model = trained_tiny()
    path = tmp_path / "w.safetensors"
    save_weights(model, path)
    before = path.read_bytes()
    fail_half_way(monkeypatch, safetensors.torch, "save_file")
    with pytest.raises(OSError, match="No space"):
        save_weights(trained_tiny(seed=1), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_failed_first_state_write_leaves_no_file(monkeypatch, tmp_path):
    fail_half_way(monkeypatch, torch, "save")
    with pytest.raises(OSError, match="No space"):
        save_state({"epoch": 1}, tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []


def test_state_round_trip_of_plain_data(tmp_path):
    state = {"epoch": 3, "lr": 1e-3, "name": "pfn", "history": [{"loss": 0.5}, {"loss": 0.25}],
             "optimizer": {"state": {0: {"exp_avg": torch.arange(4.0)}}, "param_groups": [{"lr": 1e-3}]},
             "rng": torch.get_rng_state()}
    save_state(state, tmp_path / "last.pt")
    got = load_state(tmp_path / "last.pt")
    assert got["epoch"] == 3 and got["lr"] == 1e-3 and got["name"] == "pfn" and got["history"] == state["history"]
    assert torch.equal(got["optimizer"]["state"][0]["exp_avg"], torch.arange(4.0))
    assert torch.equal(got["rng"], state["rng"])


class Payload:
    """Unpickling calls ``open(marker, "w")``: the marker file exists only if the pickle ran."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def test_crafted_pickle_state_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"epoch": 1, "model": Payload(marker)}, tmp_path / "last.pt")
    with pytest.raises(HepnnError, match="refusing to load .*last.pt"):
        load_state(tmp_path / "last.pt")
    assert not marker.exists()


def test_missing_and_truncated_states(tmp_path):
    with pytest.raises(HepnnError, match="checkpoint .*nope.pt does not exist"):
        load_state(tmp_path / "nope.pt")
    save_state({"w": torch.ones(1000)}, tmp_path / "last.pt")
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(HepnnError, match="corrupt or truncated"):
        load_state(tmp_path / "last.pt")


def test_shape_mismatch_names_key_and_both_shapes(tmp_path):
    save_weights(nn.Sequential(nn.Linear(3, 4)), tmp_path / "w.safetensors")
    with pytest.raises(HepnnError) as err:
        load_weights(nn.Sequential(nn.Linear(3, 5)), tmp_path / "w.safetensors")
    message = str(err.value)
    assert "w.safetensors does not match the model" in message
    assert "0.weight (4, 3) in the file, (5, 3) in the model" in message
    assert "0.bias (4,) in the file, (5,) in the model" in message


def test_more_than_three_shape_mismatches_are_cut_short(tmp_path):
    save_weights(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4)), tmp_path / "w.safetensors")
    with pytest.raises(HepnnError) as err:
        load_weights(nn.Sequential(nn.Linear(3, 5), nn.Linear(5, 5)), tmp_path / "w.safetensors")
    message = str(err.value)
    assert message.count("in the file") == 3 and " ..." in message


def test_missing_and_unexpected_keys_are_named(tmp_path):
    save_weights(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), tmp_path / "w.safetensors")
    longer = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Linear(2, 2))
    with pytest.raises(HepnnError, match=r"missing \['3\.weight', '3\.bias'\], unexpected \[\]"):
        load_weights(longer, tmp_path / "w.safetensors")
    with pytest.raises(HepnnError, match=r"missing \[\], unexpected \['2\.bias', '2\.weight'\]"):
        load_weights(nn.Sequential(nn.Linear(3, 4)), tmp_path / "w.safetensors")


def test_missing_weights_file(tmp_path):
    with pytest.raises(HepnnError, match="weights file .*model.safetensors does not exist"):
        load_weights(nn.Linear(2, 2), tmp_path / "model.safetensors")
