"""hepnn.evaluate.scores: jet kinematics by hand, the columns of test_scores.parquet, the history reader,
and predict_jets (tree models with jet preprocessing, torch regression back in physical units,
bucketed batches returned in file order)."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import torch
from torch import nn

from hepnn.config import load_config
from hepnn.data.jagged import JaggedJets
from hepnn.data.preprocess import Preprocessor
from hepnn.evaluate.scores import jet_kinematics, predict_jets, read_history, scores_table, write_table

# Three jets: two particles, no particle, one massless particle.
P4 = np.array([[10.0, 1.0, 2.0, 3.0], [5.0, -1.0, 0.0, 1.0], [4.0, 0.0, 3.0, 4.0]])  # (E, px, py, pz)
OFFSETS = np.array([0, 2, 2, 3])


def three_jets(**per_jet) -> JaggedJets:
    return JaggedJets(p4=P4, offsets=OFFSETS, **per_jet)


def test_jet_kinematics_by_hand():
    k = jet_kinematics(three_jets())
    # jet 0: sum (15, 0, 2, 4): pT 2, m^2 = 225 - 4 - 16; jet 1 empty; jet 2: pT 3, m^2 = 16 - 9 - 16 < 0 -> 0
    np.testing.assert_allclose(k["jet_pt"], [2.0, 0.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(k["jet_mass"], [math.sqrt(205.0), 0.0, 0.0], rtol=1e-6)
    assert k["jet_pt"].dtype == np.float32 and k["jet_mass"].dtype == np.float32


def test_scores_table_binary():
    out = {"score": np.array([0.1, 0.9, 0.5], np.float32), "y": np.array([0.0, 1.0, 1.0]), "loss": np.array([0.3])}
    table = scores_table(out, three_jets())
    assert list(table) == ["score", "label", "jet_pt", "jet_mass"]  # the per-batch loss is not a column
    assert table["label"].dtype == np.int64 and table["label"].tolist() == [0, 1, 1]


def test_scores_table_multiclass_and_regression():
    probs = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8]], np.float32)
    table = scores_table({"score": probs, "y": np.array([2, 0, 2])}, three_jets())
    assert [k for k in table if k.startswith("score")] == ["score_0", "score_1", "score_2"]
    np.testing.assert_array_equal(table["score_2"], probs[:, 2])
    reg = scores_table({"pred": np.array([1.5, 2.5, 3.5]), "y": np.array([1.0, 2.0, 3.0])}, three_jets())
    assert set(reg) == {"pred", "target", "jet_pt", "jet_mass"} and reg["target"].tolist() == [1.0, 2.0, 3.0]


def test_write_table_round_trip(tmp_path):
    from hepnn.data.io import read_metadata

    table = scores_table({"score": np.array([0.1, 0.9, 0.5], np.float32), "y": np.array([0, 1, 1])}, three_jets())
    write_table(table, tmp_path / "scores.parquet")
    back = ak.from_parquet(tmp_path / "scores.parquet")
    assert back.fields == list(table)
    for k, v in table.items():
        np.testing.assert_array_equal(ak.to_numpy(back[k]), v)
    assert read_metadata(tmp_path / "scores.parquet")["kind"] == "scores"


def test_read_history(tmp_path):
    assert read_history(tmp_path) is None
    (tmp_path / "history.csv").write_text(
        "epoch,loss,lr,val_auc,val_loss,jets_per_s,data_wait\n0,0.7,0.001,0.8,0.6,1000,0.1\n1,0.5,0.001,,0.55,1200,0.1\n")
    history = read_history(tmp_path)
    assert history == {"loss": [0.7, 0.5], "val_auc": [0.8], "val_loss": [0.6, 0.55], "jets_per_s": [1000.0, 1200.0]}


class LinearTree:
    """A TreeModel stand-in: probabilities (1 - s, s) with s = sigmoid(first feature), or the feature itself."""

    def __init__(self, classify: bool = True) -> None:
        self.classify = classify

    def fit_arrays(self, x, y, weight, x_val, y_val):
        return self

    def predict_arrays(self, x: np.ndarray) -> np.ndarray:
        if not self.classify:
            return x[:, 0].astype(np.float64)
        s = 1 / (1 + np.exp(-x[:, 0]))
        return np.stack([1 - s, s], axis=1)

    def save(self, path):
        pass

    def load(self, path):
        return self

    def n_params(self) -> int:
        return 0


def fitted(steps, x: np.ndarray) -> Preprocessor:
    return Preprocessor(steps).fit(x)


def test_predict_jets_tree_model_reads_preprocessed_jet_features():
    jet = np.array([[1.0, 5.0], [3.0, 6.0], [5.0, 7.0]], np.float32)
    jets = three_jets(jet=jet, y=np.array([0, 1, 1]))
    pre = {"jet": fitted([{"kind": "standardize"}], jet)}
    cfg = load_config(None, ["model.name=bdt"])
    out = predict_jets(cfg, LinearTree(), pre, jets, "classify")
    z = (jet[:, 0] - 3.0) / np.std([1.0, 3.0, 5.0])  # the standardized first feature
    np.testing.assert_allclose(out["score"], 1 / (1 + np.exp(-z)), rtol=1e-6)
    assert out["score"].dtype == np.float32 and out["y"] is jets.y
    reg = predict_jets(cfg, LinearTree(classify=False), {}, jets, "regress")
    np.testing.assert_array_equal(reg["pred"], jet[:, 0])


class FirstJetFeature(nn.Module):
    """A regression "model" that returns the first (preprocessed) jet feature, (B, 1)."""

    def forward(self, batch):
        return batch.jet[:, :1]


def test_predict_jets_regression_returns_physical_units():
    jet = np.array([[1.0], [3.0], [5.0]], np.float32)
    y = np.array([10.0, 30.0, 50.0], np.float32)
    pre = {"target": fitted([{"kind": "standardize"}], y.reshape(-1, 1))}
    cfg = load_config(None, ["model.name=mlp", "data.target=jet_mass"])
    out = predict_jets(cfg, FirstJetFeature(), pre, three_jets(jet=jet, y=y), "regress")
    # the model's output lives in the standardized target space: mean 30, std sqrt(800/3)
    np.testing.assert_allclose(out["pred"], 30.0 + jet[:, 0] * math.sqrt(800 / 3), rtol=1e-6)
    np.testing.assert_array_equal(out["y"], y)


class CountsLogit(nn.Module):
    """Logits (0, number of real particles): the score identifies the jet's multiplicity."""

    def forward(self, batch):
        n = batch.mask.sum(1).double()  # (B,)
        return torch.stack([torch.zeros_like(n), n], dim=-1)


def test_predict_jets_keeps_file_order_under_bucketing():
    g = np.random.default_rng(0)
    counts = np.array([5, 1, 4, 2, 6, 3, 1, 5])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    pt = g.uniform(1, 10, (offsets[-1], 1))
    p4 = np.concatenate([pt * 2, pt, np.zeros_like(pt), pt], axis=1)  # (E, px, py, pz), E > |p|
    jets = JaggedJets(p4=p4, offsets=offsets, y=np.arange(8) % 2)
    cfg = load_config(None, ["model.name=pfn", "data.batch_size=3", "data.bucketing=true"])
    out = predict_jets(cfg, CountsLogit(), {}, jets, "classify")
    np.testing.assert_allclose(out["score"], 1 / (1 + np.exp(-counts)), rtol=1e-6)
    np.testing.assert_array_equal(out["y"], jets.y)


@pytest.mark.parametrize("counts", [[0, 2], [2, 0]])
def test_jet_kinematics_with_an_empty_first_or_last_jet(counts):
    offsets = np.concatenate([[0], np.cumsum(counts)])
    jets = JaggedJets(p4=P4[:2], offsets=offsets)
    k = jet_kinematics(jets)
    full = counts.index(2)
    assert k["jet_pt"][1 - full] == 0 and k["jet_pt"][full] == pytest.approx(2.0)
