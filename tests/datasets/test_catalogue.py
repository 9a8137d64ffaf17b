"""The catalogue: well-formed entries, the published divisions, file selection by split and subset."""

from __future__ import annotations

import re

import pytest

from hepnn.datasets.catalogue import RemoteFile, human_size, parse_splits
from hepnn.datasets.sources import catalogue, get_dataset
from hepnn.errors import HepnnError

HEX = {"md5": 32, "sha256": 64}


@pytest.mark.parametrize("name", ["toptagging", "jetclass", "quarkgluon", "jetnet"])
def test_entries_are_well_formed(name):
    ds = get_dataset(name)
    names = [f.name for f in ds.files]
    assert len(set(names)) == len(names) and len({f.url for f in ds.files}) == len(names)
    for f in ds.files:
        assert f.url.startswith("https://") and f.name in f.url
        if f.checksum is not None:
            algo, digest = f.checksum.split(":")
            assert re.fullmatch(f"[0-9a-f]{{{HEX[algo]}}}", digest), f.name
    assert re.search(r"arXiv:\d{4}\.\d{5}", ds.citation) and "zenodo" in ds.citation
    assert ds.classes and ds.layout and ds.reads


def test_published_divisions():
    qg = get_dataset("quarkgluon")
    assert [sum(f.split == s for f in qg.files) for s in ("train", "val", "test")] == [16, 2, 2]
    assert [f.name for f in qg.files if f.split == "test"] == ["QG_jets_18.npz", "QG_jets_19.npz"]
    jn = get_dataset("jetnet")
    assert all(f.checksum is None and f.size == 2048 + 496 * f.jets for f in jn.files)
    assert sum(f.jets for f in jn.files) == 880_000  # the record's five N add up to 880k
    top = get_dataset("toptagging")
    assert [f.split for f in top.files] == ["train", "val", "test"] and human_size(top.size) == "1.73 GB"
    jc = get_dataset("jetclass")
    assert sum(f.jets for f in jc.files if f.split == "train") == 100_000_000
    assert {f.extract_to for f in jc.files} == {"Pythia/train_100M", "Pythia"}


def test_select_by_split_and_subset():
    qg = get_dataset("quarkgluon")
    assert [f.name for f in qg.select(["val"])] == ["QG_jets_16.npz", "QG_jets_17.npz"]
    assert len(qg.select(["train"], subset=250_000)) == 3  # 100k jets per file
    assert len(get_dataset("jetclass").select(["train"], subset=1)) == 1
    with pytest.raises(HepnnError, match="draws every split from every file"):
        get_dataset("jetnet").select(None, subset=100)  # one file would hold one jet type only
    with pytest.raises(HepnnError, match="no smaller download exists"):
        get_dataset("toptagging").select(["train"], subset=5)
    with pytest.raises(HepnnError, match="unknown split"):
        parse_splits("train,dev")
    assert parse_splits("train, test") == ["train", "test"] and parse_splits("") is None
    with pytest.raises(HepnnError, match="unknown dataset 'jetnet150'"):
        get_dataset("jetnet150")


def test_a_file_needs_a_checksum_or_a_size():
    with pytest.raises(ValueError, match="published checksum or size"):
        RemoteFile(name="x", url="https://example.org/x", split="train")
    with pytest.raises(ValueError, match="md5:<hex>"):
        RemoteFile(name="x", url="https://example.org/x", split="train", checksum="crc32:00")
    assert list(catalogue()) == ["toptagging", "jetclass", "quarkgluon", "jetnet"]
