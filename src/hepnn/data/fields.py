"""Canonical field names for jets on disk and in memory, and the aliases other layouts use.

hepnn's native layout (parquet, one row per jet, jagged particle columns via awkward/pyarrow):

=================  =========================  ==============================================
column             type                       meaning
=================  =========================  ==============================================
part_E/px/py/pz    list<float32>              constituent four-momenta in GeV, sorted by pT
part_charge        list<int8>                 electric charge (optional)
part_pid           list<int32>                PDG id (optional)
jet_E/px/py/pz     float32                    jet four-momentum (sum of constituents)
jet_pt/eta/phi/m   float32                    derived jet kinematics (optional on read)
label              int64                      class index (1 = signal, e.g. top; 0 = QCD)
truth_pt/eta/...   float32                    the matched parton (optional; regression targets)
=================  =========================  ==============================================
"""

from __future__ import annotations

PARTICLE_P4 = ("part_E", "part_px", "part_py", "part_pz")
PARTICLE_OPTIONAL = ("part_charge", "part_pid")
JET_P4 = ("jet_E", "jet_px", "jet_py", "jet_pz")
JET_KINEMATICS = ("jet_pt", "jet_eta", "jet_phi", "jet_mass")
TRUTH = ("truth_pt", "truth_eta", "truth_phi", "truth_mass")
LABEL = "label"

REQUIRED = PARTICLE_P4  # the label is needed to train, not to predict or inspect

# Other layouts' names for canonical columns (JetClass/weaver ROOT branches, common variants).
ALIASES: dict[str, tuple[str, ...]] = {
    "part_E": ("part_energy", "part_e", "constituents_E", "E"),
    "part_px": ("part_PX", "constituents_px", "PX"),
    "part_py": ("part_PY", "constituents_py", "PY"),
    "part_pz": ("part_PZ", "constituents_pz", "PZ"),
    "part_charge": ("part_q", "charge"),
    "part_pid": ("part_pdgid", "part_pdg_id", "pid"),
    "jet_E": ("jet_energy", "jet_e"),
    "jet_mass": ("jet_m",),
    "label": ("is_signal_new", "is_signal"),
    "truth_pt": ("aux_genpart_pt",),
}


def canonical_name(name: str) -> str:
    """Canonical name of a column given in any known layout (unknown names pass through)."""
    for canon, aliases in ALIASES.items():
        if name == canon or name in aliases:
            return canon
    return name
