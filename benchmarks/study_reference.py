"""Which generation choices move the top/QCD separation of jet observables? (docs/generation.md)

    # one unbiased stream per process and MPI/pile-up setting (jets at particle and detector level)
    OMP_NUM_THREADS=1 python benchmarks/study_reference.py generate --process top --n 2000 --seed 101 --out study/top.parquet
    OMP_NUM_THREADS=1 python benchmarks/study_reference.py generate --process qcd --n 2000 --seed 102 --out study/qcd.parquet
    OMP_NUM_THREADS=1 python benchmarks/study_reference.py analyze study/top.parquet study/qcd.parquet
    OMP_NUM_THREADS=1 python benchmarks/study_reference.py towers --n 700   # calorimeter granularity

``generate`` runs Pythia in the unbiased mode (p̂T > 302.5 GeV + prefilter) and writes, for the same
events, the jets at particle level and after the ``simple`` (Delphes-ATLAS energy-flow) detector,
every jet in the window (not only the leading one), with the event's p̂T, a leading-jet flag and the
QCD jet's parton flavour. ``analyze`` prints, per setting and subset (all jets / leading jet only /
p̂T windows / quark or gluon QCD jets): the jet-mass AUC, the τ32 AUC, a jet-observable BDT's AUC
(2-fold cross-validated xgboost on the leaderboard BDT's features), mean multiplicity and mean
constituent pT per class. Window-mode samples are the p̂T-window subsets of the unbiased stream
(Pythia samples p̂T with unit weights, so a subset is distributed as a window run).
"""

from __future__ import annotations

import argparse
from functools import partial

import awkward as ak
import numpy as np

BDT_FEATURES = ["mass", "pt", "eta", "n_particles", "tau1", "tau2", "tau3", "tau21", "tau32"]


def generate(process: str, n: int, seed: int, out: str, mpi: bool, pileup: float) -> None:
    """Unbiased stream of ``process``; stops when ``n`` particle-level jets are in the window."""
    from hepnn.data.io import write_parquet
    from hepnn.generate import detector
    from hepnn.generate.jets import JetCuts, final_particles, particles_to_jets
    from hepnn.generate.pileup import PT_PER_EVENT, PileupOverlay
    from hepnn.generate.pythia import PROCESSES, make_prefilter, make_pythia, pythia_settings

    shift = PT_PER_EVENT * pileup
    lines = pythia_settings(process, seed=seed, pt_min=550, pt_max=650, mode="unbiased", mpi=mpi, pt_shift=shift)
    hook = make_prefilter(pt_threshold=500 - shift, cone=1.2, eta_max=2.8)
    pythia = make_pythia(lines, hook)
    overlay = PileupOverlay(mu=pileup, shard_seed=seed) if pileup > 0 else None
    proc = PROCESSES[process]
    cuts = {lead: JetCuts(leading_only=lead, max_constituents=None) for lead in (False, True)}
    smear = {"particle": None, "delphes": partial(detector.smear, rng=np.random.default_rng([seed, 7]))}
    parts_out, n_done = [], 0
    while n_done < n:
        events = pythia.nextBatch(100)
        particles = final_particles(events, pythia.particleData)
        if overlay is not None:
            particles = overlay(particles)
        pthat = np.sqrt(ak.to_numpy(events.info.pT2Hat))
        flavour = _hard_parton_ids(events)  # (events, 2)
        for level, fn in smear.items():
            p = particles if fn is None else fn(particles)
            jets, info = particles_to_jets(p, events, cuts[False], proc["resonance"], proc["label"])
            _, lead = particles_to_jets(p, events, cuts[True], proc["resonance"], proc["label"])
            jets = ak.with_field(jets, level, "level")
            jets = ak.with_field(jets, pthat[info["event"]], "pthat")
            jets = ak.with_field(jets, np.isin(info["event"], lead["event"]) & _is_max(info["event"], jets), "leading")
            jets = ak.with_field(jets, flavour[info["event"], info["truth_index"]], "parton_pid")
            parts_out.append(jets)
            if level == "particle":
                n_done += len(jets)
        print(f"{n_done}/{n} jets, {hook.n_seen} parton-level events", flush=True)
    meta = {"process": process, "seed": seed, "mpi": mpi, "pileup": pileup, "pythia_settings": lines}
    write_parquet(ak.concatenate(parts_out), out, meta)


def _is_max(event: np.ndarray, jets: ak.Array) -> np.ndarray:
    """Among the window jets of one event, the highest-pT one (the leading-jet flag needs both)."""
    pt = ak.to_numpy(jets.jet_pt)
    best = np.zeros(len(pt), bool)
    for e in np.unique(event):  # a handful of jets per batch
        idx = np.flatnonzero(event == e)
        best[idx[np.argmax(pt[idx])]] = True
    return best


def _hard_parton_ids(events: ak.Array) -> np.ndarray:
    """PDG ids of the two hard outgoing partons (status −23), 0 where missing. -> (events, 2)."""
    prt = events.prt
    hard = ak.pad_none(prt.id[np.abs(prt.status) == 23], 2, clip=True)
    return ak.to_numpy(ak.fill_none(hard, 0))


def towers(n: int) -> None:
    """Granularity diagnostic: the same window-mode events (seeds 31, 32) through the detector with
    the card's towers (random point / centre) and with 0.025 × 0.025 towers; jet mass, τ32, N."""
    from sklearn.metrics import roc_auc_score

    from hepnn.data.jet_features import jet_features
    from hepnn.generate import detector
    from hepnn.generate.jets import JetCuts, final_particles, particles_to_jets
    from hepnn.generate.pythia import PROCESSES, make_pythia, pythia_settings

    fine = np.round(np.arange(-4.9, 4.9001, 0.025), 3)
    variants = {"particle level": None, "card towers 0.1 × 10°, random point": detector.Towers(),
                "card towers, at their centres": detector.Towers(random_point=False),
                "0.025 × 0.025 towers, random point": detector.Towers(fine, np.full(len(fine), 251))}  # fmt: skip
    jets = {name: [] for name in variants}
    for process, seed in (("top", 31), ("qcd", 32)):
        pythia = make_pythia(pythia_settings(process, seed=seed, pt_min=550, pt_max=650, mode="window", mpi=False))
        rng = {name: np.random.default_rng([seed, i]) for i, name in enumerate(variants)}
        proc, done = PROCESSES[process], 0
        while done < n:
            events = pythia.nextBatch(100)
            particles = final_particles(events, pythia.particleData)
            for name, seg in variants.items():
                p = particles if seg is None else detector.smear(particles, rng[name], seg)
                j, _ = particles_to_jets(p, events, JetCuts(), proc["resonance"], proc["label"])
                jets[name].append(j)
                done += len(j) if seg is None else 0
    print("| constituents | top / QCD jets | mass AUC | τ32 AUC | ⟨N⟩ top / QCD |\n|---|---|---:|---:|---|")
    for name, parts in jets.items():
        j = ak.concatenate(parts)
        y, X = ak.to_numpy(j.label), jet_features(j, ["mass", "tau32", "n_particles"])
        print(f"| {name} | {(y == 1).sum()} / {(y == 0).sum()} | {roc_auc_score(y, X[:, 0]):.3f} | "
              f"{roc_auc_score(y, -X[:, 1]):.3f} | {X[y == 1, 2].mean():.1f} / {X[y == 0, 2].mean():.1f} |")


def analyze(paths: list[str]) -> None:
    """Print the table of docs/generation.md ("Reference sample: what moves the separation")."""
    from hepnn.data.io import read_jets, read_metadata

    streams = {}
    for path in paths:
        meta = read_metadata(path)
        streams.setdefault((meta.get("mpi"), meta.get("pileup")), []).append(read_jets(path))
    print("| MPI | pile-up | level | subset | top / QCD jets | mass AUC | τ32 AUC | BDT AUC | ⟨N⟩ top / QCD | ⟨pT const⟩ top / QCD (GeV) | N > 200 |")
    print("|---|---|---|---|---|---:|---:|---:|---|---|---:|")
    for (mpi, pileup), arrays in sorted(streams.items()):
        jets = ak.concatenate(arrays)
        for level in ("particle", "delphes"):
            lev = jets[jets.level == level]
            for name, mask in _subsets(lev).items():
                row = _metrics(lev[mask])
                if row:
                    print(f"| {'on' if mpi else 'off'} | {pileup:g} | {level} | {name} | {row} |", flush=True)


def _subsets(jets: ak.Array) -> dict[str, np.ndarray]:
    pthat = ak.to_numpy(jets.pthat)
    lead = ak.to_numpy(jets.leading)
    label = ak.to_numpy(jets.label)
    gluon = ak.to_numpy(jets.parton_pid) == 21
    return {
        "all jets": np.ones(len(jets), bool),
        "leading jet": lead,
        "leading, p̂T 500–700 (window)": lead & (pthat > 500) & (pthat < 700),
        "leading, p̂T 550–650": lead & (pthat > 550) & (pthat < 650),
        "leading, QCD quarks only": lead & ((label == 1) | ~gluon),
        "leading, QCD gluons only": lead & ((label == 1) | gluon),
    }


def _metrics(jets: ak.Array) -> str:
    from sklearn.metrics import roc_auc_score

    from hepnn.data.jet_features import jet_features

    y = ak.to_numpy(jets.label)
    if min((y == 1).sum(), (y == 0).sum()) < 100:
        return ""
    X = jet_features(jets, BDT_FEATURES).astype(np.float64)
    n = ak.to_numpy(ak.num(jets.part_E))
    cpt = ak.to_numpy(ak.mean(np.hypot(jets.part_px, jets.part_py), axis=1))
    mass_auc = roc_auc_score(y, X[:, 0])
    tau_auc = roc_auc_score(y, -X[:, BDT_FEATURES.index("tau32")])
    return (
        f"{(y == 1).sum()} / {(y == 0).sum()} | {mass_auc:.3f} | {tau_auc:.3f} | {_bdt_auc(X, y):.3f} | "
        f"{n[y == 1].mean():.1f} / {n[y == 0].mean():.1f} | {cpt[y == 1].mean():.1f} / {cpt[y == 0].mean():.1f} | "
        f"{np.mean(n > 200):.1%}"
    )


def _bdt_auc(X: np.ndarray, y: np.ndarray) -> float:
    """2-fold cross-validated AUC of the leaderboard's BDT (xgboost, 400 trees, depth 4, lr 0.05)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from xgboost import XGBClassifier

    score = np.zeros(len(y))
    for train, test in StratifiedKFold(2, shuffle=True, random_state=0).split(X, y):
        bdt = XGBClassifier(n_estimators=400, max_depth=4, learning_rate=0.05, n_jobs=1, random_state=0)
        score[test] = bdt.fit(X[train], y[train]).predict_proba(X[test])[:, 1]
    return roc_auc_score(y, score)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--process", choices=["top", "qcd"], required=True)
    gen.add_argument("--n", type=int, default=2000)
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--out", required=True)
    gen.add_argument("--mpi", action="store_true")
    gen.add_argument("--pileup", type=float, default=0.0)
    ana = sub.add_parser("analyze")
    ana.add_argument("paths", nargs="+")
    tow = sub.add_parser("towers")
    tow.add_argument("--n", type=int, default=700, help="particle-level jets per process")
    args = parser.parse_args()
    if args.cmd == "generate":
        generate(args.process, args.n, args.seed, args.out, args.mpi, args.pileup)
    elif args.cmd == "towers":
        towers(args.n)
    else:
        analyze(args.paths)


if __name__ == "__main__":
    main()
