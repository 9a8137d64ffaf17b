"""Every fenced ```bash and ```python block of README.md and docs/**/*.md runs, in order, and passes.

One test per markdown file (id = its path relative to the repository), so ``pytest -n 2`` spreads the
files over workers. The blocks of one file share a fresh temporary directory holding symlinks
``configs``, ``data`` (and ``.venv``) to the repository's, so a later block can read what an earlier
one wrote. A block that must not run has ``<!-- doc-test: skip (reason) -->`` directly above its fence;
fences in any other language (text, yaml, console, none) are documentation only.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A block may use 60 CPU-seconds (all its processes together). Wall time is only a hang guard: on the
# shared 2-core CI machine a block of 15 CPU-s can take a minute of wall time.
BLOCK_CPU_S = 60.0
BLOCK_WALL_S = float(os.environ.get("HEPNN_DOC_WALL_TIMEOUT", 600))
LINKED = ("configs", "data", ".venv")  # repository paths a doc may use as if run from the repo root
LANGS = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
# Doc files whose blocks use > 30 CPU-s in all get the `slow` mark. None does today (measured with
# OMP_NUM_THREADS=1: docs/anomaly.md 28 s, docs/generative.md 26 s, README.md 16 s, the rest less).
SLOW_DOCS: set[str] = set()

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)")
_SKIP = re.compile(r"^\s*<!--\s*doc-test:\s*skip\b(?P<reason>.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts, its language, its text and why it is skipped (if it is)."""

    path: str  # as shown in messages (relative to the repository root when inside it)
    line: int  # 1-based line of the opening fence
    lang: str  # "bash", "python" or "" (not run)
    text: str
    skip: str | None = None  # the reason given by the skip marker, None = run it


def parse_blocks(markdown: str, path: str = "<markdown>") -> list[Block]:
    """The fenced code blocks of a markdown text, with indentation (list items) removed.

    The skip marker counts when it is the last non-blank line above the fence.
    """
    lines = markdown.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        start, body = i, []
        i += 1
        while i < len(lines) and not _closes(lines[i], fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i].lstrip())
            i += 1
        i += 1  # past the closing fence (an unclosed block runs to the end of the file, as in CommonMark)
        blocks.append(Block(path, start + 1, LANGS.get(m["info"].lower(), ""), "\n".join(body) + "\n",
                            _skip_reason(lines, start)))
    return blocks


def _closes(line: str, fence: str) -> bool:
    s = line.strip()
    return s.startswith(fence) and set(s) == {fence[0]}


def _skip_reason(lines: list[str], fence_index: int) -> str | None:
    j = fence_index - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    m = _SKIP.match(lines[j]) if j >= 0 else None
    return (m["reason"].strip(" ()") or "no reason given") if m else None


def runnable(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.lang and b.skip is None]


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and docs/**/*.md, sorted (docs/reference is generated and holds no runnable block)."""
    files = [root / "README.md"] if (root / "README.md").is_file() else []
    return files + sorted((root / "docs").glob("**/*.md"))


def run_doc(md: Path, workdir: Path, root: Path = ROOT, cpu_limit: float = BLOCK_CPU_S,
            timeout: float = BLOCK_WALL_S) -> dict[int, float]:
    """Run the runnable blocks of ``md`` in order inside ``workdir``; fail with file:line on the first error.

    Returns the CPU seconds each block used (by fence line). A block fails when it exits non-zero,
    raises, runs past ``timeout`` wall seconds (a hang) or uses more than ``cpu_limit`` CPU seconds.
    """
    rel = md.relative_to(root).as_posix() if md.is_relative_to(root) else str(md)
    for name in LINKED:
        if (root / name).exists() and not (workdir / name).exists():
            (workdir / name).symlink_to(root / name)
    namespace: dict[str, object] = {"__name__": "__doc__"}
    used = {}
    for block in runnable(parse_blocks(md.read_text(), rel)):
        start = _cpu_seconds()
        error = (_run_bash(block, workdir, timeout) if block.lang == "bash"
                 else _run_python(block, workdir, namespace, timeout))
        used[block.line] = _cpu_seconds() - start
        if error is None and used[block.line] > cpu_limit:
            error = (f"used {used[block.line]:.1f} CPU-s, over the {cpu_limit:g} s budget of a doc block "
                     "(shrink its sizes, e.g. train.epochs=2 data.max_jets=1000)", "")
        if error is not None:
            pytest.fail(_failure(block, *error), pytrace=False)
    return used


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished children (a block's subprocesses and their workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _failure(block: Block, why: str, output: str) -> str:
    tail = "\n".join(output.strip().splitlines()[-30:])
    return f"{block.path}:{block.line}: {block.lang} block {why}\n--- block ---\n{block.text}--- output (tail) ---\n{tail}"


def _run_bash(block: Block, workdir: Path, timeout: float) -> tuple[str, str] | None:
    """None on success, else (why, output)."""
    # a new session, so that a timeout kills the whole process group (hepnn workers included)
    proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", block.text], cwd=workdir, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return f"timed out after {timeout:g} s (wall clock)", out
    return None if proc.returncode == 0 else (f"exited with status {proc.returncode}", out)


class _BlockTimeout(Exception):
    pass


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Interrupt a Python block after ``seconds`` (SIGALRM: main thread on POSIX; otherwise no limit)."""
    usable = (hasattr(signal, "SIGALRM") and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise _BlockTimeout

    signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def _run_python(block: Block, workdir: Path, namespace: dict[str, object], timeout: float) -> tuple[str, str] | None:
    """None on success, else (why, traceback)."""
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        code = compile(block.text, f"{block.path}:{block.line}", "exec")
        with _alarm(timeout):
            exec(code, namespace)
    except _BlockTimeout:
        return f"timed out after {timeout:g} s (wall clock)", traceback.format_exc()
    except Exception:
        return "raised", traceback.format_exc()
    finally:
        os.chdir(cwd)
    return None


def _doc_params() -> list[object]:
    params = []
    for md in doc_files():
        rel = md.relative_to(ROOT).as_posix()
        if runnable(parse_blocks(md.read_text(), rel)):
            marks = [pytest.mark.slow] if rel in SLOW_DOCS else []
            params.append(pytest.param(md, id=rel, marks=marks))
    return params


@pytest.mark.parametrize("md", _doc_params())
def test_doc_blocks_run(md: Path, tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    used = run_doc(md, tmp_path)
    record_property("cpu_s", round(sum(used.values()), 1))  # in --junitxml, to spot docs that grow slow


# --------------------------------------------------------------------------------------------------
# the parser and the runner themselves, on synthetic markdown

SAMPLE = """# Title

```bash
echo one > one.txt
```

Some prose.

<!-- doc-test: skip (needs a GPU) -->
```bash
exit 3
```

```text
not run
```

- a list item:

  ```python
  x = open("one.txt").read().strip()
  ```

```python
assert x == "one"
```
"""


def test_parse_blocks_languages_lines_and_skip() -> None:
    blocks = parse_blocks(SAMPLE, "s.md")
    assert [(b.line, b.lang, b.skip) for b in blocks] == [
        (3, "bash", None), (10, "bash", "needs a GPU"), (14, "", None), (20, "python", None), (24, "python", None)]
    assert blocks[3].text == 'x = open("one.txt").read().strip()\n'  # list indentation removed
    assert [b.line for b in runnable(blocks)] == [3, 20, 24]


def test_skip_marker_must_be_directly_above() -> None:
    md = "<!-- doc-test: skip (x) -->\n\nprose\n```bash\nexit 1\n```\n"
    assert parse_blocks(md)[0].skip is None
    assert parse_blocks("<!-- doc-test: skip -->\n```bash\nexit 1\n```\n")[0].skip == "no reason given"


def test_longer_fence_holds_shorter_one() -> None:
    md = "````markdown\n```bash\nexit 1\n```\n````\n"
    assert [(b.line, b.lang) for b in parse_blocks(md)] == [(1, "")]


def test_run_doc_shares_dir_and_namespace(tmp_path: Path) -> None:
    md = tmp_path / "doc.md"
    md.write_text(SAMPLE)
    work = tmp_path / "work"
    work.mkdir()
    run_doc(md, work, root=tmp_path)  # the skipped `exit 3` block would fail
    assert (work / "one.txt").read_text() == "one\n"


def test_failing_block_names_file_and_line(tmp_path: Path) -> None:
    md = tmp_path / "bad.md"
    md.write_text("# Bad\n\n```bash\necho fine\n```\n\n```bash\necho to-stderr >&2\nfalse\necho never\n```\n")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(pytest.fail.Exception) as info:
        run_doc(md, work, root=tmp_path)
    msg = str(info.value)
    assert msg.startswith("bad.md:7: bash block exited with status 1")
    assert "false\necho never" in msg and "to-stderr" in msg


def test_pipefail_and_python_failure(tmp_path: Path) -> None:
    md = tmp_path / "p.md"
    md.write_text("```bash\nfalse | cat\n```\n")
    with pytest.raises(pytest.fail.Exception, match=r"p.md:1: bash block exited with status 1"):
        run_doc(md, tmp_path, root=tmp_path)
    md.write_text("text\n\n```python\nimport os\nraise ValueError('boom')\n```\n")
    cwd = os.getcwd()
    with pytest.raises(pytest.fail.Exception, match=r"(?s)p.md:3: python block raised.*ValueError: boom"):
        run_doc(md, tmp_path, root=tmp_path)
    assert os.getcwd() == cwd  # the block's chdir is undone


def test_block_timeout(tmp_path: Path) -> None:
    md = tmp_path / "t.md"
    md.write_text("```bash\nsleep 5\n```\n")
    with pytest.raises(pytest.fail.Exception, match=r"t.md:1: bash block timed out after 0.5 s"):
        run_doc(md, tmp_path, root=tmp_path, timeout=0.5)
    md.write_text("```python\nimport time\ntime.sleep(5)\n```\n")
    with pytest.raises(pytest.fail.Exception, match=r"t.md:1: python block timed out after 0.5 s"):
        run_doc(md, tmp_path, root=tmp_path, timeout=0.5)


def test_cpu_budget(tmp_path: Path) -> None:
    md = tmp_path / "c.md"
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3:\n    pass\n"
    md.write_text(f"```bash\necho ok\n```\n\n```python\n{spin}```\n")
    used = run_doc(md, tmp_path, root=tmp_path, cpu_limit=5.0)
    assert list(used) == [1, 5] and used[5] >= 0.3
    with pytest.raises(pytest.fail.Exception, match=r"c.md:5: python block used 0.\d CPU-s, over the 0.1 s"):
        run_doc(md, tmp_path, root=tmp_path, cpu_limit=0.1)
