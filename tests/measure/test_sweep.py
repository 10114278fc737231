"""Sweeps: nothing lost (resume, re-runs, Ctrl-C), crashes isolated, torchrun shards."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gfbench.errors import RunInterrupted, RunNotFoundError
from gfbench.measure.plan import ComplexityRequest, plan_complexity
from gfbench.measure.sweep import ChildFunctions, run_sweep, summary_line
from gfbench.results import read_results, read_rows

SMALL = {"mixers": ("global_filter", "attention"), "tokens": ("4", "6"), "dim": 16,
         "metrics": ("flops", "params"), "device": "cpu", "isolate": False}
HERE = str(Path(__file__).parent)


def _plan(tmp_path, **overrides):
    return plan_complexity(ComplexityRequest(**{**SMALL, **overrides}), results_dir=tmp_path)


def _fake_measure(calls, interrupt_at=None):
    def measure(setting, options):
        calls.append((setting.name, setting.res_h))  # a mixer's Setting keeps its grid here
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return dataclasses.replace(setting.row(), tokens=setting.res_h**2, flops=len(calls))

    return measure


def test_resume_skips_finished_rows_after_an_interruption(tmp_path):
    plan = _plan(tmp_path)
    calls = []
    with pytest.raises(RunInterrupted) as info:
        run_sweep(plan, measure_fn=_fake_measure(calls, interrupt_at=3))
    run = tmp_path / f"0001-{plan.name}.json"
    assert info.value.rows_kept == 2 and info.value.path == run and info.value.run_id == "0001"
    _, kept = read_rows(run)
    assert [(r.name, r.grid_h) for r in kept] == calls[:2]

    calls.clear()
    skipped = []
    resumed = dataclasses.replace(plan, resume="1")
    outcome = run_sweep(resumed, measure_fn=_fake_measure(calls),
                        on_row=lambda row, was_skipped: skipped.append(was_skipped))
    assert calls == [("attention", 4), ("attention", 6)]
    assert skipped == [True, True, False, False] and outcome.skipped == 2
    assert [r.flops for r in outcome.rows] == [1, 2, 1, 2]  # the first run's rows as they were
    assert outcome.path == run and len(read_rows(run)[1]) == 4
    provenance = json.loads(run.read_text())["provenance"]
    assert provenance["extra"]["run_id"] == "0001" and len(provenance["extra"]["resumed"]) == 1


def test_every_invocation_is_a_run_of_its_own_and_never_touches_another(tmp_path):
    first = run_sweep(_plan(tmp_path), measure_fn=_fake_measure([]))
    before = first.path.read_text()
    second = run_sweep(_plan(tmp_path, mixers=("attention",), tokens=("6", "8")),
                       measure_fn=_fake_measure([]))
    assert (first.run_id, second.run_id) == ("0001", "0002")
    assert first.path.read_text() == before  # the first run's rows are as they were
    assert sorted((r.name, r.grid_h) for r in read_rows(second.path)[1]) == [
        ("attention", 6), ("attention", 8)]
    assert second.path.name == "0002-complexity-mixers-meta-b1-fp32-infer.json"


def test_resuming_a_run_that_is_not_there_names_the_runs_that_are(tmp_path):
    run_sweep(_plan(tmp_path), measure_fn=_fake_measure([]))
    with pytest.raises(RunNotFoundError) as info:
        _plan(tmp_path, resume="7")
    message = str(info.value)
    assert "\n" not in message and "no run 0007" in message
    assert "0001-complexity-mixers-meta-b1-fp32-infer" in message


def test_a_foreign_file_given_to_resume_is_refused_before_any_work(tmp_path):
    plan = _plan(tmp_path)
    foreign = tmp_path / f"0001-{plan.name}.json"
    foreign.write_text("{}")
    calls = []
    with pytest.raises(Exception, match="not a gfbench results file"):
        run_sweep(dataclasses.replace(plan, resume="last"), measure_fn=_fake_measure(calls))
    assert calls == [] and foreign.read_text() == "{}"


def test_summary_line_counts_every_status():
    rows = [dataclasses.replace(_plan_row(), status=s) for s in ("ok", "ok", "error")]
    assert summary_line(rows) == "2 ok, 0 oom, 1 error"


def _plan_row():
    from gfbench.measure.setting import Setting

    return Setting("mixer", "attention", 4, 4, 1, "fp32", "infer", "cpu", 16).row()


def test_provenance_is_in_both_files(tmp_path):
    plan = _plan(tmp_path)
    outcome = run_sweep(plan)
    provenance, frame = read_results(outcome.path)
    for name in ("gfbench_version", "torch_version", "timm_version", "fvcore_version",
                 "device_name", "cpu_model", "command", "date", "flop_convention"):
        assert getattr(provenance, name), name
    assert len(provenance.extra["load_average_at_start"]) == 3
    assert provenance.cpu_threads > 0 and provenance.torch_threads > 0
    assert provenance.cuda_version == (torch.version.cuda or "")
    assert "one fused multiply-add = one FLOP" in provenance.flop_convention
    assert provenance.extra["metrics"] == ["flops", "params"]
    assert provenance.extra["run_id"] == "0001"
    header = outcome.path.with_suffix(".csv").read_text()
    for name in ("torch_version", "timm_version", "fvcore_version", "driver_version",
                 "cuda_version", "cpu_model", "command", "date", "flop_convention"):
        assert f"# {name}:" in header
    assert len(frame) == 4 and set(frame["flops_engine"]) == {"fvcore"}


def test_crashes_and_poisoned_processes_cost_one_row_and_keep_the_counts(tmp_path):
    plan = _plan(tmp_path, mixers=("attention", "identity", "spatial_mlp", "global_filter"),
                 tokens=("4",), metrics=("flops", "params", "latency"), warmup=1, repeat=1,
                 isolate=True)
    outcome = run_sweep(plan, functions=ChildFunctions(time="child_steps:time_or_fail"))
    rows = {r.name: r for r in outcome.rows}
    crashed = rows["attention"]
    assert crashed.status == "error" and "SIGSEGV" in crashed.error
    assert crashed.flops == 16 * 16 * 16 * 4 + 2 * 16**2 * 16  # counted in a child of its own
    assert rows["identity"].status == "error" and "illegal memory access" in rows["identity"].error
    assert rows["identity"].failure == "poisoned"
    killed = rows["spatial_mlp"]
    assert killed.status == "oom" and "SIGKILL" in killed.error and killed.params == 16 * 16 + 16
    assert rows["global_filter"].status == "ok" and rows["global_filter"].latency_ms_p50 > 0
    # every step of every setting (count, time) in a process of its own
    assert len(outcome.children) == len(set(outcome.children)) == 8
    assert summary_line(outcome.rows) == "1 ok, 1 oom, 2 error"


def _rows_without_timing(path):
    _, rows = read_rows(path)
    return sorted((r.name, r.grid_h, r.tokens, r.flops, r.flops_torch, r.params, r.status,
                   r.uncounted_ops) for r in rows)


def test_two_gloo_processes_give_the_rows_of_one(tmp_path):
    args = ["complexity", "--mixers", "global_filter,attention,spatial_mlp", "--tokens",
            "4,6,8", "--dim", "16", "--metrics", "flops,params", "--no-isolate"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "120"}
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "gfbench", *args, "--out", str(tmp_path / "two")],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("wrote ") == 1 and "9 ok, 0 oom, 0 error" in two.stdout
    one = subprocess.run([sys.executable, "-m", "gfbench", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    name = "0001-complexity-mixers-meta-b1-fp32-infer.json"
    assert _rows_without_timing(tmp_path / "two" / name) == \
        _rows_without_timing(tmp_path / "one" / name)
    assert len(_rows_without_timing(tmp_path / "two" / name)) == 9
    assert not list((tmp_path / "two").glob("*-rank*"))  # the part files were merged
    provenance, _ = read_results(tmp_path / "two" / name)
    assert provenance.extra["world_size"] == 2


def test_a_count_only_run_counts_in_this_process_even_when_isolated(tmp_path):
    outcome = run_sweep(_plan(tmp_path, isolate=True))
    assert outcome.children == [] and len(outcome.rows) == 4
    assert all(r.status == "ok" and r.flops > 0 for r in outcome.rows)


TIMED = {"mixers": ("global_filter",), "tokens": ("4",), "metrics": ("flops", "params", "latency"),
         "warmup": 1, "repeat": 3, "warmup_s": 0.0, "isolate": True, "fvcore": False}


def test_a_timed_run_records_its_ceilings_and_the_roofline_of_each_row(tmp_path):
    plan = _plan(tmp_path, **TIMED)
    outcome = run_sweep(plan, functions=ChildFunctions(ceilings="child_steps:tiny_ceilings"))
    provenance, _ = read_results(outcome.path)
    ceilings = provenance.extra["ceilings"]
    assert ceilings["source"] == "measured" and ceilings["device"] == "cpu"
    assert ceilings["threads"] == torch.get_num_threads()  # the timed steps' threads
    assert outcome.ceilings == ceilings
    assert len(outcome.children) == 2  # count and time: the ceilings' child is not a step's
    (row,) = read_rows(outcome.path)[1]
    achieved = row.flops * row.batch_size / (row.latency_ms_p50 / 1000)
    assert row.achieved_flops_s == pytest.approx(achieved)
    assert row.compute_share == pytest.approx(achieved / ceilings["matmul_flops_s"]["fp32"]["p50"])
    peak = ceilings["matmul_flops_s"]["fp32"]["p50"]
    bandwidth = ceilings["bandwidth_bytes_s"][ceilings["bandwidth_used"]]["p50"]
    compute_s, memory_s = (row.flops * row.batch_size / peak,
                           row.bytes * row.batch_size / bandwidth)
    assert row.bytes > 0 and row.bound == ("compute" if compute_s > memory_s else "memory")
    assert row.roofline_ms == pytest.approx(max(compute_s, memory_s) * 1000)
    assert row.roofline_ratio == pytest.approx(row.latency_ms_p50 / row.roofline_ms)


def test_a_resumed_run_keeps_the_ceilings_it_measured_first(tmp_path):
    first = run_sweep(_plan(tmp_path, **TIMED),
                      functions=ChildFunctions(ceilings="child_steps:tiny_ceilings"))
    both = {**TIMED, "mixers": ("global_filter", "identity")}
    more = dataclasses.replace(_plan(tmp_path, **both), resume="1")
    outcome = run_sweep(more, functions=ChildFunctions(ceilings="child_steps:failing_ceilings"))
    assert outcome.path == first.path and outcome.measured == 1
    provenance, _ = read_results(outcome.path)
    assert provenance.extra["ceilings"] == first.ceilings  # not measured again


def test_ceilings_that_fail_leave_a_reason_and_no_bound_and_a_resume_measures_them(tmp_path):
    plan = _plan(tmp_path, **TIMED)
    outcome = run_sweep(plan, functions=ChildFunctions(ceilings="child_steps:failing_ceilings"))
    ceilings = read_results(outcome.path)[0].extra["ceilings"]
    assert ceilings["source"] == "none" and "no ceilings on cpu today" in ceilings["reason"]
    (row,) = outcome.rows
    assert row.status == "ok" and row.bound == "no ceiling" and row.compute_share is None
    resumed = run_sweep(dataclasses.replace(plan, resume="1"),
                        functions=ChildFunctions(ceilings="child_steps:tiny_ceilings"))
    assert resumed.ceilings["source"] == "measured"  # none were recorded: measured now


def test_a_count_only_run_records_no_ceilings(tmp_path):
    outcome = run_sweep(_plan(tmp_path),
                        functions=ChildFunctions(ceilings="child_steps:failing_ceilings"))
    assert "ceilings" not in read_results(outcome.path)[0].extra and outcome.ceilings is None


def test_ctrl_c_while_the_ceilings_are_measured_keeps_the_run_and_says_so(tmp_path, monkeypatch):
    from gfbench.measure import sweep

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "call_in_child", interrupted)
    with pytest.raises(RunInterrupted) as info:
        run_sweep(_plan(tmp_path, **TIMED))
    assert info.value.rows_kept == 0 and info.value.run_id == "0001"
    assert info.value.path.exists() and not info.value.path.with_suffix(".lock").exists()
