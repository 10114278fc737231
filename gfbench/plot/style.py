"""One look for every gfbench figure: palette, markers, fonts, and byte-for-byte repeatable files.

Colours come from the Okabe-Ito palette (distinguishable with every common colour-vision
deficiency) and depend on the model family or mixer name only, so GFNet is the same blue in
every figure of every report. Variants of one family (gfnet-ti, gfnet-xs, ..., or the explicit
attention beside the fused one) share the colour and differ by marker and by line style, so
two variants never look alike even where their points coincide.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.typing import LineStyleType

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
NEUTRAL_GREY = "#7F7F7F"

# Known families and mixers, matched on the normalised name (lower case, "_" -> "-").
# A mixer and the model family built around it share a colour (global filter ~ GFNet).
_FAMILY_COLOURS: tuple[tuple[str, str], ...] = (
    ("global-filter", OKABE_ITO["blue"]),
    ("gfnet", OKABE_ITO["blue"]),
    ("attention", OKABE_ITO["vermillion"]),
    ("deit", OKABE_ITO["vermillion"]),
    ("vit", OKABE_ITO["vermillion"]),
    ("spatial-mlp", OKABE_ITO["bluish_green"]),
    ("resmlp", OKABE_ITO["bluish_green"]),
    ("dwconv", OKABE_ITO["reddish_purple"]),
    ("resnet", OKABE_ITO["reddish_purple"]),
    ("convnext", OKABE_ITO["reddish_purple"]),
    ("pooling", OKABE_ITO["sky_blue"]),
    ("fourier", OKABE_ITO["black"]),
    ("identity", NEUTRAL_GREY),
)
# Colours handed out (by a stable hash) to names no family claims; yellow is last resort only.
_SPARE_COLOURS = (OKABE_ITO["sky_blue"], OKABE_ITO["reddish_purple"], OKABE_ITO["orange"],
                  OKABE_ITO["black"], OKABE_ITO["bluish_green"], OKABE_ITO["blue"],
                  OKABE_ITO["vermillion"])

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
# Line styles of the variants of one family; ":" is kept for estimates past an OOM.
LINE_STYLES: tuple[LineStyleType, ...] = ("-", "--", "-.", (0, (6, 1.5, 1, 1.5, 1, 1.5)))
# Size variants of a family, in size order, so the smallest model always gets a circle.
_VARIANT_MARKER = {"": 0, "ti": 0, "tiny": 0, "12": 0, "xs": 1, "s": 2, "small": 2, "24": 2,
                   "b": 3, "base": 3, "36": 3, "h-ti": 4, "h-s": 5, "h-b": 6, "explicit": 1}
_DEFAULT_IMPLS = ("", "reference", "default")

FONT = "DejaVu Sans"  # ships with matplotlib, so every machine draws the same glyphs
RC: dict = {  # rcParams (a plain dict: matplotlib types rc_context's keys as literals)
    "font.family": FONT,
    "font.size": 10,  # sizes chosen for the report, which shows figures at 96 px per inch
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.6,
    "lines.markersize": 4.5,
    "svg.hashsalt": "gfbench",  # fixed ids inside SVG files: same figure, same bytes
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
}
DPI = 150
FORMATS = ("png", "svg", "pdf")
_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": "gfbench"},
    "pdf": {"CreationDate": None, "Creator": "gfbench", "Producer": "gfbench"},
}


@dataclass(frozen=True)
class NamedFigure:
    """A finished figure and the file stem and title it is saved and shown under."""

    stem: str
    title: str
    figure: Figure


def normalise_name(name: str) -> str:
    """Lower case with '-' separators, so 'GFNet_XS' and 'gfnet-xs' style alike."""
    return name.strip().lower().replace("_", "-")


def colour_for(name: str) -> str:
    """The colour of a model or mixer: fixed for known families, a stable hash otherwise."""
    norm = normalise_name(name)
    for prefix, colour in _FAMILY_COLOURS:
        if norm.startswith(prefix):
            return colour
    return _SPARE_COLOURS[zlib.crc32(norm.encode()) % len(_SPARE_COLOURS)]


def _variant(norm: str) -> str:
    """The size variant of a known family name ('gfnet-h-ti' -> 'h-ti'), else the name itself."""
    for prefix, _ in _FAMILY_COLOURS:
        if norm.startswith(prefix):
            return norm[len(prefix):].strip("-")
    return norm


def marker_for(name: str, impl: str = "") -> str:
    """The marker of a model or mixer: size variants in size order, other impls shifted."""
    variant = _variant(normalise_name(name))
    index = _VARIANT_MARKER.get(variant)
    if index is None:
        index = zlib.crc32(variant.encode()) % len(MARKERS)
    if impl.lower() not in _DEFAULT_IMPLS:
        index += 1 + zlib.crc32(impl.lower().encode()) % (len(MARKERS) - 1)
    return MARKERS[index % len(MARKERS)]


def variant_styles(curves: Sequence[tuple[str, str]]) -> list[tuple[str, LineStyleType]]:
    """(marker, line style) per (name, impl) drawn together: no two of one colour share either.

    Within a colour, curves take the slots 0, 1, 2, ... in size order (marker_for's order),
    so the smallest variant is always a solid line with circles; markers stay distinct for
    up to 10 variants of a colour, line styles for up to 4.
    """
    order = sorted(range(len(curves)), key=lambda i: (
        colour_for(curves[i][0]), MARKERS.index(marker_for(*curves[i])), curves[i]))
    taken: dict[str, int] = {}
    styles: list[tuple[str, LineStyleType]] = [("o", "-")] * len(curves)
    for i in order:
        slot = taken.get(colour_for(curves[i][0]), 0)
        taken[colour_for(curves[i][0])] = slot + 1
        styles[i] = (MARKERS[slot % len(MARKERS)], LINE_STYLES[slot % len(LINE_STYLES)])
    return styles


@contextmanager
def style_context() -> Iterator[None]:
    """gfbench's rcParams for the duration of building and saving a figure, restored afterwards."""
    with matplotlib.rc_context(RC):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure on the Agg canvas, constrained layout (labels never overlap axes)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_bytes(fig: Figure, fmt: str, dpi: int = DPI) -> bytes:
    """The figure encoded as png, svg or pdf with fixed metadata (no dates, no versions)."""
    buffer = io.BytesIO()
    with style_context():
        fig.savefig(buffer, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
    return buffer.getvalue()


def save_figure(fig: Figure, stem: Path, formats: Sequence[str], dpi: int = DPI) -> list[Path]:
    """Write stem.<fmt> for each format; the files depend on the figure only."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        path.write_bytes(figure_bytes(fig, fmt, dpi))
        written.append(path)
    return written
