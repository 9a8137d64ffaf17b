"""The generated reference (docs/reference/*.md) matches the code and covers every command and key."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from hepnn.reference import HEADER, write_reference

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "reference"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("reference")
    paths = write_reference(out)
    assert sorted(p.name for p in paths) == ["cli.md", "config.md"]
    return {p.name: p.read_text() for p in paths}


@pytest.mark.parametrize("name", ["cli.md", "config.md"])
def test_committed_reference_is_up_to_date(generated: dict[str, str], name: str) -> None:
    committed = COMMITTED / name
    hint = "regenerate it with `python -m hepnn.reference` and commit the result"
    assert committed.is_file(), f"{committed.relative_to(ROOT)} is missing; {hint}"
    old = committed.read_text()
    if old != generated[name]:
        diff = difflib.unified_diff(old.splitlines(), generated[name].splitlines(), "committed", "code", lineterm="")
        pytest.fail(f"{committed.relative_to(ROOT)} is out of date; {hint}\n" + "\n".join(list(diff)[:40]),
                    pytrace=False)


def test_generation_is_deterministic(generated: dict[str, str], tmp_path: Path) -> None:
    again = {p.name: p.read_text() for p in write_reference(tmp_path)}
    assert again == generated
    for text in generated.values():
        assert text.startswith(HEADER)
        assert not re.search(r"0x[0-9a-f]{6,}|\d{4}-\d\d-\d\dT\d\d", text)  # no addresses, no timestamps


def test_cli_reference_lists_every_command(generated: dict[str, str]) -> None:
    import typer

    from hepnn.cli import app

    root = typer.main.get_command(app)
    names = list(root.commands)
    assert {"train", "evaluate", "predict", "tune"} <= set(names)  # the walk found the real app
    text = generated["cli.md"]
    for name in names:
        assert f"## `hepnn {name}`" in text, name
    train = text.split("## `hepnn train`")[1].split("\n## ")[0]
    assert "| `--resume` | Path |" in train and "`OVERRIDES` (repeatable)" in train
    assert "| `--n-jets` | int | `1000` | Number of jets passing the cuts. |" in text  # from cli.generate


def test_config_reference_covers_sections_and_defaults(generated: dict[str, str]) -> None:
    from hepnn.config import RunConfig

    text = generated["config.md"]
    for section in RunConfig.model_fields:
        assert f"| `{section}` |" in text, section
    defaults = RunConfig()  # independent of the renderer: the schema's own defaults
    assert f"| `train.optimizer.lr` | float | `{defaults.train.optimizer.lr}` | > 0 |" in text
    assert f"| `data.batch_size` | int | `{defaults.data.batch_size}` | > 0 |" in text
    assert "| `train.optimizer.name` | str | `adam` | one of `sgd`, `momentum`," in text
    assert "| `tune.space.<key>.type` | str | required |" in text
    assert "| `distill.alpha` | float | `0.7` | >= 0; <= 1 | weight of the soft (teacher) term |" in text
    assert "## `train.early_stopping`" in text and "## `preprocess[]`" in text


def test_config_reference_lists_registered_models(generated: dict[str, str]) -> None:
    from hepnn.registry import get_model_spec, list_models

    text = generated["config.md"]
    for name in list_models():
        assert f"| `{name}` | {get_model_spec(name).family} |" in text, name


def test_reference_script_refuses_options_instead_of_writing_a_folder_named_after_them(tmp_path, capsys):
    from hepnn.reference import main

    with pytest.raises(SystemExit) as err:
        main(["--help"])
    assert err.value.code == 0 and "OUT_DIR" in capsys.readouterr().out
    with pytest.raises(SystemExit) as err:
        main([str(tmp_path / "a"), "b"])
    assert err.value.code == 2 and not (tmp_path / "a").exists()
