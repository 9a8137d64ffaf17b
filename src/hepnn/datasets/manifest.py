"""The record a dataset folder keeps of what was fetched and checked: ``hepnn-dataset.json``.

For each file: the checksum it was verified against (published) or computed at download (observed,
for files whose authors publish none), its size, and for an unpacked archive the md5 and size of every
member. ``hepnn datasets verify`` reads it to check files again later, also after an archive is gone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hepnn.errors import HepnnError
from hepnn.io_utils import write_json_atomic

MANIFEST = "hepnn-dataset.json"


def manifest_path(folder: str | os.PathLike[str]) -> Path:
    return Path(folder) / MANIFEST


def read_manifest(folder: str | os.PathLike[str], dataset: str) -> dict[str, Any]:
    """The folder's manifest (an empty one if there is none); HepnnError if it belongs to another dataset."""
    path = manifest_path(folder)
    if not path.is_file():
        return {"dataset": dataset, "files": {}}
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise HepnnError(f"{path}: not valid JSON ({err}); delete it and rerun `hepnn datasets verify "
                         f"{dataset}` (files are checked against their published checksums again)") from err
    if data.get("dataset") != dataset:
        raise HepnnError(f"{path}: this folder holds dataset {data.get('dataset')!r}, not {dataset!r}; "
                         "give each dataset its own --dir")
    data.setdefault("files", {})
    return data


def record_file(folder: str | os.PathLike[str], dataset: str, name: str, entry: dict[str, Any]) -> None:
    """Store ``entry`` for file ``name`` (atomically, keeping every other entry)."""
    data = read_manifest(folder, dataset)
    data["files"][name] = entry
    write_json_atomic(manifest_path(folder), data)
