"""Property-based tests of the readers (hypothesis).

Random valid jets written and read back are identical; random byte corruption or truncation of a
parquet, HDF5 or ROOT file always ends in ``HepnnError`` (a ``DataError`` naming the file), never
another exception type and never a crash.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hepnn.data.io import count_jets, read_jets, read_metadata, write_parquet, write_toptagging_h5
from hepnn.errors import HepnnError

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ROUND_TRIP = settings(max_examples=15, deadline=None)

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def jets(draw, max_jets: int = 8, max_particles: int = 20) -> ak.Array:
    """Random valid jets: 1..max_particles constituents with finite float32 momenta, E > 0, labels 0/1."""
    n = draw(st.integers(1, max_jets))
    counts = draw(st.lists(st.integers(1, max_particles), min_size=n, max_size=n))
    total = sum(counts)
    px, py, pz = (np.array(draw(st.lists(finite, min_size=total, max_size=total)), np.float32) for _ in range(3))
    mass = np.array(draw(st.lists(st.floats(0, 10, width=32), min_size=total, max_size=total)), np.float32)
    e = np.sqrt(px.astype(np.float64) ** 2 + py**2 + pz**2 + mass**2).astype(np.float32) + np.float32(1e-3)
    pt = np.hypot(px, py)
    order = ak.argsort(ak.unflatten(pt, counts), axis=1, ascending=False, stable=True)  # pT-ordered, as on disk
    cols = {name: ak.unflatten(v, counts)[order] for name, v in
            (("part_E", e), ("part_px", px), ("part_py", py), ("part_pz", pz))}
    cols["label"] = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), np.int64)
    return ak.zip(cols, depth_limit=1)


def _same(a: ak.Array, b: ak.Array, fields) -> None:
    for name in fields:
        assert ak.to_list(a[name]) == ak.to_list(b[name]), name


@ROUND_TRIP
@given(arrays=jets())
def test_parquet_round_trip_is_identical(arrays):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "j.parquet"
        write_parquet(arrays, path, metadata={"seed": 1}, row_group_size=5)
        back = read_jets(path)
        assert count_jets(path) == len(arrays) and read_metadata(path) == {"seed": 1}
    _same(arrays, back, arrays.fields)
    assert str(back.part_E.type.content) == "var * float32" and back.label.type.content.primitive == "int64"


@ROUND_TRIP
@given(arrays=jets())
def test_toptagging_h5_round_trip_is_identical(arrays):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "j.h5"
        write_toptagging_h5(arrays, path, max_particles=25)
        back = read_jets(path)
    _same(arrays, back, ["part_E", "part_px", "part_py", "part_pz", "label"])


@ROUND_TRIP
@given(arrays=jets())
def test_root_round_trip_is_identical(arrays):
    uproot = pytest.importorskip("uproot")
    branches = {"part": ak.zip({"energy": arrays.part_E, "px": arrays.part_px, "py": arrays.part_py,
                                "pz": arrays.part_pz}),
                "label_QCD": (ak.to_numpy(arrays.label) == 0).astype(np.int32),
                "label_Tbqq": (ak.to_numpy(arrays.label) == 1).astype(np.int32)}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "j.root"
        with uproot.recreate(path) as f:
            f.mktree("tree", {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()})
            f["tree"].extend(branches)
        back = read_jets(path)
    _same(arrays, back, ["part_E", "part_px", "part_py", "part_pz", "label"])


# ----------------------------------------------------------------------------------- corruption
def _valid_file(fmt: str, directory: Path) -> bytes:
    from tests.conftest import random_jets

    arrays = random_jets(40, seed=1)
    for c in ("E", "px", "py", "pz"):
        arrays[f"jet_{c}"] = ak.sum(arrays[f"part_{c}"], axis=1)
    path = directory / f"valid.{fmt}"
    if fmt == "parquet":
        write_parquet(arrays, path, metadata={"seed": 1}, row_group_size=16)
    elif fmt == "h5":
        write_toptagging_h5(arrays, path, max_particles=30)
    else:
        uproot = pytest.importorskip("uproot")
        branches = {"part": ak.zip({"energy": arrays.part_E, "px": arrays.part_px, "py": arrays.part_py,
                                    "pz": arrays.part_pz}), "label": ak.to_numpy(arrays.label)}
        with uproot.recreate(path) as f:
            f.mktree("tree", {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()})
            f["tree"].extend(branches)
    assert len(read_jets(path)) == 40
    return path.read_bytes()


@pytest.fixture(scope="module", params=["parquet", "h5", "root"])
def valid_bytes(request, tmp_path_factory) -> tuple[str, bytes]:
    return request.param, _valid_file(request.param, tmp_path_factory.mktemp(f"valid_{request.param}"))


corruption = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                                        min_size=1, max_size=8)),
    st.tuples(st.just("zero"), st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 512))),
)


def corrupt(data: bytes, how) -> bytes:
    kind, arg = how
    out = bytearray(data)
    if kind == "truncate":
        return bytes(out[: int(arg * len(out))])
    if kind == "flip":
        for where, value in arg:
            out[int(where * len(out))] = value
        return bytes(out)
    start, length = int(arg[0] * len(out)), arg[1]
    out[start:start + length] = bytes(len(out[start:start + length]))
    return bytes(out)


@FUZZ
@given(how=corruption)
def test_corrupt_files_end_in_hepnn_error(valid_bytes, tmp_path_factory, how):
    fmt, data = valid_bytes
    directory = tmp_path_factory.mktemp("corrupt", numbered=True)
    path = directory / f"jets.{fmt}"
    path.write_bytes(corrupt(data, how))
    for reader in (read_jets, count_jets, read_metadata):
        try:
            reader(path)
        except HepnnError as err:
            assert str(path) in str(err)  # the message names the file
    os.remove(path)


def test_corruption_is_detected_at_all(valid_bytes, tmp_path):
    """The fuzz above would pass vacuously if nothing ever failed: a truncated file must fail."""
    fmt, data = valid_bytes
    path = tmp_path / f"half.{fmt}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(HepnnError, match="half"):
        read_jets(path)


@pytest.mark.parametrize(
    "fmt, needle",
    [
        ("parquet", b"part_px"),  # in the footer: pyarrow raised UnicodeDecodeError
        ("h5", b"is_signal_new"),  # a column name in blockK_items: bytes.decode raised UnicodeDecodeError
    ],
)
def test_invalid_utf8_in_column_names(tmp_path, fmt, needle):
    """Regressions found by the fuzzing: each raised a bare UnicodeDecodeError before the fix."""
    data = _valid_file(fmt, tmp_path)
    assert needle in data
    path = tmp_path / f"bad.{fmt}"
    path.write_bytes(data.replace(needle, b"\xc3" + needle[1:]))
    with pytest.raises(HepnnError, match="bad"):
        read_jets(path)
