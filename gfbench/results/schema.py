"""What a results row is: provenance, the typed rows of each kind and the one key of each.

Every reader and writer (the sweep's resume, plot's "same setting", compare's pairing) derives
its key from a row type's ``KEY_FIELDS``, so one list decides when two rows measured the same
thing. Imports no torch (collect_provenance imports it when called).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gfbench.defaults import FLOP_CONVENTION

SCHEMA = "gfbench.results/1"
KINDS = ("complexity", "robustness", "breakdown")
SUBJECTS = ("model", "mixer")
BREAKDOWN_GROUPS = ("token_mixer", "channel_mlp", "norm", "embedding", "head", "other")


@dataclass
class Provenance:
    """Where and how a results file was made: enough to reproduce or distrust it."""

    kind: str
    command: str
    date: str
    gfbench_version: str
    python_version: str
    torch_version: str
    timm_version: str
    fvcore_version: str
    platform: str
    cpu_model: str
    cpu_threads: int
    torch_threads: int
    device_name: str
    cuda_version: str
    driver_version: str
    tf32_matmul: bool
    cudnn_benchmark: bool
    flop_convention: str = FLOP_CONVENTION
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ComplexityRow:
    """One measured (model or mixer, resolution, batch, precision, mode) setting."""

    subject: str  # "model" or "mixer"
    name: str
    res_h: int | None  # models: input image size in pixels; None for mixers
    res_w: int | None
    tokens: int | None  # tokens the first token mixer sees; None for a net without one
    batch_size: int
    precision: str
    mode: str
    device: str
    impl: str = "reference"
    dim: int | None = None
    status: str = "ok"  # ok | oom | error | skipped
    error: str = ""
    flops: float | None = None  # per image, fvcore convention (multiply-adds)
    flops_torch: float | None = None  # the second engine, same convention
    flops_engine: str = ""  # which engine gave `flops`: "fvcore" (cross-checked) or "torch-meta"
    # train mode: the forward pass alone, per image (`flops` then adds the backward pass);
    # equal to `flops` in inference (gfbench.measure.flops, issue: training FLOPs)
    fwd_flops: float | None = None
    # per image, at the row's batch size (weights read once per batch): bytes the counted
    # ops read and write (train mode: forward + backward, as `flops`), each op its own kernel
    # unless fused in practice (gfbench.measure.traffic)
    bytes: float | None = None
    params: int | None = None
    uncounted_ops: str = ""  # "op:count;op:count" that neither rule nor fvcore counted
    latency_ms_p10: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p90: float | None = None
    throughput_ips: float | None = None  # images per second at the median latency
    first_call_ms: float | None = None  # the untimed first call (compilation, lazy init)
    peak_mem_bytes: float | None = None  # above the resident model, during the measured step
    pred_mem_bytes: float | None = None  # peak_mem_bytes predicted without the device
    # what the step needs in all, predicted: parameters, buffers and input + the peak, in
    # training with the optimizer state kept from the previous update (gfbench.measure.predict)
    pred_need_bytes: float | None = None
    # --fit-memory, searched in the count step (gfbench.measure.predict.fit_setting): the
    # budget as given (a device kind's nominal capacity said so) and its bytes; the largest
    # batch whose predicted need fits (0: not even one; None: the search failed, a note says
    # why); the predicted need at the row's batch and the peak above resident at the largest
    fit_budget: str = ""
    fit_budget_bytes: int | None = None
    fit_max_batch: int | None = None
    fit_need_bytes: float | None = None
    fit_peak_at_max_bytes: float | None = None
    # roofline of a timed row against the machine's measured ceilings (provenance.extra
    # ["ceilings"]; gfbench.measure.roofline). FLOP rates follow the FLOP convention
    # (multiply-adds per second), so vendor peaks quoted at 2 FLOPs per FMA are halved.
    achieved_flops_s: float | None = None  # flops * batch / median latency
    achieved_bytes_s: float | None = None  # bytes * batch / median latency
    compute_share: float | None = None  # achieved_flops_s / the precision's matmul ceiling
    bandwidth_share: float | None = None  # achieved_bytes_s / the bandwidth ceiling
    bound: str = ""  # compute | memory (the ceiling the lower bound hits) | no ceiling | ""
    roofline_ms: float | None = None  # lower bound of one call: max(compute, memory) time
    roofline_ratio: float | None = None  # latency_ms_p50 / roofline_ms (1 = at the roofline)
    mem_method: str = ""
    threads: int | None = None
    compile: bool = False
    channels_last: bool = False
    warmup: int | None = None
    repeat: int | None = None
    num_classes: int | None = None  # models: the head asked for (None: the model's default)
    # what actually ran, read after the measured step (gfbench.measure.{compile,faults})
    impl_used: str = ""  # the global filter the layers ran: fast | reference | mixed ("" none)
    compile_status: str = ""  # compiled | graph breaks: N | recompiled: N | fell back to eager
    optimizer: str = ""  # train mode: the optimizer whose update and state the step includes
    failure: str = ""  # why the row failed: oom | poisoned (CUDA context lost) | error
    warmup_calls: int | None = None  # warm-up calls made (at least `warmup`, and a minimum time)
    flushed_bytes: int | None = None  # bytes written to evict the cache before each timed call
    processes: int | None = None  # fresh processes the timed calls were spread over (pooled)
    grid_h: int | None = None  # mixers: the token grid the bare mixer is given; None for models
    grid_w: int | None = None
    # models: counted (and run) in the deploy form timm's reparameterize_model fuses to; files
    # written before the field existed hold the form as built (False)
    reparam: bool = False

    KEY_FIELDS = ("subject", "name", "impl", "res_h", "res_w", "grid_h", "grid_w", "dim",
                  "batch_size", "precision", "mode", "device", "num_classes", "optimizer",
                  "reparam")

    def __post_init__(self) -> None:
        """Old files (and callers) gave a mixer's token grid as res_h/res_w: move it to grid."""
        if self.subject == "mixer" and self.grid_h is None and self.res_h is not None:
            self.grid_h, self.grid_w = self.res_h, self.res_w
            self.res_h = self.res_w = None

    def sides(self) -> tuple[int | None, int | None]:
        """What the row's size means to a reader: the image for a model, the grid for a mixer."""
        return (self.grid_h, self.grid_w) if self.subject == "mixer" else (self.res_h, self.res_w)


@dataclass
class RobustnessRow:
    """Top-1/top-5 counts and softmax calibration of one (model, corruption or attack,
    severity) evaluation."""

    model: str
    checkpoint: str
    source: str  # "imagenet-c", "generated" (in-memory corruptions), "generated-bar" (in-memory
    # ImageNet-C-bar), "clean", "attack", "fourier"
    corruption: str  # corruption name, "clean", the attack name ("fgsm", "pgd"), "fourier:i,j@eps"
    severity: int  # 1..5; 0 for clean and attacks
    images: int
    correct_top1: int
    correct_top5: int
    unreadable: int = 0
    error_top1: float | None = None
    error_top5: float | None = None
    eps: float | None = None  # attack budget in [0,1] pixel units; Fourier: L2 norm per channel
    precision: str = "fp32"
    device: str = "cpu"
    checkpoint_sha256: str = ""  # the checkpoint file's content: two best.pth stay apart
    # Calibration of the top-1 softmax over the readable images (gfbench.robustness.
    # calibration); None in files written before it was computed.
    ece: float | None = None  # expected calibration error, 15 equal-width bins (fraction)
    nll: float | None = None  # mean negative log-likelihood of the label (nats)
    brier: float | None = None  # mean multi-class Brier score (0..2)
    calibration_bins: str | None = None  # 15 "count:confidence_sum:correct", space-separated
    jpeg_quality: int | None = None  # generated rows re-encoded as JPEG (--jpeg-quality)

    KEY_FIELDS = ("model", "checkpoint", "source", "corruption", "severity")


@dataclass
class BreakdownRow:
    """FLOPs and parameters of one module (at the breakdown's depth) in one role, for one
    (model, resolution, engine); the rows of a setting add up to its model totals."""

    name: str
    res_h: int
    res_w: int
    tokens: int | None  # tokens the (first) token mixer sees; None where gfbench cannot tell
    engine: str  # "torch" (FlopCounterMode on meta) or "fvcore"
    depth: int  # attribute names below the model: 0 the whole model, 1 blocks/head...
    module: str  # module path at the depth ("blocks.0.attn"), "(model)" for the model itself
    own: bool  # True: only what this (shallower) module does or holds outside its children
    group: str  # token_mixer | channel_mlp | norm | embedding | head | other
    flops: int | None = None  # per image, multiply-adds (the FLOP convention)
    params: int | None = None
    flops_share: float | None = None  # flops / model_flops
    bytes: int | None = None  # per image, bytes this row's counted ops read and write
    params_share: float | None = None  # params / model_params
    model_flops: int | None = None  # the engine's total for the model
    model_params: int | None = None
    uncounted_ops: str = ""  # "op:calls;..." this row's modules ran that no rule counted
    status: str = "ok"  # ok | error (one row, module "(model)", when the engine failed)
    error: str = ""
    reparam: bool = False  # the deploy form timm's reparameterize_model fuses to (old files: no)
    # `gfbench breakdown --time` (gfbench.measure.module_time): the rows are counted at the
    # batch (bytes per image depend on it) and timed on the device; count-only rows (and
    # files before these fields): batch 1, device "". Both join the key, so a timed row and a
    # counted one of the same module stay apart.
    batch_size: int = 1
    device: str = ""
    time_method: str = ""  # how the latency was taken ("forward hooks, perf_counter_ns"...)
    latency_ms_p10: float | None = None  # own time of the row's modules in one forward of
    latency_ms_p50: float | None = None  # the batch (inclusive minus timed children's), ms
    latency_ms_p90: float | None = None
    # roofline of a timed row, as ComplexityRow's (gfbench.measure.roofline; the run's
    # provenance.extra["ceilings"]), from flops, bytes, batch_size and latency_ms_p50
    achieved_flops_s: float | None = None
    achieved_bytes_s: float | None = None
    compute_share: float | None = None
    bandwidth_share: float | None = None
    bound: str = ""
    roofline_ms: float | None = None
    roofline_ratio: float | None = None

    KEY_FIELDS = ("name", "res_h", "res_w", "engine", "depth", "module", "own", "group",
                  "reparam", "batch_size", "device")


ROW_TYPES: dict[str, type[ComplexityRow | RobustnessRow | BreakdownRow]] = {
    "complexity": ComplexityRow, "robustness": RobustnessRow, "breakdown": BreakdownRow}


def _version(module_name: str) -> str:
    """Version of an installed package, or 'not installed' (never fails)."""
    try:
        from importlib.metadata import version

        return version(module_name)
    except Exception:
        return "not installed"


def _cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, falling back to platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _platform_text() -> str:
    """platform.platform() on Linux without its processor part: Python reads that by running
    `uname -p`, a child process (forking a process that holds torch costs tens of ms) that a
    count-only run must not start. It is dropped there whenever it is unknown or the machine."""
    if platform.system() != "Linux":
        return platform.platform()
    libc, version = platform.libc_ver()
    parts = (platform.system(), platform.release(), platform.machine(), "with", libc + version)
    return "-".join(part.strip().replace(" ", "_") for part in parts if part)


def _driver_version() -> str:
    """The NVIDIA driver version when one is loaded, else ''."""
    try:
        return Path("/proc/driver/nvidia/version").read_text().split("Kernel Module")[1].split()[0]
    except (OSError, IndexError):
        return ""


ALLOCATOR_VARIABLES = ("LD_PRELOAD", "MALLOC_", "GLIBC_TUNABLES", "PYTORCH_", "OMP_",
                       "MKL_", "KMP_", "OPENBLAS_")


def allocator_environment() -> dict[str, str]:
    """The environment variables that change how a CPU step allocates and threads (glibc's
    malloc thresholds, a preloaded jemalloc/tcmalloc, OpenMP and MKL settings): every
    measurement child inherits them, so a run records them."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(ALLOCATOR_VARIABLES)}


def collect_provenance(kind: str, device: str = "cpu", argv: Sequence[str] | None = None,
                       **extra: Any) -> Provenance:
    """Provenance of the current process for a results file of the given kind."""
    import torch

    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(("gfbench", "__main__.py")):
        argv[0] = "gfbench"
    device_name = "cpu: " + _cpu_model()
    if device.startswith("cuda") and torch.cuda.is_available():
        device_name = torch.cuda.get_device_name(torch.device(device))
    return Provenance(
        kind=kind,
        command=shlex.join(argv),
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        gfbench_version=_version("gfbench"),
        python_version=platform.python_version(),
        torch_version=torch.__version__,
        timm_version=_version("timm"),
        fvcore_version=_version("fvcore"),
        platform=_platform_text(),
        cpu_model=_cpu_model(),
        cpu_threads=os.cpu_count() or 0,
        torch_threads=torch.get_num_threads(),
        device_name=device_name,
        cuda_version=torch.version.cuda or "",
        driver_version=_driver_version(),
        tf32_matmul=bool(torch.backends.cuda.matmul.allow_tf32),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
        extra={"allocator_env": allocator_environment(), **extra},
    )


def row_key(row: Any) -> tuple:
    """The identity of a row (resume, plot, compare): its KEY_FIELDS values."""
    return tuple(getattr(row, f) for f in row.KEY_FIELDS)


def key_fields(kind: str) -> tuple[str, ...]:
    """The one key of a kind's rows, for readers that hold rows as table columns."""
    return ROW_TYPES[kind].KEY_FIELDS


def _clean(value: Any) -> Any:
    """JSON-safe value: NaN becomes None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def rows_record(row: Any) -> dict[str, Any]:
    """A row as a JSON-safe dict."""
    return {k: _clean(v) for k, v in dataclasses.asdict(row).items()}
