"""Unpacking a verified tar archive (JetClass) member by member: safe paths, atomic files, md5 recorded.

Only regular files and folders are unpacked; a member with an absolute path, a ``..`` component, a
link or a device is refused (a tar can otherwise write outside its folder). Each file is streamed into
a temporary file beside its final name and renamed when complete, and its md5 and size are returned
so that ``hepnn datasets verify`` can check the unpacked files after the archive is gone.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path, PurePosixPath

from hepnn.datasets.checksum import BLOCK
from hepnn.errors import HepnnError
from hepnn.io_utils import atomic_path


def _safe_member_path(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name)  # "./a/b" -> ("a", "b"); "./" -> () (the archive's own top folder)
    if path.is_absolute() or ".." in path.parts:
        raise HepnnError(f"{archive}: member {name!r} would unpack outside its folder; the archive is not the "
                         "published one: delete it and download it again")
    return path


def extract_tar(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> dict[str, dict]:
    """Unpack ``archive`` under ``dest``; {path relative to ``dest``: {"md5": "md5:<hex>", "size": bytes}}.

    Members are streamed (never held in memory); a file that exists with the same size is rewritten
    anyway, so an interrupted unpacking is simply repeated.
    """
    archive, dest = Path(archive), Path(dest)
    records: dict[str, dict] = {}
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                rel = _safe_member_path(member.name, archive)
                if not rel.parts and member.isdir():
                    continue
                if member.isdir():
                    (dest / rel).mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    raise HepnnError(f"{archive}: member {member.name!r} is a link or special file; only plain "
                                     "files are unpacked: the archive is not the published one")
                records[rel.as_posix()] = _copy_member(tar, member, dest / rel)
    except (tarfile.TarError, EOFError) as err:
        raise HepnnError(f"{archive}: cannot unpack ({err}); the archive is damaged: delete it and rerun "
                         "`hepnn datasets get`") from err
    return records


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> dict:
    source = tar.extractfile(member)
    if source is None:  # isfile() members always have data; guard anyway
        raise HepnnError(f"{member.name}: no data in the archive")
    h = hashlib.md5(usedforsecurity=False)
    n = 0
    with source, atomic_path(target) as tmp, open(tmp, "wb") as out:
        while block := source.read(BLOCK):
            out.write(block)
            h.update(block)
            n += len(block)
    return {"md5": f"md5:{h.hexdigest()}", "size": n}
