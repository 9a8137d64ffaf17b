"""``hepnn datasets convert NAME``: a dataset whose layout hepnn does not read -> native parquet shards.

Quark-gluon (.npz) and JetNet (HDF5 arrays) need it; the top-tagging HDF5 and the JetClass ROOT files
open as they are, and asking to convert them is an error that says how to use them instead. The
output is ``OUT/{train,val,test}_NNN.parquet`` (default OUT = DIR/parquet), ready for
``data.train=OUT/train_*.parquet data.val=OUT/val_*.parquet data.test=OUT/test_*.parquet``.
"""

from __future__ import annotations

import os
from pathlib import Path

from hepnn.datasets.catalogue import SPLITS, Dataset
from hepnn.datasets.sources import get_dataset
from hepnn.datasets.parquet_out import DEFAULT_ROW_GROUP
from hepnn.datasets.sources import JETNET_TYPES
from hepnn.errors import DataError, HepnnError
from hepnn.log import get_logger

log = get_logger(__name__)

CHUNK = 10_000  # source rows converted at a time (quark-gluon: ~45 MB of float64 per chunk)


def convert_dataset(name: str, folder: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
                    splits: list[str] | None = None, subset: int | None = None, keep_source: bool = False,
                    jet_types: list[str] | None = None, shard_size: int = 500_000,
                    row_group_size: int = DEFAULT_ROW_GROUP, chunk: int = CHUNK) -> dict[str, list[Path]]:
    """Convert the dataset in ``folder`` to parquet shards in ``out``; {split: files written}.

    Args:
        name: catalogue name ("quarkgluon" or "jetnet").
        folder: where ``hepnn datasets get`` put the files.
        out: output folder (default ``folder/parquet``).
        splits: splits to write (default all three).
        subset: at most this many jets per split (the first ones of the published order).
        keep_source: also keep the source's own particle coordinates, bit for bit (src_* columns).
        jet_types: JetNet only: the jet types to include (default all five).
        shard_size: at most this many jets per output file (shards of a split have equal sizes).
        row_group_size: jets per parquet row group.
        chunk: source rows read and converted at a time (bounds the memory).
    """
    ds = get_dataset(name)
    if not ds.convert:
        raise HepnnError(f"{name} needs no conversion: hepnn reads it {ds.reads}")
    if jet_types is not None and name != "jetnet":
        raise HepnnError(f"--jet-types applies to jetnet only (its files are one per jet type), not to {name}")
    for label, value in (("subset", subset), ("shard-size", shard_size), ("row-group-size", row_group_size),
                         ("chunk", chunk)):
        if value is not None and value < 1:
            raise HepnnError(f"--{label} must be a positive number, got {value}")
    folder = Path(folder)
    out = folder / "parquet" if out is None else Path(out)
    splits = list(splits or SPLITS)
    meta = {"dataset": name, "classes": list(ds.classes), "keep_source": keep_source,
            "converted_by": "hepnn datasets convert"}
    kw = dict(subset=subset, keep_source=keep_source, shard_size=shard_size, row_group_size=row_group_size,
              chunk=chunk)
    if name == "quarkgluon":
        from hepnn.datasets.convert_qg import convert_split

        return {s: convert_split(_files(ds, folder, s), out, s, metadata=meta, **kw) for s in splits}
    from hepnn.datasets.convert_jetnet import convert_splits

    types = _jet_types(jet_types)
    files = [_existing(ds, folder, f"{t}.hdf5") for t in types]
    return convert_splits(files, out, splits, metadata={**meta, "jet_types": types}, **kw)


def _files(ds: Dataset, folder: Path, split: str) -> list[Path]:
    return [_existing(ds, folder, f.name) for f in ds.files if f.split == split]


def _existing(ds: Dataset, folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        split = next(f.split for f in ds.files if f.name == name)
        hint = f" --split {split}" if split != "all" else ""
        raise DataError(f"{path}: not found; fetch it first with `hepnn datasets get {ds.name} --dir {folder}{hint}` "
                        "(or put the published file there)")
    return path


def _jet_types(jet_types: list[str] | None) -> list[str]:
    """The chosen JetNet types in JetNet's order (g, q, t, w, z)."""
    if not jet_types:
        return list(JETNET_TYPES)
    bad = [t for t in jet_types if t not in JETNET_TYPES]
    if bad:
        raise HepnnError(f"--jet-types: unknown type {', '.join(bad)}; choose from {', '.join(JETNET_TYPES)}")
    chosen = [t for t in JETNET_TYPES if t in jet_types]
    if 1 < len(chosen) < len(JETNET_TYPES):
        log.warning("JetNet itself orders a subset of several types by Python set iteration, which can vary "
                    "between runs; hepnn concatenates them in JetNet's type order %s", ",".join(chosen))
    return chosen
