"""Count FLOPs (MACs) and parameters of every model in timm's inference benchmark table.

gfbench's side of ``zoo_vs_timm.py``: each (model, infer_img_size) row of timm's published
table (``results/benchmark-infer-amp-nchw-pt*-cu*-4090.csv`` in huggingface/pytorch-image-models,
not committed here: pass its path) is built the way timm's ``benchmark.py`` builds it (the
model's own num_classes and global pool, its default img_size) on the meta device, counted
with gfbench's torch engine at (1, 3, S, S), and written as a complexity results file. A model
that cannot take S at its default size is rebuilt with ``img_size=S``. Wall time per model
(build + count, the file writes excluded) goes into the provenance.

    python benchmarks/zoo_count.py /tmp/timm-bench-4090.csv   # the table's 1627 settings
    python benchmarks/zoo_count.py --models @names.txt \
        --out benchmarks/zoo/complexity-zoo-extra-meta-b1-fp32-infer   # others, native size
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import statistics
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from gfbench.measure.flops import count_flops, count_params
from gfbench.models import native_resolution, select_models
from gfbench.models.factory import create_model, record_token_grid
from gfbench.models.meta import on_meta, reparameterise
from gfbench.results import ComplexityRow, ResultsWriter, collect_provenance, row_key


def table_settings(table: Path) -> list[tuple[str, int]]:
    """The distinct (model, infer_img_size) settings of timm's table, in its order."""
    frame = pd.read_csv(table)
    pairs = zip(frame["model"], frame["infer_img_size"].astype(int), strict=True)
    return list(dict.fromkeys(pairs))


def native_settings(specs: list[str], skip: set[str]) -> list[tuple[str, int]]:
    """(model, native side) for every model the specs select that is not in ``skip``."""
    names = [n for n in select_models(specs) if n not in skip] if specs else []
    return [(name, native_resolution(name)[0]) for name in names]


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """TimeoutError if the block runs longer than ``seconds`` (a hung model loses one row)."""

    def expire(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"counting took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _first_line(exc: BaseException) -> str:
    """One line for the row's error column."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


def count_row(name: str, side: int, reparam: bool = True) -> ComplexityRow:
    """FLOPs, parameters and tokens of one model at S x S, built as timm's benchmark builds it."""
    row = ComplexityRow(subject="model", name=name, res_h=side, res_w=side, tokens=0,
                        batch_size=1, precision="fp32", mode="infer", device="meta")
    failures = []
    for img_size in (None, side):  # the default build first, as timm's benchmark does
        try:
            with on_meta():  # no initialisation: shapes are all a count needs
                model = create_model(name, img_size=img_size)
            if reparam:  # timm's reparameterize_model, in eval mode, fused modules on meta
                model = reparameterise(model)
            with record_token_grid(model) as grid:
                counted = count_flops(model, (1, 3, side, side), engine="torch")
        except Exception as exc:  # recorded on the row; the next setting goes on
            failures.append(f"img_size={img_size}: {_first_line(exc)}")
            continue
        row.flops = row.flops_torch = float(counted.total)
        row.flops_engine = "torch-meta"
        row.params = count_params(model)
        row.tokens = grid.tokens or 0
        row.uncounted_ops = counted.uncounted_summary()
        row.error = "; ".join(failures)
        return row
    row.status, row.error = "error", "; ".join(failures)
    return row


def _earlier_seconds(path: Path) -> dict[str, float]:
    """Per-model seconds of a run being resumed (none for a new file)."""
    if not path.exists():
        return {}
    return json.loads(path.read_text())["provenance"]["extra"].get("seconds_per_model", {})


def main(argv: list[str] | None = None) -> None:
    """Count every row of the table (or those matching --only), resuming a partial file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path, nargs="?", default=None,
                        help="timm's benchmark-infer-amp-nchw-*.csv")
    parser.add_argument("--models", nargs="*", default=(),
                        help="names, patterns or @files to count at their native resolution "
                        "as well (those the table has are left to the table)")
    parser.add_argument("--out", type=Path,
                        default=Path("benchmarks/zoo/complexity-zoo-meta-b1-fp32-infer"))
    parser.add_argument("--only", nargs="*", default=None, help="model names to count")
    parser.add_argument("--no-reparam", action="store_true",
                        help="count the training-time form of re-parameterisable models")
    parser.add_argument("--limit-s", type=int, default=300, help="seconds allowed per model")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    settings = table_settings(args.table) if args.table else []
    settings += native_settings(args.models, {name for name, _ in settings})
    if args.only:
        settings = [s for s in settings if s[0] in set(args.only)]
    provenance = collect_provenance("complexity", device="meta", argv=sys.argv,
                                    timm_table=args.table.name if args.table else "",
                                    reparam=not args.no_reparam)
    writer = ResultsWriter(args.out, provenance)  # a file already there: its rows are kept
    done = {row_key(r) for r in writer.rows if r.status == "ok"}  # errors are retried
    seconds = _earlier_seconds(writer.json_path)
    for name, side in settings:
        probe = ComplexityRow("model", name, side, side, 0, 1, "fp32", "infer", "meta")
        if row_key(probe) in done:
            continue
        start = time.perf_counter()
        try:
            with time_limit(args.limit_s):
                row = count_row(name, side, reparam=not args.no_reparam)
        except TimeoutError as exc:
            probe.status, probe.error = "error", str(exc)
            row = probe
        seconds[f"{name}@{side}"] = round(time.perf_counter() - start, 3)
        writer.provenance.extra["seconds_per_model"] = seconds
        writer.add(row)
        print(f"{name}@{side}: {row.status} {row.flops} {row.params} "
              f"{seconds[f'{name}@{side}']:.2f}s {row.error[:120]}", flush=True)
    values = list(seconds.values())
    if values:
        writer.provenance.extra["seconds_summary"] = {
            "models": len(values), "total_s": round(sum(values), 1),
            "median_s": round(statistics.median(values), 3), "max_s": round(max(values), 3)}
        writer.flush()


if __name__ == "__main__":
    main()
