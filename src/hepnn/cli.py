"""`hepnn <command> ...`: parse arguments, build a config, call library functions. Nothing else.

Heavy modules (torch, pythia, matplotlib) are imported inside the commands so `hepnn --help` is fast.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from hepnn import __version__
from hepnn.cli_common import STATE, fail
from hepnn.cli_datasets import app as datasets_app
from hepnn.cli_pretrained import app as pretrained_app
from hepnn.errors import HepnnError

app = typer.Typer(
    name="hepnn",
    help="From collision events to trained, evaluated, tuned and compressed neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

def _version(value: bool) -> None:
    if value:
        typer.echo(f"hepnn {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    from hepnn.log import setup_logging

    STATE["debug"] = debug
    setup_logging(logging.WARNING if quiet else logging.DEBUG if debug else logging.INFO)


def _describe(err: Exception) -> str:
    """One line for an error that escaped a command: HepnnError carries its own message; OSError
    (unwritable path, disk full), MemoryError and the rest (a ValueError from torch or numpy) get one."""
    if isinstance(err, HepnnError):
        return str(err)
    if isinstance(err, OSError):
        name = err.filename2 or err.filename  # os.replace(tmp, dst): dst is the one the user named
        where = f": {name}" if name else ""
        return (f"{err.strerror or err}{where}; check that the path exists, is a folder where one is "
                "expected, is writable and that the disk is not full")
    if isinstance(err, MemoryError):
        return "out of memory; lower data.batch_size or data.max_particles, or stream with data.loader=stream"
    text = " ".join(str(err).split())
    return f"unexpected {type(err).__name__}: {text} (rerun with `hepnn --debug ...` for the traceback)"


def _print(renderable) -> None:
    """A rich renderable (a table) on stdout, at least 100 columns wide even when piped."""
    from rich.console import Console

    out = Console()
    out.width = max(out.width, 100)
    out.print(renderable)


def run() -> None:
    """Console entry point: any error is one line on stderr and exit code 2; ``--debug`` re-raises it."""
    try:
        app()
    except SystemExit as exc:
        if exc.code == 130:  # typer turns Ctrl-C (KeyboardInterrupt) into a silent exit 130
            typer.secho("error: interrupted; outputs are written atomically, so none is left half-written "
                        "(continue a training run with `hepnn train --resume RUN_DIR`)", fg=typer.colors.RED, err=True)
        raise
    except Exception as err:
        if STATE["debug"]:
            raise
        typer.secho(f"error: {_describe(err)}", fg=typer.colors.RED, err=True)
        sys.exit(2)


Overrides = Annotated[Optional[list[str]], typer.Argument(help="Dotted overrides, e.g. train.optimizer.lr=0.0003.")]


@app.command()
def generate(
    process: Annotated[str, typer.Option(help="top | qcd | w")] = "top",
    n_jets: Annotated[int, typer.Option("--n-jets", help="Number of jets passing the cuts.")] = 1000,
    seed: Annotated[int, typer.Option(help="Base random seed (shard i uses a seed derived from it).")] = 1,
    out: Annotated[Path, typer.Option(help="Output file (one shard) or directory (several, or a preset).")] = Path("jets.parquet"),
    workers: Annotated[int, typer.Option(help="Worker processes (one shard each at a time).")] = 1,
    detector: Annotated[str, typer.Option(help="simple (Delphes ATLAS energy flow) | none (particle level).")] = "simple",
    fmt: Annotated[str, typer.Option("--format", help="parquet | toptagging-h5")] = "parquet",
    pt_min: Annotated[float, typer.Option("--pt-min", help="Jet pT lower cut in GeV.")] = 550.0,
    pt_max: Annotated[float, typer.Option("--pt-max", help="Jet pT upper cut in GeV.")] = 650.0,
    eta_max: Annotated[float, typer.Option("--eta-max", help="Jet |eta| cut.")] = 2.0,
    radius: Annotated[float, typer.Option("--radius", help="Anti-kT radius R.")] = 0.8,
    mpi: Annotated[bool, typer.Option("--mpi/--no-mpi", help="Multi-parton interactions.")] = False,
    pileup: Annotated[float, typer.Option("--pileup", metavar="MU", help="Mean number of minimum-bias events overlaid per event (Poisson).")] = 0.0,
    jets: Annotated[str, typer.Option(help="leading (each event's hardest jet) | all jets passing the cuts.")] = "leading",
    max_constituents: Annotated[int, typer.Option("--max-constituents", help="Leading constituents kept per jet; 0 keeps all.")] = 200,
    mode: Annotated[str, typer.Option(help="unbiased (low pT-hat cut + prefilter) | window (fast, biased)")] = "unbiased",
    shard_size: Annotated[Optional[int], typer.Option("--shard-size", help="Jets per shard file.")] = None,
    preset: Annotated[Optional[str], typer.Option(help="A named sample (toptag-small, toptag-100k, toptag-3class, toptag-qcd-test) or a preset .yaml; --out is its folder.")] = None,
    shards: Annotated[Optional[str], typer.Option(metavar="A:B", help="Make only shards A..B-1 (one machine's part); merge later without it.")] = None,
) -> None:
    """Generate jets with Pythia 8 + FastJet (needs the `gen` extra), or a whole preset sample."""
    try:
        from hepnn.generate import generate as run_generate
        from hepnn.generate import run_preset
        from hepnn.generate.presets import parse_shard_range

        physics = dict(process=process, n_jets=n_jets, seed=seed, detector=detector, fmt=fmt, pt_min=pt_min,
                       pt_max=pt_max, eta_max=eta_max, R=radius, mpi=mpi, pileup=pileup, jets=jets,
                       max_constituents=max_constituents or None, mode=mode)  # fmt: skip
        if shard_size is not None:
            physics["shard_size"] = shard_size
        span = parse_shard_range(shards)
        if preset is not None:
            _refuse_with_preset(preset, physics)
            manifest = run_preset(preset, out, workers=workers, shards=span)
            typer.echo("\n".join([] if manifest is None else [str(out / name) for name in manifest["files"]]))
            return
        physics["shards"] = None if span is None else list(span)
        paths = run_generate(physics.pop("process"), physics.pop("n_jets"), out, workers=workers, **physics)
        typer.echo("\n".join(str(p) for p in paths))
    except HepnnError as err:
        fail(err)


def _refuse_with_preset(preset: str, physics: dict) -> None:
    """A preset fixes the sample: any physics option changed from its default is an error."""
    import inspect

    from hepnn.errors import ConfigError

    defaults = {name: p.default for name, p in inspect.signature(generate).parameters.items()}
    flags = {"n_jets": "--n-jets", "fmt": "--format", "R": "--radius", "shard_size": "--shard-size"}
    for key, value in physics.items():
        if key == "max_constituents":
            value = value or 0  # the option's "0 = all" is None in the library
        if value != defaults[{"R": "radius"}.get(key, key)]:
            flag = flags.get(key, "--" + key.replace("_", "-"))
            raise ConfigError(f"--preset {preset} fixes the sample's physics and size; drop {flag}")


@app.command()
def inspect(paths: Annotated[list[Path], typer.Argument(help="Data files (parquet, ROOT, HDF5).")]) -> None:
    """Schema, jets, label balance, multiplicity, feature statistics and a memory estimate."""
    try:
        from hepnn.data.inspect import inspect_files, render_inspect

        typer.echo(render_inspect(inspect_files([str(p) for p in paths])))
    except HepnnError as err:
        fail(err)


@app.command()
def models() -> None:
    """List the registered models with their inputs and parameter counts."""
    try:
        from hepnn.registry import describe_models

        for row in describe_models():
            n = "n/a" if row["n_params"] is None else f"{row['n_params']:,}"
            typer.echo(f"{row['name']:<20} {row['family']:<12} inputs={','.join(row['inputs']):<14} "
                       f"params={n:>9}  {row['doc']}")
    except HepnnError as err:
        fail(err)


def _seeds(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise HepnnError(f"--seeds must be a comma-separated list of integers, got {text!r}") from None


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Argument(help="Run YAML (omit with --resume).")] = None,
    overrides: Overrides = None,
    out: Annotated[Optional[Path], typer.Option(help="Run directory (default runs/NAME-MODEL-sSEED-TIME).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue an interrupted run directory.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Repeat with these seeds, e.g. 1,2,3 (OUT/seedN each).")] = None,
) -> None:
    """Train a model described by a YAML config; writes a run directory."""
    try:
        from hepnn.config import load_config
        from hepnn.train.fit import fit, resume as resume_run

        if resume is not None:
            given = [name for name, value in (("CONFIG", config), ("overrides", overrides), ("--out", out),
                                              ("--seeds", seeds)) if value]
            if given:
                raise HepnnError(f"--resume continues {resume} with its own config.yaml; drop {', '.join(given)} "
                                 "(to change settings, start a new run)")
            typer.echo(str(resume_run(resume)))
            return
        if config is None:
            raise HepnnError("give a config file (hepnn train CONFIG.yaml [key=value ...]) or --resume RUN_DIR")
        repeats = _seeds(seeds)
        if not repeats:
            typer.echo(str(fit(load_config(config, overrides or []), out)))
            return
        base = out or Path("runs") / config.stem
        for s in repeats:
            cfg = load_config(config, [*(overrides or []), f"train.seed={s}"])
            typer.echo(str(fit(cfg, base / f"seed{s}")))
    except HepnnError as err:
        fail(err)


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `hepnn train`.")],
    data: Annotated[Optional[list[Path]], typer.Option(help="Evaluate on these files instead of the test split.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="With --data: where the results go (default: RUN/eval-<file stem>); the run's own are kept.")] = None,
) -> None:
    """Metrics (accuracy, AUC, 1/eps_B at eps_S = 0.3, 0.5), plots and the report for a run."""
    try:
        from hepnn.evaluate.run import evaluate_run

        metrics = evaluate_run(run_dir, [str(p) for p in data] if data else None, out)
        for k, v in metrics.items():
            typer.echo(f"{k}: {v:.6g}" if isinstance(v, float) else f"{k}: {v}")
    except HepnnError as err:
        fail(err)


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `hepnn train`.")],
    data: Annotated[list[Path], typer.Argument(help="Files to score.")],
    out: Annotated[Path, typer.Option(help="Output parquet with scores, labels, jet pT and mass.")] = Path("scores.parquet"),
) -> None:
    """Score jets with a trained run; writes parquet (score, label if present, jet_pt, jet_mass)."""
    try:
        from hepnn.evaluate.run import predict_run

        typer.echo(str(predict_run(run_dir, [str(p) for p in data], out)))
    except HepnnError as err:
        fail(err)


@app.command()
def sample(
    run_dir: Annotated[Path, typer.Argument(help="A generative run directory (flow_jet, ddpm_jet, wgan_jet, vae_jet, ddpm_particles).")],
    n: Annotated[int, typer.Option("--n", help="Number of jets to generate.")] = 10_000,
    out: Annotated[Path, typer.Option(help="Output parquet in the native jet layout.")] = Path("generated.parquet"),
    seed: Annotated[int, typer.Option(help="Random seed (the same seed gives the same file).")] = 0,
) -> None:
    """Generate jets with a trained generative model; writes parquet readable by every command."""
    try:
        from hepnn.sample import sample_run

        typer.echo(str(sample_run(run_dir, n, out, seed=seed)))
    except HepnnError as err:
        fail(err)


@app.command()
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (seed repeats are averaged).")],
    out: Annotated[Path, typer.Option(help="Where the table, ROC overlay and report go.")] = Path("runs/compare"),
) -> None:
    """One table (Markdown + CSV) and overlaid ROC curves over runs, mean +- std over seeds."""
    try:
        from hepnn.evaluate.comparison import compare_dirs

        _print(compare_dirs(run_dirs, out))
    except HepnnError as err:
        fail(err)


@app.command()
def tune(
    config: Annotated[Path, typer.Argument(help="Run YAML with a `tune:` section.")],
    overrides: Overrides = None,
    out: Annotated[Optional[Path], typer.Option(help="Study directory (default runs/tune-CONFIGNAME); rerun to resume.")] = None,
    workers: Annotated[int, typer.Option(help="Parallel trial processes on this machine (one thread each).")] = 1,
    storage: Annotated[Optional[str], typer.Option(help="Optuna storage shared by several machines: an RDB URL "
                                                   "(postgresql://..., sqlite:///...) or a journal file path.")] = None,
) -> None:
    """Hyperparameter search (Optuna) over the config's `tune:` section; writes a study directory."""
    try:
        from hepnn.config import load_config
        from hepnn.tune import run_study

        result = run_study(load_config(config, overrides or []), out or Path("runs") / f"tune-{config.stem}",
                           workers=workers, storage=storage)
        typer.echo(result.table_md)
        if result.best_number is not None:
            typer.echo(f"best trial {result.best_number}: {result.metric} = {result.best_value:.6g}; "
                       f"config in {result.study_dir / 'best.yaml'}")
    except HepnnError as err:
        fail(err)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo's runs and report go.")] = Path("runs/demo"),
    generate_n: Annotated[Optional[int], typer.Option("--generate", help="Generate N fresh jets per class instead of the committed sample.")] = None,
    models: Annotated[str, typer.Option(help="Comma-separated models to train (each with a config in "
                                        "configs/top_tagging/).")] = "bdt,mlp,pfn,particlenet_lite,part_lite",
    epochs: Annotated[Optional[int], typer.Option(help="Override the epochs of every model.")] = None,
) -> None:
    """The main job: train several taggers on real top/QCD jets, print the table, write plots and a report."""
    try:
        from hepnn.demo import run_demo

        table, notes = run_demo(out, models=[m.strip() for m in models.split(",") if m.strip()],
                                generate=generate_n, epochs=epochs)
        _print(table)
        typer.echo("\n".join(f"* {n}" for n in notes))
    except HepnnError as err:
        fail(err)



@app.command()
def compress(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory.")],
    prune_to: Annotated[Optional[float], typer.Option("--prune", help="Target sparsity, e.g. 0.9.")] = None,
    structured: Annotated[bool, typer.Option(help="--prune: whole output channels (L2 norm) instead of weights.")] = False,
    steps: Annotated[Optional[int], typer.Option(help="--prune: steps to the target (cubic schedule); default 3.")] = None,
    finetune_epochs: Annotated[Optional[int], typer.Option("--finetune-epochs", help="--prune: fine-tuning epochs per "
                                                           "step (default 1); --quantize qat: in all (default 2).")] = None,
    quantize: Annotated[Optional[str], typer.Option(help="ptq | qat: int8 Linear layers (torchao).")] = None,
    static: Annotated[bool, typer.Option(help="--quantize ptq: static activation scales from calibration jets.")] = False,
    calib_jets: Annotated[Optional[int], typer.Option("--calib-jets", help="--static: training jets for the "
                                                      "calibration; default 2048.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="New run directory (default RUN_DIR-pruneS / -int8).")] = None,
) -> None:
    """Prune (--prune) or quantize (--quantize) a run into a new run directory, and evaluate it."""
    try:
        if (prune_to is None) == (quantize is None):
            raise HepnnError("give one of --prune SPARSITY or --quantize ptq|qat (quantize a pruned run to do both)")
        if quantize not in (None, "ptq", "qat"):
            raise HepnnError(f"--quantize must be ptq or qat, got {quantize!r}")
        mode = "--prune" if prune_to is not None else f"--quantize {quantize}{' --static' if static else ''}"
        uses = {"--prune": {"--structured", "--steps", "--finetune-epochs"}, "--quantize qat": {"--finetune-epochs"},
                "--quantize ptq": {"--static"}, "--quantize ptq --static": {"--static", "--calib-jets"}}[mode]
        given = {"--structured": structured, "--steps": steps is not None, "--static": static,
                 "--finetune-epochs": finetune_epochs is not None, "--calib-jets": calib_jets is not None}
        unused = [name for name, on in given.items() if on and name not in uses]
        if unused:
            raise HepnnError(f"{', '.join(unused)} does not apply to {mode}; drop it")
        if prune_to is not None:
            from hepnn.compress.prune import format_report, prune_run

            dest = out or run_dir.with_name(f"{run_dir.name}-prune{prune_to:g}")
            result = prune_run(run_dir, dest, prune_to, structured=structured, steps=3 if steps is None else steps,
                               finetune_epochs=1 if finetune_epochs is None else finetune_epochs)
            typer.echo(format_report(result))
        else:
            from hepnn.compress.quantize import quantize_run

            dest = out or run_dir.with_name(f"{run_dir.name}-{quantize}{'-static' if static else ''}")
            result = quantize_run(run_dir, dest, quantize, static=static,
                                  calib_jets=2048 if calib_jets is None else calib_jets,
                                  finetune_epochs=2 if finetune_epochs is None else finetune_epochs)
        m = result["metrics"]
        typer.echo(f"{dest}: auc {m.get('auc', float('nan')):.4f}, rej30 {m.get('rej30', float('nan')):.1f}, "
                   f"non-zero {m.get('n_nonzero')}, {m.get('size_bytes')} bytes")
    except HepnnError as err:
        fail(err)


@app.command()
def distill(
    teacher: Annotated[Path, typer.Argument(help="The teacher's run directory.")],
    overrides: Overrides = None,
    student: Annotated[Optional[str], typer.Option(help="Registered student model at its default parameters "
                                                   "(default mlp).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Student config file (its model/preprocess/train); "
                                                   "instead of --student.")] = None,
    temperature: Annotated[float, typer.Option(help="Softmax temperature T.")] = 4.0,
    alpha: Annotated[float, typer.Option(help="Weight of the teacher (soft) term.")] = 0.7,
    out: Annotated[Optional[Path], typer.Option(help="Student run directory.")] = None,
) -> None:
    """Knowledge distillation: train a small student on a teacher run's softened scores and the labels."""
    try:
        from hepnn.compress.distill import distill as run_distill

        typer.echo(str(run_distill(teacher, student, out, config=config, temperature=temperature, alpha=alpha,
                                   overrides=overrides or [])))
    except HepnnError as err:
        fail(err)


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory.")],
    onnx: Annotated[bool, typer.Option("--onnx/--no-onnx", help="ONNX (the only format so far).")] = True,
    out: Annotated[Optional[Path], typer.Option(help="Directory for model.onnx (default: the run directory).")] = None,
) -> None:
    """ONNX export (dynamic batch and particle axes) checked against PyTorch in ONNX Runtime."""
    try:
        from hepnn.compress.export import export_run

        if not onnx:
            raise HepnnError("ONNX is the only export format; pass --onnx")
        info = export_run(run_dir, out)
        typer.echo(f"{(out or run_dir) / 'model.onnx'}: max |onnx - torch| = {info['parity_max_abs_diff']:.3g} "
                   f"on {info['parity_jets']} test jets")
    except HepnnError as err:
        fail(err)


@app.command()
def latency(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory.")],
    backends: Annotated[Optional[str], typer.Option(help="Comma-separated: eager, compile, int8, onnx (default: all; "
                                                    "eager alone for a quantized run).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Jets per call for the throughput.")] = 1024,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    repeats: Annotated[int, typer.Option(help="Timed calls per number (the median is reported).")] = 20,
) -> None:
    """Inference latency per jet (batch 1) and throughput (large batch) per runtime: a table."""
    try:
        from hepnn.compress.latency import format_rows, measure_run

        chosen = [b.strip() for b in backends.split(",") if b.strip()] if backends is not None else None
        rows = measure_run(run_dir, backends=chosen,
                           batch_size=batch_size, device=device, repeats=repeats)
        typer.echo(format_rows(rows))
    except HepnnError as err:
        fail(err)

app.add_typer(datasets_app, name="datasets")
app.add_typer(pretrained_app, name="pretrained")

if __name__ == "__main__":  # pragma: no cover
    run()
