"""Presets: larger samples made with one command, byte-reproducible, resumable, splittable over machines.

``run_preset("toptag-100k", out)`` generates every shard of every component of the preset (see
``presets.yaml``) under ``out/shards/``, merges each file (shards in order, then a seeded shuffle)
into ``out/<file>.parquet`` and writes ``out/manifest.json`` with the sha256 of every merged file
and shard. A rerun with a matching manifest does nothing; an interrupted run resumes (finished
shards are kept). ``shards=range(a, b)`` makes only the global shards a..b-1 (one machine's or one
batch-array task's part) and does not merge; a later run without ``shards`` on the union of the
parts (or on one machine) merges. Shards depend only on the preset and their index, so a split run
gives the same bytes as a one-go run.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hepnn.errors import ConfigError
from hepnn.log import get_logger

log = get_logger(__name__)

PRESETS_FILE = Path(__file__).with_name("presets.yaml")
MANIFEST = "manifest.json"


class Preset(BaseModel):
    """One preset (an entry of presets.yaml, or a YAML file of the same form)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    seed: int = Field(ge=0)  # component k uses seed + k
    shard_size: int = Field(gt=0)
    shuffle_seed: int | None = 0
    settings: dict = {}  # keyword arguments of hepnn.generate.generate (physics only)
    labels: dict[str, int] = {}  # process -> label written in the merged files (default: the process's)
    files: dict[str, dict[str, int]]  # file stem -> {process: jets}


@dataclass(frozen=True)
class Component:
    """The jets of one process in one output file."""

    file: str
    process: str
    n_jets: int
    seed: int
    n_shards: int

    @property
    def folder(self) -> str:
        return f"shards/{self.file}-{self.process}"


def preset_names() -> list[str]:
    return list(yaml.safe_load(PRESETS_FILE.read_text()))


def load_preset(name: str) -> tuple[str, Preset]:
    """A preset by name (from presets.yaml) or by the path of a YAML file holding one."""
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"generate: preset file {name} does not exist")
        raw, label = yaml.safe_load(path.read_text()), path.stem
    else:
        presets = yaml.safe_load(PRESETS_FILE.read_text())
        if name not in presets:
            raise ConfigError(f"generate: unknown preset {name!r}; choose one of {', '.join(presets)} or a .yaml file")
        raw, label = presets[name], name
    try:
        preset = Preset(**(raw or {}))
    except (ValidationError, TypeError) as err:
        first = err.errors()[0] if isinstance(err, ValidationError) else {"loc": (), "msg": str(err)}
        where = ".".join(str(x) for x in first["loc"]) or "preset"
        raise ConfigError(f"generate: preset {label}: {where}: {first['msg']}") from None
    for key in ("process", "n_jets", "seed", "shard_size", "shards", "workers", "progress", "fmt"):
        if key in preset.settings:
            raise ConfigError(f"generate: preset {label}: settings.{key} is set by the preset itself; remove it")
    return label, preset


def components(preset: Preset) -> list[Component]:
    """Every (file, process) of the preset, in order, with its seed and shard count."""
    out = []
    for file, processes in preset.files.items():
        for process, n_jets in processes.items():
            k = len(out)
            out.append(Component(file, process, n_jets, preset.seed + k, -(-n_jets // preset.shard_size)))
    return out


def global_shards(comps: list[Component]) -> list[tuple[Component, int]]:
    """The preset's shards in one numbered list: component by component, shard by shard."""
    return [(c, i) for c in comps for i in range(c.n_shards)]


def parse_shard_range(text: str | None) -> range | None:
    """``--shards A:B`` (shards A..B-1) or ``--shards A`` (one shard) as a range; None stays None."""
    if text is None:
        return None
    try:
        lo, _, hi = text.partition(":")
        span = range(int(lo), int(hi) if hi else int(lo) + 1)
    except ValueError:
        raise ConfigError(f"--shards {text}: expected A:B (shards A to B-1) or A, with integers") from None
    if len(span) == 0 or span.start < 0:
        raise ConfigError(f"--shards {text}: empty or negative range")
    return span


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_preset(
    name: str, out: str | os.PathLike[str], *, workers: int = 1, shards: range | None = None, progress: bool = True
) -> dict | None:
    """Make (or resume, or verify) a preset's sample in ``out``; returns the manifest, or None when
    only the ``shards`` part was made. See the module docstring."""
    from hepnn.generate.run import generate

    label, preset = load_preset(name)
    out = Path(out)
    comps = components(preset)
    everything = global_shards(comps)
    if shards is not None:
        if shards.start < 0 or shards.stop > len(everything) or len(shards) == 0:
            raise ConfigError(f"generate: shards {shards.start}:{shards.stop} outside this preset's 0:{len(everything)}")
        part = [everything[g] for g in shards]
    else:
        cached = _cached_manifest(out, preset)
        if cached is not None:
            log.info("%s is complete and matches %s; nothing to do", out, out / MANIFEST)
            return cached
        part = everything
    for comp in comps:
        mine = [i for c, i in part if c == comp]
        if mine:
            generate(comp.process, comp.n_jets, out / comp.folder, seed=comp.seed, workers=workers,
                     shard_size=preset.shard_size, progress=progress, shards=mine, **preset.settings)  # fmt: skip
    if shards is not None:
        log.info("made shards %d:%d of %d; run without --shards to merge", shards.start, shards.stop, len(everything))
        return None
    return _merge_all(label, preset, comps, out)


def _shard_paths(comp: Component, out: Path) -> list[Path]:
    return [out / comp.folder / f"shard-{i:05d}.parquet" for i in range(comp.n_shards)]


def _merge_all(label: str, preset: Preset, comps: list[Component], out: Path) -> dict:
    from hepnn.data.io import count_jets
    from hepnn.generate.run import merge_files
    from hepnn.generate.shards import package_versions
    from hepnn.io_utils import write_json_atomic

    files, shard_sums = {}, {}
    for file in preset.files:
        mine = [c for c in comps if c.file == file]
        paths = [p for c in mine for p in _shard_paths(c, out)]
        labels = [preset.labels.get(c.process) for c in mine for _ in range(c.n_shards)]
        target = out / f"{file}.parquet"
        merge_files(paths, target, shuffle_seed=preset.shuffle_seed, labels=labels)
        files[target.name] = {"sha256": sha256(target), "jets": count_jets(target), "bytes": target.stat().st_size}
        shard_sums.update({str(p.relative_to(out)): sha256(p) for p in paths})
    manifest = {
        "preset": label,
        "definition": preset.model_dump(),
        "command": f"hepnn generate --preset {label} --out DIR",
        "files": files,
        "shards": shard_sums,
        "versions": package_versions(),
    }
    write_json_atomic(out / MANIFEST, manifest)
    log.info("wrote %s (%s)", out / MANIFEST, ", ".join(f"{k}: {v['jets']} jets" for k, v in files.items()))
    return manifest


def _cached_manifest(out: Path, preset: Preset) -> dict | None:
    """The manifest if ``out`` holds this preset's finished sample with matching checksums."""
    import json

    path = out / MANIFEST
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("definition") != preset.model_dump():
        raise ConfigError(f"{path} belongs to another preset definition; write to another --out or delete {out}")
    for name, entry in manifest["files"].items():
        if not (out / name).is_file() or sha256(out / name) != entry["sha256"]:
            log.warning("%s is missing or differs from %s; merging again", out / name, path)
            return None
    return manifest
