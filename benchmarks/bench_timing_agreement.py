"""Does a timed number depend on where it was taken? It must not.

    python benchmarks/bench_timing_agreement.py [--threads 1] [--repeat 20] [--rounds 2]

Each setting is timed three ways, interleaved over ``--rounds`` rounds: inside a sweep of
several settings (``gfbench complexity``'s library path, default isolation), alone (a sweep
of that one setting), and by a bare loop in fresh interpreters that share no gfbench timing
code (the module built with gfbench's factory, then warm-up and a perf_counter loop, with
autocast and no_grad entered for each call as timm's benchmark does). Both spread the timed
calls of a setting over three fresh processes (gfbench's ``--processes 3``), since heap and
physical page placement move a CPU timing from one process to the next.
The settings: a CNN (resnet50), a ViT (deit-s), GFNet (gfnet-xs) in fp32 and bf16, and the
global filter at 14², 28², 42² and 56² tokens (batch 8, width 384). Pass: every setting's
median within 3% of the bare loop's, for the sweep and alone. Writes a CSV and a figure to
``--out`` (default benchmarks/timing_agreement/). About 13 minutes on an idle 2-core machine
with the defaults; run it on an idle machine (the load average is printed and recorded).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gfbench.measure.plan import ComplexityRequest, plan_complexity
from gfbench.measure.setting import repeat_shares
from gfbench.measure.sweep import run_sweep

TOLERANCE = 0.03
WARMUP_CALLS, WARMUP_S = 2, 1.0  # gfbench's CPU defaults, used by the bare loop too
PROCESSES = 3  # fresh processes per timed setting, both ways (gfbench's --processes 3)


@dataclass(frozen=True)
class Group:
    """Settings that one sweep measures together (one precision, one batch)."""

    label: str
    request: dict


GROUPS = (
    Group("models fp32", {"models": ("resnet50", "deit", "gfnet"), "resolutions": ("224",)}),
    Group("models bf16", {"models": ("deit", "gfnet"), "resolutions": ("224",),
                          "precision": "bf16"}),
    Group("global filter sweep", {"mixers": ("global_filter",),
                                  "tokens": ("14", "28", "42", "56"), "dim": 384,
                                  "batch_sizes": (8,)}),
)

BARE_LOOP = r"""
import sys, time
import torch
subject, name, side, dim, batch, precision, threads, repeat, warm_calls, warm_s = sys.argv[1:]
side, batch, threads, repeat, warm_calls = map(int, (side, batch, threads, repeat, warm_calls))
torch.set_num_threads(threads)
if subject == "model":
    from gfbench.models import create_model
    module = create_model(name, img_size=(side, side))
    x = torch.randn(batch, 3, side, side)
else:
    from gfbench.layers import build_mixer
    module = build_mixer(name, int(dim), side, side)
    x = torch.randn(batch, side, side, int(dim))
module.eval()
dtype = {"bf16": torch.bfloat16, "fp32": None}[precision]

def call():  # as timm's benchmark: autocast and no_grad entered for each call
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.bfloat16,
                                         enabled=dtype is not None):
        module(x)

call()
calls, start = 1, time.perf_counter()
while calls < warm_calls or time.perf_counter() - start < float(warm_s):
    call()
    calls += 1
for _ in range(repeat):
    t = time.perf_counter_ns()
    call()
    print((time.perf_counter_ns() - t) / 1e6)
"""


def _request(group: Group, threads: int, repeat: int, out: Path, **only) -> ComplexityRequest:
    """The group's sweep (or one setting of it) on the CPU, latency only."""
    fields = {**group.request, **only}
    return ComplexityRequest(**fields, device="cpu", metrics=("latency",), warmup=WARMUP_CALLS,
                             repeat=repeat, threads=threads, out=out, fvcore=False,
                             processes=PROCESSES)


def _key(row) -> tuple:
    """A setting as the tables name it."""
    side = row.res_h or getattr(row, "grid_h", None)
    return (row.name, int(side), row.precision, row.batch_size)


def sweep_medians(group: Group, threads: int, repeat: int, out: Path) -> dict[tuple, float]:
    """Median latency of every setting of the group, measured in one sweep."""
    rows = run_sweep(plan_complexity(_request(group, threads, repeat, out))).rows
    return {_key(r): r.latency_ms_p50 for r in rows if r.status == "ok"}


def alone_medians(group: Group, threads: int, repeat: int, out: Path) -> dict[tuple, float]:
    """Median latency of every setting of the group, each measured in a sweep of its own."""
    found = {}
    sizes = group.request.get("tokens") or group.request.get("resolutions")
    names = group.request.get("mixers") or group.request.get("models")
    option = "tokens" if "tokens" in group.request else "resolutions"
    kind = "mixers" if "mixers" in group.request else "models"
    for name in names:
        for size in sizes:
            found.update(sweep_medians(Group(group.label, {**group.request, kind: (name,),
                                                           option: (size,)}),
                                       threads, repeat, out))
    return found


def bare_median(key: tuple, group: Group, threads: int, repeat: int) -> float:
    """Median latency of a bare loop (no gfbench timing code), its calls spread over fresh
    interpreters as gfbench spreads its own (heap and page placement differ per process)."""
    name, side, precision, batch = key
    subject = "mixer" if "mixers" in group.request else "model"
    times = []
    for share in repeat_shares(repeat, PROCESSES):
        args = [subject, name, str(side), str(group.request.get("dim", 0)), str(batch),
                precision, str(threads), str(share), str(WARMUP_CALLS), str(WARMUP_S)]
        done = subprocess.run([sys.executable, "-c", BARE_LOOP, *args], capture_output=True,
                              text=True, check=True)
        times += [float(line) for line in done.stdout.split()]
    return statistics.median(times)


def measure(threads: int, repeat: int, rounds: int) -> pd.DataFrame:
    """One row per (setting, round, way): the median latency in ms."""
    records = []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for round_ in range(rounds):
            for group in GROUPS:
                swept = sweep_medians(group, threads, repeat, out)
                alone = alone_medians(group, threads, repeat, out)
                for key in swept:
                    bare = bare_median(key, group, threads, repeat)
                    for way, value in (("sweep", swept[key]), ("alone", alone.get(key)),
                                       ("bare loop", bare)):
                        records.append({"group": group.label, "name": key[0], "size": key[1],
                                        "precision": key[2], "batch": key[3], "round": round_,
                                        "way": way, "median_ms": value})
                    print(f"round {round_}: {key[0]} {key[1]} {key[2]}: sweep "
                          f"{swept[key]:.1f}, alone {alone.get(key, float('nan')):.1f}, bare "
                          f"{bare:.1f} ms", flush=True)
    return pd.DataFrame(records)


def agreement(frame: pd.DataFrame) -> pd.DataFrame:
    """Per setting: each way's median over rounds and its ratio to the bare loop's."""
    table = (frame.groupby(["group", "name", "size", "precision", "batch", "way"], sort=False)
             ["median_ms"].median().unstack("way"))
    for way in ("sweep", "alone"):
        table[f"{way} / bare"] = table[way] / table["bare loop"]
    rounds = frame.groupby(["group", "name", "size", "precision", "batch", "way"], sort=False)
    spread = rounds["median_ms"].agg(lambda v: (v.max() - v.min()) / v.median())
    # how far one way's own rounds lie apart: the noise any comparison of ways stands on
    table["round spread"] = spread.unstack("way").max(axis=1)
    table["within 3%"] = ((table[["sweep / bare", "alone / bare"]] - 1).abs()
                          <= TOLERANCE).all(axis=1)
    return table.reset_index()


def draw(table: pd.DataFrame, path: Path) -> None:
    """Ratios to the bare loop per setting, with the ±3% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.name} {r.size}{'²' if r.group.startswith('global') else ''} {r.precision}"
              for r in table.itertuples()]
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=150)
    xs = range(len(table))
    ax.axhspan(1 - TOLERANCE, 1 + TOLERANCE, color="#dddddd", label="±3%")
    ax.axhline(1.0, color="#777777", lw=0.8)
    ax.plot(xs, table["sweep / bare"], "o", color="#1f77b4", label="inside a sweep")
    ax.plot(xs, table["alone / bare"], "s", mfc="none", color="#d62728", label="alone")
    ax.set_xticks(list(xs), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("median / bare loop's median")
    ax.set_title("CPU latency: gfbench's timing child against a bare loop", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncols=3)
    low = min(0.9, float(table[["sweep / bare", "alone / bare"]].min().min()) - 0.02)
    high = max(1.1, float(table[["sweep / bare", "alone / bare"]].max().max()) + 0.02)
    ax.set_ylim(low, high)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "timing_agreement")
    args = parser.parse_args()
    start, load = time.perf_counter(), os.getloadavg()
    frame = measure(args.threads, args.repeat, args.rounds)
    table = agreement(frame)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "timing_agreement_raw.csv", index=False)
    table.to_csv(args.out / "timing_agreement.csv", index=False, float_format="%.4g")
    draw(table, args.out / "timing_agreement.png")
    pd.set_option("display.width", 140)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    passed = int(table["within 3%"].sum())
    print(f"{passed} of {len(table)} settings within 3% (sweep and alone against a bare loop); "
          f"{args.threads} thread(s), {args.repeat} repeats, {args.rounds} rounds; load average "
          f"{load[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end; "
          f"{time.perf_counter() - start:.0f} s")
    sys.exit(0 if passed == len(table) else 1)


if __name__ == "__main__":
    main()
