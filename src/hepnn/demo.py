"""``hepnn demo``: the README's main job.

On the committed Pythia sample (or freshly generated jets), train several taggers with their ready
configs, print the comparison table (accuracy, AUC, 1/eps_B at eps_S = 0.3 and 0.5, parameters,
training time) and write the plots and a report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from hepnn.errors import HepnnError
from hepnn.log import get_logger

log = get_logger(__name__)

REPO = Path(__file__).resolve().parents[2]

# The demo's budget (under 10 minutes on 2 CPU cores): each model's ready config, with fewer epochs
# for the attention and graph models, whose CPU epochs are the slowest.
DEMO_OVERRIDES = {
    "particlenet_lite": ["train.epochs=6"],
    "part_lite": ["train.epochs=5", "data.max_particles=48"],
}


# What each model sees and how it learns: the first half of the sentence the report gives each row.
WHY = {
    "bdt": "boosted trees on nine jet observables (mass, pT, η, multiplicity, τ1, τ2, τ3, τ21, τ32): "
           "physics knowledge handed over as features, learned from few jets, blind to anything the observables "
           "miss",
    "mlp": "a dense network on the same nine observables: the BDT's information, fitted by gradient descent",
    "logistic": "a linear cut on the nine observables: the reference for what a non-linear model adds",
    "pfn": "Deep Sets on every constituent (a sum over particles): sees the whole jet, but must learn from "
           "data the substructure the observables hand to the BDT",
    "efn": "an IRC-safe Deep Set (energy-weighted sum over angles): robust to soft and collinear splittings, "
           "blind to multiplicity",
    "particlenet_lite": "EdgeConv on k-nearest-neighbour graphs in (η, φ): learns the local substructure, the "
                        "prongs of a top decay, from constituents",
    "part_lite": "a transformer whose attention is biased by pair features (ΔR, kT, z, m²): the most expressive "
                 "model here, and the hungriest for training jets",
    "lorentznet": "Lorentz-equivariant message passing on four-vectors: the symmetry is built in, not learned, "
                  "which pays most when jets are few",
    "pelican": "permutation- and Lorentz-equivariant layers on pairwise Minkowski products: few parameters, "
               "the symmetry built in",
}


def explain(name: str, auc: float, mass_auc: float, bdt_auc: float | None, n_train: int | None) -> str:
    """One sentence per row: the result against the jet mass alone and the BDT, then what the model sees."""
    versus = f"{'above' if auc > mass_auc else 'below'} the jet mass alone ({mass_auc:.3f})"
    if bdt_auc is not None and name != "bdt":
        versus += f" and {'above' if auc > bdt_auc else 'below'} the BDT ({bdt_auc:.3f})"
    jets = f" after {n_train} training jets" if n_train else ""
    return f"{name}: AUC {auc:.3f}{jets}, {versus}; {WHY.get(name, 'see docs/models.md')}."


def repo_file(relative: str, *, required: bool = True) -> Path | None:
    """A file of the hepnn checkout (the committed sample, the ready configs), from cwd or the source tree."""
    for base in (Path.cwd(), REPO):
        if (base / relative).exists():
            return base / relative
    if not required:
        return None
    raise HepnnError(f"{relative} not found next to {Path.cwd()} or in {REPO}; run the demo from a hepnn "
                     "checkout, or pass --generate N to make fresh jets")


def _sample(out: Path, generate: int | None) -> list[str]:
    if generate is None:
        return [str(repo_file("data/toptag_small.parquet"))]
    from hepnn.generate import generate as run_generate

    paths: list[str] = []
    for seed, process in ((101, "top"), (202, "qcd")):
        paths += [str(p) for p in run_generate(process, generate, out / "data" / f"{process}.parquet",
                                              seed=seed, workers=2)]
    return paths


def _summary(paths: Sequence[str]) -> None:
    import numpy as np

    from hepnn.data.jet_features import jet_features
    from hepnn.data.io import read_jets

    arrays = read_jets(list(paths))
    kin = jet_features(arrays, ["mass", "n_particles"])
    labels = np.asarray(arrays["label"])
    for label, name in ((1, "top"), (0, "QCD")):
        m, n = kin[labels == label, 0], kin[labels == label, 1]
        hist, edges = np.histogram(m, bins=np.arange(0, 300, 10))
        peak = edges[np.argmax(hist)] + 5
        log.info("%-3s jets: %5d  mass peak %.0f GeV  <constituents> %.1f", name, len(m), peak, n.mean())


def run_demo(out: Path, *, models: Sequence[str], generate: int | None = None,
             epochs: int | None = None) -> tuple[Any, list[str]]:
    """Train ``models`` on the sample, compare them; the rich table and one sentence per model."""
    from hepnn.config import load_config
    from hepnn.evaluate.comparison import compare_dirs
    from hepnn.registry import list_models
    from hepnn.train.fit import fit

    out = Path(out)
    unknown = [m for m in models if m not in list_models()]
    if unknown:
        raise HepnnError(f"--models: {', '.join(unknown)} not registered; choose from `hepnn models`")
    missing = [m for m in models if not repo_file(f"configs/top_tagging/{m}.yaml", required=False)]
    if missing:
        raise HepnnError(f"--models: {', '.join(missing)} has no ready config in configs/top_tagging/")
    if not models:
        raise HepnnError("--models is empty; name at least one model, e.g. --models bdt,mlp")
    data = _sample(out, generate)
    _summary(data)
    runs = []
    for name in models:
        overrides = [f"data.train={data}", "data.val=[]", "data.test=[]", *DEMO_OVERRIDES.get(name, [])]
        if epochs is not None and name != "bdt":
            overrides.append(f"train.epochs={epochs}")
        cfg = load_config(repo_file(f"configs/top_tagging/{name}.yaml"), overrides)
        run_dir = out / name
        if (run_dir / "metrics.json").is_file():
            log.info("%s: already trained in %s (delete it to retrain)", name, run_dir)
        else:
            if run_dir.exists():
                import shutil

                shutil.rmtree(run_dir)  # an unfinished earlier demo run: start it again
            log.info("training %s", name)
            fit(cfg, run_dir)
        runs.append(run_dir)
    notes = _notes(runs)
    table = compare_dirs(runs, out, title="hepnn demo: top tagging on Pythia jets", notes=notes)
    log.info("report: %s", out / "report.md")
    return table, notes


def _notes(runs: Sequence[Path]) -> list[str]:
    """The report's sentences: each model against the jet mass alone and the BDT, then what a small
    sample changes."""
    import json

    from hepnn.evaluate.scores import mass_baseline

    import awkward as ak

    results, limited = {}, []
    for run in runs:
        info, metrics = (json.loads((run / f).read_text()) for f in ("run.json", "metrics.json"))
        results[info["model"]] = (metrics["auc"], mass_baseline(run)["auc"], info.get("n_train"))
        n_qcd = int((ak.to_numpy(ak.from_parquet(run / "test_scores.parquet", columns=["label"])["label"]) == 0).sum())
        if metrics.get("rej30", 0) >= n_qcd:
            limited.append(info["model"])
    bdt = results.get("bdt", (None,))[0]
    notes = [explain(name, auc, mass, bdt, n) for name, (auc, mass, n) in results.items()]
    if limited:
        notes.append(f"{', '.join(limited)}: 1/εB at εS = 0.3 equals the number of QCD test jets ({n_qcd}): no QCD "
                     "jet passes, so the number is the test split's limit, not a measurement (the dash-dotted "
                     "line of rejection.png); a larger test sample resolves it.")
    n_train = max((n or 0) for _, _, n in results.values())
    notes.append(f"With {n_train} training jets the observables' built-in physics is worth a lot: the lectures' "
                 "ranking (particle-level networks above jet observables) needs far more jets (on these jets it "
                 "appears by 95 000), and LorentzNet and PELICAN are built for few jets; docs/lessons.md "
                 "measures both claims.")
    return notes
