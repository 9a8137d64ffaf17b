"""Resumable, verified downloads over HTTP(S) with ``requests``: ``.part`` file + Range, checksum, rename.

A file is written as ``NAME.part`` beside its final path. An interrupted transfer (timeout, dropped
connection, Ctrl-C) leaves the ``.part`` file; the next call asks the server for the remaining bytes
(``Range: bytes=N-``) and appends them, hashing the kept bytes first. Only when every byte is there
and the size and checksum match the published ones is the file fsynced and renamed onto its final
name (atomic on one file system), so a file under its final name is always complete and verified.
A mismatch removes the ``.part`` file. Errors are one line naming the file, the URL and what to do.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from hepnn.datasets.checksum import check_digest, new_hasher, update_from_file
from hepnn.errors import HepnnError, missing_extra
from hepnn.log import get_logger

log = get_logger(__name__)

CHUNK = 256 * 1024  # at most this many bytes per read from the socket
ADVICE = ("or download the file elsewhere (browser, wget, another machine), put it in a folder and pass "
          "that folder with --dir")


class DownloadError(HepnnError):
    """A file could not be fetched or did not match its published checksum."""


class _Retry(Exception):
    """A transient failure (timeout, dropped connection, 5xx): try again, resuming the .part file."""


def requests_module() -> Any:
    """The ``requests`` module, or the `datasets` extra's install message."""
    try:
        import requests
    except ImportError as err:
        raise missing_extra("datasets", "requests") from err
    return requests


def part_path(dest: str | os.PathLike[str]) -> Path:
    """Where the bytes of ``dest`` accumulate until it is complete and verified."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def fetch(url: str, dest: str | os.PathLike[str], *, checksum: str | None = None, size: int | None = None,
          timeout: float = 60.0, retries: int = 2, progress: bool = True, session: Any = None) -> str:
    """Download ``url`` to ``dest``, resuming a ``.part`` file; returns ``"<algo>:<hex>"`` of the file.

    Args:
        url: HTTP(S) location.
        dest: final path; it appears only once the file is complete and verified.
        checksum: published "md5:<hex>" / "sha256:<hex>", or None (then md5 is computed and returned).
        size: published size in bytes, or None.
        timeout: seconds to wait for the connection or for the next bytes (a stalled server).
        retries: further attempts after a transient failure, each resuming where the last stopped.
        progress: show a rich progress bar with rate and ETA.
        session: a ``requests.Session`` to reuse (default: a new one).
    """
    requests = requests_module()
    dest, part = Path(dest), part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sess = session or requests.Session()
    reason = ""
    for attempt in range(retries + 1):
        try:
            hasher, n = _transfer(sess, url, part, checksum=checksum, size=size, timeout=timeout,
                                  progress=progress)
            break
        except _Retry as err:
            reason = str(err)
            log.warning("%s: %s (attempt %d of %d)", dest.name, reason, attempt + 1, retries + 1)
    else:
        kept = f"the partial file {part} is kept and rerunning resumes it; " if part.exists() else ""
        raise DownloadError(f"{dest.name}: cannot download {url}: {reason}; {kept}{ADVICE}")
    verdict = check_digest(hasher.hexdigest(), n, checksum=checksum, expected_size=size)
    if not verdict.ok:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{dest.name}: the bytes from {url} do not match the published checksum "
                            f"({verdict.detail}); the download was removed: retry, {ADVICE}")
    with open(part, "rb") as f:
        os.fsync(f.fileno())
    os.replace(part, dest)
    algo = "md5" if checksum is None else checksum.split(":", 1)[0]
    return f"{algo}:{hasher.hexdigest()}"


def _transfer(sess: Any, url: str, part: Path, *, checksum: str | None, size: int | None, timeout: float,
              progress: bool) -> tuple[Any, int]:
    """One attempt: request the missing bytes and append them to ``part``; (hasher over all bytes, size)."""
    requests = requests_module()
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:  # longer than the published file: not its prefix
        part.unlink()
        offset = 0
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        resp = sess.get(url, headers=headers, stream=True, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as err:
        raise _Retry(_reason(err, timeout)) from None
    with resp:
        offset, total = _check_response(resp, url, part, offset, size)
        hasher = new_hasher(checksum)
        if offset:
            update_from_file(hasher, part, stop=offset)
        if total is not None and offset == total:
            return hasher, offset
        n = _stream_body(resp, part, hasher, offset, total, timeout=timeout, progress=progress)
    if total is not None and n != total:
        raise _Retry(f"the connection closed after {n:,} of {total:,} bytes")
    return hasher, n


def _check_response(resp: Any, url: str, part: Path, offset: int, size: int | None) -> tuple[int, int | None]:
    """(offset the body starts at, total file size or None) from the status and headers."""
    code = resp.status_code
    if code == 416:  # nothing left to send: complete if the size says so, else start over
        if size is not None and offset == size:
            return offset, size
        part.unlink(missing_ok=True)
        raise _Retry("the server refused the resume range; starting over")
    if code >= 500:
        raise _Retry(f"the server answered {code} {resp.reason}")
    if code >= 400:
        name = part.name[: -len(".part")]
        raise DownloadError(f"{name}: cannot download {url}: the server answered {code} {resp.reason}; "
                            f"the file may have moved (check the record named by `hepnn datasets list`), {ADVICE}")
    if code == 206 and _range_start(resp.headers.get("Content-Range", "")) == offset:
        start = offset
    else:  # a full answer (the server ignores Range, or this is a fresh download)
        start = 0
    length = resp.headers.get("Content-Length")
    total = start + int(length) if length is not None and length.isdigit() else size
    if size is not None and total is not None and total != size:
        name = part.name[: -len(".part")]
        raise DownloadError(f"{name}: {url} offers {total:,} bytes but the published file has {size:,}; "
                            f"it is not the published file: check the URL or mirror, {ADVICE}")
    return start, total


def _stream_body(resp: Any, part: Path, hasher: Any, offset: int, total: int | None, *, timeout: float,
                 progress: bool) -> int:
    """Append the response body to ``part`` (truncating it when ``offset`` is 0); bytes now in ``part``.

    ``raw.read1`` hands over whatever arrived, so the bytes before a dropped connection are kept too
    (a buffered read of a large block would lose them with the error).
    """
    import urllib3

    n = offset
    with open(part, "ab" if offset else "wb") as f, _progress_bar(progress, part.name[:-5], total, offset) as advance:
        try:
            while block := resp.raw.read1(CHUNK, decode_content=False):
                f.write(block)
                hasher.update(block)
                n += len(block)
                advance(len(block))
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _Retry(_reason(err, timeout)) from None
    return n


def _range_start(content_range: str) -> int | None:
    """First byte of ``Content-Range: bytes START-END/TOTAL``; None when absent or malformed."""
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _reason(err: Exception, timeout: float) -> str:
    requests, urllib3 = requests_module(), __import__("urllib3")
    if isinstance(err, (requests.Timeout, urllib3.exceptions.TimeoutError)) or "timed out" in str(err).lower():
        return f"no data for {timeout:g} s (timeout)"
    text = " ".join(str(err).split())
    return f"connection failed ({type(err).__name__}: {text[:160]})"


@contextlib.contextmanager
def _progress_bar(enabled: bool, name: str, total: int | None, done: int) -> Iterator[Callable[[int], None]]:
    """A rich bar with bytes, rate and ETA; yields ``advance(n_bytes)``."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn,
    )

    from hepnn.log import console

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(name, total=total, completed=done)
        yield lambda n: bar.advance(task, n)
