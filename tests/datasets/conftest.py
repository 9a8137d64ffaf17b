"""Fixtures: a loopback HTTP server, and a catalogue whose entries carry the checksums of small local files.

The catalogue entries keep their real names, splits and archive folders; only checksums, sizes and jet
counts are those of the small files, and downloads go to the loopback server through ``--mirror``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Iterator

import pytest

from hepnn.datasets import sources
from hepnn.datasets.catalogue import Dataset
from tests.datasets.server import LoopbackServer


@pytest.fixture()
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


def small_entry(ds: Dataset, files: dict[str, bytes], *, checksum: str = "md5", jets: int | None = None) -> Dataset:
    """``ds`` with only the files in ``files``, each with the md5 (or sha256) and size of the given bytes.

    ``checksum="none"`` publishes no checksum (size only), like JetNet.
    """
    out = []
    for f in ds.files:
        if f.name not in files:
            continue
        data = files[f.name]
        digest = None if checksum == "none" else f"{checksum}:{hashlib.new(checksum, data).hexdigest()}"
        out.append(dataclasses.replace(f, checksum=digest, size=len(data), jets=jets if jets is not None else f.jets))
    return dataclasses.replace(ds, files=tuple(out))


@pytest.fixture()
def use_catalogue(monkeypatch: pytest.MonkeyPatch):
    """``use_catalogue(entry, ...)``: the commands see these entries instead of the real ones of that name."""

    def install(*entries: Dataset) -> None:
        replaced = {e.name: e for e in entries}
        monkeypatch.setattr(sources, "DATASETS", tuple(replaced.get(d.name, d) for d in sources.DATASETS))

    return install


def serve(srv: LoopbackServer, folder: Path) -> dict[str, bytes]:
    """Put every file of ``folder`` (recursively, by name) on the server; their bytes by name."""
    files = {p.name: p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}
    srv.behaviour.files.update(files)
    return files
