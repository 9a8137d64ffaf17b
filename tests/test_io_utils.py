"""hepnn.io_utils: atomic writes (the target appears whole with normal permissions, or not at all) and
the JSON writer's layout and numpy/Path conversions. Interrupted and disk-full writes of real outputs:
tests/hardening/test_interrupts.py."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from hepnn.io_utils import atomic_path, json_default, write_json_atomic, write_text_atomic


def test_atomic_path_writes_beside_the_target_and_renames(tmp_path):
    target = tmp_path / "deep" / "er" / "out.txt"  # parents are created
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".out.txt.") and tmp.suffix == ".tmp"
        tmp.write_text("done")
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_text() == "done" and [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_atomic_path_gives_files_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640  # 0o666 & ~umask, not mkstemp's 0o600


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    (tmp_path / "out.txt").write_text("old")
    with pytest.raises(ValueError, match="boom"), atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("half")
        raise ValueError("boom")
    assert (tmp_path / "out.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_json_atomic_layout_and_conversions(tmp_path):
    obj = {"b": np.float32(0.5), "a": np.arange(3), "path": Path("/runs/x"), "n": np.int64(7)}
    write_json_atomic(tmp_path / "m.json", obj)
    text = (tmp_path / "m.json").read_text()
    assert text.endswith("}\n") and text.index('"a"') < text.index('"b"') < text.index('"n"')  # sorted keys
    assert text.startswith('{\n  "a": [\n    0,')  # indented by 2
    assert json.loads(text) == {"a": [0, 1, 2], "b": 0.5, "n": 7, "path": "/runs/x"}


def test_json_default_refuses_other_objects():
    assert json_default(np.bool_(True)) is True
    with pytest.raises(TypeError, match="not JSON serializable: set"):
        json_default({1, 2})
