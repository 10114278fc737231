"""The gfbench command line: parse, call one library function, render. Nothing else."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from gfbench.errors import GfbenchError
from gfbench.render import console, mixers_table, models_table, print_error

app = typer.Typer(
    name="gfbench",
    help="How does a token mixer scale, and how robust is a checkpoint? "
    "Counted FLOPs, measured latency and memory, ImageNet-C and FGSM/PGD.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """How does a token mixer scale, and how robust is a checkpoint?"""


@app.command("list")
def list_command() -> None:
    """List gfbench's models (parameters at 224) and token mixers (FLOP formulas)."""
    from gfbench.layers import MIXERS
    from gfbench.models import model_catalogue

    console.print(models_table(model_catalogue()))
    console.print(mixers_table([
        {"name": s.name, "flops_formula": s.flops_formula, "params_formula": s.params_formula,
         "paper": s.paper}
        for s in MIXERS.values()
    ]))


# --- complexity ---

# --- robustness ---


class Precision(str, Enum):
    """Inference precision of `gfbench robustness` (autocast for bf16/fp16)."""

    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class ClassMap(str, Enum):
    """Where class indices come from."""

    imagenet = "imagenet"
    folders = "folders"


@app.command("robustness")
def robustness_command(
    ckpt: Annotated[Path, typer.Option(
        "--ckpt", help="Checkpoint: released GFNet file, timm/DeiT/ResMLP or gfbench's own.")],
    model: Annotated[str | None, typer.Option(
        help="Architecture (gfbench or timm name); inferred from the checkpoint when omitted."
    )] = None,
    data: Annotated[Path | None, typer.Option(
        help="ImageNet-C root: <root>/<corruption>/<severity>/<wnid>/<image>.JPEG.")] = None,
    clean: Annotated[Path | None, typer.Option(
        help="ImageNet val folder (<wnid>/<image>): clean error, relative mCE, attacks.")] = None,
    generate_from: Annotated[Path | None, typer.Option(
        "--generate-from",
        help="Clean folder to corrupt in memory with gfbench's generator (not comparable to "
        "published ImageNet-C numbers).")] = None,
    corruptions: Annotated[str, typer.Option(
        help="'default' (the 15), 'all' (+4 extra) or a comma list of names.")] = "default",
    severities: Annotated[str, typer.Option(help="Severities: a range or list, e.g. 1-5, 1,3,5."
                                            )] = "1-5",
    attack: Annotated[list[str] | None, typer.Option(
        "--attack", help="fgsm or pgd on --clean (repeat for both), budgets of the GFNet paper."
    )] = None,
    batch_size: Annotated[int, typer.Option(help="Images per batch (per process).")] = 64,
    workers: Annotated[int, typer.Option(
        help="Data-loading processes (0 decodes in the main process).")] = min(
            8, os.cpu_count() or 1),
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[Precision, typer.Option(help="Inference precision.")] = Precision.fp32,
    limit: Annotated[int | None, typer.Option(
        help="At most N images per class (quick looks).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Results stem (writes .json and .csv); default results/robustness-<model>-<ckpt>."
    )] = None,
    seed: Annotated[int, typer.Option(help="Seed of generated corruptions and PGD starts.")] = 0,
    class_map: Annotated[ClassMap, typer.Option(
        help="imagenet: labels from the canonical ImageNet-1k wnid list; folders: sorted "
        "folder names (a data set with its own classes).")] = ClassMap.imagenet,
    resume: Annotated[bool, typer.Option(
        help="Skip (corruption, severity) parts already in the results file.")] = True,
) -> None:
    """Evaluate a checkpoint on ImageNet-C (CE, mCE, relative mCE), clean val and FGSM/PGD.

    Several GPUs: torchrun --nproc_per_node=K -m gfbench robustness ... (rank 0 writes).
    """
    from gfbench.render import RobustnessProgress, print_robustness_report
    from gfbench.robustness.evaluate import RobustnessConfig, run_robustness
    from gfbench.robustness.protocol import REFERENCE_MCE, parse_corruptions, parse_severities

    config = RobustnessConfig(
        checkpoint=ckpt, model=model, data=data, clean=clean, generate_from=generate_from,
        corruptions=parse_corruptions(corruptions), severities=parse_severities(severities),
        attacks=tuple(attack or ()), batch_size=batch_size, workers=workers, device=device,
        precision=precision.value, limit=limit, out=out, seed=seed, class_map=class_map.value,
        resume=resume,
    )
    with RobustnessProgress() as progress:
        report = run_robustness(config, progress=progress)
    if report.is_main:
        print_robustness_report(report, REFERENCE_MCE)


# --- plot ---


class XAxis(str, Enum):
    """What the complexity figures put on the x axis."""

    tokens = "tokens"
    resolution = "resolution"


class SpeedMetric(str, Enum):
    """How the complexity figures show speed."""

    latency = "latency"
    throughput = "throughput"


@app.command("plot")
def plot_command(
    paths: Annotated[list[Path], typer.Argument(
        help="Results files (.json, or the .csv beside one) or folders, searched recursively.",
        show_default=False)],
    out: Annotated[Path | None, typer.Option(
        help="Output folder; default: plots/ in the folder the inputs share.")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="Figure formats, a comma list of png, svg, pdf.")] = "png,svg",
    log: Annotated[bool, typer.Option(
        "--log", help="Also draw log-log versions, where power laws are straight lines.")] = False,
    x: Annotated[XAxis, typer.Option(
        "--x", help="x axis of the complexity figures: token count or input resolution.")
    ] = XAxis.tokens,
    metric: Annotated[SpeedMetric, typer.Option(
        help="Speed panel: latency per batch or throughput in images/s.")] = SpeedMetric.latency,
    ref_slopes: Annotated[bool, typer.Option(
        "--ref-slopes", help="Draw grey N log N and N² reference curves.")] = False,
) -> None:
    """Figures (PNG/SVG/PDF), report.md and a self-contained report.html from results files."""
    from gfbench.plot import NothingToPlotError, PlotOptions, make_plots, parse_formats
    from gfbench.render import print_plot_report, print_skipped

    options = PlotOptions(out=out, formats=parse_formats(fmt), log=log, x=x.value,
                          metric=metric.value, ref_slopes=ref_slopes)
    try:
        report = make_plots(paths, options)
    except NothingToPlotError as exc:
        print_skipped(exc.problems)
        raise
    print_plot_report(report)


def main() -> None:
    """Console-script entry point: a GfbenchError becomes one red line and exit code 1."""
    try:
        app()
    except GfbenchError as exc:
        print_error(str(exc))
        sys.exit(1)
