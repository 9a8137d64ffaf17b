"""The four public datasets: official download locations and checksums, each cited where it is published.

Nothing here was downloaded to check it (the session that wrote this had no internet): every URL,
checksum and size is copied from the source named beside it. Where the authors publish no checksum
(JetNet) the size is checked instead and the md5 of the first download is recorded (see get.py).
"""

from __future__ import annotations

from hepnn.datasets.catalogue import Dataset, RemoteFile
from hepnn.errors import HepnnError

# ----------------------------------------------------------------------------------------------------
# Top Quark Tagging Reference Dataset, Kasieczka, Plehn, Thompson, Russell; arXiv:1902.09914.
# Files, URL pattern and the 1.2M / 400k / 400k division: Zenodo record 2603256
# (https://zenodo.org/records/2603256). md5 and byte sizes: the record's file list as Zenodo computes
# it; the same three md5s are hard-coded in independent public code that downloads this record (a
# keras `utils.get_file(..., file_hash=...)` loader and two stand-alone download scripts found with
# the search tool), which is where this session read them.
_ZENODO_TOP = "https://zenodo.org/records/2603256/files/{}?download=1"

TOPTAGGING = Dataset(
    name="toptagging",
    title="Top quark tagging reference sample (top vs QCD, Delphes ATLAS card, 550-650 GeV, R=0.8)",
    files=(
        RemoteFile(name="train.h5", url=_ZENODO_TOP.format("train.h5"), split="train",
                   checksum="md5:45663819f47c13724f67eb0fd80bfa5c", size=1_038_496_555),
        RemoteFile(name="val.h5", url=_ZENODO_TOP.format("val.h5"), split="val",
                   checksum="md5:dca4b7248027618f041f9baa86d360fc", size=347_378_076),
        RemoteFile(name="test.h5", url=_ZENODO_TOP.format("test.h5"), split="test",
                   checksum="md5:13163479dee30a5fe546e4536cc3d04d", size=347_849_376),
    ),
    jets="1.2M / 400k / 400k",
    layout="HDF5, pandas 'fixed' frame: E_i, PX_i, PY_i, PZ_i (200 constituents), is_signal_new, ttv",
    reads="as it is (hepnn.data.io_h5): data.train=DIR/train.h5, data.val=DIR/val.h5, data.test=DIR/test.h5",
    convert=False,
    licence="CC BY 4.0",  # as the Hugging Face mirrors' cards state (lewtun/top_quark_tagging)
    citation="arXiv:1902.09914; doi:10.5281/zenodo.2603256",
    classes=("QCD", "top"),
)

# ----------------------------------------------------------------------------------------------------
# JetClass, Qu, Li, Qian, "Particle Transformer for Jet Tagging", arXiv:2202.03772.
# URLs and md5 checksums: jet-universe/particle_transformer, get_datasets.py (the version that points
# at Zenodo record 6619768; an older version lists the same md5s for hqu.web.cern.ch). Jets per part:
# the repository README (100M train in ten parts, 5M val, 20M test). Archive sizes are not published
# there; the md5 decides. Each tar unpacks into the folders train_JetClass.sh reads (Pythia/...).
# Class order: the label_* list of data/JetClass/JetClass_kin.yaml in the same repository.
_ZENODO_JC = "https://zenodo.org/record/6619768/files/{}"
_JC_TRAIN_MD5 = (
    "de4fd2dca2e68ab3c85d5cfd3bcc65c3", "9722a359c5ef697bea0fbf79bf50f003", "1e9f66cd1f915f9d10e90ae1d7761720",
    "47348fc8985319fa4806da87500482fa", "6b0ce16bd93b442a8d51914466990279", "416e347512e716de51d392bee327b8e9",
    "e9b9c1557b1b39bf0a16e4ab631ae451", "5bfc6cb285ccb7680cefa9ac82ad1a2e", "540c1a0d66dfad78d2b363c5740ccf86",
    "668f40b3275167ff7104c48317c0ae2a",
)


def _jetclass_files() -> tuple[RemoteFile, ...]:
    train = tuple(
        RemoteFile(name=f"JetClass_Pythia_train_100M_part{i}.tar",
                   url=_ZENODO_JC.format(f"JetClass_Pythia_train_100M_part{i}.tar"), split="train",
                   checksum=f"md5:{md5}", jets=10_000_000, extract_to="Pythia/train_100M")
        for i, md5 in enumerate(_JC_TRAIN_MD5)
    )
    return train + (
        RemoteFile(name="JetClass_Pythia_val_5M.tar", url=_ZENODO_JC.format("JetClass_Pythia_val_5M.tar"),
                   split="val", checksum="md5:7235ccb577ed85023ea3ab4d5e6160cf", jets=5_000_000,
                   extract_to="Pythia"),
        RemoteFile(name="JetClass_Pythia_test_20M.tar", url=_ZENODO_JC.format("JetClass_Pythia_test_20M.tar"),
                   split="test", checksum="md5:64e5156d26d101adeb43b8388207d767", jets=20_000_000,
                   extract_to="Pythia"),
    )


JETCLASS = Dataset(
    name="jetclass",
    title="JetClass: 10 jet classes (q/g, H, t, W, Z decays), MadGraph + Pythia + Delphes CMS card",
    files=_jetclass_files(),
    jets="100M / 5M / 20M",
    layout="ROOT TTree 'tree' per class and shard (weaver ntuples), in tar archives",
    reads="as it is (hepnn.data.io_root, needs the root extra) after `get` unpacks the archives: "
          "DIR/Pythia/train_100M/*.root, DIR/Pythia/val_5M/*.root, DIR/Pythia/test_20M/*.root",
    convert=False,
    licence="MIT per the authors' dataset card (Hugging Face jet-universe/jetclass); the Zenodo record's terms apply",
    citation="arXiv:2202.03772; doi:10.5281/zenodo.6619768",
    classes=("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl"),
    notes=("Archive sizes are not published; the md5 alone is checked.",
           "After a verified archive is unpacked its members' md5s are recorded and the archive removed."),
)

# ----------------------------------------------------------------------------------------------------
# Pythia 8 quark and gluon jets for Energy Flow, Komiske, Metodiev, Thaler, arXiv:1810.05165.
# File names, Zenodo record 3164691 (Pythia, no c/b quarks), URL pattern and sha256 checksums:
# thaler-lab/EnergyFlow, energyflow/data/qg_jets.json ("pythia" / "nobc") and
# energyflow/utils/generic_utils.py (ZENODO_URL_PATTERN). 100k jets per file (qg_jets.py
# NUM_PER_FILE). The division: test = the last two files, as the ParT repository's
# utils/convert_qg_datasets.py takes them (train-test split 0.9 over the naturally sorted files);
# val = the two files before, which gives EnergyFlow's recommended 1.6M / 200k / 200k (qg_jets.py).
_ZENODO_QG = "https://zenodo.org/record/3164691/files/{}?download=1"
_QG_SHA256 = (
    "3f27a02eab06e8b83ccc9d25638021e6e24c9361341730961f9d560dee12c257",
    "648e49cd59b5353e0064e7b1a3388d9c2f4a454d3ca67afaa8d0344c836ecb35",
    "09f7b16fa7edb312c0f652bb8504de45f082c4193df65204d693155017272fe9",
    "7dc9a50bb38e9f6fc1f11db18f9bd04f72823c944851746b848dee0bba808537",
    "3e6217aad8e0502f5ce3b6371c61396dfc48a6cf4f26ee377cc7b991b1d2b543",
    "b5b7d742b2599bcbe1d7a639895bca64c28da513dc3620b0e5bbb5801f8c88fd",
    "7d31bc48c15983401e0dbe8fd5ee938c3809d9ee3c909f4adab6daf8b73c14f1",
    "cec0d7b2afa9d955543c597f9b7f3b3767812a68b2401ec870caf3a2ceb98401",
    "e984620f57abe06fc5d0b063f9f84ba54bd3e8c295d2b2419a7b1c6175079ed4",
    "6e3b69196995d6eb3b8e7af874e2b9f93d904624f7a7a73b8ff39f151e3bd189",
    "fa3d386f230b806058ff17e5bd77326ff4bf01d72aa5eb3325c1df2a8825927c",
    "acd49ab7bea8f72ecf699a9a898bccacc8730474259d68406656a5a43d407fb0",
    "2edd55b8bc30c686a0637855e1ba068586eb97041e8114d5540d96db2a7a2e17",
    "7276a8a0e573f9795a47f9d5addc10d2af903c2a0ffa5c848a720ccae93daa90",
    "2068ecfa912e94cd3ce7273b7c77af0bbd5ec57940997e7483b56f03434a6869",
    "41a732ce6321dd593214225b03fb87329607ccae768c705e3896ffecc28bfcca",
    "9d68caeb18f3ccf127b9032f52e63ee011c4381293a3a503f894e5c0741ae215",
    "086053ca611bb04d97fa0b6509b4ffb6955421b067c7b277498f0e5188879331",
    "cdc595f5fedef7db9411a9f93f2786f110073b4d17a523700f625846588b1e44",
    "d07781139320ae134ce4824bc0cefa43fd5003cd97cdf3aed90d4fb12fad8a1d",
)


def _qg_split(i: int) -> str:
    return "train" if i < 16 else "val" if i < 18 else "test"


def _qg_files() -> tuple[RemoteFile, ...]:
    names = ["QG_jets.npz"] + [f"QG_jets_{i}.npz" for i in range(1, 20)]
    return tuple(
        RemoteFile(name=n, url=_ZENODO_QG.format(n), split=_qg_split(i), checksum=f"sha256:{h}", jets=100_000)
        for i, (n, h) in enumerate(zip(names, _QG_SHA256))
    )


QUARKGLUON = Dataset(
    name="quarkgluon",
    title="Quark vs gluon jets (Pythia 8.226, Z + jet, 500-550 GeV, R=0.4, no detector)",
    files=_qg_files(),
    jets="1.6M / 200k / 200k",
    layout="NumPy .npz: X (N, M, 4) = (pT, rapidity y, phi, PDG id) zero padded, y (N,) 1 = quark",
    reads="after `hepnn datasets convert quarkgluon` (parquet: four-momenta from (pT, y, phi) and the PDG "
          "mass, part_pid, part_charge, label)",
    convert=True,
    licence="not stated in the sources read here: see the Zenodo record",
    citation="arXiv:1810.05165; doi:10.5281/zenodo.3164691",
    classes=("gluon", "quark"),
    notes=("Files 0-15 train, 16-17 val, 18-19 test (ParT takes its validation jets from the training files "
           "instead: weaver --train-val-split 0.8889).",),
)

# ----------------------------------------------------------------------------------------------------
# JetNet (30 particles), Kansal et al., "Particle Cloud Generation with Message Passing Generative
# Adversarial Networks", arXiv:2106.11535. Record 6975118, one file per jet type, and the jet counts
# N = 177252 (g), 170679 (q), 177945 (t), 177172 (w), 176952 (z): the Zenodo record's description.
# File names and the record id: jet-net/JetNet, jetnet/datasets/jetnet.py (_zenodo_record_ids).
# No checksum is published: JetNet downloads through the Zenodo API without one (jetnet/datasets/
# utils.py, checkDownloadZenodoDataset). Sizes: 2048 + N x 496 bytes, i.e. float32
# particle_features (N, 30, 4) and jet_features (N, 4) behind a 2 kB HDF5 header; the same five sizes
# appear in independent public code that mirrors this record.
_ZENODO_JN = "https://zenodo.org/records/6975118/files/{}?download=1"
JETNET_TYPES = ("g", "q", "t", "w", "z")  # JetNet's class order (jetnet.py jet_types)
_JETNET_JETS = {"g": 177_252, "q": 170_679, "t": 177_945, "w": 177_172, "z": 176_952}

JETNET = Dataset(
    name="jetnet",
    title="JetNet30: gluon, light quark, top, W, Z jets at ~1 TeV, 30 hardest particles (generative benchmark)",
    files=tuple(
        RemoteFile(name=f"{t}.hdf5", url=_ZENODO_JN.format(f"{t}.hdf5"), split="all",
                   size=2048 + _JETNET_JETS[t] * 496, jets=_JETNET_JETS[t])
        for t in JETNET_TYPES
    ),
    jets="880k in all; 70 / 15 / 15 % by JetNet's seeded permutation",
    layout="HDF5 per jet type: particle_features (N, 30, 4) = (etarel, phirel, ptrel, mask), "
           "jet_features (N, 4) = (pt, eta, mass, num_particles)",
    reads="after `hepnn datasets convert jetnet` (parquet: massless four-momenta at jet phi = 0, "
          "label = jet type)",
    convert=True,
    licence="CC BY 4.0",  # as listed by public code that mirrors the record; not read from Zenodo itself
    citation="arXiv:2106.11535; doi:10.5281/zenodo.6975118",
    classes=("gluon", "light_quark", "top", "W", "Z"),
    notes=("No checksum is published: the size is checked and the md5 of the first download is recorded.",),
)

DATASETS = (TOPTAGGING, JETCLASS, QUARKGLUON, JETNET)


def catalogue() -> dict[str, Dataset]:
    """Every dataset hepnn knows, by name."""
    return {d.name: d for d in DATASETS}


def get_dataset(name: str) -> Dataset:
    """The catalogue entry called ``name``; HepnnError listing the known names otherwise."""
    known = catalogue()
    if name not in known:
        raise HepnnError(f"unknown dataset {name!r}; known: {', '.join(known)} (see `hepnn datasets list`)")
    return known[name]
