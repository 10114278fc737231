"""Start-up time of the CLI, as wall times of fresh interpreters.

Two parts:

* the light commands: `gfbench --help`, `--version`, `plot --help`, `complexity --help`
  (target: under 0.5 s on a 2-core CPU; nothing of torch or timm loaded);
* one model counted end to end, ``gfbench complexity --models deit --res 224 --metrics
  flops,params`` (fvcore's cross-check on, as by default, and with ``--no-fvcore``), against
  the floor any count pays: importing torch and timm (target: within 1.25x of it). gfbench
  ends without Python's module-by-module shutdown (``gfbench.cli.entry``: 1-3 s on a 2-core
  machine), so the floor it is held to ends the same way, ``import torch, timm`` then
  ``os._exit(0)``; the ratio to ``python -c "import torch, timm"``, which pays that shutdown,
  is shown too. The commands run interleaved, round after round, so a machine whose load
  changes moves them alike; each round's ratio is taken within the round. ``--tree PATH``
  times another checkout's gfbench the same way (e.g. the main branch, to show a change).
  Bytecode: an installed package has its modules compiled, so by default every call reads
  compiled bytecode from a cache folder outside the trees (``--bytecode none``: gfbench's
  modules are compiled at every start, as under PYTHONDONTWRITEBYTECODE=1 with a source
  checkout).

    python benchmarks/bench_startup.py [--runs 7] [--rounds 15] [--tree /work/main]
        [--bytecode cached|none] [--out benchmarks/startup]
    # --out writes bench_startup-<bytecode>.csv (every call) and .md (the summary)
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = (["--help"], ["--version"], ["plot", "--help"], ["complexity", "--help"])
TARGET_S = 0.5
COUNT = ["complexity", "--models", "deit", "--res", "224", "--metrics", "flops,params"]
COUNT_TARGET = 1.25
FLOOR = "import torch, timm, os; os._exit(0)"  # what a count pays at least (gfbench exits so)
SHUTDOWN = "import torch, timm"  # and Python's shutdown of them, which gfbench skips
ROOT = Path(__file__).resolve().parents[1]


def wall_times(args: list[str], runs: int) -> list[float]:
    """Seconds each of ``runs`` fresh `python -m gfbench ARGS` calls (this tree's) took."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gfbench", *args], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def slowest_imports(args: list[str], count: int = 6) -> list[tuple[int, str]]:
    """The modules with the largest cumulative import time (microseconds) for one call."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "gfbench", *args],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    entries = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        entries.append((int(cumulative), name.strip()))
    return sorted(entries, reverse=True)[:count]


def light_commands(runs: int) -> None:
    """The --help/--version part: median per command, the slowest imports, the verdict."""
    worst = 0.0
    for command in COMMANDS:
        median = statistics.median(wall_times(command, runs))
        worst = max(worst, median) if len(command) == 1 else worst
        print(f"gfbench {' '.join(command):<18} median {median * 1000:7.0f} ms")
    print("slowest imports of `gfbench --help` (cumulative ms):")
    for micros, name in slowest_imports(["--help"]):
        print(f"  {micros / 1000:8.1f}  {name}")
    verdict = "meets" if worst < TARGET_S else "misses"
    print(f"worst median {worst * 1000:.0f} ms: {verdict} the {TARGET_S * 1000:.0f} ms target")


def count_variants(trees: dict[str, Path], out: Path, bytecode: str
                   ) -> dict[str, tuple[list[str], dict]]:
    """label -> (argv, environment) of every timed call: the floor, then each tree's count
    with and without fvcore's cross-check (each writing into its own folder under ``out``)."""
    drop = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    if bytecode == "cached":  # compiled once (the untimed round), outside the trees
        base["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "gfbench-bench-pycache")
    else:
        base["PYTHONDONTWRITEBYTECODE"] = "1"
    variants = {code: ([sys.executable, "-c", code], base) for code in (FLOOR, SHUTDOWN)}
    for label, tree in trees.items():
        env = {**base, "PYTHONPATH": str(tree)}
        for extra, name in (([], "count"), (["--no-fvcore"], "count --no-fvcore")):
            argv = [sys.executable, "-m", "gfbench", *COUNT, *extra, "--out",
                    str(out / f"{label}-{len(extra)}")]
            variants[f"{name} [{label}]"] = (argv, env)
    return variants


def interleaved(variants: dict[str, tuple[list[str], dict]], rounds: int, cwd: Path
                ) -> list[dict]:
    """Every variant once per round, in turn, each in a fresh process started in ``cwd``
    (`python -m` puts the working folder first on the path: PYTHONPATH alone picks the
    tree): one record a call."""
    records = []
    for index in range(rounds):
        for label, (argv, env) in variants.items():
            start = time.perf_counter()
            subprocess.run(argv, env=env, check=True, cwd=cwd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            records.append({"round": index, "variant": label,
                            "seconds": round(time.perf_counter() - start, 4),
                            "load1": round(os.getloadavg()[0], 2)})
    return records


def _quantiles(values: list[float]) -> tuple[float, float, float]:
    """10th, 50th and 90th percentiles (interpolated)."""
    cuts = statistics.quantiles(values, n=10, method="inclusive")
    return cuts[0], statistics.median(values), cuts[-1]


def _ratio_cells(own: list[dict], records: list[dict], floor_label: str) -> str:
    """'median (p10-p90)' of each round's time over the floor's time in that round."""
    floor = {r["round"]: r["seconds"] for r in records if r["variant"] == floor_label}
    low, mid, high = _quantiles([r["seconds"] / floor[r["round"]] for r in own])
    return f"{mid:.2f}x ({low:.2f}-{high:.2f})"


def summary_table(records: list[dict]) -> list[str]:
    """Markdown lines: per variant the median wall time with p10-p90, and its ratios to the
    floors measured in the same round (median and p10-p90 of those ratios)."""
    lines = ["| command | median s | p10-p90 s | ÷ floor (exits as gfbench does) | "
             "÷ `import torch, timm` (Python's shutdown) |", "|---|---:|---:|---:|---:|"]
    for label in dict.fromkeys(r["variant"] for r in records):
        own = [r for r in records if r["variant"] == label]
        low, mid, high = _quantiles([r["seconds"] for r in own])
        lines.append(f"| `{label}` | {mid:.2f} | {low:.2f}-{high:.2f} | "
                     f"{_ratio_cells(own, records, FLOOR)} | "
                     f"{_ratio_cells(own, records, SHUTDOWN)} |")
    return lines


def _commit(tree: Path) -> str:
    """The tree's checked-out commit (and '+changes' when its files differ from it)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tree), *args], capture_output=True,
                              text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--short",
                                                                    "--untracked-files=no")
                                                  else "")


def count_benchmark(rounds: int, trees: dict[str, Path], out: Path | None,
                    bytecode: str) -> None:
    """The end-to-end count against the floor: printed, and written to ``out`` when given."""
    with tempfile.TemporaryDirectory(prefix="gfbench-bench-startup-") as scratch:
        variants = count_variants(trees, Path(scratch), bytecode)
        interleaved(variants, 1, Path(scratch))  # untimed: bytecode and page cache warmed
        records = interleaved(variants, rounds, Path(scratch))
    loads = [r["load1"] for r in records]
    header = [f"One model counted end to end, {rounds} interleaved rounds on "
              f"{os.cpu_count()} cores (load average {min(loads):.1f}-{max(loads):.1f} "
              f"during the run); count: `gfbench {' '.join(COUNT)}`; floor: "
              f"`python -c \"{FLOOR}\"`; bytecode {bytecode}; target: within "
              f"{COUNT_TARGET}x of the floor. Ratios: each call over the floor's call of the "
              "same round, median (p10-p90) over the rounds. Trees: "
              + "; ".join(f"[{label}] {tree} at {_commit(tree)}" for label, tree in trees.items())
              + ".", ""]
    lines = header + summary_table(records)
    print("\n".join(lines))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        stem = out / f"bench_startup-{bytecode}"
        with open(stem.with_suffix(".csv"), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
        stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
        print(f"wrote {stem}.csv, {stem}.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per light "
                        "command (0: skip them)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds of the "
                        "end-to-end count (0: skip it)")
    parser.add_argument("--tree", type=Path, action="append", default=[],
                        help="another checkout whose gfbench is timed alongside this one")
    parser.add_argument("--bytecode", choices=("cached", "none"), default="cached",
                        help="read compiled bytecode from a cache (as installed) or compile "
                        "gfbench's modules at every start")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for bench_startup.csv and bench_startup.md")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.runs:
        light_commands(args.runs)
    if args.rounds:
        trees = {"this": ROOT, **{tree.resolve().name: tree.resolve() for tree in args.tree}}
        count_benchmark(args.rounds, trees, args.out, args.bytecode)


if __name__ == "__main__":
    main()
