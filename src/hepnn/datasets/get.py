"""``hepnn datasets get`` and ``verify``: fetch a dataset's files into a folder, check what is there.

A file already in the folder (a previous run, or one downloaded elsewhere and put there) is checked
and kept when it matches; a file that does not match is removed and fetched again. An archive is
unpacked after it is verified, its members' md5s recorded in the folder's manifest, and then removed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hepnn.datasets.catalogue import Dataset, RemoteFile
from hepnn.datasets.checksum import file_digest, verify_file
from hepnn.datasets.download import requests_module, fetch
from hepnn.datasets.manifest import read_manifest, record_file
from hepnn.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class FileStatus:
    """What ``get`` or ``verify`` found for one file: ``state`` is one of downloaded, present, unpacked,
    missing, bad; ``detail`` says how it was checked (or what is wrong)."""

    name: str
    split: str
    state: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.state in ("downloaded", "present", "unpacked")


def file_url(f: RemoteFile, mirror: str | None) -> str:
    """The official URL, or ``MIRROR/NAME`` for a mirror that serves the same file names."""
    return f.url if mirror is None else f"{mirror.rstrip('/')}/{f.name}"


def get_files(ds: Dataset, folder: str | os.PathLike[str], *, splits: list[str] | None = None,
              subset: int | None = None, mirror: str | None = None, timeout: float = 60.0, retries: int = 2,
              progress: bool = True) -> list[FileStatus]:
    """Fetch the files of ``ds`` for ``splits`` (default all) into ``folder``; one status per file.

    Raises DownloadError (one line: file, URL, what to do) on the first file that cannot be fetched;
    the files fetched before it stay, verified, and a rerun resumes the interrupted one.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = ds.select(splits, subset)
    requests_module()  # fail before any work when the `datasets` extra is missing

    statuses = []
    for f in files:
        statuses.append(_get_one(ds, f, folder, url=file_url(f, mirror), timeout=timeout, retries=retries,
                                 progress=progress))
    return statuses


def _get_one(ds: Dataset, f: RemoteFile, folder: Path, *, url: str, timeout: float, retries: int,
             progress: bool) -> FileStatus:
    dest = folder / f.name
    entry = read_manifest(folder, ds.name)["files"].get(f.name, {})
    if f.extract_to and entry.get("members") and not dest.exists():
        bad = _missing_members(folder, entry)
        if not bad:
            return FileStatus(f.name, f.split, "unpacked", f"{len(entry['members'])} files, unpacked before")
        log.warning("%s: %d unpacked files are missing or changed (e.g. %s); fetching the archive again",
                    f.name, len(bad), bad[0])
    state, digest = _present(f, dest, entry)
    if digest is None:
        digest = fetch(url, dest, checksum=f.checksum, size=f.size, timeout=timeout, retries=retries,
                       progress=progress)
        state = "downloaded"
    record: dict[str, Any] = {"split": f.split, "checksum": digest, "size": dest.stat().st_size,
                              "checksum_source": "published" if f.checksum else "observed at download"}
    if f.extract_to:
        from hepnn.datasets.archive import extract_tar

        log.info("%s: unpacking into %s", f.name, folder / f.extract_to)
        members = extract_tar(dest, folder / f.extract_to)
        record["members"] = {f"{f.extract_to}/{k}": v for k, v in members.items()}
        record_file(folder, ds.name, f.name, record)
        dest.unlink()
        return FileStatus(f.name, f.split, "unpacked", f"{digest.split(':')[0]} ok, {len(members)} files unpacked")
    record_file(folder, ds.name, f.name, record)
    return FileStatus(f.name, f.split, state, _how(f, digest))


def _present(f: RemoteFile, dest: Path, entry: dict) -> tuple[str, str | None]:
    """("present", digest) when ``dest`` exists and matches; else (removed or absent) ("", None)."""
    if not dest.exists():
        return "", None
    checksum = f.checksum or _observed(entry, f)
    verdict = verify_file(dest, checksum=checksum, size=f.size)
    if verdict.ok:
        return "present", checksum or file_digest(dest, "md5")
    log.warning("%s: the file in the folder does not match (%s); removing it and fetching it again", f.name,
                verdict.detail)
    dest.unlink()
    return "", None


def _observed(entry: dict, f: RemoteFile) -> str | None:
    """The md5 recorded at the first download of a file whose authors publish no checksum."""
    observed = f.checksum is None and entry.get("checksum_source", "").startswith("observed")
    return entry.get("checksum") if observed else None


def _how(f: RemoteFile, digest: str) -> str:
    algo = digest.split(":")[0]
    return f"{algo} ok" if f.checksum else f"size ok, {algo} recorded (no checksum published)"


def _missing_members(folder: Path, entry: dict) -> list[str]:
    return [name for name, rec in entry["members"].items()
            if not (folder / name).is_file() or (folder / name).stat().st_size != rec["size"]]


def verify_files(ds: Dataset, folder: str | os.PathLike[str], *, splits: list[str] | None = None) -> list[FileStatus]:
    """Check every file of ``ds`` for ``splits`` in ``folder`` against its published checksum (or, for an
    unpacked archive, its members against the md5s recorded when it was unpacked). Nothing is changed."""
    folder = Path(folder)
    entries = read_manifest(folder, ds.name)["files"] if folder.is_dir() else {}
    out = []
    for f in ds.select(splits):
        dest, entry = folder / f.name, entries.get(f.name, {})
        if dest.exists():
            checksum = f.checksum or _observed(entry, f)
            verdict = verify_file(dest, checksum=checksum, size=f.size)
            detail = verdict.detail + (" (md5 recorded at download)" if checksum and not f.checksum else "")
            out.append(FileStatus(f.name, f.split, "present" if verdict.ok else "bad", detail))
        elif f.extract_to and entry.get("members"):
            out.append(_verify_members(folder, f, entry))
        else:
            out.append(FileStatus(f.name, f.split, "missing", f"not in {folder}"))
    return out


def _verify_members(folder: Path, f: RemoteFile, entry: dict) -> FileStatus:
    for name, rec in entry["members"].items():
        path = folder / name
        if not path.is_file():
            return FileStatus(f.name, f.split, "bad", f"unpacked file {name} is missing")
        verdict = verify_file(path, checksum=rec["md5"], size=rec["size"])
        if not verdict.ok:
            return FileStatus(f.name, f.split, "bad", f"unpacked file {name}: {verdict.detail}")
    return FileStatus(f.name, f.split, "unpacked", f"{len(entry['members'])} unpacked files match their recorded md5")
