"""Time gfbench's fused global filter (Triton) against the reference cuFFT path on one CUDA GPU.

Parts (``--part``, default all):
- mixer: the global filter alone, batch 32, dim 384, sides 14..128, fp32 and bf16 input;
  median / p10 / p90 ms by CUDA events after warm-up, against the I/O floor (x read once and
  float32 y written once at the measured device-to-device copy bandwidth), with the error of
  the fast path (max |fast - reference| / max |reference|).
- model: GFNet-XS, GFNet-S, GFNet-H-S at 224..1024, batch 32, fp32 and bf16 autocast, built
  with ``create_model(name, img_size=r, impl=...)``, the fast model loading the reference's
  weights.
- accuracy: GFNet-XS with random weights, fp32 logits of impl "fast" vs "reference"
  (target <= 1e-4), at 224, 512 and 1024 (fused and split kernel routes).

Writes results/fast_filter_<device>.json and .csv (gfbench.results ComplexityRow rows, subject
"mixer" or "model", impl "reference" or "fast"); per-row kernel routes, errors and the copy
bandwidth go to the provenance's ``extra``. Exits 1 with one line when no CUDA device is
present, and 1 after writing the results when an accuracy target is missed.

    python benchmarks/bench_global_filter.py [--part mixer] [--sides 14 32] [--repeat 50]
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import torch

from gfbench.layers import fast_filter
from gfbench.layers.global_filter import global_filter_reference
from gfbench.layers.mixers import MIXERS
from gfbench.measure.timing import TimingStats, time_step
from gfbench.models import create_model, token_grid
from gfbench.results import ComplexityRow, ResultsWriter, collect_provenance

MIXER_SIDES = (14, 24, 32, 48, 64, 96, 128)
MODELS = ("gfnet-xs", "gfnet-s", "gfnet-h-s")
RESOLUTIONS = (224, 384, 512, 768, 1024)
PRECISIONS = ("fp32", "bf16")
ACCURACY_RESOLUTIONS = (224, 512, 1024)
MIXER_TARGETS = {"fp32": 1e-5, "bf16": 1e-2}  # max |fast - ref| / max |ref|
LOGITS_TARGET = 1e-4
MIB = 2**20


def io_floor_ms(elements: int, in_bytes: int, out_bytes: int, bandwidth_gbps: float) -> float:
    """Milliseconds to read every input element once and write every output element once."""
    return elements * (in_bytes + out_bytes) / (bandwidth_gbps * 1e9) * 1e3


def rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected|, computed in float64."""
    diff = (actual.double() - expected.double()).abs().max()
    return (diff / expected.double().abs().max()).item()


def device_slug(name: str) -> str:
    """A file-name-safe device name: "NVIDIA H100 80GB HBM3" -> "nvidia-h100-80gb-hbm3"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def peak_memory_bytes(fn: Callable[[], object]) -> int:
    """Bytes allocated above the resident baseline during one call."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    baseline = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - baseline


def copy_bandwidth_gbps(megabytes: int = 1024, repeat: int = 20) -> float:
    """Device-to-device copy bandwidth, counting the bytes read plus the bytes written."""
    src = torch.empty(megabytes * MIB, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    timing = time_step(lambda: dst.copy_(src), "cuda", warmup=3, repeat=repeat)
    return 2 * src.numel() / (timing.p50_ms * 1e-3) / 1e9


def _row(subject: str, name: str, side_h: int, side_w: int, tokens: int, batch: int,
         precision: str, impl: str, timing: TimingStats | None, **fields) -> ComplexityRow:
    """A ComplexityRow from gfbench's timing statistics (None: a status but no timing)."""
    row = ComplexityRow(subject=subject, name=name, res_h=side_h, res_w=side_w, tokens=tokens,
                        batch_size=batch, precision=precision, mode="inference", device="cuda",
                        impl=impl, **fields)
    if timing is not None:
        row.latency_ms_p10, row.latency_ms_p50 = timing.p10_ms, timing.p50_ms
        row.latency_ms_p90, row.first_call_ms = timing.p90_ms, timing.first_call_ms
        row.throughput_ips = timing.throughput(batch)
        row.repeat = timing.samples
    return row


def bench_mixers(args: argparse.Namespace, writer: ResultsWriter, bandwidth: float) -> bool:
    """Time and check the global filter alone; print a table; True when every check passes."""
    spec = MIXERS["global_filter"]
    ok = True
    print(f"\nglobal filter, batch {args.batch}, dim {args.dim}; floor = read x + write y "
          f"(float32) once at {bandwidth:.0f} GB/s")
    print(f"{'side':>5} {'prec':>5} {'route':>9} {'ref ms':>8} {'fast ms':>8} {'floor ms':>8} "
          f"{'ref/flr':>8} {'fast/flr':>8} {'speedup':>8} {'rel err':>9}")
    for side in args.sides:
        for precision in args.precisions:
            dtype = torch.float32 if precision == "fp32" else torch.bfloat16
            gen = torch.Generator(device="cuda").manual_seed(side)
            x = torch.randn(args.batch, side, side, args.dim, device="cuda", generator=gen)
            x = x.to(dtype)
            weight = 0.02 * torch.randn(side, side // 2 + 1, args.dim, 2, device="cuda",
                                        generator=gen)
            route = fast_filter.select_route(x, weight)
            impls = {
                "reference": lambda x=x, w=weight: global_filter_reference(x, w),
                "fast": lambda x=x, w=weight: fast_filter.global_filter(
                    x, w, impl="fast", dot_precision=args.dot_precision),
            }
            common = dict(dim=args.dim, flops=float(spec.flops(args.dim, side, side)),
                          params=spec.params(args.dim, side, side), warmup=args.warmup,
                          mem_method="max_memory_allocated")
            medians = {}
            with torch.inference_mode():
                error = rel_error(impls["fast"](), impls["reference"]())
                for impl, fn in impls.items():
                    try:
                        timing = time_step(fn, "cuda", args.warmup, args.repeat)
                        row = _row("mixer", "global_filter", side, side, side * side,
                                   args.batch, precision, impl, timing,
                                   peak_mem_bytes=float(peak_memory_bytes(fn)), **common)
                        medians[impl] = row.latency_ms_p50
                    except torch.cuda.OutOfMemoryError:
                        row = _row("mixer", "global_filter", side, side, side * side,
                                   args.batch, precision, impl, None, status="oom", **common)
                        torch.cuda.empty_cache()
                    writer.add(row)
            key = f"mixer {side}x{side} {precision}"
            writer.provenance.extra["routes"][key] = route
            writer.provenance.extra["errors"][key] = error
            writer.flush()
            floor = io_floor_ms(x.numel(), x.element_size(), 4, bandwidth)
            passed = error <= MIXER_TARGETS[precision] and route != "reference"
            ok &= passed
            ref_ms, fast_ms = medians.get("reference", float("nan")), medians.get(
                "fast", float("nan"))
            print(f"{side:>5} {precision:>5} {route:>9} {ref_ms:8.3f} {fast_ms:8.3f} "
                  f"{floor:8.3f} {ref_ms / floor:8.1f} {fast_ms / floor:8.1f} "
                  f"{ref_ms / fast_ms:7.2f}x {error:9.2e}{'' if passed else '  FAIL'}")
            del x, weight
            torch.cuda.empty_cache()
    return ok


def _model_pair(name: str, resolution: int) -> dict:
    """Reference and fast models of one architecture, sharing the reference's random weights."""
    torch.manual_seed(0)
    reference = create_model(name, img_size=resolution, impl="reference").cuda().eval()
    fast = create_model(name, img_size=resolution, impl="fast").cuda().eval()
    fast.load_state_dict(reference.state_dict())
    return {"reference": reference, "fast": fast}


def bench_models(args: argparse.Namespace, writer: ResultsWriter) -> None:
    """Time full models with each impl; print a table."""
    print(f"\nfull models, batch {args.batch}, inference (bf16 = autocast)")
    print(f"{'model':>10} {'res':>5} {'prec':>5} {'ref ms':>9} {'fast ms':>9} {'speedup':>8} "
          f"{'ref img/s':>10} {'fast img/s':>10}")
    for name in args.models:
        for resolution in args.resolutions:
            try:
                models = _model_pair(name, resolution)
            except torch.cuda.OutOfMemoryError:
                print(f"{name:>10} {resolution:>5} out of memory building the models")
                torch.cuda.empty_cache()
                continue
            grid = token_grid(models["reference"])
            params = sum(p.numel() for p in models["reference"].parameters())
            images = torch.randn(args.batch, 3, resolution, resolution, device="cuda")
            for precision in args.precisions:
                autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                            if precision == "bf16" else nullcontext())
                medians = {}
                for impl, model in models.items():
                    common = dict(params=params, warmup=args.model_warmup,
                                  mem_method="max_memory_allocated")
                    try:
                        with torch.inference_mode(), autocast:
                            run = functools.partial(model, images)
                            timing = time_step(run, "cuda", args.model_warmup,
                                               args.model_repeat)
                            peak = peak_memory_bytes(run)
                        row = _row("model", name, resolution, resolution, grid[0] * grid[1],
                                   args.batch, precision, impl, timing,
                                   peak_mem_bytes=float(peak), **common)
                        medians[impl] = row.latency_ms_p50
                    except torch.cuda.OutOfMemoryError:
                        row = _row("model", name, resolution, resolution, grid[0] * grid[1],
                                   args.batch, precision, impl, None, status="oom", **common)
                        torch.cuda.empty_cache()
                    writer.add(row)
                ref_ms, fast_ms = medians.get("reference", float("nan")), medians.get(
                    "fast", float("nan"))
                print(f"{name:>10} {resolution:>5} {precision:>5} {ref_ms:9.2f} {fast_ms:9.2f} "
                      f"{ref_ms / fast_ms:7.2f}x {args.batch / ref_ms * 1e3:10.0f} "
                      f"{args.batch / fast_ms * 1e3:10.0f}")
            del models, images
            torch.cuda.empty_cache()


def check_logits(args: argparse.Namespace, writer: ResultsWriter) -> bool:
    """GFNet-XS fp32 logits, impl fast vs reference, against LOGITS_TARGET; True when met."""
    ok = True
    print(f"\nGFNet-XS random weights, fp32 logits, fast vs reference (target <= "
          f"{LOGITS_TARGET:.0e})")
    for resolution in ACCURACY_RESOLUTIONS:
        models = _model_pair("gfnet-xs", resolution)
        x = torch.randn(4, 3, resolution, resolution, device="cuda",
                        generator=torch.Generator(device="cuda").manual_seed(resolution))
        with torch.inference_mode():
            error = rel_error(models["fast"](x), models["reference"](x))
        writer.provenance.extra["errors"][f"gfnet-xs logits {resolution} fp32"] = error
        writer.flush()
        passed = error <= LOGITS_TARGET
        ok &= passed
        print(f"  {resolution:>5}: rel. error {error:.2e} {'ok' if passed else 'FAIL'}")
        del models, x
        torch.cuda.empty_cache()
    return ok


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (every list has the brief's defaults)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "mixer", "model", "accuracy"), default="all")
    parser.add_argument("--sides", type=int, nargs="+", default=list(MIXER_SIDES))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--resolutions", type=int, nargs="+", default=list(RESOLUTIONS))
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--model-warmup", type=int, default=3)
    parser.add_argument("--model-repeat", type=int, default=10)
    parser.add_argument("--dot-precision", choices=fast_filter.DOT_PRECISIONS, default=None,
                        help="tl.dot precision of the mixer part (default: per input dtype)")
    parser.add_argument("--out", type=Path, default=Path("results"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen parts; 1 when there is no GPU or an accuracy target is missed."""
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_global_filter: no CUDA device is present; this benchmark times GPU kernels "
              "and needs one", file=sys.stderr)
        return 1
    if not fast_filter.triton_available():
        print("bench_global_filter: triton is not importable, so there is no fast path to time",
              file=sys.stderr)
        return 1
    torch.backends.cudnn.benchmark = True
    bandwidth = copy_bandwidth_gbps()
    slug = device_slug(torch.cuda.get_device_name())
    suffix = f"_{args.dot_precision}" if args.dot_precision else ""
    provenance = collect_provenance(
        "complexity", device="cuda", copy_GBps=bandwidth, dot_precision=args.dot_precision
        or "default (tf32x3 for fp32 input, tf32 for bf16)", routes={}, errors={},
        targets={"mixer": MIXER_TARGETS, "gfnet-xs logits fp32": LOGITS_TARGET})
    writer = ResultsWriter(args.out / f"fast_filter_{slug}{suffix}", provenance)
    print(f"{torch.cuda.get_device_name()}: device-to-device copy {bandwidth:.0f} GB/s")
    ok = True
    if args.part in ("all", "mixer"):
        ok &= bench_mixers(args, writer, bandwidth)
    if args.part in ("all", "accuracy"):
        ok &= check_logits(args, writer)
    if args.part in ("all", "model"):
        bench_models(args, writer)
    print(f"\nresults: {writer.json_path} and {writer.csv_path}")
    if not ok:
        print("bench_global_filter: an accuracy target was missed (rows marked FAIL)",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
