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
def list_command(
    timm: Annotated[str | None, typer.Option(
        "--timm", help="Show what a name, timm-style pattern ('convnext_*', '*siglip*') or "
        "@file selects instead: each model and its native resolution.")] = None,
    params: Annotated[bool, typer.Option(
        "--params", help="With --timm: count each model's parameters (meta device, ~0.1 s "
        "per model).")] = False,
) -> None:
    """List gfbench's models (parameters at 224) and token mixers (FLOP formulas)."""
    from gfbench.layers import MIXERS
    from gfbench.models import model_catalogue

    if timm is not None:
        from gfbench.models import selection_catalogue
        from gfbench.render import selection_table

        rows = selection_catalogue([timm], params=params)
        console.print(selection_table(rows, f"{len(rows)} models selected by {timm}"))
        return

    console.print(models_table(model_catalogue()))
    console.print(mixers_table([
        {"name": s.name, "flops_formula": s.flops_formula, "params_formula": s.params_formula,
         "paper": s.paper}
        for s in MIXERS.values()
    ]))


# --- complexity ---


def _comma_list(value: str | None) -> tuple[str, ...]:
    """'a, b,c' -> ('a', 'b', 'c'); None or '' -> ()."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@app.command("complexity")
def complexity_command(
    models: Annotated[str | None, typer.Option(
        help="Comma list of gfbench or timm model names (gfnet, deit, resmlp = gfnet-xs, "
        "deit-s, resmlp-12). Default: gfnet,deit,resmlp.")] = None,
    res: Annotated[str | None, typer.Option(
        "--res", help="Comma list of input resolutions, N or HxW. Default: 224,384,512.")] = None,
    mixers: Annotated[str | None, typer.Option(
        help="Comma list of bare token mixers instead of models (see `gfbench list`).")] = None,
    tokens: Annotated[str | None, typer.Option(
        help="Token grids of --mixers: sides (14 = 14x14 tokens) or HxW. Default: 14,28,56."
    )] = None,
    dim: Annotated[int, typer.Option(help="Channel width of --mixers.")] = 384,
    batch_size: Annotated[int | None, typer.Option(
        help="Batch of the timed step. Default: 32 on CUDA, 1 on the CPU.")] = None,
    precision: Annotated[str, typer.Option(
        help="fp32, fp16 or bf16 (autocast; fp16 needs CUDA).")] = "fp32",
    mode: Annotated[str, typer.Option(
        help="infer (forward, no autograd) or train (forward + backward).")] = "infer",
    metrics: Annotated[str, typer.Option(
        help="Comma list of flops, params, latency, memory. flops,params alone never touch "
        "the device (meta tensors) and run anywhere in seconds.")] = "flops,params,latency,memory",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    warmup: Annotated[int | None, typer.Option(
        help="Untimed calls before timing (>= 1). Default: 10 on CUDA, 2 on the CPU.")] = None,
    repeat: Annotated[int | None, typer.Option(
        help="Timed calls. Default: 50 on CUDA, 10 on the CPU.")] = None,
    compile: Annotated[bool, typer.Option(
        "--compile", help="torch.compile the module (first-call time reported apart).")] = False,
    channels_last: Annotated[bool, typer.Option(
        "--channels-last", help="channels_last memory format for models and their input.")
    ] = False,
    impl: Annotated[str, typer.Option(
        help="GFNet's global filter: reference (float32 cuFFT, as released), fast (gfbench's "
        "fused Triton kernel, CUDA only) or auto (fast where it can run). Rows record which "
        "one ran.")] = "reference",
    out: Annotated[Path | None, typer.Option(
        help="Folder for the results files. Default: results/.")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Keep the rows already in the results file and skip their settings."
    )] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing; just write the files."
                                        )] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print rows and exponents as JSON instead of the table.")] = False,
) -> None:
    """Count FLOPs and parameters, measure latency and peak memory, fit scaling exponents.

    FLOPs follow fvcore and the papers: one fused multiply-add = one FLOP (GFLOPs = GMACs, \
half of torch's 2*m*n*k). gfbench adds what fvcore and torch leave out: each 2D FFT of an \
H x W x D feature = H*W*D*ceil(log2(H*W)) (the inverse counted on its output grid), the \
complex filter product = 1 per complex element, attention (SDPA) = 2*N^2*D (QK^T and AV), \
average pooling = k*k per output element. Counted on the meta device (any size, no memory) \
and cross-checked with fvcore where the model fits; ops no rule counts are listed per row.

    Latency: median and 10th/90th percentiles after warm-up (CUDA events on a GPU, a \
monotonic clock on the CPU); the first call is never timed. Memory: peak above the resident \
model during one step (CUDA allocator; on the CPU the peak RSS of an isolated child \
process). Out of memory is recorded as a row and the sweep goes on.

    Rows go to results/complexity-<models|mixers>-<device>-b<batch>-<precision>-<mode>.json \
and .csv, each row as it finishes (--resume skips finished rows).
    """
    import dataclasses

    from gfbench.measure.scaling import scaling_exponents
    from gfbench.measure.sweep import (
        ComplexityRequest,
        complexity_title,
        plan_complexity,
        run_sweep,
    )
    from gfbench.render import ComplexityProgress, print_complexity_report, print_json
    from gfbench.results import FLOP_CONVENTION

    request = ComplexityRequest(
        models=_comma_list(models), mixers=_comma_list(mixers), resolutions=_comma_list(res),
        tokens=_comma_list(tokens), dim=dim, batch_size=batch_size, precision=precision,
        mode=mode, metrics=_comma_list(metrics), device=device, warmup=warmup, repeat=repeat,
        compile=compile, channels_last=channels_last, out=out, resume=resume, impl=impl,
    )
    plan = plan_complexity(request)
    with ComplexityProgress(len(plan.settings), enabled=not (quiet or as_json)) as progress:
        rows = run_sweep(plan, on_start=progress.start, on_row=progress.finish)
    exponents = scaling_exponents(rows)
    paths = [plan.stem.with_suffix(".json"), plan.stem.with_suffix(".csv")]
    if as_json:
        print_json({"files": [str(p) for p in paths], "flop_convention": FLOP_CONVENTION,
                    "rows": [dataclasses.asdict(r) for r in rows],
                    "exponents": [dataclasses.asdict(e) for e in exponents]})
    elif not quiet:
        print_complexity_report(rows, exponents, paths, FLOP_CONVENTION, complexity_title(plan))


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
