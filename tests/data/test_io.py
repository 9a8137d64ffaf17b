"""Native parquet writer/reader, format dispatch, chunked reading and the DataError contract."""

from __future__ import annotations

import json
import logging

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest

from hepnn.data.io import count_jets, iter_chunks, read_jets, read_metadata, write_parquet
from hepnn.errors import DataError
from tests.conftest import random_jets


def with_jet_fields(jets: ak.Array, seed: int = 0) -> ak.Array:
    """Add jet_* (sum of constituents) and truth_* columns, as the generator writes them."""
    out = {name: jets[name] for name in jets.fields}
    for c in ("E", "px", "py", "pz"):
        out[f"jet_{c}"] = ak.sum(jets[f"part_{c}"], axis=1)
    g = np.random.default_rng(seed)
    for name in ("truth_pt", "truth_eta", "truth_phi", "truth_mass"):
        out[name] = g.uniform(1.0, 2.0, len(jets)).astype(np.float32)
    return ak.zip(out, depth_limit=1)


def assert_same_jets(a: ak.Array, b: ak.Array) -> None:
    assert sorted(a.fields) == sorted(b.fields)
    assert len(a) == len(b)
    for name in a.fields:
        if a[name].ndim == 2:
            np.testing.assert_array_equal(ak.num(a[name]), ak.num(b[name]), err_msg=name)
        np.testing.assert_array_equal(ak.to_numpy(ak.flatten(a[name], axis=None)),
                                      ak.to_numpy(ak.flatten(b[name], axis=None)), err_msg=name)


def test_parquet_round_trip_types_metadata_and_compression(tmp_path):
    jets = with_jet_fields(random_jets(40, seed=1))
    path = tmp_path / "jets.parquet"
    write_parquet(jets, path, metadata={"seed": 7, "generator": "pythia"}, row_group_size=16)
    back = read_jets(path)
    assert_same_jets(jets, back)
    assert str(back.type.content) == (
        "{part_E: var * float32, part_px: var * float32, part_py: var * float32, part_pz: var * float32, "
        "part_charge: var * int8, part_pid: var * int32, label: int64, jet_E: float32, jet_px: float32, "
        "jet_py: float32, jet_pz: float32, truth_pt: float32, truth_eta: float32, truth_phi: float32, "
        "truth_mass: float32}"
    )
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 3  # 16 + 16 + 8
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert json.loads(pq.read_schema(path).metadata[b"hepnn"]) == {"seed": 7, "generator": "pythia"}
    assert read_metadata(path) == {"seed": 7, "generator": "pythia"}
    assert count_jets(path) == 40
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_write_parquet_casts_float64_momenta_to_float32(tmp_path):
    jets = random_jets(5)
    jets["part_px"] = ak.values_astype(jets["part_px"], np.float64) * 1.0000001
    write_parquet(jets, tmp_path / "a.parquet")
    schema = pq.read_schema(tmp_path / "a.parquet")
    assert str(schema.field("part_px").type.value_type) == "float"


def test_failed_write_leaves_old_file(tmp_path):
    path = tmp_path / "a.parquet"
    write_parquet(random_jets(5), path, metadata={"v": 1})
    with pytest.raises(TypeError):
        write_parquet(random_jets(6), path, metadata={"v": object()})
    assert count_jets(path) == 5 and read_metadata(path) == {"v": 1}
    assert list(tmp_path.iterdir()) == [path]


def test_chunks_concatenate_to_the_whole_across_files_and_globs(tmp_path):
    a, b = random_jets(23, seed=2), random_jets(17, seed=3)
    write_parquet(a, tmp_path / "s0.parquet", row_group_size=10)
    write_parquet(b, tmp_path / "s1.parquet", row_group_size=10)
    chunks = list(iter_chunks(str(tmp_path / "s*.parquet"), chunk_size=7))
    assert all(1 <= len(c) <= 7 for c in chunks)
    assert_same_jets(ak.concatenate(chunks), ak.concatenate([a, b]))
    assert_same_jets(read_jets([tmp_path / "s0.parquet", tmp_path / "s1.parquet"]), ak.concatenate([a, b]))


def test_columns_and_max_jets(tmp_path):
    jets = random_jets(30)
    write_parquet(jets, tmp_path / "a.parquet")
    got = read_jets(tmp_path / "a.parquet", columns=["part_px", "label"], max_jets=12)
    assert got.fields == ["part_px", "label"] and len(got) == 12
    np.testing.assert_array_equal(got.label, jets.label[:12])
    with pytest.raises(DataError, match=r"a\.parquet.*missing column\(s\) jet_sdmass.*part_px"):
        read_jets(tmp_path / "a.parquet", columns=["jet_sdmass"])


def test_aliased_column_names_become_canonical(tmp_path):
    jets = random_jets(8)
    renamed = ak.zip({("part_energy" if k == "part_E" else "is_signal" if k == "label" else k): jets[k]
                      for k in jets.fields}, depth_limit=1)
    write_parquet(renamed, tmp_path / "a.parquet")
    assert_same_jets(read_jets(tmp_path / "a.parquet"), jets)


@pytest.mark.parametrize("name, message", [
    ("jets.csv", r"jets\.csv: unknown file type '\.csv'"),
    ("missing.parquet", r"missing\.parquet: file not found"),
    ("nomatch_*.parquet", r"nomatch_\*\.parquet: the pattern matches no file"),
])
def test_bad_paths(tmp_path, name, message):
    (tmp_path / "jets.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=message):
        read_jets(tmp_path / name if "*" not in name else str(tmp_path / name))


def test_missing_required_column_lists_existing_ones(tmp_path):
    jets = random_jets(5)
    write_parquet(ak.zip({k: jets[k] for k in jets.fields if k != "part_pz"}, depth_limit=1), tmp_path / "a.parquet")
    with pytest.raises(DataError, match=r"a\.parquet: missing column\(s\) part_pz; the file has part_E, part_px"):
        read_jets(tmp_path / "a.parquet")


def write_raw(jets: ak.Array, path) -> None:
    """Write with pyarrow alone (no casting to the native dtypes, nullable columns)."""
    pq.write_table(ak.to_arrow_table(jets, extensionarray=False, count_nulls=False), path, row_group_size=5)


def _with(jets: ak.Array, name: str, row: int, value) -> ak.Array:
    """Copy of ``jets`` with column ``name`` at jet ``row`` (first constituent if jagged) set to value."""
    col = jets[name]
    if col.ndim == 1:
        x = ak.to_numpy(col).astype(np.float64)
        x[row] = value
        return ak.with_field(jets, x, name)
    flat = ak.to_numpy(ak.flatten(col)).copy()
    flat[int(ak.sum(ak.num(col[:row])))] = value
    return ak.with_field(jets, ak.unflatten(flat, ak.num(col)), name)


@pytest.mark.parametrize("name, value, message", [
    ("part_px", np.nan, r"column part_px has NaN or inf at row 13"),
    ("part_E", np.inf, r"column part_E has NaN or inf at row 13"),
    ("label", np.inf, r"column label has invalid value inf at row 13"),
    ("label", 0.5, r"column label has invalid value 0.5 at row 13"),
    ("label", -1, r"column label has invalid value -1.0 at row 13"),
])
def test_bad_values_name_file_column_and_first_bad_row(tmp_path, name, value, message):
    jets = _with(_with(random_jets(20), name, 13, value), name, 17, value)
    write_raw(jets, tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: " + message):
        read_jets(tmp_path / "bad.parquet")  # row 13 lies in the third chunk: rows count from file start


def test_nullable_float_labels_and_nulls(tmp_path):
    import pyarrow as pa

    jets = random_jets(6)
    table = ak.to_arrow_table(jets, extensionarray=False)
    pq.write_table(table.set_column(6, "label", pa.array(ak.to_numpy(jets.label).astype(float))), tmp_path / "f.parquet")
    got = read_jets(tmp_path / "f.parquet")
    assert str(got.type.content) == str(jets.type.content)  # options stripped, label int64
    np.testing.assert_array_equal(got.label, jets.label)
    pq.write_table(table.set_column(6, "label", pa.array([0, 1, None, 1, 0, 1])), tmp_path / "n.parquet")
    with pytest.raises(DataError, match=r"n\.parquet: column label has a missing \(null\) value at row 2"):
        read_jets(tmp_path / "n.parquet")


def test_empty_truncated_and_zero_constituent_files(tmp_path, caplog):
    write_parquet(random_jets(5)[:0], tmp_path / "empty.parquet")
    with pytest.raises(DataError, match=r"empty\.parquet: the file holds 0 jets"):
        read_jets(tmp_path / "empty.parquet")

    write_parquet(random_jets(50), tmp_path / "ok.parquet")
    data = (tmp_path / "ok.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.parquet: cannot read as parquet"):
        read_jets(tmp_path / "cut.parquet")

    jets = random_jets(12)
    mask = np.ones(12, bool)
    mask[[4, 9]] = False
    keep = ak.Array(np.where(mask, 10**6, 0))  # per jet: how many constituents to keep
    cut = ak.zip({k: jets[k] if jets[k].ndim == 1 else jets[k][ak.local_index(jets[k]) < keep]
                  for k in jets.fields}, depth_limit=1)
    write_parquet(cut, tmp_path / "hollow.parquet")
    with pytest.raises(DataError, match=r"hollow\.parquet: jet at row 4 has zero constituents"):
        read_jets(tmp_path / "hollow.parquet")
    with caplog.at_level(logging.WARNING, logger="hepnn"):
        got = read_jets(tmp_path / "hollow.parquet", drop_empty=True)
    assert len(got) == 10 and "dropping 2 jets" in caplog.text
    np.testing.assert_array_equal(got.label, jets.label[mask])


def test_mixed_layouts_are_named(tmp_path):
    jets = random_jets(5)
    write_parquet(jets, tmp_path / "a.parquet")
    write_parquet(ak.zip({k: jets[k] for k in jets.fields if k != "part_charge"}, depth_limit=1),
                  tmp_path / "b.parquet")
    with pytest.raises(DataError, match=r"mixed layouts.*a\.parquet has part_charge and .*b\.parquet does not"):
        read_jets([tmp_path / "a.parquet", tmp_path / "b.parquet"])
