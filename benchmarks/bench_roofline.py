"""How close does the roofline's lower bound come to the measured latency on this machine?

For every timed row of the given complexity runs: FLOPs and bytes per image, the intensity,
the median latency of one call, the roofline's lower bound (max of the FLOPs at the measured
GEMM ceiling and the bytes at the measured triad bandwidth, from the run's own provenance),
which ceiling bounds it, and the ratio measured / lower bound with the range the latency's
p10-p90 gives it. A ratio near 1 says the kernel runs at the hardware's limit; a large one says
where the time goes instead (launch and framework overheads, small kernels, cache misses the
bytes convention does not see). A ratio under 1 says the ceilings were under-measured (a busy
machine when they were taken): it is flagged, never read as a distance.

By default it times the trio and the four mixers itself (about 10 minutes on 2 cores), each a
plain `gfbench complexity` command into ``--runs`` (results of the commands' own format); with
``--from DIR`` it reads the timed runs already in DIR instead (the committed reference runs in
results/, made by benchmarks/reference_results.py, are such runs). Writes results.md and
results.csv into ``--out``.

    python benchmarks/bench_roofline.py [--from results] [--out benchmarks/roofline]
"""

from __future__ import annotations

import argparse
import csv
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gfbench.measure.roofline import bandwidth, ceiling_key, matmul_peak, roofline  # noqa: E402
from gfbench.results import find_results, read_provenance, read_rows  # noqa: E402

SWEEPS = (
    "complexity --models gfnet,deit,resmlp --res 224,320,448",
    "complexity --mixers global_filter,attention,attention_explicit,spatial_mlp "
    "--tokens 14,28,42,56 --dim 384 --batch-size 8 --repeat 20",
)
COLUMNS = ("run", "name", "size", "batch", "flops", "bytes", "flop_per_byte", "latency_ms_p50",
           "roofline_ms", "bound", "ratio_p50", "ratio_p10", "ratio_p90", "ceiling_macs_s",
           "ceiling_bytes_s", "load")


def measure(folder: Path) -> None:
    """Run the sweeps into ``folder`` (each a gfbench command; fails loudly)."""
    for line in SWEEPS:
        command = [sys.executable, "-m", "gfbench", *shlex.split(line), "--out", str(folder)]
        print("$ gfbench", line, "--out", folder, flush=True)
        subprocess.run(command, check=True, cwd=ROOT)


def side(row) -> str:  # noqa: ANN001
    """'224' for a model, '14x14' grid for a mixer."""
    h, w = row.sides()
    return f"{h}" if row.subject == "model" and h == w else f"{h}x{w}"


def table_rows(paths: list[Path]) -> list[dict]:
    """One record per timed row of the runs, its roofline recomputed from the run's ceilings."""
    records = []
    for path in paths:
        provenance = read_provenance(path)
        ceilings = provenance.extra.get("ceilings")
        if not ceilings or ceilings.get("source") != "measured":
            print(f"{path.name}: no measured ceilings, skipped", file=sys.stderr)
            continue
        kind, rows = read_rows(path)
        load = provenance.extra.get("load_average_at_start")
        for row in rows:
            if kind != "complexity" or row.latency_ms_p50 is None or not row.bytes:
                continue
            peak = matmul_peak(ceilings, ceiling_key(row.precision, row.device,
                                                     provenance.tf32_matmul))
            bw = bandwidth(ceilings)
            at = {q: roofline(row.flops, row.bytes, row.batch_size, latency, peak, bw)
                  for q, latency in (("p50", row.latency_ms_p50), ("p10", row.latency_ms_p10),
                                     ("p90", row.latency_ms_p90))}
            records.append({
                "run": path.name.split("-", 1)[0], "name": row.name, "size": side(row),
                "batch": row.batch_size, "flops": row.flops, "bytes": row.bytes,
                "flop_per_byte": row.flops / row.bytes, "latency_ms_p50": row.latency_ms_p50,
                "roofline_ms": at["p50"].roofline_ms, "bound": at["p50"].bound,
                **{f"ratio_{q}": at[q].roofline_ratio for q in ("p50", "p10", "p90")},
                "ceiling_macs_s": peak, "ceiling_bytes_s": bw,
                "load": "" if load is None else str(load)})
    return records


def markdown(records: list[dict], sources: list[Path]) -> str:
    """The table a reader needs: per row the bound and the ratio with its spread."""
    lines = ["# Roofline lower bound against measured latency", "",
             "Runs: " + ", ".join(p.name for p in sources) + ". Ceilings: each run's own "
             "(provenance.extra.ceilings, measured in a fresh child before its timed rows). "
             "ratio = median latency / lower bound (p10-p90 of the latency in brackets); "
             "below 1: the ceilings were under-measured.", "",
             "| run | name | size | batch | FLOP/B | ms p50 | lower bound ms | bound | ratio |",
             "|---|---|---|---:|---:|---:|---:|---|---:|"]
    for r in records:
        flag = " (under-measured ceiling)" if r["ratio_p50"] < 1 else ""
        lines.append(f"| {r['run']} | {r['name']} | {r['size']} | {r['batch']} | "
                     f"{r['flop_per_byte']:.3g} | {r['latency_ms_p50']:.3g} | "
                     f"{r['roofline_ms']:.3g} | {r['bound']} | {r['ratio_p50']:.3g} "
                     f"({r['ratio_p10']:.3g}-{r['ratio_p90']:.3g}){flag} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, default=None,
                        help="read the timed runs in this folder instead of timing new ones")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "roofline",
                        help="where the sweeps write when measuring")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "roofline")
    args = parser.parse_args()
    folder = args.source
    if folder is None:
        folder = args.runs
        measure(folder)
    paths = [p for p in find_results([folder]) if "-complexity-" in p.name]
    records = table_rows(paths)
    if not records:
        sys.exit(f"no timed rows with bytes and measured ceilings in {folder}")
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    used = [p for p in paths if any(r["run"] == p.name.split("-", 1)[0] for r in records)]
    (args.out / "results.md").write_text(markdown(records, used))
    print(markdown(records, used))


if __name__ == "__main__":
    main()
