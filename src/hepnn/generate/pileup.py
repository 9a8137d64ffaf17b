"""Pile-up overlay: a Poisson number of Pythia minimum-bias events merged into every hard event.

As Pythia's own pile-up example does (``examples/main19.cc``: one ``Pythia`` instance for signal
events and one for pile-up, a Poisson number of pile-up events joined to each signal event; here
the pile-up instance runs ``SoftQCD:nonDiffractive = on``), and as Delphes' ``PileUpMerger`` does
for detector studies. The minimum-bias events come from one ``nextBatch`` call per hard batch, so
the overlay is vectorized: their final particles are concatenated event by event onto the hard
event's before the detector and the clustering.

Reproducible: the minimum-bias Pythia uses its own seed (derived from the shard seed) and the
Poisson counts a numpy Generator seeded from the shard seed, so a shard's content depends only on
its settings and index. The public top-tagging sample has no pile-up (Zenodo 2603256); this is an
option for robustness studies.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from hepnn.generate.jets import final_particles

MINBIAS_SWITCHES = ["SoftQCD:nonDiffractive = on"]
# Scalar pT of visible minimum-bias particles per unit η-φ area at 14 TeV (|η| < 2.5), measured with
# this generator: ≈ 1.4 GeV per event. An R = 0.8 jet (area ≈ 2) gains ≈ 2.8 GeV per pile-up event;
# the unbiased prefilter and p̂T cut are lowered by PT_PER_EVENT · μ so that no jet is lost.
PT_PER_EVENT = 4.0  # GeV per pile-up event, a generous upper value of the ≈ 2.8 GeV mean gain
MAX_SEED = 900_000_000


def minbias_seed(shard_seed: int) -> int:
    """Pythia seed of the minimum-bias generator of a shard: distinct from every hard shard seed's
    own value, inside Pythia's range [0, 9×10⁸)."""
    return MAX_SEED - 1 - shard_seed


class PileupOverlay:
    """``particles -> particles`` adding Poisson(μ) minimum-bias events to every event of a batch.

    Args:
        mu: mean number of pile-up events per hard event (μ > 0).
        shard_seed: the shard's Pythia seed; the minimum-bias Pythia and the Poisson draws derive
            their seeds from it.
    """

    def __init__(self, *, mu: float, shard_seed: int) -> None:
        from hepnn.generate.pythia import COMMON_SETTINGS, make_pythia

        self.mu = mu
        self.lines = [*COMMON_SETTINGS, *MINBIAS_SWITCHES, "Random:setSeed = on", f"Random:seed = {minbias_seed(shard_seed)}"]
        self.pythia = make_pythia(self.lines)
        self.rng = np.random.default_rng([shard_seed, 11])
        self.n_minbias = 0

    def __call__(self, particles: ak.Array) -> ak.Array:
        n = self.rng.poisson(self.mu, len(particles))  # (events,) pile-up events per hard event
        total = int(n.sum())
        if total == 0:
            return particles
        pile = final_particles(self.pythia.nextBatch(total), self.pythia.particleData)  # (total, var)
        self.n_minbias += total
        owner = np.repeat(np.arange(len(n)), n)  # (total,) hard event of each pile-up event
        per_hard = np.bincount(owner, weights=ak.to_numpy(ak.num(pile)), minlength=len(n)).astype(np.int64)
        grouped = ak.unflatten(ak.flatten(pile), per_hard)  # (events, var) all pile-up particles
        return ak.concatenate([particles, grouped], axis=1)

