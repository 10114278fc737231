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


def _print_version(value: bool) -> None:
    """--version: print the version and stop (before any command runs)."""
    if value:
        from gfbench import __version__

        console.print(f"gfbench {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    )] = False,
) -> None:
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
    exclude: Annotated[str | None, typer.Option(
        help="Comma list of model names to leave out of --models.")] = None,
    res: Annotated[str | None, typer.Option(
        "--res", help="Comma list of input resolutions, N or HxW, or 'native' (each model's "
        "pretrained input size). Default: 224,384,512 for gfbench's models, native for timm's."
    )] = None,
    num_classes: Annotated[int | None, typer.Option(
        help="Classifier outputs of every model (0: no head). Default: each model's own.")
    ] = None,
    mixers: Annotated[str | None, typer.Option(
        help="Comma list of bare token mixers instead of models (see `gfbench list`).")] = None,
    tokens: Annotated[str | None, typer.Option(
        help="Token grids of --mixers: sides (14 = 14x14 tokens) or HxW. Default: 14,28,56."
    )] = None,
    dim: Annotated[int, typer.Option(help="Channel width of --mixers.")] = 384,
    batch_size: Annotated[str | None, typer.Option(
        help="Batch of the timed step, or a comma list for a batch sweep (1,8,32). "
        "Default: 32 on CUDA, 1 on the CPU.")] = None,
    precision: Annotated[str, typer.Option(
        help="fp32, fp16 or bf16 (autocast; fp16 needs CUDA).")] = "fp32",
    mode: Annotated[str, typer.Option(
        help="infer (forward, no autograd) or train (forward + backward).")] = "infer",
    metrics: Annotated[str, typer.Option(
        help="Comma list of flops, params, latency, memory. flops,params alone never touch "
        "the device (meta tensors) and run anywhere in seconds.")] = "flops,params,latency,memory",
    device: Annotated[str, typer.Option(
        help="auto, cpu, cuda or cuda:N (under torchrun each rank takes its local GPU).")
    ] = "auto",
    warmup: Annotated[int | None, typer.Option(
        help="Untimed calls before timing (>= 1). Default: 10 on CUDA, 2 on the CPU.")] = None,
    repeat: Annotated[int | None, typer.Option(
        help="Timed calls. Default: 50 on CUDA, 10 on the CPU.")] = None,
    processes: Annotated[int | None, typer.Option(
        help="Fresh processes the timed calls are spread over and pooled (heap and page "
        "placement move a CPU timing from one process to the next; the p10-p90 band then "
        "spans them). Default: 1; at most --repeat.")] = None,
    threads: Annotated[int | None, typer.Option(
        help="CPU threads torch may use (recorded in each row). Default: torch's own.")] = None,
    warmup_s: Annotated[float | None, typer.Option(
        "--warmup-s", help="Least warm-up time in seconds, besides --warmup calls. "
        "Default: 0.5 on CUDA, 0 on the CPU.")] = None,
    flush_l2: Annotated[bool, typer.Option(
        "--flush-l2", help="Evict the cache before every timed call (single-layer "
        "micro-benchmarks: latency against the memory floor).")] = False,
    optimizer: Annotated[str, typer.Option(
        help="With --mode train: sgd or adamw makes the optimizer's update (and its state's "
        "memory) part of the step. Default: forward + backward only.")] = "",
    compile: Annotated[bool, typer.Option(
        "--compile", help="torch.compile the module (first-call time reported apart).")] = False,
    channels_last: Annotated[bool, typer.Option(
        "--channels-last", help="channels_last memory format for models and their input.")
    ] = False,
    impl: Annotated[str, typer.Option(
        help="GFNet's global filter: reference (float32 cuFFT, as released), fast (gfbench's "
        "fused Triton kernel, CUDA only) or auto (fast where it can run). Rows record which "
        "one ran.")] = "reference",
    isolate: Annotated[bool, typer.Option(
        "--isolate/--no-isolate", help="Count, time and measure memory each in a fresh "
        "child process with this environment: no number depends on what ran before it, and a "
        "crash (segfault, OOM killer, poisoned CUDA context) is one row. --no-isolate times in "
        "this process (debugging; numbers then depend on earlier settings).")] = True,
    fvcore: Annotated[bool, typer.Option(
        "--fvcore/--no-fvcore", help="Cross-check counts with fvcore (real tensors, models "
        "up to 20 GFLOPs). --no-fvcore counts on the meta device only (fast, any size).")
    ] = True,
    out: Annotated[Path | None, typer.Option(
        help="Folder for the runs' results files. Default: runs/.")] = None,
    resume: Annotated[str | None, typer.Option(
        "--resume", metavar="RUN", help="Continue run RUN of --out instead of starting a new "
        "run: its number (7 or 0007), 'last' (the newest run of this kind of sweep) or the "
        "path of its .json. Settings already in it are skipped, the rest appended to it.",
        show_default=False)] = None,
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
monotonic clock on the CPU), each setting timed in a fresh process (--processes K pools K); \
the first call is never timed. Memory: peak above the resident \
model during one step (CUDA allocator; on the CPU the peak RSS of a child process). Out of \
memory is an 'oom' row and the sweep goes on; a model that fails is an 'error' row with its \
reason. The last line counts rows by status; the exit code is 1 when any row is an error.

    Exponents come with their fit quality; a timed one prints "noisy" where its p10/p90 \
cannot fix it. One warning line each when the load average exceeded the cores or a timed \
row's p10-p90 spread exceeds 20% of its median.

    Every invocation is a run of its own: rows go to runs/<NNNN>-complexity-<models|\
mixers>-<device>-b<batch>-<precision>-<mode>.json and .csv (NNNN: the next run number of the \
folder), each row as it finishes; no run changes another's rows. --resume RUN continues one \
run. Several GPUs: torchrun --nproc_per_node=K -m gfbench complexity ... (rank 0 writes the \
run).
    """
    import dataclasses

    from gfbench.distributed import init_distributed, shutdown_distributed
    from gfbench.measure.plan import ComplexityRequest, plan_complexity
    from gfbench.measure.quality import available_cores, load_average, timing_warnings
    from gfbench.measure.scaling import scaling_exponents
    from gfbench.measure.sweep import (
        SweepInterrupted,
        complexity_title,
        planned_rows,
        run_sweep,
        summary_line,
    )
    from gfbench.render import (
        ComplexityProgress,
        print_complexity_report,
        print_interrupted,
        print_json,
        print_sweep_outcome,
    )
    from gfbench.results import FLOP_CONVENTION

    request = ComplexityRequest(
        models=_comma_list(models), exclude=_comma_list(exclude), mixers=_comma_list(mixers),
        resolutions=_comma_list(res), tokens=_comma_list(tokens), dim=dim,
        batch_sizes=_comma_list(batch_size), precision=precision, mode=mode,
        metrics=_comma_list(metrics), device=device, warmup=warmup, repeat=repeat,
        compile=compile, channels_last=channels_last, out=out, resume=resume, impl=impl,
        num_classes=num_classes, isolate=isolate, fvcore=fvcore, threads=threads,
        optimizer=optimizer, warmup_s=warmup_s, flush_l2=flush_l2, processes=processes,
    )
    dist = init_distributed("cpu")  # gloo: the ranks only wait for each other
    try:
        plan = plan_complexity(request, dist=dist)
        load_at_start = load_average()
        shown = not (quiet or as_json) and dist.is_main
        share = len(plan.settings[dist.rank::dist.world_size])
        with ComplexityProgress(share, enabled=shown) as progress:
            outcome = run_sweep(plan, on_start=progress.start, on_row=progress.finish)
    except SweepInterrupted as exc:
        if dist.is_main:
            print_interrupted(exc.rows_kept, exc.path, _resume_command(exc.run_id))
        raise typer.Exit(130) from None
    finally:
        shutdown_distributed()
    if not dist.is_main:
        return
    rows = planned_rows(outcome, plan)
    paths = [outcome.path, outcome.path.with_suffix(".csv")]
    exponents = scaling_exponents(rows)
    warnings = timing_warnings(rows, [load_at_start, load_average()], available_cores(),
                               dist.local_world_size)
    if as_json:
        print_json({"files": [str(p) for p in paths], "run_id": outcome.run_id,
                    "flop_convention": FLOP_CONVENTION, "summary": dict(outcome.counts()),
                    "rows": [dataclasses.asdict(r) for r in rows],
                    "exponents": [dataclasses.asdict(e) for e in exponents],
                    "warnings": warnings})
    elif not quiet:
        print_complexity_report(rows, exponents, paths, FLOP_CONVENTION,
                                complexity_title(plan), warnings)
    failed = any(r.status == "error" for r in rows)
    if not (quiet or as_json):
        print_sweep_outcome(outcome, summary_line(rows), failed)
    if failed:
        raise typer.Exit(1)


def _resume_command(run_id: str) -> str:
    """The command line that continues this interrupted run: this one with --resume RUN_ID
    (any --resume it had replaced)."""
    import shlex

    args, kept = sys.argv[1:], []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--resume":
            skip = True
        elif not arg.startswith("--resume="):
            kept.append(arg)
    return shlex.join(["gfbench", *kept, "--resume", run_id])


# --- breakdown ---


class BreakdownEngine(str, Enum):
    """Which FLOP engine(s) `gfbench breakdown` asks for per-module counts."""

    torch = "torch"
    fvcore = "fvcore"
    both = "both"


@app.command("breakdown")
def breakdown_command(
    models: Annotated[str | None, typer.Option(
        help="Comma list of gfbench or timm model names. Default: gfnet,deit,resmlp.")] = None,
    res: Annotated[str | None, typer.Option(
        "--res", help="Comma list of input resolutions, N or HxW. Default: 224,384,512.")] = None,
    depth: Annotated[int, typer.Option(
        help="Module depth of the rows: 0 the whole model, 1 its children (blocks, head...), "
        "3 e.g. blocks.0.attn.")] = 1,
    engine: Annotated[BreakdownEngine, typer.Option(
        help="torch: FlopCounterMode on the meta device (any size, no memory); fvcore: traced "
        "on real CPU tensors; both: one set of rows each.")] = BreakdownEngine.torch,
    out: Annotated[Path | None, typer.Option(
        help="Folder for the runs' results files. Default: runs/.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print rows and per-role totals as JSON instead of the tables.")] = False,
) -> None:
    """Where the FLOPs and parameters go: per module at a depth, grouped into token mixer, \
channel MLP, norm, embedding, head and other, with the token mixer's share.

    Counts follow the FLOP convention of `gfbench complexity`; each setting's rows add up \
to the model total of the same engine, and ops no rule counts are listed per row. Every \
invocation is a run of its own: rows go to runs/<NNNN>-breakdown-d<depth>-<engine>.json \
and .csv (NNNN: the next run number of the folder).
    """
    import dataclasses

    from gfbench.measure.breakdown import (
        BreakdownRequest,
        plan_breakdown,
        run_breakdown,
        summarise,
    )
    from gfbench.render import BreakdownProgress, print_breakdown_report, print_json
    from gfbench.results import FLOP_CONVENTION

    plan = plan_breakdown(BreakdownRequest(
        models=_comma_list(models), resolutions=_comma_list(res), depth=depth,
        engine=engine.value, out=out))
    total = len(plan.settings) * len(plan.engines)
    with BreakdownProgress(total, enabled=not as_json) as progress:
        rows, json_path = run_breakdown(plan, on_done=progress.done)
    summaries = summarise(rows)
    paths = [json_path, json_path.with_suffix(".csv")]
    if as_json:
        print_json({"files": [str(p) for p in paths], "flop_convention": FLOP_CONVENTION,
                    "rows": [dataclasses.asdict(r) for r in rows],
                    "groups": [{**dataclasses.asdict(s), "mixer_share": s.mixer_share}
                               for s in summaries]})
    else:
        print_breakdown_report(rows, summaries, paths, FLOP_CONVENTION)


# --- robustness ---


def _robustness_resume_command() -> str:
    """The command line that continues an interrupted robustness run (resuming is its
    default, so this one without --no-resume)."""
    import shlex

    return shlex.join(["gfbench", *(a for a in sys.argv[1:] if a != "--no-resume")])


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
    imagenet_a: Annotated[Path | None, typer.Option(
        "--imagenet-a", help="ImageNet-A folder (<wnid>/<image>, 200 classes: the 1000-way "
        "logits restricted to them).")] = None,
    imagenet_r: Annotated[Path | None, typer.Option(
        "--imagenet-r", help="ImageNet-R folder (<wnid>/<image>, 200 classes, as ImageNet-A)."
    )] = None,
    imagenet_sketch: Annotated[Path | None, typer.Option(
        "--imagenet-sketch", help="ImageNet-Sketch folder (<wnid>/<image>, 1000 classes).")
    ] = None,
    imagenet_v2: Annotated[Path | None, typer.Option(
        "--imagenet-v2", help="An ImageNetV2 variant's folder (<0..999>/<image>: folders named "
        "by class index).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for the results files robustness-<model>-<ckpt>-<key>.json/.csv (key: "
        "hash of the checkpoint's content and the settings). Default: runs/.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of generated corruptions and PGD starts.")] = 0,
    class_map: Annotated[ClassMap, typer.Option(
        help="imagenet: labels from the canonical ImageNet-1k wnid list; folders: sorted "
        "folder names (a data set with its own classes).")] = ClassMap.imagenet,
    resume: Annotated[bool, typer.Option(
        help="Skip the parts already in this checkpoint's results file (--no-resume "
        "evaluates them again and replaces their rows; other parts' rows are kept).")] = True,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary (the one stored in the results file) as JSON.")
    ] = False,
) -> None:
    """Evaluate a checkpoint on ImageNet-C (CE, mCE, relative mCE), clean val and FGSM/PGD.

    Several GPUs: torchrun --nproc_per_node=K -m gfbench robustness ... (rank 0 writes).
    """
    from gfbench.render import (
        RobustnessProgress,
        print_interrupted,
        print_json,
        print_robustness_report,
    )
    from gfbench.robustness.distributed import PeerFailed
    from gfbench.robustness.evaluate import RobustnessConfig, RunInterrupted, run_robustness
    from gfbench.robustness.protocol import REFERENCE_MCE, parse_corruptions, parse_severities

    test_sets = {name: folder for name, folder in (
        ("imagenet-a", imagenet_a), ("imagenet-r", imagenet_r),
        ("imagenet-sketch", imagenet_sketch), ("imagenet-v2", imagenet_v2)) if folder}

    config = RobustnessConfig(
        checkpoint=ckpt, model=model, data=data, clean=clean, generate_from=generate_from,
        corruptions=parse_corruptions(corruptions), severities=parse_severities(severities),
        attacks=tuple(attack or ()), batch_size=batch_size, workers=workers, device=device,
        precision=precision.value, limit=limit, out=out, seed=seed, class_map=class_map.value,
        resume=resume, test_sets=test_sets,
    )
    try:
        with RobustnessProgress(enabled=not as_json) as progress:
            report = run_robustness(config, progress=progress)
    except RunInterrupted as stop:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks
            print_interrupted(stop.rows_kept, stop.json_path, _robustness_resume_command())
        raise typer.Exit(130) from None
    except PeerFailed:  # the failing rank printed why
        raise typer.Exit(1) from None
    if not report.is_main:
        return
    if as_json:
        print_json({"files": [str(report.json_path), str(report.csv_path)],
                    "checkpoint_sha256": report.checkpoint_sha256,
                    "resumed_parts": len(report.resumed),
                    "evaluated_images": report.evaluated_images,
                    "summaries": report.summary})
    else:
        print_robustness_report(report, REFERENCE_MCE)


# --- plot ---


class XAxis(str, Enum):
    """What the complexity figures put on the x axis."""

    tokens = "tokens"
    resolution = "resolution"


class AxisScale(str, Enum):
    """Axes of the complexity figures."""

    log = "log"
    linear = "linear"
    both = "both"


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
    scale: Annotated[AxisScale, typer.Option(
        help="Complexity axes: log (log-log: power laws are straight lines, slope = exponent), "
        "linear (as the GFNet paper), or both.")] = AxisScale.log,
    x: Annotated[XAxis, typer.Option(
        "--x", help="x axis of the complexity figures: token count or input resolution.")
    ] = XAxis.tokens,
    metric: Annotated[SpeedMetric, typer.Option(
        help="Speed panel: latency per batch or throughput in images/s.")] = SpeedMetric.latency,
    ref_slopes: Annotated[bool, typer.Option(
        "--ref-slopes/--no-ref-slopes",
        help="Grey N log N and N² guides from the smallest N.")] = True,
    compare: Annotated[tuple[Path, Path] | None, typer.Option(
        help="Two results files or folders A B: add `gfbench compare A B` to the report.",
        show_default=False)] = None,
    combine: Annotated[bool, typer.Option(
        "--combine", help="Join the runs of one setting into one curve (newest row per "
        "setting). Refused when their machine or gfbench/torch/timm versions differ; a "
        "warning when their threads or load differ. Default: each run on its own.")] = False,
) -> None:
    """Figures (PNG/SVG/PDF), report.md and a self-contained report.html from results files.

    Each run (one results file) is drawn and fitted on its own, its figures named by its run \
number; --combine joins runs. The output folder is plot's own: figures an earlier plot made \
there and this one does not are removed (only files listed in its .gfbench-plots.json).
    """
    from gfbench.plot import NothingToPlotError, PlotOptions, make_plots, parse_formats
    from gfbench.render import print_plot_report, print_skipped

    options = PlotOptions(out=out, formats=parse_formats(fmt), scale=scale.value, x=x.value,
                          metric=metric.value, ref_slopes=ref_slopes,
                          compare=tuple(compare) if compare else None, combine=combine)
    try:
        report = make_plots(paths, options)
    except NothingToPlotError as exc:
        print_skipped(exc.problems)
        raise
    print_plot_report(report)


# --- compare ---


@app.command("compare")
def compare_command(
    a: Annotated[Path, typer.Argument(help="Run A: a results file (.json or .csv) or folder.",
                                      show_default=False)],
    b: Annotated[Path, typer.Argument(help="Run B, compared with A (ratios are B/A).",
                                      show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")
                       ] = False,
    combine: Annotated[bool, typer.Option(
        "--combine", help="Join each side's runs first (refused when their machine or "
        "versions differ). Default: each run of A against each run of B.")] = False,
) -> None:
    """Compare complexity runs: B/A per metric for every setting both measured.

    Each run (results file) of A is compared with each run of B on its own unless \
--combine. A ratio is marked when it is larger than the runs' own spread: latency and \
throughput when the p10-p90 intervals do not overlap, counted FLOPs and parameters when they \
differ at all. Lists how the runs were made differently (device, versions, flags, threads, \
load average, command).
    """
    import dataclasses

    from gfbench.compare import compare_runs
    from gfbench.render import print_comparison, print_json

    comparison = compare_runs(a, b, combine=combine)
    if as_json:
        print_json({**dataclasses.asdict(comparison), "marked": comparison.marked})
    else:
        print_comparison(comparison)


def main() -> None:
    """Console-script entry point: a GfbenchError becomes one red line and exit code 1."""
    try:
        app()
    except GfbenchError as exc:
        print_error(str(exc))
        sys.exit(1)
