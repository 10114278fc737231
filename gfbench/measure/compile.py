"""torch.compile for measurements: a fresh compiler per setting, and what actually ran.

A sweep compiles one module per setting. Without a reset, TorchDynamo treats the next
setting's module (same ``forward`` code, new shapes) as a recompile: it marks the changed
sizes dynamic, and once ``recompile_limit`` is reached it runs the frame eagerly, so a row
saying "compiled" would time a dynamic-shape graph or plain eager code. ``WatchedCompile``
therefore resets TorchDynamo (``torch._dynamo.reset()``, its counters cleared) before it
compiles, with static shapes, and then reads TorchDynamo's counters
(``torch._dynamo.utils.counters``: frames tried and compiled, graph breaks) to report what
ran: ``compile_status`` is "compiled", "graph breaks: N", "recompiled: N" (frames compiled
again after the first call), or "fell back to eager" (a frame, or all of them, was not
compiled), joined by "; " when several apply. The counters are process-wide, so one
compiled module is measured at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

DEFAULT_BACKEND = "inductor"


def reset_compiler() -> None:
    """Forget every compiled frame, guard and counter: the next compile starts from scratch."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()


def _counter_totals() -> dict[str, int]:
    """Frames tried and compiled, graph breaks and graphs so far (from TorchDynamo's counters)."""
    from torch._dynamo.utils import counters

    return {"frames": int(counters["frames"]["total"]),
            "frames_ok": int(counters["frames"]["ok"]),
            "graph_breaks": int(sum(counters["graph_break"].values())),
            "graphs": int(counters["stats"]["unique_graphs"])}


@dataclass(frozen=True)
class CompileReport:
    """What TorchDynamo did for one compiled module, from its first call to now."""

    frames: int  # frames TorchDynamo tried to compile
    frames_compiled: int  # of which compiled (the rest run eagerly)
    graphs: int
    graph_breaks: int
    recompiles: int  # frames compiled after the first call finished

    @property
    def status(self) -> str:
        """"compiled", or what differs from it ("graph breaks: N; recompiled: N; ...")."""
        notes = []
        if self.graph_breaks:
            notes.append(f"graph breaks: {self.graph_breaks}")
        if self.recompiles:
            notes.append(f"recompiled: {self.recompiles}")
        if self.frames_compiled == 0 or self.frames_compiled < self.frames:
            notes.append("fell back to eager")
        return "; ".join(notes) or "compiled"


class WatchedCompile(nn.Module):
    """``torch.compile(model)`` after a compiler reset, static shapes, with a report of what ran.

    Parameters and training mode are the wrapped model's (it is a submodule).
    """

    def __init__(self, model: nn.Module, backend: str | None = None):
        super().__init__()
        reset_compiler()
        self.compiled = torch.compile(model, backend=backend or DEFAULT_BACKEND, dynamic=False)
        self._after_first: dict[str, int] | None = None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.compiled(*args, **kwargs)
        if self._after_first is None:
            self._after_first = _counter_totals()
        return out

    def report(self) -> CompileReport:
        """TorchDynamo's counts for this module (all zero before its first call)."""
        now = _counter_totals()
        first = self._after_first or now
        return CompileReport(frames=now["frames"], frames_compiled=now["frames_ok"],
                             graphs=now["graphs"], graph_breaks=now["graph_breaks"],
                             recompiles=now["frames"] - first["frames"])


def compile_status(model: nn.Module) -> str:
    """The compile status of a module built by ``WatchedCompile`` ("" when not compiled)."""
    watched = [m for m in model.modules() if isinstance(m, WatchedCompile)]
    return watched[0].report().status if watched else ""
