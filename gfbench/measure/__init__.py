"""Measurement, pure and silent: FLOP counting rules and engines, timing, memory, sweeps, fits.

Names are imported on first use (``from gfbench.measure import count_flops``), so that
importing the package loads nothing a command does not need.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # static names for type checkers and IDEs; at run time __getattr__ imports them
    from gfbench.measure.breakdown import BreakdownReport as BreakdownReport
    from gfbench.measure.breakdown import BreakdownRequest as BreakdownRequest
    from gfbench.measure.breakdown import breakdown_setting as breakdown_setting
    from gfbench.measure.breakdown import count_breakdown as count_breakdown
    from gfbench.measure.breakdown import plan_breakdown as plan_breakdown
    from gfbench.measure.breakdown import run_breakdown as run_breakdown
    from gfbench.measure.breakdown import summarise as summarise
    from gfbench.measure.compile import WatchedCompile as WatchedCompile
    from gfbench.measure.compile import compile_status as compile_status
    from gfbench.measure.complexity import ComplexityReport as ComplexityReport
    from gfbench.measure.complexity import run_complexity as run_complexity
    from gfbench.measure.faults import classify_failure as classify_failure
    from gfbench.measure.faults import classify_on_device as classify_on_device
    from gfbench.measure.faults import cuda_context_alive as cuda_context_alive
    from gfbench.measure.faults import needs_restart as needs_restart
    from gfbench.measure.flops import FlopCount as FlopCount
    from gfbench.measure.flops import count_flops as count_flops
    from gfbench.measure.flops import count_params as count_params
    from gfbench.measure.handles import RULES as RULES
    from gfbench.measure.handles import fvcore_handles as fvcore_handles
    from gfbench.measure.handles import torch_mapping as torch_mapping
    from gfbench.measure.memory import MemoryResult as MemoryResult
    from gfbench.measure.memory import cpu_peak_in_child as cpu_peak_in_child
    from gfbench.measure.memory import cuda_peak_bytes as cuda_peak_bytes
    from gfbench.measure.memory import peak_above_resident as peak_above_resident
    from gfbench.measure.plan import ComplexityRequest as ComplexityRequest
    from gfbench.measure.plan import plan_complexity as plan_complexity
    from gfbench.measure.quality import load_average as load_average
    from gfbench.measure.quality import timing_warnings as timing_warnings
    from gfbench.measure.scaling import Exponent as Exponent
    from gfbench.measure.scaling import GrowthFit as GrowthFit
    from gfbench.measure.scaling import PowerLawFit as PowerLawFit
    from gfbench.measure.scaling import compare_growth as compare_growth
    from gfbench.measure.scaling import fit_exponent as fit_exponent
    from gfbench.measure.scaling import fit_power_law as fit_power_law
    from gfbench.measure.scaling import scaling_exponents as scaling_exponents
    from gfbench.measure.setting import Setting as Setting
    from gfbench.measure.setting import SweepOptions as SweepOptions
    from gfbench.measure.setting import count_setting as count_setting
    from gfbench.measure.setting import time_setting as time_setting
    from gfbench.measure.sweep import SweepOutcome as SweepOutcome
    from gfbench.measure.sweep import run_sweep as run_sweep
    from gfbench.measure.timing import TimingStats as TimingStats
    from gfbench.measure.timing import make_step as make_step
    from gfbench.measure.timing import set_threads as set_threads
    from gfbench.measure.timing import time_step as time_step
    from gfbench.measure.worker import call_in_child as call_in_child

_EXPORTS = {
    "FlopCount": "flops", "count_flops": "flops", "count_params": "flops",
    "RULES": "handles", "fvcore_handles": "handles", "torch_mapping": "handles",
    "TimingStats": "timing", "make_step": "timing", "time_step": "timing",
    "cpu_peak_in_child": "memory", "MemoryResult": "memory", "cuda_peak_bytes": "memory",
    "ComplexityRequest": "plan", "plan_complexity": "plan", "Setting": "setting",
    "SweepOptions": "setting", "count_setting": "setting", "time_setting": "setting",
    "run_sweep": "sweep", "run_complexity": "complexity", "ComplexityReport": "complexity",
    "count_breakdown": "breakdown", "BreakdownReport": "breakdown",
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
