"""Interruptions never cost a user their work, and never leave a half-written file that looks valid.

kill -9 of generation (rerun = the uninterrupted files), of prediction (no output, or a complete
one), of tuning (rerun finishes the study); Ctrl-C of training (one line, exit 130, resumable);
a full disk or a failing rename (no output, no temporary file, an older output left intact).
kill -9 during training and resume is tests/train/test_fit.py::test_kill9_then_resume_gives_identical_weights.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import pytest

from hepnn import io_utils
from hepnn.data.io import write_parquet
from tests.conftest import random_jets
from tests.hardening.conftest import PFN, ROOT, TINY_PFN, assert_one_line_error, hepnn

SAMPLE = ROOT / "data" / "toptag_small.parquet"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hepnn.cli", "-q", *args]


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not predicate() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)


class _NoSpaceOS:
    """``os`` as io_utils sees it, except that the final rename fails with ENOSPC (disk full)."""

    def __getattr__(self, name: str):
        return getattr(os, name)

    @staticmethod
    def replace(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src), None, str(dst))


def _visible(folder: Path) -> list[str]:
    """Files a user (or a glob like *.parquet) would take for outputs: not the hidden .NAME.*.tmp ones."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


# ------------------------------------------------------------------------------------- generation
@pytest.mark.slow
def test_generation_killed_after_the_first_shard_resumes_to_identical_files(tmp_path):
    pytest.importorskip("pythia8mc")
    args = ["generate", "--process", "qcd", "--n-jets", "30", "--shard-size", "10", "--mode", "window", "--seed", "4"]
    subprocess.run(_cli(*args, "--out", str(tmp_path / "full")), check=True, env=ENV, cwd=ROOT)

    victim = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*args, "--out", str(victim)), env=ENV, cwd=ROOT)
    _wait_for(lambda: (victim / "shard-00000.parquet").exists(), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "shard-00002.parquet" not in _visible(victim), "generation finished before it could be killed"
    subprocess.run(_cli(*args, "--out", str(victim)), check=True, env=ENV, cwd=ROOT)

    full = _visible(tmp_path / "full")
    assert full == ["shard-00000.parquet", "shard-00001.parquet", "shard-00002.parquet"]
    assert _visible(victim) == full
    for name in full:
        assert (victim / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name


# ------------------------------------------------------------------------------------- prediction
KILL_WHILE_WRITING = """
import os, signal, sys
import pyarrow.parquet as pq
from hepnn import cli
write = pq.write_table
def write_then_die(table, where, **kw):
    write(table, where, **kw)  # the bytes are on disk under the temporary name ...
    os.kill(os.getpid(), signal.SIGKILL)  # ... and the process dies before the rename
pq.write_table = write_then_die
sys.argv = ["hepnn", "-q", *sys.argv[1:]]
cli.run()
"""


@pytest.mark.slow
def test_predict_killed_while_writing_leaves_no_valid_looking_output(tmp_path, trained_run):
    out = tmp_path / "scores.parquet"
    proc = subprocess.run([sys.executable, "-c", KILL_WHILE_WRITING, "predict", str(trained_run), str(SAMPLE),
                           "--out", str(out)], env=ENV, cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL
    assert _visible(tmp_path) == []  # only the hidden temporary file may remain
    assert [p.name.endswith(".tmp") for p in tmp_path.iterdir()] == [True]


@pytest.mark.slow
def test_predict_killed_at_any_moment_leaves_nothing_or_a_complete_file(tmp_path, trained_run):
    """Real kill -9 at several moments: the output is absent or complete (all 5000 jets), never partial."""
    for delay in (1.0, 3.0, 6.0):
        out = tmp_path / f"scores_{delay}.parquet"
        proc = subprocess.Popen(_cli("predict", str(trained_run), str(SAMPLE), "--out", str(out)), env=ENV, cwd=ROOT)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if out.exists():
            assert len(ak.from_parquet(out)) == 5000


def test_predict_on_a_full_disk(capsys, monkeypatch, tmp_path, trained_run):
    """ENOSPC at the rename: one line naming the file, exit 2, no temporary file, the older output kept."""
    out = tmp_path / "scores.parquet"
    write_parquet(random_jets(5), out)
    before = out.read_bytes()
    monkeypatch.setattr(io_utils, "os", _NoSpaceOS())
    code, output = hepnn(capsys, "-q", "predict", str(trained_run), str(SAMPLE), "--out", str(out))
    assert_one_line_error(code, output, "No space left on device", str(out), "disk is not full")
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet"]


def test_disk_full_half_way_through_a_write(monkeypatch, tmp_path):
    """The writer itself fails after writing part of the file: the partial temporary file is removed."""
    import pyarrow.parquet as pq

    def half_then_full(table, where, **kw):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pq, "write_table", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        write_parquet(random_jets(5), tmp_path / "jets.parquet")
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_write_failure_keeps_the_previous_checkpoint(monkeypatch, tmp_path):
    import torch

    from hepnn.train.checkpoint import load_state, save_state

    save_state({"epoch": 1, "w": torch.ones(3)}, tmp_path / "last.pt")
    monkeypatch.setattr(io_utils, "os", _NoSpaceOS())
    with pytest.raises(OSError):
        save_state({"epoch": 2, "w": torch.zeros(3)}, tmp_path / "last.pt")
    monkeypatch.undo()
    assert load_state(tmp_path / "last.pt")["epoch"] == 1 and _visible(tmp_path) == ["last.pt"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_read_only_filesystem(capsys, trained_run):
    """/proc refuses new files even to root (a chmod 0o500 folder would not: tests run as root)."""
    code, out = hepnn(capsys, "-q", "predict", str(trained_run), str(SAMPLE), "--out", "/proc/scores.parquet")
    assert_one_line_error(code, out, "/proc/")
    assert not Path("/proc/scores.parquet").exists()


# ---------------------------------------------------------------------------------------- training
@pytest.mark.slow
def test_ctrl_c_during_training_is_one_line_and_resumable(tmp_path):
    from hepnn.train.checkpoint import load_state

    run = tmp_path / "run"
    args = ["train", str(PFN), *TINY_PFN[:1], "train.epochs=1000",  # far more than the interrupt lets it run
            "model.params.phi=[8, 8]", "model.params.f=[8]", "train.early_stopping=null", "evaluate.plots=false"]
    # a pytest-xdist worker may ignore SIGINT, and a child inherits that: give it the default back
    proc = subprocess.Popen(_cli(*args, "--out", str(run)), env=ENV, cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for(lambda: (run / "checkpoints" / "last.pt").exists(), proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "error: interrupted" in err and "--resume" in err
    assert not (run / "model.safetensors").exists()
    state = load_state(run / "checkpoints" / "last.pt")  # the last checkpoint is whole
    assert 1 <= state["epoch"] < 1000


# ------------------------------------------------------------------------------------------ tuning
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_tuning_killed_mid_study_finishes_on_rerun(tmp_path):
    pytest.importorskip("optuna")

    study = tmp_path / "study"
    args = ["tune", str(ROOT / "configs/top_tagging/mlp_tune.yaml"), "tune.n_trials=3", "tune.sampler=random",
            "tune.pruner=none", "data.max_jets=300", "train.epochs=2", "evaluate.plots=false", "--out", str(study)]
    proc = subprocess.Popen(_cli(*args), env=ENV, cwd=ROOT)
    _wait_for(lambda: len(list(study.glob("trials/*/run.json"))) >= 1, proc, timeout=240)  # one trial done
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and len(list(study.glob("trials/*/run.json"))) < 3
    rerun = subprocess.run(_cli(*args), env=ENV, cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert (study / "best.yaml").is_file()
    import optuna

    trials = optuna.load_study(study_name=None, storage=f"sqlite:///{study / 'study.db'}").trials
    assert sum(t.state.name == "COMPLETE" for t in trials) == 3
    assert not any(t.state.name == "RUNNING" for t in trials)


def test_atomic_path_removes_its_temporary_file_on_interrupt(tmp_path):
    """KeyboardInterrupt (a BaseException) mid-write: the target keeps its old content, no temp file."""
    from hepnn.io_utils import atomic_path

    (tmp_path / "f.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "f.txt") as tmp:
        tmp.write_text("new, half")
        raise KeyboardInterrupt
    assert (tmp_path / "f.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
