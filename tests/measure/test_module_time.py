"""Per-row latency from forward hooks: own time is inclusive minus timed children's, every row
that does work gets a time, the roofline fields are gfbench.measure.roofline's, and a real CPU
run adds up to its forward."""

import itertools

import pytest
import torch
from torch import nn

from gfbench.measure import module_time as mt
from gfbench.measure.breakdown import assign_groups, breakdown_setting
from gfbench.results import BreakdownRow


class Inner(nn.Module):
    """A block with a role-less body: a norm and an MLP, plus its own residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4)
        self.mlp = nn.Sequential(nn.Linear(4, 4), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(x))


class Tiny(nn.Module):
    """Two blocks looped over (the container's own forward never runs, as in GFNet) and a
    head."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Inner(), Inner()])
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def _ticking_clock(step_ns: int = 1_000_000):
    """A clock that moves 1 ms between any two stamps."""
    counter = itertools.count()
    return lambda: next(counter) * step_ns


def test_own_time_is_inclusive_minus_the_nearest_called_children():
    inclusive = {"": 10.0, "blocks.0": 4.0, "blocks.0.mlp": 1.5, "blocks.1": 3.0, "head": 2.0}
    own = mt.own_times(inclusive)
    # "blocks" was never called: its children subtract from the model itself
    assert own == {"": 1.0, "blocks.0": 2.5, "blocks.0.mlp": 1.5, "blocks.1": 3.0, "head": 2.0}
    assert sum(own.values()) == pytest.approx(inclusive[""])


def test_hooks_with_a_fake_clock_give_exact_own_times():
    model = Tiny()
    groups = assign_groups(model)
    paths = mt.timed_paths(groups, depth=1)
    # depth <= 1, plus the role-less blocks.i and the role heads inside them
    assert set(paths) == {"", "blocks", "head", "blocks.0", "blocks.1", "blocks.0.norm",
                          "blocks.0.mlp", "blocks.1.norm", "blocks.1.mlp"}
    timer = mt.HookTimer(mt.cpu_stamps(_ticking_clock()))
    with timer.attached(model, paths):
        timer.begin_call()
        model(torch.randn(3, 4))
    inclusive = timer.inclusive(timer.calls[0])
    # stamps 1 ms apart, in order: "" pre 0; blocks.0 pre 1, norm 2-3, mlp 4-5, post 6;
    # blocks.1 7-12; head 13-14; "" post 15
    assert inclusive[""] == 15.0 and inclusive["blocks.0"] == 5.0
    assert inclusive["blocks.0.norm"] == inclusive["blocks.0.mlp"] == inclusive["head"] == 1.0
    assert "blocks" not in inclusive  # a ModuleList is never called
    rows = mt.row_times(mt.own_times(inclusive), mt.row_keys(groups, paths, 1))
    assert rows == {("", True, "other"): 15.0 - 5 - 5 - 1,
                    ("blocks", False, "other"): 2 * (5.0 - 1 - 1),
                    ("blocks", False, "norm"): 2.0, ("blocks", False, "channel_mlp"): 2.0,
                    ("head", False, "head"): 1.0}
    assert sum(rows.values()) == inclusive[""]  # a call's own times add up to the model's


def test_a_module_that_sleeps_owns_its_sleep_not_its_childs():
    import time

    class Sleep(nn.Module):
        def __init__(self, seconds: float, child: nn.Module | None = None):
            super().__init__()
            self.seconds, self.child = seconds, child

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            time.sleep(self.seconds)
            return self.child(x) if self.child is not None else x

    model = nn.Sequential(Sleep(0.03, Sleep(0.01)))
    paths = ["", "0", "0.child"]
    timer = mt.HookTimer(mt.cpu_stamps())
    with timer.attached(model, paths):
        timer.begin_call()
        model(torch.zeros(1))
    own = mt.own_times(timer.inclusive(timer.calls[0]))
    assert own["0.child"] >= 10 and own["0"] >= 30
    assert own["0"] < 30 + 25  # not the child's 10 ms on top (slack for a busy machine)


CEILINGS = {"source": "measured", "device": "cpu", "matmul_flops_s": {"fp32": {"p50": 1e11}},
            "bandwidth_bytes_s": {"triad": {"p50": 1e10}}, "bandwidth_used": "triad"}


def _times(rows: dict, overhead: float = 0.5) -> mt.ModuleTimes:
    """A ModuleTimes whose every call gives the same own times."""
    return mt.ModuleTimes((rows, rows, rows), (10.0, 10.0, 10.0),
                          (10.0 + overhead,) * 3, 5, mt.CPU_METHOD, 1)


def test_the_roofline_fields_are_worked_out_by_hand():
    row = BreakdownRow(name="m", res_h=8, res_w=8, tokens=None, engine="torch", depth=1,
                       module="blocks", own=False, group="channel_mlp", flops=10**9,
                       bytes=5 * 10**7, batch_size=2)
    spare = mt.fill_times([row], _times({("blocks", False, "channel_mlp"): 10.0,
                                         ("gone", False, "other"): 0.25}),
                          "cpu", CEILINGS, tf32=False)
    # compute 2e9 / 1e11 = 20 ms > memory 1e8 / 1e10 = 10 ms: compute bound at 20 ms
    assert row.latency_ms_p50 == 10.0 and row.device == "cpu"
    assert row.bound == "compute" and row.roofline_ms == pytest.approx(20.0)
    assert row.roofline_ratio == pytest.approx(0.5)
    assert row.achieved_flops_s == pytest.approx(2e11) and row.compute_share == pytest.approx(2)
    assert row.achieved_bytes_s == pytest.approx(1e10)
    assert row.bandwidth_share == pytest.approx(1.0)
    assert spare == 0.25  # the time of a module in no row


def test_ceilings_of_another_device_give_achieved_rates_only():
    row = BreakdownRow(name="m", res_h=8, res_w=8, tokens=None, engine="torch", depth=1,
                       module="head", own=False, group="head", flops=100, bytes=400)
    mt.fill_times([row], _times({("head", False, "head"): 1.0}), "cuda:0", CEILINGS, False)
    assert row.bound == "no ceiling" and row.roofline_ms is None
    assert row.achieved_flops_s == pytest.approx(100 / 1e-3)


def test_a_real_cpu_run_times_every_row_that_works_and_adds_up_to_its_forward():
    torch.manual_seed(0)
    size, depth, batch = (64, 64), 3, 2
    from gfbench.measure.breakdown import _builder

    model = _builder("gfnet-xs", size)().eval()
    times = mt.time_model(model, torch.randn(batch, 3, *size), depth, warmup=1, repeat=5,
                          warmup_s=0.0)
    rows = breakdown_setting("gfnet-xs", size, depth, batch=batch)
    keys = {mt._row_key(r) for r in rows}
    quantiles, spare = times.quantiles(keys)
    working = {mt._row_key(r) for r in rows if r.bytes}
    assert working <= set(quantiles)  # every row that moves bytes got a time
    assert all(q[1] > 0 for q in quantiles.values())
    sums = sorted(sum(call.values()) for call in times.calls)
    median = sums[len(sums) // 2]
    # the own times of a call add up to the model's time inside the hooked call: no more
    # than the hooked forward, and not far below the plain one (the hooks only add time)
    assert median <= times.hooked_ms[2] + 1e-6
    assert median >= 0.5 * times.forward_ms[0]
    assert times.method == mt.CPU_METHOD and times.hooks == len(mt.timed_paths(
        assign_groups(model), depth))


def test_counting_at_a_batch_keeps_the_flops_per_image():
    one = breakdown_setting("gfnet-xs", (64, 64), 1)
    four = breakdown_setting("gfnet-xs", (64, 64), 1, batch=4)
    assert [r.flops for r in four] == [r.flops for r in one]
    assert {r.batch_size for r in four} == {4}
    # weights are read once per batch: bytes per image fall with the batch
    assert sum(r.bytes for r in four) < sum(r.bytes for r in one)


def test_cuda_events_time_the_same_rows_as_the_clock():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: the CUDA-event stamps are not exercised "
                    "(the hook and own-time logic is the CPU path's, tested above)")
    model = Tiny().cuda()
    times = mt.time_model(model, torch.randn(3, 4, device="cuda"), 1, warmup=1, repeat=3,
                          warmup_s=0.0)
    assert times.method == mt.CUDA_METHOD
    assert set(times.calls[0]) == {("", True, "other"), ("blocks", False, "other"),
                                   ("blocks", False, "norm"), ("blocks", False, "channel_mlp"),
                                   ("head", False, "head")}
