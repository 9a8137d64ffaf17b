"""`hepnn pretrained list | info | add`: the pre-trained backbones that ``train.init_from=pretrained:NAME`` loads.

A typer sub-app added to ``hepnn.cli.app``; it parses options and calls ``hepnn.pretrained``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hepnn.cli_common import fail
from hepnn.errors import HepnnError

app = typer.Typer(name="pretrained", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Pre-trained backbones for train.init_from=pretrained:NAME: list, info, add.")



@app.command("list")
def pretrained_list() -> None:
    """The backbones available here: shipped ones and those in $HEPNN_PRETRAINED."""
    from hepnn import pretrained

    rows = pretrained.rows()
    if not rows:
        typer.echo(f"no pre-trained backbones in {' or '.join(str(p) for p in pretrained.search_path())}")
    for r in rows:
        size = f"{r['bytes'] / 1e6:.2f} MB" if r["bytes"] else "?"
        typer.echo(f"{r['name']:<28} model={r['model']:<16} task={r['task']:<18} params={r['n_params'] or '?':>9} {size}")


@app.command("info")
def pretrained_info(name: Annotated[str, typer.Argument(help="A backbone name from `hepnn pretrained list`.")]) -> None:
    """A backbone's provenance: model, task, data and rebuild commands, seed, metrics, sha256."""
    try:
        import json

        from hepnn import pretrained

        typer.echo(json.dumps(pretrained.info(name), indent=2))
    except HepnnError as err:
        fail(err)


@app.command("add")
def pretrained_add(
    run_dir: Annotated[Path, typer.Argument(help="A finished (pre-training) run directory.")],
    name: Annotated[str, typer.Option(help="The backbone's name.")],
    folder: Annotated[Optional[Path], typer.Option("--dir", help="Where to write it (default $HEPNN_PRETRAINED).")] = None,
    data: Annotated[str, typer.Option(help="The command that made the training sample (provenance).")] = "",
    rebuild: Annotated[str, typer.Option(help="The command that makes this run again (provenance).")] = "",
) -> None:
    """Publish a run's weights as a backbone (NAME.safetensors + NAME.json with its provenance)."""
    try:
        from hepnn import pretrained

        typer.echo(str(pretrained.add(run_dir, name, folder=folder, data=data, rebuild=rebuild)))
    except HepnnError as err:
        fail(err)
