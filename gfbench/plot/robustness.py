"""Robustness figures: error per corruption, error against severity, the summary metrics, and
calibration (ECE, NLL, Brier against severity; reliability diagrams).

The metrics (CE, mCE, relative mCE, mean error, attack accuracy, calibration) come from
gfbench.robustness.metrics, computed from the integer counts and the calibration bins; this
module only draws them.
Checkpoints evaluated in different settings (precision, device) or on different corruption
sources (released ImageNet-C JPEGs vs corruptions generated in memory) are separate entries,
named apart in the legend. Bars carry a gid "bar|<entry>|<category>" so tests can read the
plotted values back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from gfbench.plot.style import (
    MARKERS,
    NEUTRAL_GREY,
    NamedFigure,
    colour_for,
    marker_for,
    new_figure,
)

if TYPE_CHECKING:  # importing gfbench.robustness loads torch; the figures do not need it
    from gfbench.robustness.metrics import RobustnessSummary

HATCHES = ("", "///", "...", "xxx", "\\\\\\")
SEVERITY_COLUMNS = 5
UPRIGHT_LABELS_UP_TO = 4  # entries per group whose value labels fit side by side
MAX_WIDTH_IN = 17.0  # wider figures shrink to unreadable text in a browser window


@dataclass(frozen=True)
class Entry:
    """One evaluated checkpoint in one setting and corruption source, as the figures show it."""

    label: str
    colour: str
    hatch: str
    marker: str
    summary: RobustnessSummary
    severities: pd.DataFrame  # corruption, severity, error_top1_pct, ece_pct, nll, brier


def variant_marker(base: str, index: int) -> str:
    """The family's marker for its first entry, the next markers for its other entries."""
    return MARKERS[(MARKERS.index(base) + index) % len(MARKERS)]


def checkpoint_name(path: str, paths_by_name: dict[str, set[str]], ident: str | None = None
                    ) -> str:
    """A checkpoint's file name, or its whole path (or `ident`, path and content hash) when
    another checkpoint has that name."""
    name = Path(path).name
    return name if len(paths_by_name[name]) == 1 else (ident or path)


def checkpoint_id(summary: RobustnessSummary) -> str:
    """A checkpoint as the figures tell it apart: its name, with 8 hex digits of its content
    hash when the rows carry one (two different best.pth are two entries)."""
    sha = summary.checkpoint_sha256
    return f"{summary.checkpoint}@{sha[:8]}" if sha else summary.checkpoint


def _variant_suffix(values: dict[str, str], varying: set[str]) -> str:
    """What tells apart entries of one model: only the fields that vary are named."""
    parts = [values["checkpoint_name"]] if "checkpoint" in varying else []
    parts += [values[f] for f in ("source", "precision", "device") if f in varying]
    return ", ".join(p for p in parts if p)


def entries_of(frame: pd.DataFrame) -> list[Entry]:
    """One entry per (model, checkpoint, corruption source, precision, device), sorted by label."""
    from gfbench.robustness.metrics import summarize, with_errors

    found = []
    for (precision, device), rows in frame.groupby(["precision", "device"], sort=True):
        for summary in summarize(rows):
            sha = rows["checkpoint_sha256"].fillna("").astype(str) if (
                "checkpoint_sha256" in rows) else pd.Series("", index=rows.index)
            corrupted = with_errors(rows[(rows["model"] == summary.model)
                                         & (rows["checkpoint"] == summary.checkpoint)
                                         & (sha == summary.checkpoint_sha256)
                                         & (rows["source"] == summary.source)])
            found.append((summary, str(precision), str(device),
                          corrupted[["corruption", "severity", "error_top1_pct", "ece_pct",
                                     "nll", "brier"]]))
    paths_by_name: dict[str, set[str]] = {}
    for summary, *_ in found:
        paths_by_name.setdefault(Path(summary.checkpoint).name, set()).add(checkpoint_id(summary))
    keys = [{"model": s.model, "checkpoint": checkpoint_id(s), "source": s.source,
             "checkpoint_name": checkpoint_name(s.checkpoint, paths_by_name, checkpoint_id(s)),
             "precision": p, "device": d}
            for s, p, d, _ in found]
    entries = []
    for key, (summary, _, _, severities) in zip(keys, found, strict=True):
        siblings = [k for k in keys if k["model"] == key["model"]]
        varying = {f for f in ("checkpoint", "source", "precision", "device")
                   if len({k[f] for k in siblings}) > 1}
        suffix = _variant_suffix(key, varying)
        entries.append((f"{key['model']} ({suffix})" if suffix else key["model"], key, summary,
                        severities))
    entries.sort(key=lambda e: e[0])
    hatch_of: dict[str, int] = {}
    result = []
    for label, key, summary, severities in entries:
        colour = colour_for(key["model"])
        index = hatch_of.get(colour, 0)
        hatch_of[colour] = index + 1
        result.append(Entry(label=label, colour=colour, hatch=HATCHES[index % len(HATCHES)],
                            marker=variant_marker(marker_for(key["model"]), index),
                            summary=summary,
                            severities=severities.reset_index(drop=True)))
    return result


def pct_axis_label(what: str) -> str:
    """A y label that says the unit."""
    return f"{what} (%)"


def _grouped_bars(ax: Axes, categories: Sequence[str], entries: Sequence[Entry],
                  values: Sequence[Sequence[float | None]], annotate: bool = False) -> None:
    """Bars per category, one per entry side by side; missing values leave a gap."""
    width = 0.8 / max(len(entries), 1)
    positions = np.arange(len(categories), dtype=float)
    for i, (entry, row) in enumerate(zip(entries, values, strict=True)):
        offsets = positions - 0.4 + width * (i + 0.5)
        present = [j for j, v in enumerate(row) if v is not None and v == v]
        bars = ax.bar(offsets[present], np.asarray(row, dtype=float)[present], width=width * 0.92,
                      color=entry.colour, hatch=entry.hatch, edgecolor="white", linewidth=0.5,
                      label=entry.label)
        for j, patch in zip(present, bars.patches, strict=True):
            patch.set_gid(f"bar|{entry.label}|{categories[j]}")
        if annotate:  # upright labels collide once bars get narrow
            ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2,
                         rotation=90 if len(entries) > UPRIGHT_LABELS_UP_TO else 0)
    ax.set_xticks(positions, [c.replace("_", " ") for c in categories])


def _group_bands(ax: Axes, corruptions: Sequence[str]) -> None:
    """Shade every other corruption group and name each group at the top of the axes."""
    from gfbench.robustness.protocol import group_of

    groups: list[tuple[str, int, int]] = []
    for i, corruption in enumerate(corruptions):
        group = group_of(corruption) if corruption != "clean" else "clean"
        if groups and groups[-1][0] == group:
            groups[-1] = (group, groups[-1][1], i)
        else:
            groups.append((group, i, i))
    for n, (group, first, last) in enumerate(groups):
        if n % 2:
            ax.axvspan(first - 0.5, last + 0.5, color="#000000", alpha=0.05, linewidth=0)
        ax.text((first + last) / 2, 1.0, group, transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=8, color="#444444")


def corruption_figure(entries: Sequence[Entry]) -> NamedFigure:
    """Top-1 error per corruption (mean over severities), grouped noise/blur/weather/digital."""
    from gfbench.robustness.protocol import ALL_CORRUPTIONS

    present = {c for e in entries for c in e.summary.per_corruption["corruption"]}
    corruptions = [c for c in ALL_CORRUPTIONS if c in present]
    has_clean = any(e.summary.clean_error_top1_pct is not None for e in entries)
    categories = (["clean"] if has_clean else []) + corruptions
    values = []
    for entry in entries:
        table = entry.summary.per_corruption.set_index("corruption")["error_top1_pct"]
        row = [entry.summary.clean_error_top1_pct] if has_clean else []
        values.append(row + [float(table[c]) if c in table.index else None for c in corruptions])
    width = 0.32 * len(categories) * max(len(entries), 2) + 2.0
    fig = new_figure(min(max(7.0, width), MAX_WIDTH_IN), 4.8)
    ax = fig.subplots()
    _grouped_bars(ax, categories, entries, values)
    _group_bands(ax, categories)
    ax.tick_params(axis="x", labelrotation=35)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    ax.set_xlim(-0.6, len(categories) - 0.4)
    ax.set_ylabel(pct_axis_label("top-1 error"))
    ax.set_ylim(0, 100)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    title = "Top-1 error per corruption, mean over the severities evaluated"
    fig.suptitle(f"{title}\n{_sources_line(entries)}", fontweight="bold")
    return NamedFigure(stem="robustness-corruptions", title=title, figure=fig)


def _sources_line(entries: Sequence[Entry]) -> str:
    """Which corruption sources the entries use, in words."""
    sources = sorted({e.summary.source for e in entries})
    names = {"imagenet-c": "ImageNet-C (released JPEGs)", "generated": "corruptions generated "
             "in memory", "generated-bar": "ImageNet-C-bar generated in memory",
             "clean": "no corruptions",
             "test-sets": "test sets only (no clean, no corruptions)"}
    return "; ".join(names.get(s, s) for s in sources)


def severity_figure(entries: Sequence[Entry], names: Sequence[str] | None = None,
                    stem: str = "robustness-severity",
                    title: str = "Top-1 error against corruption severity") -> NamedFigure:
    """Error against severity, one small panel per corruption (of names: ImageNet-C's 19 unless
    given), the clean error as a dashed line."""
    from gfbench.robustness.protocol import ALL_CORRUPTIONS, group_of

    present = {c for e in entries for c in e.severities["corruption"]}
    corruptions = [c for c in (ALL_CORRUPTIONS if names is None else names) if c in present]
    columns = min(SEVERITY_COLUMNS, len(corruptions))
    rows = math.ceil(len(corruptions) / columns)
    fig = new_figure(2.6 * columns + 0.6, 2.1 * rows + 1.4)
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).ravel()
    for ax, corruption in zip(axes, corruptions, strict=False):
        for entry in entries:
            part = entry.severities[entry.severities["corruption"] == corruption]
            part = part.sort_values("severity")
            if part.empty:
                continue
            ax.plot(part["severity"], part["error_top1_pct"], color=entry.colour,
                    marker=entry.marker, label=entry.label,
                    gid=f"severity|{entry.label}|{corruption}")
            if entry.summary.clean_error_top1_pct is not None:
                ax.axhline(entry.summary.clean_error_top1_pct, color=entry.colour, linestyle="--",
                           linewidth=0.9, gid=f"clean|{entry.label}|{corruption}")
        ax.set_title(f"{corruption.replace('_', ' ')} ({group_of(corruption)})", fontsize=9)
        ax.set_xticks([1, 2, 3, 4, 5])
        ax.set_ylim(0, 100)
    for ax in axes[len(corruptions):]:
        ax.axis("off")
    for column in range(columns):  # the lowest panel of each column carries the x axis
        lowest = axes[max(i for i in range(column, len(corruptions), columns))]
        lowest.xaxis.set_tick_params(labelbottom=True)
        lowest.set_xlabel("severity")
    fig.supylabel(pct_axis_label("top-1 error"))
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(axes[0].plot([], [], color=NEUTRAL_GREY, linestyle="--")[0])
    labels.append("clean error (same colour)")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4),
               frameon=False)
    fig.suptitle(f"{title}\n{_sources_line(entries)}", fontweight="bold")
    return NamedFigure(stem=stem, title=title, figure=fig)


def cbar_figure(entries: Sequence[Entry]) -> NamedFigure:
    """ImageNet-C-bar: error per corruption and severity, each entry's C-bar error in the
    legend (the plain mean over its cases)."""
    from gfbench.robustness.protocol import CBAR_CORRUPTIONS

    labelled = [replace(e, label=f"{e.label}: C-bar error "
                                    f"{e.summary.cbar_error_pct:.1f}% over "
                                    f"{e.summary.cbar_cases} of 50 cases")
                if e.summary.cbar_error_pct is not None else e for e in entries]
    return severity_figure(labelled, CBAR_CORRUPTIONS, stem="robustness-c-bar",
                           title="ImageNet-C-bar: top-1 error per corruption and severity")


def eps_text(eps: float | None) -> str:
    """An L-inf budget as people write it: 1/255 when it is a whole number of grey levels."""
    if eps is None or eps != eps:
        return "ε=?"
    levels = eps * 255
    return f"ε={round(levels)}/255" if abs(levels - round(levels)) < 1e-6 else f"ε={eps:.4g}"


def _attack_categories(entries: Sequence[Entry]) -> list[tuple[str, str, float]]:
    """(category label, attack, eps) for every attack any entry has, sorted by name then eps."""
    seen = {(str(a.attack), float(a.eps) if a.eps == a.eps and a.eps is not None else math.nan)
            for e in entries for a in e.summary.attacks.itertuples()}
    return [(f"{attack.upper()} {eps_text(eps)}", attack, eps) for attack, eps in sorted(seen)]


def _attack_accuracy(entry: Entry, attack: str, eps: float) -> float | None:
    """The entry's top-1 accuracy under one attack at one budget, None when not evaluated."""
    table = entry.summary.attacks
    match = table[(table["attack"] == attack) & np.isclose(table["eps"].astype(float), eps,
                                                             equal_nan=True)]
    value = match["accuracy_top1_pct"].iloc[-1] if len(match) else None
    return None if value is None or value != value else float(value)


SUMMARY_PANELS = (
    ("clean_error_top1_pct", "Clean error", "top-1 error"),
    ("mce_pct", "mCE (AlexNet = 100)", "mCE"),
    ("relative_mce_pct", "Relative mCE", "relative mCE"),
    ("mean_error_pct", "Mean corruption error\n(unnormalised, not mCE)", "mean top-1 error"),
)


def _from_zero(ax: Axes, values: Sequence[Sequence[float | None]]) -> None:
    """A y axis that starts at zero with room for the value labels, even when every value is
    0 (matplotlib would centre a flat axis on zero, from -0.06 to 0.06)."""
    present = [v for row in values for v in row if v is not None and v == v]
    top = max(present, default=0.0)
    ax.set_ylim(0.0, top * 1.18 if top > 0 else 1.0)


def _test_set_categories(entries: Sequence[Entry]) -> list[tuple[str, str]]:
    """(test set, title) of every other test set any entry has, in protocol order."""
    from gfbench.robustness.protocol import EVAL_SET_INFO

    present = {t for e in entries for t in e.summary.test_sets["test_set"]}
    return [(name, title) for name, (title, _) in EVAL_SET_INFO.items() if name in present]


def _test_set_error(entry: Entry, name: str) -> float | None:
    """The entry's top-1 error on one test set, None when not evaluated."""
    table = entry.summary.test_sets
    match = table[table["test_set"] == name]
    value = match["error_top1_pct"].iloc[-1] if len(match) else None
    return None if value is None or value != value else float(value)


def summary_figure(entries: Sequence[Entry]) -> NamedFigure:
    """Clean error, mCE, relative mCE, mean corruption error, the other test sets' errors
    (ImageNet-A, -R, -Sketch, V2) and accuracy under attack, every axis from zero."""
    panels = [p for p in SUMMARY_PANELS
              if any(getattr(e.summary, p[0]) is not None for e in entries)]
    test_sets = _test_set_categories(entries)
    attacks = _attack_categories(entries)
    per_group = max(1.0, 0.25 * len(entries))
    widths = [per_group] * len(panels)
    widths += [per_group * max(1.0, 0.6 * len(test_sets))] if test_sets else []
    widths += [per_group * max(1.0, 0.6 * len(attacks))] if attacks else []
    fig = new_figure(min(MAX_WIDTH_IN, max(6.0, 2.3 * sum(widths) + 2.2)), 4.2)
    axes = fig.subplots(1, len(widths), squeeze=False, width_ratios=widths)[0]
    for ax, (field, title, ylabel) in zip(axes, panels, strict=False):
        values = [[getattr(e.summary, field)] for e in entries]
        _grouped_bars(ax, [field], entries, values, annotate=True)
        ax.set_xticks([])
        ax.set_title(title)
        ax.set_ylabel(pct_axis_label(ylabel))
        _from_zero(ax, values)
        for i, row in enumerate(values):
            if row[0] is None:
                ax.text(-0.4 + 0.8 / len(entries) * (i + 0.5), 0.02, "n/a", rotation=90,
                        ha="center", va="bottom", fontsize=7, color="#444444",
                        transform=ax.get_xaxis_transform())
    if test_sets:
        ax = axes[len(panels)]
        values = [[_test_set_error(e, name) for name, _ in test_sets] for e in entries]
        _grouped_bars(ax, [title for _, title in test_sets], entries, values, annotate=True)
        ax.set_title("Other test sets")
        ax.set_ylabel(pct_axis_label("top-1 error"))
        _from_zero(ax, values)
    if attacks:
        ax = axes[-1]
        values = [[_attack_accuracy(e, attack, eps) for _, attack, eps in attacks]
                  for e in entries]
        _grouped_bars(ax, [c for c, _, _ in attacks], entries, values, annotate=True)
        ax.set_title("Accuracy under attack")
        ax.set_ylabel(pct_axis_label("top-1 accuracy"))
        _from_zero(ax, values)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", frameon=False)
    title = "Robustness summary"
    fig.suptitle(f"{title}: {_sources_line(entries)}", fontweight="bold")
    return NamedFigure(stem="robustness-summary", title=title, figure=fig)


def calibration_table(summary: RobustnessSummary) -> pd.DataFrame:
    """One row per calibrated part of a summary, as the terminal and the report list them:
    clean, each severity (mean over the benchmark corruptions), each test set, each attack;
    columns part, error_top1_pct, ece_pct, nll, brier (empty when no part has an ECE)."""
    s = summary
    records = []
    if s.clean_ece_pct is not None:
        records.append(("clean", s.clean_error_top1_pct, s.clean_ece_pct, s.clean_nll,
                        s.clean_brier))
    records += [(f"severity {c.severity} (mean of {c.corruptions})", c.error_top1_pct,
                 c.ece_pct, c.nll, c.brier) for c in s.calibration.itertuples()]
    records += [(t.title + (" (200 classes)" if t.test_set in ("imagenet-a", "imagenet-r")
                            else ""), t.error_top1_pct, t.ece_pct, t.nll, t.brier)
                for t in s.test_sets.itertuples()]
    records += [(f"{a.attack.upper()} {eps_text(a.eps)}", None if a.accuracy_top1_pct is None
                 or a.accuracy_top1_pct != a.accuracy_top1_pct else 100.0 - a.accuracy_top1_pct,
                 a.ece_pct, a.nll, a.brier) for a in s.attacks.itertuples()]
    table = pd.DataFrame(records, columns=["part", "error_top1_pct", "ece_pct", "nll", "brier"])
    return table if table["ece_pct"].notna().any() else table[:0]


# (summary's severity-table column, clean value's attribute, panel title, y label)
CALIBRATION_PANELS = (
    ("error_top1_pct", "clean_error_top1_pct", "Top-1 error", "top-1 error (%)"),
    ("ece_pct", "clean_ece_pct", "Expected calibration error (15 bins)", "ECE (%)"),
    ("nll", "clean_nll", "Negative log-likelihood", "NLL (nats)"),
    ("brier", "clean_brier", "Brier score", "Brier score (0..2)"),
)
CLEAN_X = 0  # where the clean value sits on the severity axis
SEVERITIES_SHOWN = (1, 2, 3, 4, 5)
BIN_EDGES = np.linspace(0.0, 1.0, 16)  # the 15 equal-width confidence bins


def _has_calibration(entry: Entry) -> bool:
    """Whether the entry's clean row or any severity carries an ECE."""
    table = entry.summary.calibration
    return entry.summary.clean_ece_pct is not None or bool(table["ece_pct"].notna().any())


def calibration_severity_figure(entries: Sequence[Entry]) -> NamedFigure:
    """Top-1 error beside ECE, then NLL and Brier, against severity (clean at 0): the mean over
    the benchmark corruptions evaluated at each severity, with their range shaded (the shift
    study of Ovadia et al. 2019)."""
    from gfbench.robustness.protocol import BENCHMARK_CORRUPTIONS

    fig = new_figure(10.0, 7.6)
    axes = fig.subplots(2, 2, sharex=True).ravel()
    step = min(0.08, 0.5 / max(len(entries), 1))  # ranges side by side, not on top
    for ax, (column, clean_field, title, ylabel) in zip(axes, CALIBRATION_PANELS, strict=True):
        for i, entry in enumerate(entries):
            table = entry.summary.calibration.sort_values("severity")
            clean = getattr(entry.summary, clean_field)
            xs = ([CLEAN_X] if clean is not None else []) + [int(v) for v in table["severity"]]
            ys = ([clean] if clean is not None else []) + [
                math.nan if v is None or v != v else float(v) for v in table[column]]
            ax.plot(xs, ys, color=entry.colour, marker=entry.marker, label=entry.label,
                    gid=f"calibration|{entry.label}|{column}")
            parts = entry.severities[entry.severities["corruption"].isin(BENCHMARK_CORRUPTIONS)]
            spread = parts.groupby("severity")[column].agg(["min", "max"]).dropna()
            if len(spread):
                offset = (i - (len(entries) - 1) / 2) * step
                ax.vlines(spread.index.astype(float) + offset, spread["min"], spread["max"],
                          color=entry.colour, alpha=0.45, linewidth=2.2,
                          gid=f"range|{entry.label}|{column}")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.set_xticks([CLEAN_X, *SEVERITIES_SHOWN], ["clean", *map(str, SEVERITIES_SHOWN)])
        ax.set_ylim(bottom=0)
        if column in ("error_top1_pct", "ece_pct"):
            ax.set_ylim(top=max(ax.get_ylim()[1], 1.0))
    for ax in axes[2:]:
        ax.set_xlabel("corruption severity")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(axes[0].vlines([], [], [], color=NEUTRAL_GREY, alpha=0.45, linewidth=2.2))
    labels.append("min to max over the corruptions (same colour)")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3),
               frameon=False)
    title = "Calibration against corruption severity"
    fig.suptitle(f"{title}: mean over the benchmark corruptions\n{_sources_line(entries)}",
                 fontweight="bold")
    return NamedFigure(stem="robustness-calibration-severity", title=title, figure=fig)


def _reliability_panel(ax: Axes, counts_ax: Axes, entry: Entry, what: str, sums) -> None:
    """One reliability diagram (accuracy per confidence bin against the diagonal, the gap to
    each bin's mean confidence shaded) above its bin counts (share of the images, %)."""
    width = BIN_EDGES[1] - BIN_EDGES[0]
    centres = BIN_EDGES[:-1] + width / 2
    accuracy, confidence = sums.accuracy(), sums.mean_confidence()
    filled = [b for b, n in enumerate(sums.counts) if n]
    bars = ax.bar(centres[filled], [accuracy[b] for b in filled], width=width * 0.96,
                  color=entry.colour, edgecolor="white", linewidth=0.5, label="accuracy in bin")
    for b, patch in zip(filled, bars.patches, strict=True):
        patch.set_gid(f"reliability|{entry.label}|{what}|{b}")
    gaps = ax.bar(centres[filled], [confidence[b] - accuracy[b] for b in filled],
                  bottom=[accuracy[b] for b in filled], width=width * 0.96,
                  facecolor="none", edgecolor="#222222", hatch="////", linewidth=0.6,
                  label="gap to the bin's mean confidence")
    for b, patch in zip(filled, gaps.patches, strict=True):
        patch.set_gid(f"gap|{entry.label}|{what}|{b}")
    ax.plot([0, 1], [0, 1], linestyle="--", color=NEUTRAL_GREY, linewidth=1.0,
            label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("top-1 accuracy")
    ax.set_title(f"{entry.label}: {what}", fontsize=10)
    ece = sums.ece
    ax.text(0.03, 0.97, f"ECE {100 * ece:.1f}%\n{sums.images:,} images" if ece is not None
            else "no images", transform=ax.transAxes, ha="left", va="top", fontsize=9,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 2})
    share = [100.0 * n / sums.images if sums.images else 0.0 for n in sums.counts]
    count_bars = counts_ax.bar(centres, share, width=width * 0.96, color=entry.colour,
                               edgecolor="white", linewidth=0.5)
    for b, patch in enumerate(count_bars.patches):
        patch.set_gid(f"count|{entry.label}|{what}|{b}")
    counts_ax.set_ylim(0, max(max(share), 1.0) * 1.15)
    counts_ax.set_ylabel("images (%)")
    counts_ax.set_xlabel("top-1 confidence")


def reliability_figure(entries: Sequence[Entry]) -> NamedFigure:
    """Reliability diagrams (Guo et al. 2017), one row per entry: clean beside the severest
    shift evaluated, each over its 15 confidence bins with the bins' image counts below."""
    rows = [e for e in entries if e.summary.reliability]
    columns = max(len(e.summary.reliability) for e in rows)
    fig = new_figure(4.4 * columns + 0.4, 4.6 * len(rows) + 0.9)
    grid = fig.add_gridspec(2 * len(rows), columns, height_ratios=[3.0, 1.0] * len(rows))
    for i, entry in enumerate(rows):
        for j, (what, sums) in enumerate(entry.summary.reliability):
            ax = fig.add_subplot(grid[2 * i, j])
            counts_ax = fig.add_subplot(grid[2 * i + 1, j], sharex=ax)
            ax.tick_params(labelbottom=False)
            _reliability_panel(ax, counts_ax, entry, what, sums)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    title = "Reliability diagrams: clean and the severest shift evaluated"
    fig.suptitle(f"{title}\n15 equal-width bins of the top-1 confidence; "
                 f"{_sources_line(rows)}", fontweight="bold")
    return NamedFigure(stem="robustness-reliability", title=title, figure=fig)


def _frequency_ticks(values: Sequence[int], most: int = 9) -> list[int]:
    """At most `most` frequency ticks, 0 among them when it is on the axis, evenly spaced."""
    step = max(1, math.ceil(len(values) / most))
    centre = values.index(0) if 0 in values else 0
    return [values[i] for i in range(len(values)) if (i - centre) % step == 0]


def _heat_panel(fig, ax: Axes, fourier_map, values: np.ndarray, title: str, cmap: str,
                limits: tuple[float, float], label: str, gid: str) -> None:
    """One heat map over the centred (fftshift) frequency grid, with its colour bar."""
    image = ax.imshow(values, cmap=cmap, vmin=limits[0], vmax=limits[1], origin="upper",
                      interpolation="nearest", aspect="equal")
    image.set_gid(gid)
    ax.grid(False)
    for axis_values, set_ticks, set_labels in (
            (fourier_map.kx, ax.set_xticks, ax.set_xticklabels),
            (fourier_map.ky, ax.set_yticks, ax.set_yticklabels)):
        ticks = _frequency_ticks(list(axis_values))
        set_ticks([list(axis_values).index(t) for t in ticks])
        set_labels([str(t) for t in ticks])
    ax.set_xlabel("horizontal frequency")
    ax.set_ylabel("vertical frequency")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.85, label=label)


def fourier_figure(frame: pd.DataFrame) -> NamedFigure | None:
    """The Fourier heat maps (Yin et al. 2019): per (checkpoint, eps) the top-1 error with a
    basis image of each frequency added, zero frequency centred and the mirrored half filled
    in, beside its change from the clean error; None without Fourier rows."""
    from gfbench.robustness.fourier import PAPER, fourier_maps

    maps = fourier_maps(frame)
    if not maps:
        return None
    fig = new_figure(12.0, 5.4 * len(maps) + 0.8)
    top = max(float(np.nanmax(m.error)) for m in maps if np.isfinite(m.error).any()) \
        if any(np.isfinite(m.error).any() for m in maps) else 100.0
    for row, fourier_map in enumerate(maps):
        name = f"{fourier_map.model} ({fourier_map.checkpoint}), eps {fourier_map.eps:g}"
        ax = fig.add_subplot(len(maps), 2, 2 * row + 1)
        _heat_panel(fig, ax, fourier_map, fourier_map.error, f"{name}\ntop-1 error",
                    "viridis", (0.0, top), pct_axis_label("top-1 error"),
                    f"fourier|{name}|error")
        ax = fig.add_subplot(len(maps), 2, 2 * row + 2)
        change = fourier_map.change
        if change is None:
            ax.axis("off")
            ax.text(0.5, 0.5, "no clean row: no change from clean", ha="center", va="center",
                    transform=ax.transAxes)
            continue
        reach = float(np.nanmax(np.abs(change))) if np.isfinite(change).any() else 1.0
        reach = reach or 1.0
        _heat_panel(fig, ax, fourier_map, change,
                    f"change from clean ({fourier_map.clean_error:.1f}%)", "RdBu_r",
                    (-reach, reach), "error minus clean error (percentage points)",
                    f"fourier|{name}|change")
    title = "Fourier heat map"
    fig.suptitle(f"{title}: error with one Fourier basis image added per frequency (random "
                 f"sign per image and channel)\n{PAPER}", fontweight="bold")
    return NamedFigure(stem="robustness-fourier", title=title, figure=fig)


def robustness_figures(frame: pd.DataFrame) -> tuple[list[Entry], list[NamedFigure]]:
    """The entries and every robustness figure their rows allow (the calibration figures
    when some rows carry calibration: files written before it have none)."""
    from gfbench.robustness.metrics import CBAR_SOURCE

    entries = entries_of(frame)
    figures = []
    bar = [e for e in entries if e.summary.source == CBAR_SOURCE]
    with_corruptions = [e for e in entries
                        if not e.summary.per_corruption.empty and e.summary.source != CBAR_SOURCE]
    if with_corruptions:
        figures.append(corruption_figure(with_corruptions))
        figures.append(severity_figure(with_corruptions))
    if bar:
        figures.append(cbar_figure(bar))
    if entries:
        figures.append(summary_figure(entries))
    calibrated = [e for e in entries if _has_calibration(e)]
    if any(not e.summary.calibration.empty for e in calibrated):
        figures.append(calibration_severity_figure(calibrated))
    if any(e.summary.reliability for e in entries):
        figures.append(reliability_figure(entries))
    fourier = fourier_figure(frame)
    if fourier is not None:
        figures.append(fourier)
    return entries, figures
