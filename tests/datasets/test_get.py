"""`hepnn datasets get / verify` on a loopback mirror with small files in each dataset's layout."""

from __future__ import annotations

import json
import tarfile

import awkward as ak
import numpy as np
import pytest
from typer.testing import CliRunner

from hepnn.cli import app
from hepnn.data.io import read_jets, read_metadata
from hepnn.datasets.archive import extract_tar
from hepnn.datasets.get import get_files
from hepnn.datasets.manifest import MANIFEST
from hepnn.datasets.sources import JETCLASS, JETNET, QUARKGLUON, TOPTAGGING
from tests.datasets import layouts
from tests.datasets.conftest import serve, small_entry

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["-q", "datasets", *args], catch_exceptions=False)


def _same_particles(a: ak.Array, b: ak.Array) -> None:
    for c in ("part_E", "part_px", "part_py", "part_pz"):
        assert ak.all(ak.isclose(a[c], b[c], rtol=1e-6, atol=1e-5)), c
    assert np.array_equal(ak.to_numpy(a["label"]), ak.to_numpy(b["label"]))


@pytest.fixture()
def toptagging(server, use_catalogue, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    jets = layouts.toptagging_files(src)
    files = serve(server, src)
    use_catalogue(small_entry(TOPTAGGING, files))
    return jets


def test_get_toptagging_downloads_verifies_and_opens_as_it_is(server, toptagging, tmp_path):
    out = tmp_path / "top"
    result = invoke("get", "toptagging", "--dir", str(out), "--mirror", server.url)
    assert result.exit_code == 0, result.output
    assert result.output.count("downloaded") == 3 and "md5 ok" in result.output
    for name, jets in toptagging.items():  # hepnn's own reader, no conversion
        _same_particles(read_jets(out / name), jets)
    assert read_metadata(out / "train.h5")["layout"] == "toptagging"
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["files"]["val.h5"]["checksum_source"] == "published"
    assert sorted(p.name for p in out.iterdir()) == sorted([*toptagging, MANIFEST])  # no .part left

    served = dict(server.behaviour.served)
    again = invoke("get", "toptagging", "--dir", str(out), "--mirror", server.url)
    assert again.output.count("present") == 3 and server.behaviour.served == served  # nothing fetched twice
    assert invoke("verify", "toptagging", "--dir", str(out)).output.strip().endswith("all 3 files verified")


def test_verify_reports_a_damaged_file_and_get_replaces_it(server, toptagging, tmp_path):
    out = tmp_path / "top"
    invoke("get", "toptagging", "--dir", str(out), "--split", "test", "--mirror", server.url)
    data = bytearray((out / "test.h5").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / "test.h5").write_bytes(bytes(data))
    bad = invoke("verify", "toptagging", "--dir", str(out), "--split", "test")
    assert bad.exit_code == 2 and "1 bad of 1 files" in bad.output and "md5" in bad.output
    missing = invoke("verify", "toptagging", "--dir", str(out))
    assert missing.exit_code == 2 and "2 missing" in missing.output
    fixed = invoke("get", "toptagging", "--dir", str(out), "--split", "test", "--mirror", server.url)
    assert "downloaded" in fixed.output
    assert invoke("verify", "toptagging", "--dir", str(out), "--split", "test").exit_code == 0


def test_get_errors_are_one_line(server, toptagging, tmp_path):
    server.behaviour.missing.add("val.h5")
    result = invoke("get", "toptagging", "--dir", str(tmp_path / "t"), "--split", "val", "--mirror", server.url)
    assert result.exit_code == 2
    lines = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "val.h5" in lines[0] and f"{server.url}/val.h5" in lines[0] and "--dir" in lines[0]
    for args, text in ((("--subset", "10"), "no smaller download exists"), (("--split", "dev"), "unknown split dev"),
                       (("--timeout", "0"), "--timeout must be > 0")):
        out = invoke("get", "toptagging", "--dir", str(tmp_path / "t"), *args)
        assert out.exit_code == 2 and text in out.output, out.output
    assert "unknown dataset 'nope'" in invoke("get", "nope").output


def test_jetclass_archive_is_unpacked_read_and_verified_by_member(server, use_catalogue, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    jets = layouts.jetclass_tar(src / "JetClass_Pythia_val_5M.tar")
    use_catalogue(small_entry(JETCLASS, serve(server, src)))
    out = tmp_path / "jc"
    result = invoke("get", "jetclass", "--dir", str(out), "--split", "val", "--mirror", server.url)
    assert result.exit_code == 0, result.output
    assert "unpacked" in result.output and not (out / "JetClass_Pythia_val_5M.tar").exists()
    root = out / "Pythia" / "val_5M" / "HToBB_120.root"
    _same_particles(read_jets(root), jets)  # the ROOT file opens as it is, one-hot labels -> index
    assert read_metadata(root)["classes"][:2] == ["QCD", "Hbb"]
    assert invoke("verify", "jetclass", "--dir", str(out), "--split", "val").exit_code == 0
    assert "unpacked before" in invoke("get", "jetclass", "--dir", str(out), "--split", "val",
                                       "--mirror", server.url).output
    data = bytearray(root.read_bytes())
    data[-1] ^= 0xFF  # same size, one byte changed
    root.write_bytes(bytes(data))
    bad = invoke("verify", "jetclass", "--dir", str(out), "--split", "val")
    assert bad.exit_code == 2 and "HToBB_120.root" in bad.output


def test_unsafe_archive_member_is_refused(server, use_catalogue, tmp_path):
    tar = layouts.tar_bytes({"../evil.txt": b"x"})
    server.behaviour.files["JetClass_Pythia_test_20M.tar"] = tar
    use_catalogue(small_entry(JETCLASS, {"JetClass_Pythia_test_20M.tar": tar}))
    result = invoke("get", "jetclass", "--dir", str(tmp_path / "jc"), "--split", "test", "--mirror", server.url)
    assert result.exit_code == 2 and "outside its folder" in result.output
    assert not (tmp_path / "evil.txt").exists()


def test_quarkgluon_subset_fetches_only_the_files_needed(server, use_catalogue, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i, f in enumerate(QUARKGLUON.files):
        layouts.qg_npz(src / f.name, n=20, seed=i)
    use_catalogue(small_entry(QUARKGLUON, serve(server, src), checksum="sha256", jets=20))
    out = tmp_path / "qg"
    result = invoke("get", "quarkgluon", "--dir", str(out), "--split", "train,test", "--subset", "30",
                    "--mirror", server.url)
    assert result.exit_code == 0, result.output
    assert sorted(server.behaviour.served) == ["QG_jets.npz", "QG_jets_1.npz", "QG_jets_18.npz", "QG_jets_19.npz"]
    assert "sha256 ok" in result.output and "hepnn datasets convert quarkgluon" in result.output


def test_jetnet_without_checksum_checks_size_and_records_md5(server, use_catalogue, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i, f in enumerate(JETNET.files):
        layouts.jetnet_h5(src / f.name, n=10, seed=i)
    entry = small_entry(JETNET, serve(server, src), checksum="none")
    use_catalogue(entry)
    out = tmp_path / "jn"
    statuses = get_files(entry, out, mirror=server.url, progress=False)
    assert all(s.detail == "size ok, md5 recorded (no checksum published)" for s in statuses)
    assert "all 5 files verified" in invoke("verify", "jetnet", "--dir", str(out)).output
    data = bytearray((out / "t.hdf5").read_bytes())  # same size, different bytes: only the md5 sees it
    data[-5] ^= 0xFF
    (out / "t.hdf5").write_bytes(bytes(data))
    bad = invoke("verify", "jetnet", "--dir", str(out))
    assert bad.exit_code == 2 and "t.hdf5" in bad.output and "recorded at download" in bad.output
    assert "draws every split from every file" in invoke("get", "jetnet", "--split", "train").output


def test_archive_with_a_top_folder_entry_unpacks(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "HToBB_000.root").write_bytes(b"abc")
    with tarfile.open(tmp_path / "a.tar", "w") as tar:
        tar.add(tmp_path / "d", arcname=".")  # members "." and "./HToBB_000.root", as `tar -C d .` writes
    records = extract_tar(tmp_path / "a.tar", tmp_path / "out")
    assert list(records) == ["HToBB_000.root"] and (tmp_path / "out" / "HToBB_000.root").read_bytes() == b"abc"
    assert records["HToBB_000.root"]["size"] == 3
