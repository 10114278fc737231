"""Latency of each breakdown row: forward hooks time the modules of the breakdown's depth in the
forward pass, and each row gets its modules' *own* time (inclusive minus timed children's).

Method (``time_method`` of a row): a forward pre-hook and a forward hook
(``nn.Module.register_forward_pre_hook`` / ``register_forward_hook``, PyTorch docs) on every
timed module take a stamp: ``time.perf_counter_ns`` on the CPU, where an op has finished when
it returns; a recorded CUDA event on CUDA, read after a synchronize once the timed calls are
done (``torch.cuda.Event.elapsed_time``), so no synchronize enters the timed calls. Timed
modules: every module at depth <= D (those the rows name) and every *role head* below (the
highest module of a role: ``blocks.0.attn`` inside ``blocks`` at depth 1) and every module of
no role (``blocks.0``, whose residual adds are "other"), so a row at depth 1 that holds several
roles still gets each role its own time. A timed module's own time is its
inclusive time minus its nearest timed descendants', and lands in the row its FLOPs land in
(``gfbench.measure.breakdown.cut`` and the module's role): the own times of one call add up to
the model's inclusive time exactly. A module's own time that lands in no row (it counted
nothing: no FLOPs, no bytes, no parameters) is reported as ``unattributed``.

The hooks cost time (two Python calls and two stamps per timed module per call), which lands
in the own time of the module around them: the whole forward is timed without hooks and with
them (``gfbench.measure.timing.time_step``, same warm-up and quantiles), and the difference is
reported as the hook overhead. A row of a few microseconds is then mostly hook. Imports torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gfbench.measure.breakdown import assign_groups, cut
from gfbench.measure.flops import parent_path
from gfbench.measure.timing import DEFAULT_WARMUP_S, clock_for, make_step, summarize, warm_up

RowKey = tuple[str, bool, str]  # (module path, own, group), as breakdown_parts keys them
CPU_METHOD = "forward hooks, perf_counter_ns"
CUDA_METHOD = "forward hooks, cuda events"


def timed_paths(groups: dict[str, str | None], depth: int) -> list[str]:
    """The modules whose inclusive time is taken: every one at depth <= ``depth``, every role
    head below (a module with a role whose parent has none) and every module of no role
    (``blocks.0``: its residual adds are "other", apart from the roles inside it)."""
    chosen = []
    for path in groups:
        level = path.count(".") + 1 if path else 0
        under_no_role = bool(path) and groups[parent_path(path) or ""] is None
        if level <= depth or under_no_role:
            chosen.append(path)
    return chosen


def nearest_called_parent(paths: list[str]) -> dict[str, str]:
    """Each called module (the model excepted) -> its nearest called ancestor (a container
    such as ``blocks`` whose forward the model never calls, looping over it instead, has no
    time and is skipped)."""
    called = set(paths)
    parents = {}
    for path in paths:
        if not path:
            continue
        up = parent_path(path) or ""
        while up and up not in called:
            up = parent_path(up) or ""
        parents[path] = up
    return parents


def own_times(inclusive: dict[str, float]) -> dict[str, float]:
    """Own time of every module timed in a call: its inclusive time minus its nearest timed
    descendants' (a module called twice in a call: its calls summed)."""
    own = dict(inclusive)
    for path, parent in nearest_called_parent(list(inclusive)).items():
        own[parent] = own.get(parent, 0.0) - inclusive[path]
    return own


def row_keys(groups: dict[str, str | None], paths: list[str], depth: int) -> dict[str, RowKey]:
    """Timed module -> the breakdown row its own time lands in (where its FLOPs land)."""
    has_children = {parent_path(p) or "" for p in groups if p}
    return {path: (*cut(path, depth, path in has_children), groups[path] or "other")
            for path in paths}


def row_times(own: dict[str, float], keys: dict[str, RowKey]) -> dict[RowKey, float]:
    """Own times added up per row."""
    rows: dict[RowKey, float] = {}
    for path, ms in own.items():
        rows[keys[path]] = rows.get(keys[path], 0.0) + ms
    return rows


# --- stamps: the only device-specific part -------------------------------------------------


@dataclass
class Stamps:
    """How a hook stamps the time and how two stamps become ms (after ``ready()``)."""

    stamp: Callable[[], Any]
    elapsed_ms: Callable[[Any, Any], float]
    ready: Callable[[], None]
    method: str


def cpu_stamps(clock: Callable[[], int] = time.perf_counter_ns) -> Stamps:
    """The monotonic clock in ns (``clock`` replaces it in tests)."""
    return Stamps(clock, lambda a, b: (b - a) / 1e6, lambda: None, CPU_METHOD)


def cuda_stamps(device: torch.device) -> Stamps:
    """A CUDA event recorded on the current stream; read after a synchronize."""

    def stamp() -> torch.cuda.Event:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    return Stamps(stamp, lambda a, b: float(a.elapsed_time(b)),
                  lambda: torch.cuda.synchronize(device), CUDA_METHOD)


def stamps_for(device: torch.device) -> Stamps:
    """CUDA events on CUDA, the monotonic clock elsewhere."""
    return cuda_stamps(device) if device.type == "cuda" else cpu_stamps()


@dataclass
class HookTimer:
    """Pre/post forward hooks on the timed modules; ``calls`` holds one list of (path, start,
    end) stamps per forward started with ``begin_call``."""

    stamps: Stamps
    calls: list[list[tuple[str, Any, Any]]] = field(default_factory=list)
    _open: dict[str, list[Any]] = field(default_factory=dict)

    @contextmanager
    def attached(self, model: nn.Module, paths: list[str]) -> Iterator[HookTimer]:
        """The hooks on ``paths`` of ``model`` while inside; removed after."""
        modules = dict(model.named_modules())
        handles = []
        for path in paths:
            handles.append(modules[path].register_forward_pre_hook(self._pre(path)))
            handles.append(modules[path].register_forward_hook(self._post(path)))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _pre(self, path: str) -> Callable[..., None]:
        """A pre-hook that stamps the start of ``path``'s call."""
        def hook(module: nn.Module, args: Any) -> None:
            self._open.setdefault(path, []).append(self.stamps.stamp())
        return hook

    def _post(self, path: str) -> Callable[..., None]:
        """A hook that stamps the end of ``path``'s call and records the span."""
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            end = self.stamps.stamp()
            self.calls[-1].append((path, self._open[path].pop(), end))
        return hook

    def begin_call(self) -> None:
        """A new forward: its spans go to a list of their own."""
        self.calls.append([])

    def inclusive(self, call: list[tuple[str, Any, Any]]) -> dict[str, float]:
        """Inclusive ms per module of one call (calls of one module summed)."""
        spans: dict[str, float] = {}
        for path, start, end in call:
            spans[path] = spans.get(path, 0.0) + self.stamps.elapsed_ms(start, end)
        return spans


# --- one model in one (child) process -------------------------------------------------------


@dataclass(frozen=True)
class ModuleTimes:
    """What timing one model's modules gave: each timed call's own time per row (ms), and the
    whole forward without and with hooks (p10, p50, p90 ms)."""

    calls: tuple[dict[RowKey, float], ...]  # one per timed call of the hooked forward
    forward_ms: tuple[float, float, float]  # the forward without hooks
    hooked_ms: tuple[float, float, float]  # the same forward with the hooks on
    hooks: int  # timed modules (two hooks each)
    method: str
    threads: int

    @property
    def hook_overhead_ms(self) -> float:
        """What the hooks add to the median forward."""
        return self.hooked_ms[1] - self.forward_ms[1]

    def quantiles(self, rows: set[RowKey]
                  ) -> tuple[dict[RowKey, tuple[float, float, float]], tuple[float, float, float]]:
        """p10/p50/p90 of each of ``rows``' own time, and of the time per call that landed in
        no row of ``rows`` (unattributed)."""
        per_row: dict[RowKey, list[float]] = {}
        spare = []
        for call in self.calls:
            for key, ms in call.items():
                if key in rows:
                    per_row.setdefault(key, []).append(ms)
            spare.append(sum(ms for key, ms in call.items() if key not in rows))
        return {k: summarize(v) for k, v in per_row.items()}, summarize(spare or [0.0])

    def provenance(self, unattributed_ms: float) -> dict[str, Any]:
        """The run's record of this setting's timing (JSON-safe)."""
        return {"method": self.method, "timed_modules": self.hooks, "samples": len(self.calls),
                "threads": self.threads, "forward_ms_p50": self.forward_ms[1],
                "hooked_forward_ms_p50": self.hooked_ms[1],
                "hook_overhead_ms": self.hook_overhead_ms,
                "unattributed_ms_p50": unattributed_ms}


def time_model(model: nn.Module, example: torch.Tensor, depth: int, warmup: int, repeat: int,
               warmup_s: float | None = None, stamps: Stamps | None = None) -> ModuleTimes:
    """Time ``model`` on ``example`` without and with the hooks, calls interleaved (plain,
    hooked, plain...) after both warmed up (``warm_up``'s calls and seconds), so a busy
    machine's drift falls on both; rows from the hooked calls."""
    device = example.device
    stamps = stamps or stamps_for(device)
    clock = clock_for(device)
    step = make_step(model, example)
    groups = assign_groups(model)
    paths = timed_paths(groups, depth)
    keys = row_keys(groups, paths, depth)
    timer = HookTimer(stamps)

    def hooked_step() -> None:
        timer.begin_call()
        step()

    seconds = DEFAULT_WARMUP_S.get(device.type, 0.0) if warmup_s is None else warmup_s
    warm_up(step, clock, warmup, seconds)
    with timer.attached(model, paths):
        warm_up(hooked_step, clock, warmup, seconds)
    clock.synchronize()
    del timer.calls[:]
    plain, hooked = [], []
    for _ in range(repeat):  # the hooks go on and off outside the timed calls
        plain += clock.time_calls(step, 1, _nothing)
        with timer.attached(model, paths):
            hooked += clock.time_calls(hooked_step, 1, _nothing)
    stamps.ready()
    calls = tuple(row_times(own_times(timer.inclusive(call)), keys) for call in timer.calls)
    return ModuleTimes(calls, summarize(plain), summarize(hooked), len(paths), stamps.method,
                       torch.get_num_threads())


def _nothing() -> None:
    """Nothing runs between timed calls (no cache flush)."""


def time_modules(name: str, size: tuple[int, int], depth: int, batch: int, device: str,
                 warmup: int, repeat: int, warmup_s: float | None = None,
                 reparam: bool = False) -> ModuleTimes:
    """Build the model on ``device`` (random weights, eval mode) and time its modules at a
    batch of random images: what a fresh child runs (``gfbench.measure.worker``)."""
    from gfbench.measure.breakdown import _builder

    dev = torch.device(device)
    torch.manual_seed(0)
    with dev:
        model = _builder(name, size, reparam)().eval()
        example = torch.randn(batch, 3, *size)
    return time_model(model, example, depth, warmup, repeat, warmup_s)


# --- a timed breakdown run: ceilings and one child per setting -----------------------------


def ceilings_in_child(device: str) -> dict[str, Any]:
    """The device's ceilings measured once in a fresh child with this process's threads, as
    `gfbench complexity`'s timed runs record them (the reason instead where it failed)."""
    from gfbench.measure.ceilings import no_ceilings
    from gfbench.measure.worker import call_in_child

    result = call_in_child("gfbench.measure.ceilings:measure_ceilings", {"device": device},
                           threads=torch.get_num_threads())
    return result.value.as_json() if result.ok else no_ceilings(result.error)


def _row_key(row: Any) -> RowKey:
    """A breakdown row's (module path, own, group); the model's own row has the path ''."""
    from gfbench.measure.breakdown import MODEL_LABEL

    return ("" if row.module == MODEL_LABEL else row.module, row.own, row.group)


def fill_times(rows: list[Any], times: ModuleTimes, device: str,
               ceilings: dict[str, Any] | None, tf32: bool) -> float:
    """Set every row's device and method, the latency of those timed and their roofline
    (gfbench.measure.roofline); returns the median time that landed in no row."""
    from gfbench.measure.roofline import fill_roofline

    by_key = {_row_key(row): row for row in rows}
    quantiles, unattributed = times.quantiles(set(by_key))
    for key, row in by_key.items():
        row.device, row.time_method = device, times.method
        if key in quantiles:
            row.latency_ms_p10, row.latency_ms_p50, row.latency_ms_p90 = quantiles[key]
            fill_roofline(row, ceilings, tf32)
    return unattributed[1]


def time_rows(rows: list[Any], plan: Any, provenance: Any) -> list[Any]:
    """Time one setting's counted rows in a fresh child (``time_modules``) and fill them; its
    timing recorded in provenance.extra["module_time"]. Returns the one error row of a child
    that failed (the counted rows are kept), else nothing."""
    from gfbench.measure.breakdown import _failed_row
    from gfbench.measure.worker import call_in_child

    first, timing = rows[0], plan.timing
    size = (first.res_h, first.res_w)
    result = call_in_child("gfbench.measure.module_time:time_modules", {
        "name": first.name, "size": size, "depth": plan.depth, "batch": timing.batch,
        "device": timing.device, "warmup": timing.warmup, "repeat": timing.repeat,
        "reparam": plan.reparam}, threads=torch.get_num_threads())
    for row in rows:
        row.device = timing.device
    label = f"{first.name} {size[0]}x{size[1]}"
    if not result.ok:
        provenance.extra["module_time"][label] = {"error": result.error}
        error = _failed_row(first.name, size, first.engine, plan.depth,
                            RuntimeError(f"timing failed: {result.error}"), plan.reparam)
        error.batch_size, error.device = timing.batch, timing.device
        return [error]
    spare = fill_times(rows, result.value, timing.device, provenance.extra.get("ceilings"),
                       provenance.tf32_matmul)
    provenance.extra["module_time"][label] = result.value.provenance(spare)
    return []
