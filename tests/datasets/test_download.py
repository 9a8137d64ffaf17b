"""hepnn.datasets.download.fetch on a loopback server: verified, resumed, rejected, one-line errors."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from hepnn.datasets.download import DownloadError, fetch, part_path

DATA = os.urandom(300_000)  # ~ a third of a read chunk per 100 kB; several chunks in all
MD5 = "md5:" + hashlib.md5(DATA).hexdigest()


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text
    return text


def test_full_download_is_verified_and_renamed(server, tmp_path):
    server.behaviour.files["f.h5"] = DATA
    dest = tmp_path / "f.h5"
    digest = fetch(f"{server.url}/f.h5", dest, checksum=MD5, size=len(DATA), progress=False)
    assert digest == MD5
    assert dest.read_bytes() == DATA
    assert not part_path(dest).exists()
    assert server.behaviour.served["f.h5"] == len(DATA)


def test_interrupted_transfer_resumes_without_downloading_the_finished_part(server, tmp_path):
    cut = 123_457
    server.behaviour.files["f.h5"] = DATA
    server.behaviour.cut["f.h5"] = cut
    dest, url = tmp_path / "f.h5", f"{server.url}/f.h5"
    with pytest.raises(DownloadError) as info:
        fetch(url, dest, checksum=MD5, size=len(DATA), retries=0, progress=False)
    msg = _one_line(info.value)
    assert "f.h5" in msg and url in msg and "--dir" in msg and "is kept" in msg
    assert not dest.exists() and part_path(dest).stat().st_size == cut

    fetch(url, dest, checksum=MD5, size=len(DATA), progress=False)
    assert dest.read_bytes() == DATA and not part_path(dest).exists()
    assert server.behaviour.requests[-1] == ("f.h5", f"bytes={cut}-")
    assert server.behaviour.served["f.h5"] == len(DATA)  # cut bytes + the rest: nothing twice


def test_a_retry_within_one_call_resumes_too(server, tmp_path):
    server.behaviour.files["f.h5"] = DATA
    server.behaviour.cut["f.h5"] = 50_000
    fetch(f"{server.url}/f.h5", tmp_path / "f.h5", checksum=MD5, size=len(DATA), retries=1, progress=False)
    assert (tmp_path / "f.h5").read_bytes() == DATA
    assert server.behaviour.served["f.h5"] == len(DATA)
    assert [r for _, r in server.behaviour.requests] == [None, "bytes=50000-"]


def test_corrupted_file_is_rejected_and_removed(server, tmp_path):
    server.behaviour.files["f.h5"] = DATA
    server.behaviour.corrupt.add("f.h5")
    dest = tmp_path / "f.h5"
    with pytest.raises(DownloadError, match="do not match the published checksum") as info:
        fetch(f"{server.url}/f.h5", dest, checksum=MD5, size=len(DATA), progress=False)
    assert "md5" in _one_line(info.value)
    assert not dest.exists() and not part_path(dest).exists()


def test_404_is_one_line_naming_file_url_and_what_to_do(server, tmp_path):
    url = f"{server.url}/gone.h5"
    with pytest.raises(DownloadError) as info:
        fetch(url, tmp_path / "gone.h5", checksum=MD5, size=len(DATA), progress=False)
    msg = _one_line(info.value)
    assert msg.startswith("gone.h5: cannot download " + url) and "404" in msg and "--dir" in msg
    assert not (tmp_path / "gone.h5").exists() and not part_path(tmp_path / "gone.h5").exists()


def test_stalled_server_times_out_with_one_line(server, tmp_path):
    server.behaviour.files["f.h5"] = DATA
    server.behaviour.stall["f.h5"] = 3.0
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as info:
        fetch(f"{server.url}/f.h5", tmp_path / "f.h5", checksum=MD5, size=len(DATA), timeout=0.3, retries=0,
              progress=False)
    assert time.monotonic() - t0 < 2.5
    msg = _one_line(info.value)
    assert "timeout" in msg and f"{server.url}/f.h5" in msg and "--dir" in msg


def test_server_ignoring_range_gives_the_whole_file_again(server, tmp_path):
    server.behaviour.files["f.h5"] = DATA
    server.behaviour.ranges = False
    dest = tmp_path / "f.h5"
    part_path(dest).write_bytes(DATA[:1000])
    fetch(f"{server.url}/f.h5", dest, checksum=MD5, size=len(DATA), progress=False)
    assert dest.read_bytes() == DATA


def test_complete_part_file_is_finished_without_a_body(server, tmp_path):
    server.behaviour.files["f.h5"] = DATA
    dest = tmp_path / "f.h5"
    part_path(dest).write_bytes(DATA)  # e.g. interrupted between the last byte and the rename
    fetch(f"{server.url}/f.h5", dest, checksum=MD5, size=len(DATA), progress=False)
    assert dest.read_bytes() == DATA and server.behaviour.served.get("f.h5", 0) == 0


def test_a_server_offering_another_size_is_refused_before_downloading(server, tmp_path):
    server.behaviour.files["f.h5"] = DATA[:-10]
    with pytest.raises(DownloadError, match="offers 299,990 bytes but the published file has 300,000"):
        fetch(f"{server.url}/f.h5", tmp_path / "f.h5", checksum=MD5, size=len(DATA), progress=False)
    assert not part_path(tmp_path / "f.h5").exists() or part_path(tmp_path / "f.h5").stat().st_size == 0


def test_without_published_checksum_the_size_is_checked_and_md5_returned(server, tmp_path):
    server.behaviour.files["f.h5"] = DATA
    assert fetch(f"{server.url}/f.h5", tmp_path / "f.h5", size=len(DATA), progress=False) == MD5
    server.behaviour.files["g.h5"] = DATA[:-1]
    with pytest.raises(DownloadError):
        fetch(f"{server.url}/g.h5", tmp_path / "g.h5", size=len(DATA), progress=False)


def test_progress_bar_runs(server, tmp_path):
    server.behaviour.files["f.h5"] = DATA
    fetch(f"{server.url}/f.h5", tmp_path / "f.h5", checksum=MD5, progress=True)
    assert (tmp_path / "f.h5").read_bytes() == DATA
