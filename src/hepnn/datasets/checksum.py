"""Checksums of downloaded files: "md5:<hex>" / "sha256:<hex>" strings, streamed hashing, one verdict.

The algorithm is the one the dataset's authors publish (md5 on Zenodo, sha256 in EnergyFlow); md5 is
used as a published integrity check here, not for security.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

BLOCK = 4 * 1024 * 1024  # bytes read per step (large reads: hashing runs at disk speed)


def new_hasher(checksum: str | None) -> "hashlib._Hash":
    """A fresh hash object for the algorithm of ``checksum`` (md5 when there is none: it is recorded)."""
    algo = "md5" if checksum is None else checksum.split(":", 1)[0]
    return hashlib.new(algo, usedforsecurity=False)


def update_from_file(hasher: "hashlib._Hash", path: str | os.PathLike[str], stop: int | None = None) -> int:
    """Feed the first ``stop`` bytes (default all) of ``path`` into ``hasher``; the bytes read."""
    n = 0
    with open(path, "rb") as f:
        while stop is None or n < stop:
            block = f.read(BLOCK if stop is None else min(BLOCK, stop - n))
            if not block:
                break
            hasher.update(block)
            n += len(block)
    return n


def file_digest(path: str | os.PathLike[str], algo: str = "md5") -> str:
    """``"<algo>:<hex>"`` of a whole file."""
    h = hashlib.new(algo, usedforsecurity=False)
    update_from_file(h, path)
    return f"{algo}:{h.hexdigest()}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one file: ``ok`` and a few words for people ("md5 ok", "size differs ...")."""

    ok: bool
    detail: str


def check_digest(got_hex: str, size: int, *, checksum: str | None, expected_size: int | None) -> Verdict:
    """Compare a computed digest and size with the published ones (either may be unpublished)."""
    if expected_size is not None and size != expected_size:
        return Verdict(False, f"size {size:,} bytes, published {expected_size:,}")
    if checksum is None:
        return Verdict(True, "size ok (no checksum published)")
    algo, want = checksum.split(":", 1)
    if got_hex != want.lower():
        return Verdict(False, f"{algo} {got_hex}, published {want}")
    return Verdict(True, f"{algo} ok")


def verify_file(path: str | os.PathLike[str], *, checksum: str | None, size: int | None) -> Verdict:
    """Check a file on disk against a published checksum and/or size (size first: it is free)."""
    path = Path(path)
    actual = path.stat().st_size
    if size is not None and actual != size:
        return Verdict(False, f"size {actual:,} bytes, published {size:,}")
    if checksum is None:
        return Verdict(True, "size ok (no checksum published)")
    h = new_hasher(checksum)
    update_from_file(h, path)
    return check_digest(h.hexdigest(), actual, checksum=checksum, expected_size=size)
