"""Start-up time of the CLI: `gfbench --help`, `--version`, `plot --help` and `complexity
--help`, as the median wall time of fresh interpreters, plus the slowest imports of one of them.

    python benchmarks/bench_startup.py [--runs 7]

Target: --help and --version under 0.5 s on a 2-core CPU; nothing of torch or timm loaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = (["--help"], ["--version"], ["plot", "--help"], ["complexity", "--help"])
TARGET_S = 0.5


def wall_times(args: list[str], runs: int) -> list[float]:
    """Seconds each of ``runs`` fresh `python -m gfbench ARGS` calls took."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gfbench", *args], check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def slowest_imports(args: list[str], count: int = 6) -> list[tuple[int, str]]:
    """The modules with the largest cumulative import time (microseconds) for one call."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "gfbench", *args],
                          capture_output=True, text=True, check=True)
    entries = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        entries.append((int(cumulative), name.strip()))
    return sorted(entries, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per command")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    worst = 0.0
    for command in COMMANDS:
        median = statistics.median(wall_times(command, args.runs))
        worst = max(worst, median) if len(command) == 1 else worst
        print(f"gfbench {' '.join(command):<18} median {median * 1000:7.0f} ms")
    print("slowest imports of `gfbench --help` (cumulative ms):")
    for micros, name in slowest_imports(["--help"]):
        print(f"  {micros / 1000:8.1f}  {name}")
    verdict = "meets" if worst < TARGET_S else "misses"
    print(f"worst median {worst * 1000:.0f} ms: {verdict} the {TARGET_S * 1000:.0f} ms target")


if __name__ == "__main__":
    main()
