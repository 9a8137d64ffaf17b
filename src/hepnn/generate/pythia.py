"""Pythia 8 process settings for boosted-jet samples, and the parton-level prefilter.

Modeled on the public Top Tagging reference sample (Kasieczka et al., arXiv:1902.09914): pp at
√s = 14 TeV, hadronic tt̄ as signal, QCD dijets as background, default tune (Monash 2013), MPI
off ("ignoring multiple interactions and pile-up", Sec. 2), particles with cτ > 10 mm stable. The ``w`` process (hadronic W jets) uses WW pair production, both W → qq′.

Generator-level p̂T cut (see docs/generation.md for the measured bias):
  * ``window``:   p̂T in [pt_min − 50, pt_max + 50] GeV — fast, but drops jets that belong in the
                  sample (softer events boosted by radiation, harder events losing momentum).
  * ``unbiased``: p̂T > 0.55 · pt_min (302.5 GeV for 550) and no upper cut; a cheap parton-level prefilter
                  (:class:`PartonPrefilter`) vetoes events before hadronization whose parton-level
                  cones cannot reach the jet-pT window, so only plausible events pay for hadronization.
"""

from __future__ import annotations

import numpy as np

# Process → Pythia switches (hard process and decays). The signal resonance's PDG code is used for
# truth matching (6 = top, 24 = W); QCD has none.
PROCESSES: dict[str, dict] = {
    "top": {
        "switches": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off", "24:onIfAny = 1 2 3 4 5"],
        "resonance": 6,
        "label": 1,
    },
    "qcd": {"switches": ["HardQCD:all = on"], "resonance": None, "label": 0},
    "w": {
        "switches": ["WeakDoubleBoson:ffbar2WW = on", "24:onMode = off", "24:onIfAny = 1 2 3 4 5"],
        "resonance": 24,
        "label": 1,
    },
}

WINDOW_MARGIN = 50.0  # GeV around [pt_min, pt_max] for mode="window"
# mode="unbiased": p̂T > UNBIASED_FRACTION * pt_min, no upper cut. Measured for pt_min = 550 GeV:
# events below 300 GeV give ~1 % of the QCD jets, events below 400 GeV ~11 % (docs/generation.md).
UNBIASED_FRACTION = 0.55


def pthat_range(pt_min: float, pt_max: float, mode: str, pt_shift: float = 0.0) -> tuple[float, float]:
    """Generator-level p̂T cut in GeV for a jet-pT window; an upper value of -1 means no upper cut.

    ``pt_shift`` (GeV) lowers the unbiased cut for jets that gain that much from pile-up.
    """
    if mode == "window":
        return max(pt_min - WINDOW_MARGIN, 0.0), pt_max + WINDOW_MARGIN
    return UNBIASED_FRACTION * max(pt_min - pt_shift, 0.0), -1.0


# Settings every generator of a sample shares: beams, stable particles, quiet output.
COMMON_SETTINGS = [
    "Beams:eCM = 14000.",
    # cτ > 10 mm stable, as in the reference sample
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
    "Init:showChangedSettings = off",
    "Init:showProcesses = off",
    "Init:showChangedParticleData = off",
    "Print:quiet = on",
]


def pythia_settings(
    process: str, *, seed: int, pt_min: float, pt_max: float, mode: str, mpi: bool, pt_shift: float = 0.0
) -> list[str]:
    """The complete list of Pythia ``readString`` lines for one shard (stored in the file metadata)."""
    lo, hi = pthat_range(pt_min, pt_max, mode, pt_shift)
    return [
        *COMMON_SETTINGS,
        *PROCESSES[process]["switches"],
        f"PhaseSpace:pTHatMin = {lo:g}",
        f"PhaseSpace:pTHatMax = {hi:g}",
        f"PartonLevel:MPI = {'on' if mpi else 'off'}",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
    ]


def make_pythia(lines: list[str], hook=None):
    """A fresh, initialized ``pythia8mc.Pythia`` configured by ``lines`` (optionally with a user hook)."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in lines:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    if hook is not None:
        pythia.setUserHooksPtr(hook)
    if not pythia.init():
        raise RuntimeError("Pythia failed to initialize")
    return pythia


def cone_pt_max(p4: np.ndarray, *, cone: float, eta_max: float, seed_pt: float) -> float:
    """Largest vector-summed pT of particles within ``cone`` of any seed (pT > seed_pt, |η| < eta_max).

    A cheap upper-side proxy for the hardest anti-kT jet: every anti-kT jet of radius R sits within
    R of its hardest constituent, so a cone of radius > R around that seed contains it.

    Shapes:
        p4: (N, 4) as (E, px, py, pz) in GeV.
    """
    pt = np.hypot(p4[:, 1], p4[:, 2])
    p = np.sqrt(pt**2 + p4[:, 3] ** 2)
    eta = np.arctanh(np.clip(p4[:, 3] / np.maximum(p, 1e-12), -1 + 1e-12, 1 - 1e-12))
    phi = np.arctan2(p4[:, 2], p4[:, 1])
    seeds = np.flatnonzero((pt > seed_pt) & (np.abs(eta) < eta_max))
    if seeds.size == 0:
        return 0.0
    dphi = (phi[None, :] - phi[seeds, None] + np.pi) % (2 * np.pi) - np.pi  # (S, N)
    inside = (eta[None, :] - eta[seeds, None]) ** 2 + dphi**2 < cone**2  # (S, N)
    px = inside @ p4[:, 1]  # (S,)
    py = inside @ p4[:, 2]
    return float(np.hypot(px, py).max())


def make_prefilter(*, pt_threshold: float, cone: float, eta_max: float, veto: bool = True):
    """A ``pythia8mc.UserHooks`` that vetoes parton-level events whose best cone pT < ``pt_threshold``.

    Vetoed events are never hadronized (Pythia retries a new event inside ``next()``), which is where
    the saving lies: hadronization and decays cost about twice the parton level. With ``veto=False``
    the hook only records its decisions (``hook.decisions``), to measure that the cut loses no jets.
    """
    import pythia8mc

    class PartonPrefilter(pythia8mc.UserHooks):
        def __init__(self) -> None:
            super().__init__()
            self.decisions: list[bool] = []  # True = would veto
            self.n_seen = 0

        def canVetoPartonLevel(self) -> bool:
            return True

        def doVetoPartonLevel(self, event) -> bool:
            p4 = np.array(
                [(q.e(), q.px(), q.py(), q.pz()) for q in event.particles() if q.isFinal()], dtype=np.float64
            ).reshape(-1, 4)
            self.n_seen += 1
            drop = cone_pt_max(p4, cone=cone, eta_max=eta_max, seed_pt=0.1 * pt_threshold) < pt_threshold
            if not veto:
                self.decisions.append(drop)
            return bool(drop and veto)

    return PartonPrefilter()
