"""Pre-trained backbones that ship with hepnn: ``hepnn pretrained list | info NAME``.

Each backbone is two files beside this module: ``NAME.safetensors`` (weights only, never a pickle)
and ``NAME.json``, its provenance::

    {"name", "model": registered model whose state-dict names the weights use, "model_params",
     "task": the pre-training task, "data": the command that made the sample, "config": the run's
     resolved config, "seed", "metrics", "sha256": of the weights file, "bytes", "created",
     "rebuild": the command that makes it again}

Backbones too large to commit live in ``$HEPNN_PRETRAINED`` (default ``~/.cache/hepnn/pretrained``)
with the same two files; ``rebuild`` makes them. ``train.init_from=pretrained:NAME`` loads one after
checking the sha256, so a tampered or truncated file is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hepnn.errors import HepnnError
from hepnn.io_utils import atomic_path, write_json_atomic

SHIPPED = Path(__file__).resolve().parent
PREFIX = "pretrained:"


def search_path() -> list[Path]:
    """Folders searched for backbones: the shipped ones, then ``$HEPNN_PRETRAINED`` (or the user cache)."""
    cache = Path(os.environ.get("HEPNN_PRETRAINED", Path.home() / ".cache" / "hepnn" / "pretrained"))
    return [SHIPPED, cache]


def available() -> dict[str, Path]:
    """name -> its manifest (.json) for every backbone with both files present (shipped ones win)."""
    found: dict[str, Path] = {}
    for folder in reversed(search_path()):
        for manifest in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            if manifest.with_suffix(".safetensors").is_file():
                found[manifest.stem] = manifest
    return found


def info(name: str) -> dict[str, Any]:
    """The provenance of backbone ``name`` (its manifest); an unknown name lists the known ones."""
    known = available()
    if name not in known:
        where = " or ".join(str(p) for p in search_path())
        raise HepnnError(f"no pre-trained backbone {name!r} in {where}; known: {', '.join(sorted(known)) or 'none'} "
                         "(a larger backbone is made by the `rebuild` command in docs/pretraining.md)")
    try:
        return json.loads(known[name].read_text())
    except json.JSONDecodeError as err:
        raise HepnnError(f"{known[name]} is not valid JSON ({err}); restore the file") from None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_path(name: str) -> Path:
    """The weights of backbone ``name``, after checking them against the manifest's sha256."""
    manifest = info(name)
    path = available()[name].with_suffix(".safetensors")
    want, got = manifest.get("sha256"), sha256(path)
    if want != got:
        raise HepnnError(f"{path} does not match its manifest (sha256 {got[:12]}…, expected "
                         f"{str(want)[:12]}…): the file was altered or truncated; restore it or rebuild it "
                         f"with: {manifest.get('rebuild', 'the rebuild command in its manifest')}")
    return path


def rows() -> list[dict[str, Any]]:
    """One row per available backbone: name, model, task, parameters, size, the headline metric."""
    out = []
    for name in available():
        m = info(name)
        out.append({"name": name, "model": m.get("model"), "task": m.get("task"), "n_params": m.get("n_params"),
                    "bytes": m.get("bytes"), "metrics": m.get("metrics", {})})
    return out


def add(run_dir: str | Path, name: str, *, folder: str | Path | None = None, data: str = "",
        rebuild: str = "") -> Path:
    """Publish a finished run's weights as backbone ``name`` in ``folder`` (default: the user cache):
    NAME.safetensors and NAME.json with the run's config, seed and metrics. ``data`` and ``rebuild``
    are the commands that made the sample and the run (recorded as provenance)."""
    import yaml

    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
        raise HepnnError(f"backbone name {name!r}: use lower-case letters, digits, '_', '.', '-'")
    run_dir = Path(run_dir)
    weights, config = run_dir / "model.safetensors", run_dir / "config.yaml"
    if not weights.is_file() or not config.is_file():
        raise HepnnError(f"{run_dir} is not a finished run (needs model.safetensors and config.yaml)")
    folder = Path(folder) if folder is not None else search_path()[-1]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.safetensors"
    with atomic_path(target) as tmp:
        shutil.copyfile(weights, tmp)
    cfg = yaml.safe_load(config.read_text())
    run = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    manifest = {
        "name": name, "model": cfg["model"]["name"], "model_params": cfg["model"].get("params", {}),
        "task": cfg["train"].get("task"), "data": data, "config": cfg, "seed": cfg["train"].get("seed"),
        "n_params": run.get("n_params"), "train_time_s": run.get("train_time_s"),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        "sha256": sha256(target), "bytes": target.stat().st_size,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "rebuild": rebuild,
    }
    write_json_atomic(folder / f"{name}.json", manifest)
    return target
