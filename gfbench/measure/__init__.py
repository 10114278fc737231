"""Measurement, pure and silent: FLOP counting rules and engines, timing, memory, sweeps, fits.

Names are imported on first use (``from gfbench.measure import count_flops``), so that
importing the package loads nothing a command does not need.
"""

import importlib
from typing import Any

_EXPORTS = {
    "FlopCount": "flops", "count_flops": "flops", "count_params": "flops",
    "RULES": "handles", "fvcore_handles": "handles", "torch_mapping": "handles",
    "TimingStats": "timing", "make_step": "timing", "time_step": "timing",
    "cpu_peak_in_child": "memory", "MemoryResult": "memory", "cuda_peak_bytes": "memory",
    "ComplexityRequest": "plan", "plan_complexity": "plan", "Setting": "setting",
    "SweepOptions": "setting", "count_setting": "setting", "time_setting": "setting",
    "run_sweep": "sweep",
    "SweepOutcome": "sweep", "call_in_child": "worker",
    "BreakdownRequest": "breakdown", "breakdown_setting": "breakdown",
    "plan_breakdown": "breakdown", "run_breakdown": "breakdown", "summarise": "breakdown",
    "peak_above_resident": "memory", "set_threads": "timing",
    "classify_failure": "faults", "classify_on_device": "faults", "needs_restart": "faults",
    "cuda_context_alive": "faults", "WatchedCompile": "compile", "compile_status": "compile",
    "GrowthFit": "scaling", "PowerLawFit": "scaling", "compare_growth": "scaling",
    "fit_power_law": "scaling", "scaling_exponents": "scaling",
    "Exponent": "scaling", "fit_exponent": "scaling",
    "timing_warnings": "quality", "load_average": "quality",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first access."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gfbench.measure' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gfbench.measure.{_EXPORTS[name]}"), name)
