"""The gfbench command line: parse, call one library function, render. Nothing else.

Options that several commands share are defined once below (type, parsing, help); their
parsers live in gfbench.options, so a bad value reads the same in every command. A command
parses, calls its library entry point through `_run` (Ctrl-C and torchrun peers handled one
way), and renders through `_show` (--json / --quiet / tables, one way).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from gfbench.defaults import DEFAULT_FOURIER_EPS, DEFAULT_FOURIER_GRID, FLOP_CONVENTION
from gfbench.errors import GfbenchError, PeerFailed, RunInterrupted
from gfbench.options import (
    BatchSizes,
    MemoryBudget,
    Names,
    Sizes,
    comma_list,
    one_batch_size,
    parse_batch_sizes,
    parse_device,
    parse_jpeg_quality,
    parse_memory_budget,
    parse_out,
    parse_precision,
    parse_sizes,
    parse_spec,
)
from gfbench.render import console, print_error

app = typer.Typer(
    name="gfbench",
    help="How does a token mixer scale, and how robust is a checkpoint? "
    "Counted FLOPs, measured latency and memory, ImageNet-C and FGSM/PGD.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# --- options several commands share: one definition each ---

Models = Annotated[Names | None, typer.Option(
    "--models", metavar="NAMES", parser=comma_list("--models", "model names, patterns or @files"),
    help="Comma list of gfbench or timm model names, timm-style patterns ('convnext_*') and "
    "@files (one a line). Default: gfnet,deit,resmlp (GFNet-XS, DeiT-S, ResMLP-12).")]
Exclude = Annotated[Names | None, typer.Option(
    "--exclude", metavar="NAMES", parser=comma_list("--exclude", "model names or patterns"),
    help="Comma list of names or patterns to leave out of --models.")]
Res = Annotated[Sizes | None, typer.Option(
    "--res", metavar="SIZES", parser=parse_sizes,
    help="Comma list of input resolutions: N, HxW or 'native' (the model's pretrained size). "
    "Default: 224,320,448,640 for gfbench's models, native for timm's.")]
Device = Annotated[str, typer.Option(
    "--device", parser=parse_device,
    help="auto, cpu, cuda or cuda:N (under torchrun each rank takes its local GPU).")]
Precision = Annotated[str, typer.Option(
    "--precision", parser=parse_precision,
    help="fp32, bf16 or fp16 (autocast; fp16 needs CUDA).")]
BatchSize = Annotated[BatchSizes | None, typer.Option(
    "--batch-size", metavar="N", parser=parse_batch_sizes,
    help="Images per batch, a whole number >= 1 (complexity: a comma list is a batch sweep, "
    "e.g. 1,8,32). Default: complexity 32 on CUDA and 1 on the CPU; robustness 64.")]
Out = Annotated[Path | None, typer.Option(
    "--out", metavar="FOLDER", parser=parse_out,
    help="Folder to write into (created when missing; gfbench names the files, so a name "
    "ending in .json is refused). Default: runs/ (plot: plots/ beside its inputs).")]
Json = Annotated[bool, typer.Option(
    "--json", help="Print the result as JSON (for scripts) instead of tables.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="Print nothing; just write the files.")]
Reparam = Annotated[bool, typer.Option(
    "--reparam", help="Fuse re-parameterisable models (RepVGG, MobileOne, FastViT, LeViT...) "
    "to their deploy form with timm's reparameterize_model before measuring, as timm's "
    "published tables count them; each row records it. Models with nothing to fuse are "
    "unchanged.")]

R = TypeVar("R")


def _run(entry: Callable[..., R], *args: Any) -> R:
    """Call a library entry point: Ctrl-C keeps what was written and says how to go on (exit
    130); a torchrun peer's failure was reported by that peer (exit 1)."""
    try:
        return entry(*args)
    except RunInterrupted as stop:
        if stop.is_main:
            from gfbench.render import print_interrupted

            print_interrupted(stop.rows_kept, stop.path, _resume_command(stop))
        raise typer.Exit(130) from None
    except PeerFailed:
        raise typer.Exit(1) from None


def _resume_command(stop: RunInterrupted) -> str | None:
    """This command line made to continue the interrupted run: numbered runs with --resume
    RUN (any --resume it had replaced), the others without --no-resume (None: no resume)."""
    import shlex

    if not stop.resumable:
        return None
    kept, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif stop.run_id and arg == "--resume":
            skip = True
        elif not (arg.startswith("--resume=") or arg == "--no-resume"):
            kept.append(arg)
    return shlex.join(["gfbench", *kept, *(["--resume", stop.run_id] if stop.run_id else [])])


def _show(report: Any, as_json: bool, quiet: bool, render: Callable[[Any], None]) -> None:
    """One way out for every command: JSON, nothing, or the tables; exit 1 when the report
    holds a failure (an error row)."""
    from gfbench.render import print_json

    if as_json:
        print_json(report.as_json())
    elif not quiet:
        render(report)
    if getattr(report, "failed", False):
        raise typer.Exit(1)


def _fields(request_type: type, values: dict[str, Any]) -> dict[str, Any]:
    """A command's parameters named as its request's fields, an option left out (None)
    taking the field's default: the request is the one place defaults live."""
    return {f.name: values[f.name] for f in dataclasses.fields(request_type)
            if values[f.name] is not None}


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


# --- list ---


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
    from gfbench.layers import mixer_catalogue
    from gfbench.models import model_catalogue, selection_catalogue
    from gfbench.render import print_catalogue, selection_table

    if timm is not None:
        rows = selection_catalogue([timm], params=params)
        console.print(selection_table(rows, f"{len(rows)} models selected by {timm}"))
    else:
        print_catalogue(model_catalogue(), mixer_catalogue())


# --- complexity ---

_COMPLEXITY_HELP = f"""Count FLOPs and parameters, measure latency and peak memory, fit \
scaling exponents.

{FLOP_CONVENTION} Counted on the meta device (any size, no memory) and cross-checked with \
fvcore where the model fits; ops no rule counts are listed per row.

Latency: median and 10th/90th percentiles after warm-up (CUDA events on a GPU, a monotonic \
clock on the CPU), each setting timed in a fresh process (--processes K pools K); the first \
call is never timed. Memory: peak above the resident model during one step (CUDA allocator; \
on the CPU the peak RSS of a child process). Out of memory is an 'oom' row and the sweep goes \
on; a model that fails is an 'error' row with its reason. The last line counts rows by \
status; the exit code is 1 when any row is an error.

Exponents come with their fit quality; a timed one prints "noisy" where its p10/p90 cannot \
fix it. One warning line each when the load average exceeded the cores or a timed row's \
p10-p90 spread exceeds 20% of its median.

Every invocation is a run of its own: rows go to runs/<NNNN>-complexity-<models|mixers>-\
<device>-b<batch>-<precision>-<mode>.json and .csv (NNNN: the next run number of the folder), \
each row as it finishes; no run changes another's rows. --resume RUN continues one run. \
Several GPUs: torchrun --nproc_per_node=K -m gfbench complexity ... (rank 0 writes the run).
"""

Mixers = Annotated[Names | None, typer.Option(
    "--mixers", metavar="NAMES", parser=comma_list("--mixers", "token mixer names"),
    help="Comma list of bare token mixers instead of models (see `gfbench list`).")]
Tokens = Annotated[Names | None, typer.Option(
    "--tokens", metavar="GRIDS", parser=comma_list("--tokens", "token grids such as 14 or 14x28"),
    help="Token grids of --mixers: sides (14 = 14x14 tokens) or HxW. Default: 14,28,56.")]
Metrics = Annotated[Names | None, typer.Option(
    "--metrics", metavar="NAMES", parser=comma_list("--metrics", "flops, params, latency, memory"),
    help="Comma list of flops, params, latency, memory. flops,params alone count on the meta "
    "device (any size, no memory; fvcore's cross-check, unless --no-fvcore, traces real CPU "
    "tensors for models up to 20 GFLOPs). Default: all four.")]
NumClasses = Annotated[int | None, typer.Option(
    help="Classifier outputs of every model (0: no head). Default: each model's own.")]
Dim = Annotated[int, typer.Option(help="Channel width of --mixers.")]
Mode = Annotated[str, typer.Option(
    help="infer (forward, no autograd) or train (forward + backward).")]
Warmup = Annotated[int | None, typer.Option(
    help="Untimed calls before timing (>= 1). Default: 10 on CUDA, 2 on the CPU.")]
Repeat = Annotated[int | None, typer.Option(
    help="Timed calls. Default: 50 on CUDA, 10 on the CPU.")]
Processes = Annotated[int | None, typer.Option(
    help="Fresh processes the timed calls are spread over and pooled (heap and page placement "
    "move a CPU timing from one process to the next; the p10-p90 band then spans them). "
    "Default: 1; at most --repeat.")]
Threads = Annotated[int | None, typer.Option(
    help="CPU threads torch may use (recorded in each row). Default: torch's own.")]
WarmupS = Annotated[float | None, typer.Option(
    "--warmup-s", help="Least warm-up time in seconds, besides --warmup calls. Default: 0.5 on "
    "CUDA, 1 on the CPU.")]
FlushL2 = Annotated[bool, typer.Option(
    "--flush-l2", help="Evict the cache before every timed call (single-layer micro-benchmarks: "
    "latency against the memory floor).")]
Optimizer = Annotated[str, typer.Option(
    help="With --mode train: sgd or adamw makes the optimizer's update (and its state's memory) "
    "part of the step. Default: forward + backward only.")]
Compile = Annotated[bool, typer.Option(
    "--compile", help="torch.compile the module (first-call time reported apart).")]
ChannelsLast = Annotated[bool, typer.Option(
    "--channels-last", help="channels_last memory format for models and their input.")]
Impl = Annotated[str, typer.Option(
    help="GFNet's global filter: reference (float32 cuFFT, as released), fast (gfbench's fused "
    "Triton kernel, CUDA only) or auto (fast where it can run). Rows record which one ran.")]
Isolate = Annotated[bool, typer.Option(
    "--isolate/--no-isolate", help="Count, time and measure memory each in a fresh child "
    "process with this environment: no number depends on what ran before it, and a crash "
    "(segfault, OOM killer, poisoned CUDA context) is one row. --no-isolate times in this "
    "process (debugging; numbers then depend on earlier settings).")]
Predict = Annotated[bool, typer.Option(
    "--predict", help="Predict each setting's peak memory without the device (pred_mem_bytes, "
    "same meaning as the measured peak; fp32; meta-device trace, CUDA allocator unless "
    "--device cpu). See docs/memory.md.")]
FitMemory = Annotated[MemoryBudget | None, typer.Option(
    "--fit-memory", metavar="BUDGET", parser=parse_memory_budget, help="A size (80GiB, 24GB, "
    "512MiB) or a device kind (h100-sxm, h200, a100-80gb, l4...: its nominal capacity): the "
    "largest batch whose predicted peak fits, per model and size, and the smallest size that "
    "does not fit at --batch-size; on a device, each found batch is measured too.")]
Fvcore = Annotated[bool, typer.Option(
    "--fvcore/--no-fvcore", help="Cross-check counts with fvcore (real tensors, models up to "
    "20 GFLOPs). --no-fvcore counts on the meta device only (fast, any size).")]
Resume = Annotated[str | None, typer.Option(
    "--resume", metavar="RUN", show_default=False, help="Continue run RUN of --out instead of "
    "starting a new run: its number (7 or 0007), 'last' (the newest run of this kind of sweep) "
    "or the path of its .json. Settings already in it are skipped, the rest appended to it.")]


@app.command("complexity", help=_COMPLEXITY_HELP)
def complexity_command(
    models: Models = None, exclude: Exclude = None, resolutions: Res = None,
    num_classes: NumClasses = None, mixers: Mixers = None, tokens: Tokens = None,
    dim: Dim = 384, batch_sizes: BatchSize = None, precision: Precision = "fp32",
    mode: Mode = "infer", metrics: Metrics = None,
    device: Device = "auto", warmup: Warmup = None, repeat: Repeat = None,
    processes: Processes = None, threads: Threads = None, warmup_s: WarmupS = None,
    flush_l2: FlushL2 = False, optimizer: Optimizer = "", compile: Compile = False,
    channels_last: ChannelsLast = False, impl: Impl = "reference", isolate: Isolate = True,
    fvcore: Fvcore = True, reparam: Reparam = False, predict: Predict = False,
    fit_memory: FitMemory = None, out: Out = None, resume: Resume = None, quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """`gfbench complexity` (its help is _COMPLEXITY_HELP, built around the FLOP convention)."""
    from gfbench.measure.complexity import run_complexity
    from gfbench.measure.plan import ComplexityRequest
    from gfbench.render import ComplexityProgress, print_complexity_run

    request = ComplexityRequest(**_fields(ComplexityRequest, locals()))
    with ComplexityProgress(enabled=not (quiet or as_json)) as progress:
        report = _run(run_complexity, request, progress)
    if report.is_main:
        _show(report, as_json, quiet, print_complexity_run)


# --- ceilings ---


@app.command("ceilings")
def ceilings_command(
    device: Device = "auto",
    threads: Threads = None,
    repeat: Annotated[int, typer.Option(
        help="Timed calls per kernel (the default takes ~3 s on 2 CPU cores); more for tighter "
        "percentiles.")] = 10,
    spec: Annotated[str | None, typer.Option(
        "--spec", metavar="KIND", parser=parse_spec, help="Print a vendor spec instead of "
        "measuring: a known kind (h100-sxm, a100-80gb, ...) or all. Needs no device.")] = None,
    quiet: Quiet = False, as_json: Json = False,
) -> None:
    """Measure this machine's ceilings: GEMM multiply-adds per second per precision (CPU fp32
    and bf16; CUDA fp32 with TF32 off, tf32, bf16, fp16) and STREAM copy/triad bandwidth, each
    as p10/p50/p90. On a known GPU the vendor spec is shown beside them, labelled "spec".
    `gfbench complexity` measures them before its timed settings and records them in the run.
    """
    from gfbench.measure.ceilings import CeilingsRequest, run_ceilings
    from gfbench.render import print_ceilings

    request = CeilingsRequest(**_fields(CeilingsRequest, locals()))
    _show(_run(run_ceilings, request), as_json, quiet, print_ceilings)


# --- breakdown ---


class BreakdownEngine(str, Enum):
    """Which FLOP engine(s) `gfbench breakdown` asks for per-module counts."""

    torch = "torch"
    fvcore = "fvcore"
    both = "both"


@app.command("breakdown")
def breakdown_command(
    models: Models = None, exclude: Exclude = None, resolutions: Res = None,
    depth: Annotated[int, typer.Option(
        help="Module depth of the rows: 0 the whole model, 1 its children (blocks, head...), "
        "3 e.g. blocks.0.attn.")] = 1,
    engine: Annotated[BreakdownEngine, typer.Option(
        help="torch: FlopCounterMode on the meta device (any size, no memory); fvcore: traced "
        "on real CPU tensors; both: one set of rows each.")] = BreakdownEngine.torch,
    reparam: Reparam = False, time: Annotated[bool, typer.Option(
        "--time", help="Also time each row's own latency on --device (forward hooks) at "
        "--batch-size, with the roofline against ceilings measured once.")] = False,
    device: Device = "auto", batch_sizes: BatchSize = None, warmup: Warmup = None,
    repeat: Repeat = None, out: Out = None, quiet: Quiet = False, as_json: Json = False,
) -> None:
    """Where the FLOPs and parameters go: per module at a depth, grouped into token mixer, \
channel MLP, norm, embedding, head and other, with the token mixer's share.

    Counts follow the FLOP convention of `gfbench complexity`; each setting's rows add up \
to the model total of the same engine, and ops no rule counts are listed per row. Every \
invocation is a run of its own: rows go to runs/<NNNN>-breakdown-d<depth>-<engine>.json \
and .csv (NNNN: the next run number of the folder; -<device>-b<batch> added with --time). \
Exit code 1 when a setting failed.
    """
    from gfbench.measure.breakdown import BreakdownRequest, count_breakdown
    from gfbench.render import BreakdownProgress, print_breakdown_run

    request = BreakdownRequest(models or (), exclude or (), resolutions or (), depth,
                               engine.value, out, reparam, time, device,
                               one_batch_size(batch_sizes, "breakdown"), warmup,
                               repeat)
    with BreakdownProgress(enabled=not (quiet or as_json)) as progress:
        report = _run(count_breakdown, request, progress)
    _show(report, as_json, quiet, print_breakdown_run)


# --- robustness ---


class ClassMap(str, Enum):
    """Where class indices come from."""

    imagenet = "imagenet"
    folders = "folders"


_TEST_SETS = {"imagenet_a": "imagenet-a", "imagenet_r": "imagenet-r",
              "imagenet_sketch": "imagenet-sketch", "imagenet_v2": "imagenet-v2"}
Folder = Path | None


Ckpt = Annotated[Path, typer.Option(
    "--ckpt", help="Checkpoint: released GFNet file, timm/DeiT/ResMLP or gfbench's own.")]
Arch = Annotated[str | None, typer.Option(
    "--model", help="Architecture (gfbench or timm name); inferred from the checkpoint when "
    "omitted.")]
Data = Annotated[Folder, typer.Option(
    help="ImageNet-C root: a folder per corruption, in it one per severity (1-5), in each "
    "one per class (wnid) holding its images.")]
Clean = Annotated[Folder, typer.Option(
    help="ImageNet val folder (<wnid>/<image>): clean error, relative mCE, attacks.")]
GenerateFrom = Annotated[Folder, typer.Option(
    "--generate-from", help="Clean folder to corrupt in memory with gfbench's generator (not "
    "comparable to published ImageNet-C numbers).")]
Corruptions = Annotated[str, typer.Option(
    help="'default' (the 15), 'all' (+4 extra), 'c-bar' (ImageNet-C-bar's 10, with "
    "--generate-from) or a comma list of these and names.")]
Severities = Annotated[str, typer.Option(help="Severities: a range or list, e.g. 1-5, 1,3,5.")]
Attack = Annotated[list[str] | None, typer.Option(
    "--attack", help="fgsm or pgd on --clean (repeat for both), budgets of the GFNet paper.")]
Workers = Annotated[int, typer.Option(
    help="Data-loading processes (0 decodes in the main process).")]
DEFAULT_WORKERS = min(8, os.cpu_count() or 1)
Limit = Annotated[int | None, typer.Option(help="At most N images per class (quick looks).")]
ImagenetA = Annotated[Folder, typer.Option(
    "--imagenet-a", help="ImageNet-A folder (<wnid>/<image>, 200 classes: the 1000-way logits "
    "restricted to them).")]
ImagenetR = Annotated[Folder, typer.Option(
    "--imagenet-r", help="ImageNet-R folder (<wnid>/<image>, 200 classes, as ImageNet-A).")]
ImagenetSketch = Annotated[Folder, typer.Option(
    "--imagenet-sketch", help="ImageNet-Sketch folder (<wnid>/<image>, 1000 classes).")]
ImagenetV2 = Annotated[Folder, typer.Option(
    "--imagenet-v2", help="An ImageNetV2 variant's folder (<0..999>/<image>: folders named by "
    "class index).")]
Seed = Annotated[int, typer.Option(help="Seed of generated corruptions and PGD starts.")]
ClassMapOption = Annotated[ClassMap, typer.Option(
    "--class-map", help="imagenet: labels from the canonical ImageNet-1k wnid list; folders: "
    "sorted folder names (a data set with its own classes).")]
JpegQuality = Annotated[int | None, typer.Option(
    "--jpeg-quality", metavar="Q", parser=parse_jpeg_quality,
    help="Save each generated corruption as a JPEG of quality Q (1-95) with PIL and read it "
    "back, as the released ImageNet-C files were saved (85); needs --generate-from.")]
ResumeParts = Annotated[bool, typer.Option(
    "--resume/--no-resume", help="Skip the parts already in this checkpoint's results file "
    "(--no-resume evaluates them again and replaces their rows; other parts' rows are kept).")]
FourierMap = Annotated[bool, typer.Option(
    "--fourier-map", help="Fourier heat map on --clean (Yin et al. 2019): the error with one "
    "Fourier basis image added per frequency; one part per frequency (see --fourier-grid).")]
FourierGrid = Annotated[int | None, typer.Option(
    "--fourier-grid", help=f"N x N frequencies spread over the spectrum (default "
    f"{DEFAULT_FOURIER_GRID}; half evaluated, the other mirrored); the image side (224) = "
    "every frequency, as the paper (25,090 passes).")]
FourierEps = Annotated[float | None, typer.Option(
    "--fourier-eps", help=f"L2 norm of the basis image per channel, [0, 1] pixels (default "
    f"{DEFAULT_FOURIER_EPS}, the paper's ImageNet value; 4 on CIFAR-10).")]


@app.command("robustness")
def robustness_command(
    ckpt: Ckpt, model: Arch = None, data: Data = None, clean: Clean = None,
    generate_from: GenerateFrom = None, jpeg_quality: JpegQuality = None,
    corruptions: Corruptions = "default",
    severities: Severities = "1-5", attack: Attack = None, batch_size: BatchSize = None,
    workers: Workers = DEFAULT_WORKERS, device: Device = "auto",
    precision: Precision = "fp32", limit: Limit = None, imagenet_a: ImagenetA = None,
    imagenet_r: ImagenetR = None, imagenet_sketch: ImagenetSketch = None,
    imagenet_v2: ImagenetV2 = None, out: Out = None, seed: Seed = 0,
    class_map: ClassMapOption = ClassMap.imagenet, resume: ResumeParts = True,
    quiet: Quiet = False, as_json: Json = False, fourier_map: FourierMap = False,
    fourier_grid: FourierGrid = None, fourier_eps: FourierEps = None,
) -> None:
    """Evaluate a checkpoint on ImageNet-C (CE, mCE, relative mCE), clean val, ImageNet-A/R/\
Sketch/V2 and FGSM/PGD. Results go to <out>/robustness-<model>-<ckpt>-<key>.json and .csv \
(key: hash of the checkpoint's content and the settings); the same command resumes.

    Several GPUs: torchrun --nproc_per_node=K -m gfbench robustness ... (rank 0 writes).
    """
    from gfbench.render import RobustnessProgress, print_robustness_run
    from gfbench.robustness.evaluate import robustness_config, run_robustness

    given = locals()
    config = robustness_config(
        ckpt, model=model, data=data, clean=clean, generate_from=generate_from,
        corruptions=corruptions, severities=severities, attacks=attack or (),
        batch_size=batch_size, workers=workers, device=device, precision=precision,
        limit=limit, out=out, seed=seed, class_map=class_map.value, resume=resume,
        fourier_map=fourier_map, fourier_grid=fourier_grid, fourier_eps=fourier_eps,
        jpeg_quality=jpeg_quality,
        test_sets={name: folder for key, name in _TEST_SETS.items() if (folder := given[key])})
    with RobustnessProgress(enabled=not (quiet or as_json)) as progress:
        report = _run(run_robustness, config, progress)
    if report.is_main:
        _show(report, as_json, quiet, print_robustness_run)


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


Inputs = Annotated[list[Path], typer.Argument(
    help="Results files (.json, or the .csv beside one) or folders, searched recursively.",
    show_default=False)]
Formats = Annotated[str, typer.Option(
    "--format", help="Figure formats, a comma list of png, svg, pdf.")]
Scale = Annotated[AxisScale, typer.Option(
    help="Complexity axes: log (log-log: power laws are straight lines, slope = exponent), "
    "linear (as the GFNet paper), or both.")]
XOption = Annotated[XAxis, typer.Option(
    "--x", help="x axis of the complexity figures: token count or input resolution.")]
Metric = Annotated[SpeedMetric, typer.Option(
    help="Speed panel: latency per batch or throughput in images/s.")]
RefSlopes = Annotated[bool, typer.Option(
    "--ref-slopes/--no-ref-slopes", help="Grey N log N and N² guides from the smallest N.")]
ComparePair = Annotated[tuple[Path, Path] | None, typer.Option(
    help="Two results files or folders A B: add `gfbench compare A B` to the report.",
    show_default=False)]
Combine = Annotated[bool, typer.Option(
    "--combine", help="Join the runs of one setting first (newest row per setting). Refused "
    "when their machine or gfbench/torch/timm versions differ; a warning when their threads "
    "or load differ. Default: each run on its own.")]


@app.command("plot")
def plot_command(
    paths: Inputs, out: Out = None, fmt: Formats = "png,svg", scale: Scale = AxisScale.log,
    x: XOption = XAxis.tokens, metric: Metric = SpeedMetric.latency, ref_slopes: RefSlopes = True,
    compare: ComparePair = None, combine: Combine = False, quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Figures (PNG/SVG/PDF), report.md and a self-contained report.html from results files.

    Each run (one results file) is drawn and fitted on its own, its figures named by its run \
number; --combine joins runs. The output folder is plot's own: figures an earlier plot made \
there and this one does not are removed (only files listed in its .gfbench-plots.json). \
Exit code 1 when no input holds a usable row.
    """
    import gfbench.plot
    from gfbench.render import print_plot_report

    options = gfbench.plot.PlotOptions(
        out=out, formats=gfbench.plot.parse_formats(fmt), scale=scale.value, x=x.value,
        metric=metric.value, ref_slopes=ref_slopes, compare=compare if compare else None,
        combine=combine)
    _show(_run(gfbench.plot.make_plots, paths, options), as_json, quiet, print_plot_report)


# --- compare ---


@app.command("compare")
def compare_command(
    a: Annotated[Path, typer.Argument(help="Run A: a results file (.json or .csv) or folder.",
                                      show_default=False)],
    b: Annotated[Path, typer.Argument(help="Run B, compared with A (ratios are B/A).",
                                      show_default=False)],
    combine: Combine = False, quiet: Quiet = False, as_json: Json = False,
) -> None:
    """Compare complexity runs: B/A per metric for every setting both measured.

    Each run (results file) of A is compared with each run of B on its own unless \
--combine. A ratio is marked when it is larger than the runs' own spread: latency and \
throughput when the p10-p90 intervals do not overlap, counted FLOPs and parameters when they \
differ at all. Lists how the runs were made differently (device, versions, flags, threads, \
load average, command).
    """
    from gfbench.compare import compare_runs
    from gfbench.render import print_comparison

    _show(_run(compare_runs, a, b, combine), as_json, quiet, print_comparison)


def main() -> None:
    """The command line in this process: a GfbenchError becomes one red line and exit code 1."""
    try:
        app()
    except GfbenchError as exc:
        print_error(str(exc), exc.details)
        sys.exit(1)


def entry() -> None:
    """Console-script and `python -m gfbench` entry point: main, then a quick exit.

    Once the command is done, Python's own shutdown (freeing every module of torch, timm and
    scipy one by one) takes 1-3 s on a 2-core machine and does nothing a finished command
    needs. So the exit handlers run and the streams are flushed, then the process ends with
    the command's exit code. Where another (non-daemon) thread still runs, the normal shutdown
    waits for it instead.
    """
    import atexit
    import contextlib
    import threading

    try:
        main()
        code = 0
    except SystemExit as stop:
        if stop.code is not None and not isinstance(stop.code, int):
            raise  # a message: let Python print it
        code = stop.code or 0
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()
           if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone (| head), a closed stream
            stream.flush()
    os._exit(code)
