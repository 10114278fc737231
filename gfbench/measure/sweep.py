"""A complexity sweep: settings in, one results row per setting out, written as each finishes.

Every setting is counted on the meta device first (FLOPs, parameters, token grid: no memory,
any size), then, when asked, measured on the device (peak memory, latency). Running out of
memory is a result (status "oom", counts kept), any other failure a row with status "error";
either way the sweep goes on. With ``resume`` the settings already in the results file are
skipped, so an interrupted sweep loses nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from gfbench.errors import GfbenchError, ResolutionError
from gfbench.layers import build_mixer, get_mixer
from gfbench.layers.global_filter import IMPLS
from gfbench.measure.flops import count_flops, count_params
from gfbench.measure.memory import (
    CUDA_METHOD,
    CpuMemoryWorker,
    cpu_peak_in_child,
    cuda_peak_bytes,
    is_out_of_memory,
)
from gfbench.measure.quality import load_average
from gfbench.measure.timing import MODES, PRECISIONS, Step, make_step, time_step
from gfbench.results import ComplexityRow, ResultsWriter, collect_provenance, row_key

METRICS = ("flops", "params", "latency", "memory")
DEVICE_METRICS = frozenset({"latency", "memory"})
DEFAULT_FVCORE_MAX_FLOPS = 20e9  # cross-check with fvcore (real tensors) up to this size


@dataclass(frozen=True)
class Setting:
    """One thing to measure: a model at a resolution, or a bare mixer on a token grid."""

    subject: str  # "model" | "mixer"
    name: str
    res_h: int  # image side for models, token-grid side for mixers
    res_w: int
    batch_size: int
    precision: str
    mode: str
    device: str  # "cpu", "cuda:0", or "meta" when nothing runs on a device
    dim: int | None = None  # mixers only
    impl: str = "reference"  # the global filter that runs: "reference" or "fast"

    def row(self) -> ComplexityRow:
        """An empty row of this setting (its key is the resume key)."""
        return ComplexityRow(subject=self.subject, name=self.name, res_h=self.res_h,
                             res_w=self.res_w, tokens=0, batch_size=self.batch_size,
                             precision=self.precision, mode=self.mode, device=self.device,
                             dim=self.dim, impl=self.impl)

    def key(self) -> tuple:
        """The results-file key of this setting."""
        return row_key(self.row())


@dataclass(frozen=True)
class SweepOptions:
    """How to measure: which metrics, and the timing protocol."""

    metrics: frozenset[str] = frozenset(METRICS)
    warmup: int = 10
    repeat: int = 50
    compile: bool = False
    channels_last: bool = False
    fvcore_max_flops: float = DEFAULT_FVCORE_MAX_FLOPS


@dataclass
class SweepPlan:
    """Validated settings and options, and where the rows go."""

    settings: list[Setting]
    options: SweepOptions
    stem: Path
    device: str
    resume: bool = False
    extra: dict = field(default_factory=dict)


# --- building what is measured ---------------------------------------------------------------


def _input_shape(setting: Setting, batch_size: int) -> tuple[int, ...]:
    """(B, 3, H, W) images for a model, (B, H, W, D) tokens for a mixer."""
    if setting.subject == "model":
        return (batch_size, 3, setting.res_h, setting.res_w)
    return (batch_size, setting.res_h, setting.res_w, setting.dim)


def _builder(setting: Setting) -> Callable[[], nn.Module]:
    """A zero-argument function that builds the setting's module (on the current device)."""
    if setting.subject == "model":
        from gfbench.models import create_model

        return lambda: create_model(setting.name, img_size=(setting.res_h, setting.res_w),
                                    impl=setting.impl)
    return lambda: build_mixer(setting.name, setting.dim, setting.res_h, setting.res_w,
                               impl=setting.impl)


def _token_count(setting: Setting, meta_model: nn.Module) -> int:
    """Tokens the (first) token mixer sees."""
    if setting.subject == "mixer":
        return setting.res_h * setting.res_w
    from gfbench.models import token_grid

    height, width = token_grid(meta_model)
    return height * width


def build_step(subject: str, name: str, res_h: int, res_w: int, batch_size: int,
               precision: str, mode: str, device: str, dim: int | None = None,
               impl: str = "reference", compile: bool = False,
               channels_last: bool = False) -> Step:
    """Build the module and its input on the device and return one measurable step.

    Module-level with JSON-friendly arguments so that a child process can call it too.
    """
    setting = Setting(subject, name, res_h, res_w, batch_size, precision, mode, device, dim,
                      impl)
    with torch.device(device):
        model = _builder(setting)()
    example = torch.randn(*_input_shape(setting, batch_size), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)
    if compile:
        model = torch.compile(model)
    return make_step(model, example, precision, mode)


# --- measuring one setting -------------------------------------------------------------------


def _count(setting: Setting, options: SweepOptions, row: ComplexityRow) -> None:
    """FLOPs (both engines where fvcore fits), parameters and tokens, from the meta device."""
    builder = _builder(setting)
    with torch.device("meta"):
        meta_model = builder()
    row.tokens = _token_count(setting, meta_model)
    row.params = count_params(meta_model)
    if "flops" not in options.metrics:
        return
    shape = _input_shape(setting, 1)
    try:
        counted = count_flops(meta_model, shape, engine="torch")
        row.flops = row.flops_torch = float(counted.total)
        row.flops_engine = "torch-meta"
        row.uncounted_ops = counted.uncounted_summary()
    except Exception as exc:  # one engine's failure must not lose the row
        _note(row, f"torch counter failed: {_first_line(exc)}")
    if row.flops_torch is None or row.flops_torch <= options.fvcore_max_flops:
        try:
            row.flops = float(count_flops(builder, shape, engine="fvcore").total)
            row.flops_engine = "fvcore"
        except Exception as exc:
            _note(row, "fvcore cross-check ran out of memory" if is_out_of_memory(exc)
                  else f"fvcore failed: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (rows hold one line)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def _note(row: ComplexityRow, message: str) -> None:
    """Add one message to the row's error column (messages are joined by '; ')."""
    row.error = "; ".join(filter(None, [row.error, message]))


def _step_kwargs(setting: Setting, options: SweepOptions) -> dict:
    """build_step's arguments for a setting."""
    return {**dataclasses.asdict(setting), "compile": options.compile,
            "channels_last": options.channels_last}


def _release(device: str) -> None:
    """Free what a failed or finished measurement left behind."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _measure_on_device(setting: Setting, options: SweepOptions, row: ComplexityRow,
                       memory_worker: CpuMemoryWorker | None) -> None:
    """Peak memory and latency on the setting's device; OOM becomes the row's status."""
    metrics = options.metrics
    row.compile, row.channels_last = options.compile, options.channels_last
    row.threads = torch.get_num_threads()
    on_cuda = setting.device.startswith("cuda")
    if "memory" in metrics and not on_cuda:
        request = ("gfbench.measure.sweep:build_step", _step_kwargs(setting, options))
        memory = (memory_worker.measure(*request) if memory_worker is not None
                  else cpu_peak_in_child(*request, threads=torch.get_num_threads()))
        row.peak_mem_bytes, row.mem_method = memory.peak_bytes, memory.method
        if memory.status in ("oom", "error"):
            row.status = memory.status
            _note(row, memory.error)
            return
    if "latency" not in metrics and not ("memory" in metrics and on_cuda):
        return
    step = None
    try:
        step = build_step(**_step_kwargs(setting, options))
        if "latency" in metrics:
            stats = time_step(step, setting.device, options.warmup, options.repeat)
            row.latency_ms_p10, row.latency_ms_p50 = stats.p10_ms, stats.p50_ms
            row.latency_ms_p90, row.first_call_ms = stats.p90_ms, stats.first_call_ms
            row.throughput_ips = stats.throughput(setting.batch_size)
            row.warmup, row.repeat = options.warmup, options.repeat
        if "memory" in metrics and on_cuda:
            row.peak_mem_bytes = float(cuda_peak_bytes(step, setting.device))
            row.mem_method = CUDA_METHOD
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        row.status = "oom"
        _note(row, _first_line(exc))
    finally:
        del step
        _release(setting.device)


def measure(setting: Setting, options: SweepOptions,
            memory_worker: CpuMemoryWorker | None = None) -> ComplexityRow:
    """The row of one setting: counted on meta, then measured on the device if asked.

    CPU memory is measured by ``memory_worker`` (a child process a sweep shares), or by a
    child started for this setting alone.
    """
    row = setting.row()
    try:
        _count(setting, options, row)
        if options.metrics & DEVICE_METRICS:
            _measure_on_device(setting, options, row, memory_worker)
    except GfbenchError:
        raise
    except Exception as exc:  # recorded, and the sweep goes on
        row.status = "oom" if is_out_of_memory(exc) else "error"
        _note(row, _first_line(exc))
        _release(setting.device)
    return row


def run_sweep(plan: SweepPlan, on_start: Callable[[Setting], None] | None = None,
              on_row: Callable[[ComplexityRow, bool], None] | None = None,
              measure_fn: Callable[[Setting, SweepOptions], ComplexityRow] | None = None,
              ) -> list[ComplexityRow]:
    """Measure every setting, writing each row as it finishes; returns the file's rows in
    the plan's order (rows of earlier runs that the plan does not name come last).

    ``on_row(row, skipped)`` is called for each setting, ``skipped`` being True for rows
    already present under ``--resume``. ``measure_fn`` replaces ``measure`` (tests).
    """
    provenance = collect_provenance("complexity", device=plan.device,
                                    load_average_at_start=load_average(), **plan.extra)
    writer = ResultsWriter(plan.stem, provenance, resume=plan.resume)
    existing = {row_key(r): r for r in writer.rows}
    with CpuMemoryWorker(torch.get_num_threads()) as worker:
        measure_one = measure_fn or functools.partial(measure, memory_worker=worker)
        for setting in plan.settings:
            if setting.key() in existing:
                if on_row:
                    on_row(existing[setting.key()], True)
                continue
            if on_start:
                on_start(setting)
            row = measure_one(setting, plan.options)
            writer.add(row)
            if on_row:
                on_row(row, False)
    if not writer.rows:
        writer.flush()
    order = {setting.key(): i for i, setting in enumerate(plan.settings)}
    return sorted(writer.rows, key=lambda r: order.get(row_key(r), len(order)))


def complexity_title(plan: SweepPlan) -> str:
    """What the table measured, in one line: device, batch, precision, mode."""
    if plan.device == "meta":
        return "gfbench complexity: counted on the meta device"
    where = (torch.cuda.get_device_name(torch.device(plan.device))
             if plan.device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)")
    first = plan.settings[0] if plan.settings else None
    setting = f", batch {first.batch_size}, {first.precision}, {first.mode}" if first else ""
    return f"gfbench complexity: {where}{setting}"


# --- planning (validation) -------------------------------------------------------------------


@dataclass(frozen=True)
class ComplexityRequest:
    """What the user asked for, as typed on the command line (before validation)."""

    models: Sequence[str] = ()
    mixers: Sequence[str] = ()
    resolutions: Sequence[str] = ()
    tokens: Sequence[str] = ()
    dim: int = 384
    batch_size: int | None = None
    precision: str = "fp32"
    mode: str = "infer"
    metrics: Sequence[str] = METRICS
    device: str = "auto"
    warmup: int | None = None
    repeat: int | None = None
    compile: bool = False
    channels_last: bool = False
    out: Path | None = None
    resume: bool = False
    impl: str = "reference"  # GFNet's global filter: "reference", "fast" or "auto"


DEFAULT_MODELS = ("gfnet", "deit", "resmlp")
DEFAULT_RESOLUTIONS = ("224", "384", "512")
DEFAULT_TOKENS = ("14", "28", "56")
# (batch, warmup, repeat) when not given: enough repetitions for stable percentiles on a GPU;
# on a CPU small enough that the default run (the trio at 224/384/512) takes about a minute.
DEVICE_DEFAULTS = {"cuda": (32, 10, 50), "cpu": (1, 2, 10)}


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda:0' when a GPU is present, else 'cpu'; checks cuda:i exists."""
    text = device.strip().lower()
    if text == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise GfbenchError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:<index>")
    if not torch.cuda.is_available():
        raise GfbenchError(f"--device {device}: no CUDA device is available here (use cpu)")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise GfbenchError(f"--device {device}: only {torch.cuda.device_count()} CUDA "
                           f"device(s) here (cuda:0..cuda:{torch.cuda.device_count() - 1})")
    return f"cuda:{index}"


def device_kind(device: str) -> str:
    """The device part of a results file name: 'cpu', 'meta', or the GPU's name as a slug."""
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
        return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return device


def parse_token_grid(text: str) -> tuple[int, int]:
    """'14' -> (14, 14) tokens; '14x28' -> (14, 28)."""
    from gfbench.models import parse_resolution

    try:
        return parse_resolution(text)
    except ResolutionError:
        raise ResolutionError(f"--tokens {text!r} is not a side or HxW (examples: 14, 14x28)") \
            from None


def _check_choice(option: str, value: str, allowed: Sequence[str]) -> None:
    """GfbenchError naming the option and its allowed values."""
    if value not in allowed:
        raise GfbenchError(f"{option} {value!r} is not one of {', '.join(allowed)}")


def _model_settings(request: ComplexityRequest, common: dict) -> list[Setting]:
    """Models x resolutions, names checked against the model registry."""
    from gfbench.models import (
        ENTRIES,
        canonical_name,
        check_resolution,
        create_model,
        parse_resolution,
    )

    names = list(dict.fromkeys(canonical_name(n) for n in (request.models or DEFAULT_MODELS)))
    sizes = list(dict.fromkeys(parse_resolution(r)
                               for r in (request.resolutions or DEFAULT_RESOLUTIONS)))
    for name in names:  # every (model, resolution) must build: fail now, not an hour in
        for size in sizes:
            if name in ENTRIES:
                check_resolution(name, size, ENTRIES[name].stride)
            else:
                with torch.device("meta"):
                    create_model(name, img_size=size)
    return [Setting("model", name, h, w, **common) for name in names for h, w in sizes]


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


def plan_complexity(request: ComplexityRequest, results_dir: Path = Path("results")
                    ) -> SweepPlan:
    """Validate a request (GfbenchError, one line, on the first problem) and plan the sweep."""
    if request.models and request.mixers:
        raise GfbenchError("--models and --mixers cannot be combined: measure models or bare "
                           "mixers, one per run")
    if request.mixers and request.resolutions:
        raise GfbenchError("--res applies to --models; bare mixers take --tokens")
    if request.tokens and not request.mixers:
        raise GfbenchError("--tokens applies to --mixers; models take --res")
    metrics = frozenset(m.strip().lower() for m in request.metrics)
    for metric in metrics:
        _check_choice("--metrics", metric, METRICS)
    _check_choice("--precision", request.precision, tuple(PRECISIONS))
    _check_choice("--mode", request.mode, MODES)
    on_device = bool(metrics & DEVICE_METRICS)
    device = resolve_device(request.device) if on_device else "meta"
    if request.precision == "fp16" and device == "cpu":
        raise GfbenchError("--precision fp16 is not supported on the CPU; use bf16 or fp32")
    if request.channels_last and request.mixers:
        raise GfbenchError("--channels-last applies to models (NCHW images), not to mixers")
    batch, warmup, repeat = DEVICE_DEFAULTS["cpu" if device in ("cpu", "meta") else "cuda"]
    batch = request.batch_size if request.batch_size is not None else batch
    warmup = request.warmup if request.warmup is not None else warmup
    repeat = request.repeat if request.repeat is not None else repeat
    if batch < 1 or warmup < 1 or repeat < 1:
        raise GfbenchError("--batch-size, --warmup and --repeat must be >= 1 (the first call "
                           "is never timed, so at least one warm-up call is needed)")
    common = {"batch_size": batch, "precision": request.precision, "mode": request.mode,
              "device": device}
    subject = "mixer" if request.mixers else "model"
    settings = (_mixer_settings(request, common) if request.mixers
                else _model_settings(request, common))
    impl = resolve_impl(request.impl, device)
    if request.impl == "fast" and impl == "reference" and device != "meta":
        raise GfbenchError(f"--impl fast needs a CUDA device with Triton (device here: {device}); "
                           "use --impl auto to fall back to the reference filter")
    settings = [dataclasses.replace(s, impl=impl) if uses_global_filter(s.subject, s.name)
                else s for s in settings]
    options = SweepOptions(metrics=metrics, warmup=warmup, repeat=repeat,
                           compile=request.compile, channels_last=request.channels_last)
    stem = (Path(request.out) if request.out else results_dir) / (
        f"complexity-{subject}s-{device_kind(device)}-b{batch}-{request.precision}-"
        f"{request.mode}")
    extra = {"metrics": sorted(metrics), "warmup": warmup, "repeat": repeat,
             "impl_requested": request.impl,
             "compile": request.compile, "channels_last": request.channels_last,
             "fvcore_max_flops": options.fvcore_max_flops}
    return SweepPlan(settings, options, stem, device, request.resume, extra)
