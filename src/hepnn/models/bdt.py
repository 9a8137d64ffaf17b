"""Boosted decision trees (xgboost) on jet-level features: the baseline every tagger is compared to.

Not a torch module: gradient boosting is fitted on whole arrays, not by the SGD loop. The pipeline
calls ``fit_arrays`` instead of the engine; evaluation, prediction and comparison treat it like any
other model. Saved as xgboost's own JSON (no pickle).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hepnn.errors import HepnnError, missing_extra
from hepnn.io_utils import atomic_path
from hepnn.registry import register_model


class BDT:
    """Gradient-boosted trees. jet (n, F) -> class probabilities (n, K) or values (n,)."""

    inputs = ("jet",)

    def __init__(
        self,
        *,
        num_classes: int,
        n_estimators: int,
        max_depth: int,
        learning_rate: float,
        subsample: float,
        early_stopping_rounds: int | None,
        seed: int = 0,
    ) -> None:
        try:
            import xgboost as xgb
        except ImportError:
            raise missing_extra("bdt", "xgboost") from None
        common = dict(
            n_estimators=n_estimators,
            max_depth=max_depth,
            learning_rate=learning_rate,
            subsample=subsample,
            early_stopping_rounds=early_stopping_rounds,
            random_state=seed,
            n_jobs=1,
            tree_method="hist",
        )
        self.num_classes = num_classes
        if num_classes == 1:
            self.model = xgb.XGBRegressor(**common)
        else:
            self.model = xgb.XGBClassifier(**common, eval_metric="logloss")

    def fit_arrays(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None,
                   x_val: np.ndarray, y_val: np.ndarray) -> "BDT":
        self.model.fit(x, y, sample_weight=weight, eval_set=[(x_val, y_val)], verbose=False)
        return self

    def predict_arrays(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, K) for classifiers, predictions (n,) for regression."""
        if self.num_classes == 1:
            return self.model.predict(x)
        return self.model.predict_proba(x)

    def n_params(self) -> int:
        """Number of tree nodes (the closest analogue of a parameter count)."""
        booster = self.model.get_booster()
        return int(sum(len(tree.split("\n")) - 1 for tree in booster.get_dump()))

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            self.model.save_model(tmp.with_suffix(".json"))
            tmp.with_suffix(".json").replace(tmp)

    def load(self, path: str | Path) -> "BDT":
        try:
            self.model.load_model(str(path))
        except ValueError as err:  # XGBoostError, or UnicodeDecodeError on random bytes
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise HepnnError(f"{path} is not a valid xgboost model ({first[:200]}); retrain or restore it") from err
        return self


@register_model("bdt", inputs=("jet",), family="bdt", kind="tree")
def bdt(
    *,
    jet_features: int = 5,
    num_classes: int = 2,
    n_estimators: int = 300,
    max_depth: int = 4,
    learning_rate: float = 0.1,
    subsample: float = 0.8,
    early_stopping_rounds: int | None = 20,
    seed: int = 0,
) -> BDT:
    """xgboost BDT on jet-level features (histogram method, early stopping on the val split)."""
    del jet_features  # trees need no input size
    return BDT(num_classes=num_classes, n_estimators=n_estimators, max_depth=max_depth,
               learning_rate=learning_rate, subsample=subsample,
               early_stopping_rounds=early_stopping_rounds, seed=seed)
