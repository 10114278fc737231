"""What a complexity sweep will measure: the request as typed, validated into settings, options
and the results file they go to. Every check happens here, before any work starts, and fails
in one line (GfbenchError) naming the option and what it allows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gfbench.defaults import BYTES_CONVENTION, DEFAULT_OUT, DEFAULT_TOKENS
from gfbench.device import PRECISIONS, device_kind, resolve_device
from gfbench.distributed import DistContext
from gfbench.errors import GfbenchError, ResolutionError
from gfbench.layers import get_mixer
from gfbench.layers.global_filter import IMPLS
from gfbench.measure.setting import (
    DEFAULT_FVCORE_MAX_FLOPS,
    DEVICE_METRICS,
    METRICS,
    Setting,
    SweepOptions,
)
from gfbench.measure.timing import MODES, OPTIMIZERS
from gfbench.options import MemoryBudget
from gfbench.results import check_output_folder, find_run

# (batch, warmup, repeat, processes) when not given: enough repetitions for stable
# percentiles on a GPU; on a CPU small enough that the default run (the trio at four sizes)
# takes about a minute and a half. One timing process per setting: spreading a few repeats
# over several processes widens the bands with calls the allocator has not settled in yet
# (--processes K samples the differences between processes when they matter).
DEVICE_DEFAULTS = {"cuda": (32, 10, 50, 1), "cpu": (1, 2, 10, 1)}


@dataclass(frozen=True)
class ComplexityRequest:
    """What the user asked for, as typed on the command line (before validation)."""

    models: Sequence[str] = ()
    exclude: Sequence[str] = ()
    mixers: Sequence[str] = ()
    resolutions: Sequence[str] = ()
    tokens: Sequence[str] = ()
    dim: int = 384
    batch_sizes: Sequence[int | str] = ()
    precision: str = "fp32"
    mode: str = "infer"
    metrics: Sequence[str] = METRICS
    device: str = "auto"
    warmup: int | None = None
    repeat: int | None = None
    compile: bool = False
    channels_last: bool = False
    out: Path | None = None
    resume: str | None = None  # a run of --out to continue: its number, 'last' or its .json
    impl: str = "reference"  # GFNet's global filter: "reference", "fast" or "auto"
    num_classes: int | None = None  # None: each model's own default (timm's, 0 included)
    isolate: bool = True  # run the settings in a worker child: a crash is only an error row
    fvcore: bool = True  # cross-check the counts with fvcore where the model fits
    threads: int | None = None  # CPU threads for torch (None: torch's default)
    optimizer: str = ""  # train mode: "" (gradients only), "sgd" or "adamw" in the step
    warmup_s: float | None = None  # least warm-up time (None: timing.DEFAULT_WARMUP_S)
    flush_l2: bool = False  # evict the cache before every timed call
    processes: int | None = None  # fresh processes the repeats are spread over (None: default)
    reparam: bool = False  # models: fuse re-parameterisable ones to their deploy form first
    predict: bool = False  # predict each step's peak memory on the meta device (pred_mem_bytes)
    fit_memory: MemoryBudget | None = None  # the largest batch whose predicted need fits this


@dataclass
class SweepPlan:
    """Validated settings and options, and where the rows go: a new run
    ``<folder>/<NNNN>-<name>`` or, with ``resume``, the run it names."""

    settings: list[Setting]
    options: SweepOptions
    folder: Path
    name: str  # the runs' descriptive name: complexity-<models|mixers>-<device>-b...-<mode>
    device: str
    resume: str | None = None
    isolate: bool = False
    threads: int | None = None
    dist: DistContext = field(default_factory=DistContext)
    extra: dict = field(default_factory=dict)


def parse_token_grid(text: str) -> tuple[int, int]:
    """'14' -> (14, 14) tokens; '14x28' -> (14, 28)."""
    from gfbench.models import parse_resolution

    try:
        return parse_resolution(text)
    except ResolutionError:
        raise ResolutionError(f"--tokens {text!r} is not a side or HxW (examples: 14, 14x28)") \
            from None


def parse_batch_sizes(values: Sequence[int | str]) -> list[int]:
    """[1, '8', '16'] -> [1, 8, 16]; each a whole number >= 1."""
    sizes = []
    for value in values:
        try:
            size = int(value)
        except (TypeError, ValueError):
            size = 0
        if size < 1:
            raise GfbenchError(f"--batch-size {value!r} is not a whole number >= 1 "
                               "(a comma list is a batch sweep, e.g. 1,8,32)")
        sizes.append(size)
    return list(dict.fromkeys(sizes))


def _check_choice(option: str, value: str, allowed: Sequence[str]) -> None:
    """GfbenchError naming the option and its allowed values."""
    if value not in allowed:
        raise GfbenchError(f"{option} {value!r} is not one of {', '.join(allowed)}")


def _model_settings(request: ComplexityRequest, common: dict) -> list[Setting]:
    """Models x resolutions (a resolution a model cannot take becomes that row's error)."""
    from gfbench.models import check_size_texts, chosen_models, model_sizes

    check_size_texts(request.resolutions)  # every size's syntax now, before any model is built
    if request.num_classes is not None and request.num_classes < 0:
        raise GfbenchError(f"--num-classes {request.num_classes} must be >= 0 (0: no head)")
    return [Setting("model", name, h, w, num_classes=request.num_classes,
                    reparam=request.reparam, **common)
            for name in chosen_models(request.models, request.exclude)
            for h, w in model_sizes(name, request.resolutions)]


def _mixer_settings(request: ComplexityRequest, common: dict) -> list[Setting]:
    """Mixers x token grids at one width."""
    names = list(dict.fromkeys(get_mixer(n).name for n in request.mixers))
    grids = list(dict.fromkeys(parse_token_grid(t) for t in (request.tokens or DEFAULT_TOKENS)))
    if request.dim < 1:
        raise GfbenchError(f"--dim {request.dim} must be a positive channel count")
    return [Setting("mixer", name, h, w, dim=request.dim, **common)
            for name in names for h, w in grids]


def uses_global_filter(subject: str, name: str) -> bool:
    """Whether a model or mixer contains GFNet's global filter (the only layer --impl changes)."""
    if subject == "mixer":
        return name == "global_filter"
    from gfbench.models import timm_name

    return timm_name(name).startswith("gfnet_")


def resolve_impl(impl: str, device: str) -> str:
    """The global filter that will run: the fused kernel only where it can (CUDA + Triton)."""
    _check_choice("--impl", impl, IMPLS)
    if impl == "reference" or device == "meta":
        return "reference"
    from gfbench.layers.fast_filter import kernel_can_run

    return "fast" if kernel_can_run(torch.device(device)) else "reference"


def _check_conflicts(request: ComplexityRequest) -> None:
    """Options that cannot go together, named both."""
    if request.models and request.mixers:
        raise GfbenchError("--models and --mixers cannot be combined: measure models or bare "
                           "mixers, one per run")
    if request.mixers and request.resolutions:
        raise GfbenchError("--res applies to --models; bare mixers take --tokens")
    if request.tokens and not request.mixers:
        raise GfbenchError("--tokens applies to --mixers; models take --res")
    if request.mixers and (request.exclude or request.num_classes is not None):
        raise GfbenchError("--exclude and --num-classes apply to --models, not to --mixers")
    if request.mixers and request.reparam:
        raise GfbenchError("--reparam applies to --models (it fuses a model's training-time "
                           "branches), not to --mixers")
    if request.channels_last and request.mixers:
        raise GfbenchError("--channels-last applies to models (NCHW images), not to mixers")
    if request.threads is not None and request.threads < 1:
        raise GfbenchError(f"--threads {request.threads} must be >= 1")
    if request.optimizer:
        _check_choice("--optimizer", request.optimizer, OPTIMIZERS)
        if request.mode != "train":
            raise GfbenchError(f"--optimizer {request.optimizer} needs --mode train (an "
                               "inference step has no update)")
    if (request.predict or request.fit_memory) and request.precision != "fp32":
        raise GfbenchError(f"--predict and --fit-memory predict fp32 steps only so far, not "
                           f"--precision {request.precision}")
    if request.warmup_s is not None and request.warmup_s < 0:
        raise GfbenchError(f"--warmup-s {request.warmup_s} must be >= 0 seconds")


def plan_complexity(request: ComplexityRequest, results_dir: Path = DEFAULT_OUT,
                    dist: DistContext | None = None) -> SweepPlan:
    """Validate a request (GfbenchError, one line, on the first problem) and plan the sweep.

    Under torchrun (``dist``) every rank plans the same sweep; each measures its own share on
    its own device (the GPU of its local rank).
    """
    dist = dist or DistContext()
    _check_conflicts(request)
    metrics = frozenset(m.strip().lower() for m in request.metrics)
    for metric in metrics:
        _check_choice("--metrics", metric, METRICS)
    _check_choice("--precision", request.precision, tuple(PRECISIONS))
    _check_choice("--mode", request.mode, MODES)
    on_device = bool(metrics & DEVICE_METRICS)
    device = (resolve_device(request.device, dist.local_rank if dist.distributed else None)
              if on_device else "meta")
    if request.precision == "fp16" and device == "cpu":
        raise GfbenchError("--precision fp16 is not supported on the CPU; use bf16 or fp32")
    batch, warmup, repeat, processes = DEVICE_DEFAULTS[
        "cpu" if device in ("cpu", "meta") else "cuda"]
    batches = parse_batch_sizes(request.batch_sizes) if request.batch_sizes else [batch]
    warmup = request.warmup if request.warmup is not None else warmup
    repeat = request.repeat if request.repeat is not None else repeat
    processes = request.processes if request.processes is not None else processes
    if processes < 1:
        raise GfbenchError(f"--processes {processes} must be >= 1 (fresh processes the timed "
                           "calls are spread over)")
    if warmup < 1 or repeat < 1:
        raise GfbenchError("--warmup and --repeat must be >= 1 (the first call is never timed, "
                           "so at least one warm-up call is needed)")
    common = {"precision": request.precision, "mode": request.mode, "device": device}
    subject = "mixer" if request.mixers else "model"
    shapes = (_mixer_settings(request, {**common, "batch_size": batches[0]}) if request.mixers
              else _model_settings(request, {**common, "batch_size": batches[0]}))
    settings = [dataclasses.replace(s, batch_size=b, optimizer=request.optimizer)
                for s in shapes for b in batches]
    impl = resolve_impl(request.impl, device)
    if request.impl == "fast" and impl == "reference" and device != "meta":
        from gfbench.layers.fast_filter import kernel_support

        raise GfbenchError(f"--impl fast cannot run on {device}: {kernel_support(device)}; "
                           "use --impl auto to fall back to the reference filter")
    settings = [dataclasses.replace(s, impl=impl) if uses_global_filter(s.subject, s.name)
                else s for s in settings]
    budget = request.fit_memory
    options = SweepOptions(metrics=metrics, warmup=warmup, repeat=repeat,
                           compile=request.compile, channels_last=request.channels_last,
                           fvcore_max_flops=DEFAULT_FVCORE_MAX_FLOPS if request.fvcore else -1.0,
                           optimizer=request.optimizer, warmup_s=request.warmup_s,
                           flush_l2=request.flush_l2, processes=min(processes, repeat),
                           predict=request.predict,
                           fit_budget_bytes=budget.bytes if budget else None,
                           fit_budget=budget.label if budget else "")
    folder = Path(request.out) if request.out else Path(results_dir)
    check_output_folder(folder, "--out")
    batch_part = "_".join(str(b) for b in batches)
    name = (f"complexity-{subject}s-{device_kind(device)}-b{batch_part}-{request.precision}-"
            f"{request.mode}{'-reparam' if request.reparam else ''}")
    if request.resume is not None and dist.is_main:  # a run that is not there: fail now
        find_run(folder, name, request.resume)
    extra = {"metrics": sorted(metrics), "warmup": warmup, "repeat": repeat,
             "impl_requested": request.impl, "compile": request.compile,
             "channels_last": request.channels_last, "isolated": request.isolate,
             "fvcore_max_flops": options.fvcore_max_flops, "world_size": dist.world_size,
             "optimizer": request.optimizer, "warmup_s": request.warmup_s,
             "flush_l2": request.flush_l2, "processes": options.processes,
             "reparam": request.reparam, "predict": request.predict,
             "fit_memory": {"budget": budget.label, "budget_bytes": budget.bytes}
             if budget else None}
    extra["bytes_convention"] = BYTES_CONVENTION  # the rows' bytes, beside flop_convention
    threads = request.threads or ranks_share_of_cores(device, dist)
    return SweepPlan(settings, options, folder, name, device, request.resume,
                     request.isolate, threads, dist, extra)


def ranks_share_of_cores(device: str, dist: DistContext) -> int | None:
    """CPU threads of each torchrun rank timing on the CPU when --threads is not given: the
    machine's cores shared out, so ranks do not wait for each other's threads (None: one
    process, torch's own default)."""
    if device != "cpu" or dist.local_world_size < 2:
        return None
    from gfbench.measure.quality import available_cores

    return max(1, available_cores() // dist.local_world_size)
