"""What a public dataset is made of: its files (URL, checksum, size, split), layout, licence, citation.

The entries themselves live in :mod:`hepnn.datasets.sources`, each URL and checksum next to the place
it was published. This module holds the types and the lookups every command uses:

>>> ds = get_dataset("toptagging")
>>> [f.name for f in ds.select(["test"])]
['test.h5']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hepnn.errors import HepnnError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True, kw_only=True)
class RemoteFile:
    """One published file of a dataset.

    Attributes:
        name: path inside the dataset folder (also the file name a mirror serves).
        url: the official download location.
        split: "train", "val" or "test"; "all" when every split is drawn from every file (JetNet).
        checksum: "md5:<hex>" or "sha256:<hex>" as published, None where none is published.
        size: bytes, None where unknown (then the checksum alone decides).
        jets: jets in the file (for --subset), None where not published per file.
        extract_to: for an archive (tar), the sub-folder it unpacks into; None for a plain file.
    """

    name: str
    url: str
    split: str
    checksum: str | None = None
    size: int | None = None
    jets: int | None = None
    extract_to: str | None = None

    def __post_init__(self) -> None:
        if self.checksum is None and self.size is None:
            raise ValueError(f"{self.name}: a catalogue file needs a published checksum or size")
        if self.checksum is not None and self.checksum.split(":")[0] not in ("md5", "sha256"):
            raise ValueError(f"{self.name}: checksum must be 'md5:<hex>' or 'sha256:<hex>'")


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """A public dataset as hepnn gets and opens it.

    Attributes:
        name: the command-line name (``hepnn datasets get NAME``).
        title: one line for people.
        files: every published file hepnn knows, in download order.
        jets: jets per split as the authors state them, for ``list``.
        layout: the on-disk format, in a few words.
        reads: how hepnn opens it: "as it is (...)" or "after `hepnn datasets convert NAME`".
        convert: True when the layout needs the conversion to parquet.
        licence: the licence the record states.
        citation: paper (arXiv id) and record DOI to cite.
        classes: class names in label order.
        notes: what a user must know (checksum gaps, split conventions).
    """

    name: str
    title: str
    files: tuple[RemoteFile, ...]
    jets: str
    layout: str
    reads: str
    convert: bool
    licence: str
    citation: str
    classes: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits its files are published in ("all" for JetNet)."""
        return tuple(dict.fromkeys(f.split for f in self.files))

    @property
    def size(self) -> int | None:
        """Bytes of all files, None if any size is unpublished."""
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[misc]

    def select(self, splits: list[str] | None = None, subset: int | None = None) -> list[RemoteFile]:
        """The files to fetch for ``splits`` (default all); with ``subset``, only enough for that many jets.

        Raises HepnnError for an unknown split, or for ``subset`` on a split published as one file
        (no fewer bytes can be fetched: limit the jets at training time with data.max_jets instead).
        """
        chosen = self._by_split(splits)
        if subset is None:
            return chosen
        if subset < 1:
            raise HepnnError(f"--subset must be a positive number of jets, got {subset}")
        if self.splits == ("all",):
            raise HepnnError(f"--subset: {self.name} draws every split from every file, so all files are needed; "
                             f"limit the jets with `hepnn datasets convert {self.name} --subset N` instead")
        out: list[RemoteFile] = []
        for split in dict.fromkeys(f.split for f in chosen):
            files = [f for f in chosen if f.split == split]
            per_file = files[0].jets
            if len(files) == 1 or per_file is None:
                raise HepnnError(
                    f"--subset: {self.name} publishes its {split} split as {len(files)} file(s) without a "
                    "per-file jet count, so no smaller download exists; drop --subset and limit the jets "
                    "when training (data.max_jets=N) or converting (hepnn datasets convert --subset N)")
            out += files[: math.ceil(subset / per_file)]
        return out

    def _by_split(self, splits: list[str] | None) -> list[RemoteFile]:
        if not splits:
            return list(self.files)
        if self.splits == ("all",):
            raise HepnnError(
                f"--split: {self.name} draws every split from every file (its published seeded permutation), "
                f"so all files are needed; drop --split here and choose splits with "
                f"`hepnn datasets convert {self.name} --split ...`")
        bad = [s for s in splits if s not in self.splits]
        if bad:
            raise HepnnError(f"--split: unknown split {', '.join(bad)} for {self.name}; "
                             f"choose from {', '.join(self.splits)}")
        return [f for f in self.files if f.split in splits]


def parse_splits(text: str | None) -> list[str] | None:
    """``"train,val"`` -> ["train", "val"]; None or "" -> None (all)."""
    if not text:
        return None
    splits = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise HepnnError(f"--split: unknown split {', '.join(bad)}; use a comma-separated list of "
                         f"{', '.join(SPLITS)}")
    return splits


def human_size(n: int | None) -> str:
    """Bytes as "1.04 GB" (decimal units, as Zenodo shows them); "size not published" for None."""
    if n is None:
        return "size not published"
    value, unit = float(n), "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            break
        value /= 1000
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
