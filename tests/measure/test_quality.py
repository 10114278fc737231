"""Timing warnings: a busy machine and p10–p90 spreads too wide to compare settings."""

import re
from pathlib import Path

from gfbench.distributed import DistContext
from gfbench.measure.plan import ranks_share_of_cores
from gfbench.measure.quality import (
    available_cores,
    busy_warning,
    load_average,
    oversubscription_warning,
    spread_warning,
    timing_warnings,
)
from gfbench.results import ComplexityRow


def _row(name, side, p10=None, p50=None, p90=None):
    return ComplexityRow(subject="mixer", name=name, res_h=side, res_w=side, tokens=side * side,
                         batch_size=1, precision="fp32", mode="infer", device="cpu", dim=8,
                         latency_ms_p10=p10, latency_ms_p50=p50, latency_ms_p90=p90)


def test_busy_when_the_load_at_start_or_end_exceeds_the_cores():
    assert busy_warning([[1.5, 1.0, 0.5], [2.0, 1.0, 0.5]], cores=2) == ""  # at the cores: fine
    message = busy_warning([[1.0, 1.0, 1.0], [3.25, 2.0, 1.0]], cores=2)
    assert "1.00, 3.25 (start, end)" in message and "above its 2 cores" in message
    assert "--threads 1" in message  # what to do about it: no core is free
    assert busy_warning([[5.0, 0, 0], None], cores=2).count("5.00") == 1
    assert busy_warning([None, None], cores=2) == ""  # no load average on this system


def test_spread_warning_names_the_share_of_rows_and_the_widest():
    rows = [_row("a", 14, 9.0, 10.0, 11.0),  # 20%: at the limit, fine
            _row("b", 28, 8.0, 10.0, 12.5),  # 45%
            _row("b", 56, 9.0, 10.0, 12.0),  # 30%
            _row("c", 7)]  # not timed
    assert spread_warning(rows[:1]) == ""
    message = spread_warning(rows)
    assert "in 2 of 3 timed rows" in message and "widest: b 28x28, 45%" in message


def test_no_timed_rows_no_warnings_even_on_a_busy_machine():
    counted = [_row("a", 14), _row("a", 28)]
    assert timing_warnings(counted, [[9.0, 9.0, 9.0]], cores=2) == []
    timed = [_row("a", 14, 5.0, 10.0, 15.0)]
    warnings = timing_warnings(timed, [[9.0, 9.0, 9.0], [8.0, 9.0, 9.0]], cores=2)
    assert [w.split(":")[0] for w in warnings] == ["busy machine", "noisy timings"]


def test_the_busy_warning_suggests_fewer_threads_only_when_that_is_fewer():
    already_one = busy_warning([[3.0, 1.0, 1.0]], cores=2, threads=1)
    assert "with 1 thread " in already_one and "--threads" not in already_one
    assert "--threads 1" in busy_warning([[3.0, 1.0, 1.0]], cores=2, threads=2)


def test_the_busy_warning_says_how_many_threads_are_free():
    # 16 of the 25.2 are this run's own threads: others keep 9.2 cores busy, 6 are left
    message = busy_warning([[25.2, 1.0, 1.0]], cores=16, threads=16)
    assert "timings with 16 threads are suspect" in message
    assert "--threads 6 (about 6 cores free)" in message


def test_ranks_on_one_machine_share_its_cores_or_are_warned():
    assert oversubscription_warning(threads=2, ranks=2, cores=4) == ""
    assert oversubscription_warning(threads=8, ranks=1, cores=4) == ""  # one process
    message = oversubscription_warning(threads=4, ranks=2, cores=4)
    assert "2 ranks x 4 threads on 4 cores" in message and "--threads 2" in message
    cores = available_cores()
    two = DistContext(rank=1, world_size=2, local_rank=1, local_world_size=2)
    assert ranks_share_of_cores("cpu", two) == max(1, cores // 2)
    assert ranks_share_of_cores("cuda:1", two) is None  # a GPU each: torch's default
    assert ranks_share_of_cores("cpu", DistContext()) is None


def _allowed_cpus_from_proc() -> int:
    """The CPUs this process may run on, as the kernel lists them in /proc/self/status."""
    text = Path("/proc/self/status").read_text()
    listing = re.search(r"^Cpus_allowed_list:\s*(\S+)", text, re.MULTILINE).group(1)
    count = 0
    for part in listing.split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


def test_load_average_and_cores_read_this_machine():
    loads = load_average()
    assert len(loads) == 3 and all(v >= 0 for v in loads)
    assert available_cores() == _allowed_cpus_from_proc()
