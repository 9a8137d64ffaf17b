"""`hepnn datasets list | get | verify | convert`: the public benchmarks' files, fetched, checked, converted.

A typer sub-app added to ``hepnn.cli.app``; like the other commands it only parses options and calls
library functions (``hepnn.datasets``), which are imported inside the commands to keep ``--help`` fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hepnn.cli_common import fail
from hepnn.errors import HepnnError

app = typer.Typer(name="datasets", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="The public datasets (top tagging, JetClass, quark-gluon, JetNet): list, get, verify, convert.")

Name = Annotated[str, typer.Argument(help="Dataset name (see `hepnn datasets list`).")]
Dir = Annotated[Optional[Path], typer.Option("--dir", help="Dataset folder (default datasets/NAME).")]
Split = Annotated[Optional[str], typer.Option("--split", help="Comma-separated splits, e.g. train,val (default all).")]


def _folder(name: str, folder: Optional[Path]) -> Path:
    return folder if folder is not None else Path("datasets") / name


@app.command("list")
def list_() -> None:
    """Every dataset: files, size, jets per split, layout, licence, citation and how hepnn reads it."""
    from hepnn.datasets.catalogue import human_size
    from hepnn.datasets.sources import catalogue

    for ds in catalogue().values():
        rows = [("files", f"{len(ds.files)} ({', '.join(ds.splits)}), {human_size(ds.size)}"),
                ("jets", ds.jets), ("layout", ds.layout), ("hepnn reads", ds.reads), ("licence", ds.licence),
                ("cite", ds.citation), *(("note", n) for n in ds.notes)]
        typer.echo(f"{ds.name:<12} {ds.title}")
        for key, value in rows:
            typer.echo(f"  {key:<12} {value}")


@app.command()
def get(
    name: Name,
    folder: Dir = None,
    split: Split = None,
    subset: Annotated[Optional[int], typer.Option(help="Only the files needed for N jets per split (sharded datasets).")] = None,
    mirror: Annotated[Optional[str], typer.Option(help="Base URL of a mirror serving the same file names (checksums still checked).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds without data before an attempt fails.")] = 60.0,
    retries: Annotated[int, typer.Option(help="Further attempts per file after a timeout or dropped connection (each resumes).")] = 2,
) -> None:
    """Download (resuming partial files), verify checksums and unpack a dataset into --dir."""
    try:
        from hepnn.datasets.catalogue import parse_splits
        from hepnn.datasets.sources import get_dataset
        from hepnn.datasets.get import get_files

        if timeout <= 0 or retries < 0:
            raise HepnnError(f"--timeout must be > 0 and --retries >= 0, got {timeout:g} and {retries}")
        ds, where = get_dataset(name), _folder(name, folder)
        statuses = get_files(ds, where, splits=parse_splits(split), subset=subset, mirror=mirror,
                             timeout=timeout, retries=retries)
        for s in statuses:
            typer.echo(f"{s.name:<40} {s.split:<6} {s.state:<10} {s.detail}")
        typer.echo(f"next: hepnn datasets convert {name} --dir {where}" if ds.convert else f"hepnn reads it {ds.reads}")
    except HepnnError as err:
        fail(err)


@app.command()
def verify(name: Name, folder: Dir = None, split: Split = None) -> None:
    """Check every file of a dataset in --dir against its published checksum (changes nothing)."""
    try:
        from hepnn.datasets.catalogue import parse_splits
        from hepnn.datasets.sources import get_dataset
        from hepnn.datasets.get import verify_files

        where = _folder(name, folder)
        statuses = verify_files(get_dataset(name), where, splits=parse_splits(split))
        for s in statuses:
            typer.echo(f"{s.name:<40} {s.split:<6} {s.state:<10} {s.detail}")
        bad = [s for s in statuses if not s.ok]
        if bad:
            counts = {k: sum(s.state == k for s in bad) for k in ("missing", "bad")}
            kinds = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
            raise HepnnError(f"{kinds} of {len(statuses)} files in {where} (first: {bad[0].name}: {bad[0].detail}); "
                             f"`hepnn datasets get {name} --dir {where}` fetches or replaces them")
        typer.echo(f"all {len(statuses)} files verified")
    except HepnnError as err:
        fail(err)


@app.command()
def convert(
    name: Name,
    folder: Dir = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default DIR/parquet).")] = None,
    split: Split = None,
    subset: Annotated[Optional[int], typer.Option(help="At most N jets per split (the first of the published order).")] = None,
    keep_source: Annotated[bool, typer.Option("--keep-source/--no-keep-source", help="Also keep the source's particle coordinates bit for bit (src_* columns).")] = False,
    jet_types: Annotated[Optional[str], typer.Option("--jet-types", help="jetnet only: comma-separated types out of g,q,t,w,z (default all).")] = None,
    shard_size: Annotated[int, typer.Option("--shard-size", help="At most N jets per output file.")] = 500_000,
) -> None:
    """Convert a dataset whose layout hepnn does not read (quarkgluon, jetnet) to parquet shards, streamed."""
    try:
        from hepnn.datasets.catalogue import parse_splits
        from hepnn.datasets.convert import convert_dataset

        types = [t.strip() for t in jet_types.split(",") if t.strip()] if jet_types is not None else None
        where = _folder(name, folder)
        written = convert_dataset(name, where, out, splits=parse_splits(split), subset=subset,
                                  keep_source=keep_source, jet_types=types, shard_size=shard_size)
        for s, paths in written.items():
            typer.echo(f"{s}: " + " ".join(str(p) for p in paths))
        target = out if out is not None else where / "parquet"
        typer.echo("use: " + " ".join(f"data.{s}={target}/{s}_*.parquet" for s in written))
    except HepnnError as err:
        fail(err)
