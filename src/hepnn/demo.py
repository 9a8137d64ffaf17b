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
             epochs: int | None = None) -> Any:
    """Train ``models`` on the sample, compare them, and return the rich table."""
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
    table = compare_dirs(runs, out, title="hepnn demo: top tagging on Pythia jets")
    log.info("report: %s", out / "report.md")
    return table
