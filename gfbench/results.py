"""One results schema for every command: provenance, typed rows, CSV + JSON files, resume keys.

A results file pair is ``<stem>.json`` (the source of truth: schema, kind, provenance, rows)
and ``<stem>.csv`` (the same rows, provenance as ``# key: value`` lines above the header,
readable with ``pandas.read_csv(path, comment="#")``). Both are rewritten atomically
(write to a temporary file, then rename) every time a row is added, so an interrupted run
leaves valid files holding every row that finished.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gfbench.errors import GfbenchError, ResultsFileError

SCHEMA = "gfbench.results/1"
KINDS = ("complexity", "robustness", "breakdown")

FLOP_CONVENTION = (
    "FLOPs follow fvcore and the papers: one fused multiply-add = one FLOP (so GFLOPs = GMACs, "
    "half of torch's 2*m*n*k); element-wise ops, softmax, activations and residual adds are "
    "not counted; normalisation layers are counted as fvcore does. Added rules: each 2D FFT "
    "(forward or inverse, real or complex) of an H x W x D feature = H*W*D*ceil(log2(H*W)) "
    "(the inverse counted on its output grid); the complex filter product = one per complex "
    "element; attention (SDPA, fused or explicit) = 2*N^2*D (QK^T and AV); average pooling = "
    "k*k per output element."
)


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
    res_h: int
    res_w: int
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
    params: int | None = None
    uncounted_ops: str = ""  # "op:count;op:count" that neither rule nor fvcore counted
    latency_ms_p10: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p90: float | None = None
    throughput_ips: float | None = None  # images per second at the median latency
    first_call_ms: float | None = None  # the untimed first call (compilation, lazy init)
    peak_mem_bytes: float | None = None  # above the resident model, during the measured step
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

    KEY_FIELDS = ("subject", "name", "impl", "res_h", "res_w", "dim", "batch_size", "precision",
                  "mode", "device", "num_classes", "optimizer")


@dataclass
class RobustnessRow:
    """Top-1/top-5 counts of one (model, corruption or attack, severity) evaluation."""

    model: str
    checkpoint: str
    source: str  # "imagenet-c", "generated" (in-memory corruptions), "clean", "attack"
    corruption: str  # corruption name, "clean", or the attack name ("fgsm", "pgd")
    severity: int  # 1..5; 0 for clean and attacks
    images: int
    correct_top1: int
    correct_top5: int
    unreadable: int = 0
    error_top1: float | None = None
    error_top5: float | None = None
    eps: float | None = None  # attack budget in [0,1] pixel units
    precision: str = "fp32"
    device: str = "cpu"
    checkpoint_sha256: str = ""  # the checkpoint file's content: two best.pth stay apart

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
    params_share: float | None = None  # params / model_params
    model_flops: int | None = None  # the engine's total for the model
    model_params: int | None = None
    uncounted_ops: str = ""  # "op:calls;..." this row's modules ran that no rule counted
    status: str = "ok"  # ok | error (one row, module "(model)", when the engine failed)
    error: str = ""

    KEY_FIELDS = ("name", "res_h", "res_w", "engine", "depth", "module", "own", "group")


ROW_TYPES: dict[str, type] = {"complexity": ComplexityRow, "robustness": RobustnessRow,
                              "breakdown": BreakdownRow}


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


def _driver_version() -> str:
    """The NVIDIA driver version when one is loaded, else ''."""
    try:
        return Path("/proc/driver/nvidia/version").read_text().split("Kernel Module")[1].split()[0]
    except (OSError, IndexError):
        return ""


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
        platform=platform.platform(),
        cpu_model=_cpu_model(),
        cpu_threads=os.cpu_count() or 0,
        torch_threads=torch.get_num_threads(),
        device_name=device_name,
        cuda_version=torch.version.cuda or "",
        driver_version=_driver_version(),
        tf32_matmul=bool(torch.backends.cuda.matmul.allow_tf32),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
        extra=dict(extra),
    )


def row_key(row: Any) -> tuple:
    """The identity of a row for resume: its KEY_FIELDS values."""
    return tuple(getattr(row, f) for f in row.KEY_FIELDS)


def _clean(value: Any) -> Any:
    """JSON-safe value: NaN becomes None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _atomic_write(path: Path, text: str) -> None:
    """Write text so that readers see the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_output_folder(folder: Path, option: str = "--out") -> Path:
    """Make sure results can be written into ``folder`` before any work starts (created when
    missing); GfbenchError in one line otherwise."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise GfbenchError(f"{option} {folder}: is a file, not a folder (give a folder; the "
                           "file names inside are chosen for you)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".gfbench-write-test-{os.getpid()}.tmp"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise GfbenchError(f"{option} {folder}: cannot write there ({reason}); give a folder "
                           "you can write to") from None
    return folder


def _earlier_runs(provenance: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs behind an existing file's rows: its own run and the ones it already merged."""
    extra = provenance.get("extra") or {}
    own = {"command": provenance.get("command", ""), "date": provenance.get("date", "")}
    return [*extra.get("earlier_runs", []), own]


class ResultsWriter:
    """Keeps a results file pair up to date, one row at a time, never losing rows.

    Rows already in the file are kept: a setting measured again replaces its row (and is
    counted in ``replaced``), every other row stays, and the runs that made them are listed in
    the provenance (``extra.earlier_runs``). A file that is not a gfbench results file of the
    same kind is refused in one line before anything is measured.
    """

    def __init__(self, stem: Path, provenance: Provenance,
                 summary_of: Callable[[list[Any]], Any] | None = None):
        self.stem = Path(stem)
        self.summary_of = summary_of  # rows -> the optional top-level "summary" of the JSON
        self.json_path = self.stem.with_suffix(".json")
        self.csv_path = self.stem.with_suffix(".csv")
        self.provenance = provenance
        self.row_type = ROW_TYPES[provenance.kind]
        self.rows: list[Any] = []
        self.replaced: list[tuple] = []
        if self.json_path.exists():
            kind, old_rows = read_rows(self.json_path)
            if kind != provenance.kind:
                raise ResultsFileError(
                    f"{self.json_path}: holds {kind} results, not {provenance.kind}; choose "
                    "another --out or move that file")
            self.rows = old_rows
            earlier = json.loads(self.json_path.read_text()).get("provenance") or {}
            provenance.extra["earlier_runs"] = _earlier_runs(earlier)

    def done(self) -> set[tuple]:
        """Keys of the rows already present (skipped by --resume)."""
        return {row_key(r) for r in self.rows}

    def add(self, row: Any) -> None:
        """Append (or replace, same key) a row and rewrite both files atomically."""
        key = row_key(row)
        if any(row_key(r) == key for r in self.rows):
            self.replaced.append(key)
        self.rows = [r for r in self.rows if row_key(r) != key] + [row]
        self.flush()

    def extend(self, rows: Iterable[Any]) -> None:
        """Append (or replace, same keys) several rows, then rewrite both files once."""
        new = {row_key(r): r for r in rows}
        self.replaced += [row_key(r) for r in self.rows if row_key(r) in new]
        self.rows = [r for r in self.rows if row_key(r) not in new] + list(new.values())
        self.flush()

    def flush(self) -> None:
        """Write the JSON and CSV files from the rows held now."""
        self.stem.parent.mkdir(parents=True, exist_ok=True)
        records = [rows_record(r) for r in self.rows]
        payload = {
            "schema": SCHEMA,
            "kind": self.provenance.kind,
            "provenance": dataclasses.asdict(self.provenance),
            "rows": records,
        }
        if self.summary_of is not None:
            payload["summary"] = self.summary_of(self.rows)
        _atomic_write(self.json_path, json.dumps(payload, indent=1) + "\n")
        columns = [f.name for f in dataclasses.fields(self.row_type)]
        frame = pd.DataFrame(records, columns=columns)
        header = "".join(
            f"# {k}: {v}\n" for k, v in dataclasses.asdict(self.provenance).items() if k != "extra"
        )
        _atomic_write(self.csv_path, header + frame.to_csv(index=False))


def rows_record(row: Any) -> dict[str, Any]:
    """A row as a JSON-safe dict."""
    return {k: _clean(v) for k, v in dataclasses.asdict(row).items()}


def read_rows(path: Path) -> tuple[str, list[Any]]:
    """Kind and typed rows of a gfbench JSON results file; ResultsFileError when it is not one."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsFileError(f"{path}: not a gfbench results file ({exc.__class__.__name__})") \
            from None
    if not isinstance(payload, dict) or payload.get("schema") != SCHEMA:
        raise ResultsFileError(f"{path}: not a gfbench results file (expected schema {SCHEMA})")
    kind = payload.get("kind")
    if kind not in ROW_TYPES:
        raise ResultsFileError(f"{path}: unknown results kind {kind!r}; known: {', '.join(KINDS)}")
    row_type = ROW_TYPES[kind]
    names = {f.name for f in dataclasses.fields(row_type)}
    rows = []
    for i, record in enumerate(payload.get("rows") or []):
        if not isinstance(record, dict):
            raise ResultsFileError(f"{path}: row {i} is not an object")
        try:
            rows.append(row_type(**{k: v for k, v in record.items() if k in names}))
        except TypeError as exc:
            raise ResultsFileError(f"{path}: row {i} is malformed ({exc})") from None
    return kind, rows


def read_summary(path: Path) -> Any:
    """The top-level `summary` a results file carries (robustness headline numbers), None when
    it has none; ResultsFileError when the file is not a gfbench results file."""
    read_rows(path)
    return json.loads(Path(path).read_text()).get("summary")


def read_results(path: Path) -> tuple[Provenance, pd.DataFrame]:
    """Provenance and rows (as a DataFrame) of one gfbench JSON results file."""
    path = Path(path)
    kind, rows = read_rows(path)
    payload = json.loads(path.read_text())
    prov_raw = payload.get("provenance")
    required = [f.name for f in dataclasses.fields(Provenance)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if not isinstance(prov_raw, dict) or name not in prov_raw]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3
                                           else "")
        raise ResultsFileError(f"{path}: provenance is malformed (missing {shown})")
    names = {f.name for f in dataclasses.fields(Provenance)}
    provenance = Provenance(**{k: v for k, v in prov_raw.items() if k in names})
    columns = [f.name for f in dataclasses.fields(ROW_TYPES[kind])]
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=columns)
    return provenance, frame


def find_results(paths: Iterable[Path]) -> list[Path]:
    """Every JSON file under the given files or folders (recursively), sorted."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*.json") if q.is_file()))
        else:
            found.append(p)
    return found
