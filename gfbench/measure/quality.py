"""Whether a run's timings can be trusted: one-line warnings about the machine and the spread.

Pure functions (no torch, nothing printed): they return messages, render.py prints them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from gfbench.measure.scaling import relative_spread

MAX_SPREAD = 0.2  # p10–p90 wider than a fifth of the median: settings 20% apart look alike


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the system has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def available_cores() -> int:
    """The cores this process may run on (what the load average is compared with)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _timed(rows: Sequence[Any]) -> list[Any]:
    """The rows that carry a median latency."""
    return [r for r in rows if getattr(r, "latency_ms_p50", None) is not None]


def free_cores(load: float, cores: int, own_threads: int = 0) -> int:
    """Cores that other work leaves free, at a 1-minute load average that includes this run's
    own ``own_threads`` (at least one)."""
    return max(1, math.floor(cores - max(0.0, load - own_threads)))


def busy_warning(loads: Sequence[Sequence[float] | None], cores: int,
                 threads: int | None = None) -> str:
    """A warning, with what to do about it, when the 1-minute load average was above the cores
    at any reading, or "".

    ``loads``: load-average triples taken around the run (start, end); None where unread.
    ``threads``: the CPU threads the timed steps used (each one more than the free cores
    waits for a core instead of computing).
    """
    minutes = [float(load[0]) for load in loads if load]
    if not minutes or max(minutes) <= cores:
        return ""
    readings = ", ".join(f"{m:.2f}" for m in minutes)
    free = free_cores(max(minutes), cores, threads or 0)
    used = f" with {threads} thread{'s' if threads != 1 else ''}" if threads else ""
    fewer = (f", or with --threads {free} (about {free} core{'s' if free > 1 else ''} free)"
             if threads is None or free < threads else "")
    return (f"busy machine: 1-minute load average {readings} (start, end) above its {cores} "
            f"cores; timings{used} are suspect: rerun on an idle machine{fewer}")


def oversubscription_warning(threads: int | None, ranks: int, cores: int) -> str:
    """A warning when torchrun ranks on one machine ask for more CPU threads than it has."""
    if not threads or ranks < 2 or threads * ranks <= cores:
        return ""
    return (f"oversubscribed: {ranks} ranks x {threads} threads on {cores} cores; CPU timings "
            f"wait for each other: use --threads {max(1, cores // ranks)}")


def spread_warning(rows: Sequence[Any], limit: float = MAX_SPREAD) -> str:
    """A warning when any timed row's p10–p90 spread exceeds ``limit`` of its median, or ""."""
    spreads = [(relative_spread(r.latency_ms_p10, r.latency_ms_p50, r.latency_ms_p90), r)
               for r in _timed(rows)]
    wide = [(s, r) for s, r in spreads if math.isfinite(s) and s > limit]
    if not wide:
        return ""
    worst, row = max(wide, key=lambda item: item[0])
    return (f"noisy timings: p10–p90 spread above {limit:.0%} of the median in {len(wide)} of "
            f"{len(spreads)} timed rows (widest: {row.name} {'x'.join(map(str, row.sides()))}, "
            f"{worst:.0%}); differences smaller than that are not measured")


def timing_warnings(rows: Sequence[Any], loads: Sequence[Sequence[float] | None],
                    cores: int, ranks: int = 1) -> list[str]:
    """The warnings that apply to a run's timed rows (none when nothing was timed)."""
    timed = _timed(rows)
    if not timed:
        return []
    cpu_threads = max((r.threads or 0 for r in timed if str(r.device) == "cpu"), default=0)
    return [w for w in (busy_warning(loads, cores, cpu_threads or None),
                        oversubscription_warning(cpu_threads, ranks, cores),
                        spread_warning(rows)) if w]
