"""What the docs name exists: every `make` target, and every script, config or data file of the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted(ROOT.glob("*/README.md")),
         *sorted((ROOT / "benchmarks").rglob("README.md"))]
MAKE = re.compile(r"(?:^[ \t]*|`)make ([a-z][\w-]*)", re.M)  # a command: in backticks or a code line
# repository paths with a file suffix, under the top-level folders that hold files users run or read
PATH = re.compile(r"(?<![\w/.-])((?:benchmarks|configs|data|docs|src|tests|requirements|\.ci)/[\w./-]+\.(?:py|sh|ya?ml|md|parquet|txt|toml)|\.ci/run)\b")


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([a-z][\w-]*):", text, re.M)}


def references(pattern: re.Pattern) -> list[tuple[str, str]]:
    return [(str(page.relative_to(ROOT)), m.group(1)) for page in PAGES for m in pattern.finditer(page.read_text())]


def test_every_make_target_named_in_the_docs_exists():
    targets = makefile_targets()
    assert {"demo", "test"} <= targets
    missing = [(page, t) for page, t in references(MAKE) if t not in targets]
    assert not missing, f"make targets the docs name but the Makefile lacks: {missing}"


def test_every_make_target_runs_an_existing_script():
    """A target that calls a repository file (``python benchmarks/run.py``) calls one that exists."""
    text = (ROOT / "Makefile").read_text()
    named = set(re.findall(r"(?<![\w/])((?:benchmarks|scripts|src|tests)/[\w./-]+\.(?:py|sh))", text))
    assert not [p for p in named if not (ROOT / p).is_file()]


def test_every_repository_file_named_in_the_docs_exists():
    missing = [(page, p) for page, p in references(PATH) if not (ROOT / p).exists() and "*" not in p]
    assert not missing, f"files the docs name that do not exist: {missing}"


def test_the_checks_can_fail(tmp_path):
    page = "To make the run: `make nonesuch` then `python benchmarks/nonesuch.py`"
    assert MAKE.findall(page) == ["nonesuch"] and "nonesuch" not in makefile_targets()
    assert PATH.findall(page) == ["benchmarks/nonesuch.py"] and not (ROOT / "benchmarks/nonesuch.py").exists()
