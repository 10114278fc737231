"""Measurement, pure and silent: FLOP counting rules and engines, timing, memory, sweeps, fits."""

from gfbench.measure.scaling import GrowthFit, PowerLawFit, compare_growth, fit_power_law

__all__ = ["GrowthFit", "PowerLawFit", "compare_growth", "fit_power_law"]
