"""Figures and reports from gfbench results: a DataFrame in, figure files out; measures nothing."""

from gfbench.plot.load import NothingToPlotError
from gfbench.plot.make import PlotOptions, PlotReport, make_plots, parse_formats
from gfbench.plot.style import colour_for, marker_for
from gfbench.results.frame import load_results

__all__ = ["NothingToPlotError", "PlotOptions", "PlotReport", "colour_for", "load_results",
           "make_plots", "marker_for", "parse_formats"]
