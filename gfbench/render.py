"""Everything the terminal shows (rich only): tables, progress bars, the one-line error."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def print_error(message: str) -> None:
    """The one line a user sees for a GfbenchError: red, on stderr, no traceback."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def format_count(value: float | None, unit: str = "") -> str:
    """A count with a metric prefix (7.51M, 2.86G); '-' when missing."""
    if value is None or value != value:
        return "-"
    for threshold, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3f}{prefix}{unit}"
    return f"{value:.0f}{unit}"


# --- list ---


def models_table(rows: list[dict]) -> Table:
    """The models half of `gfbench list`."""
    table = Table(title="Models (any timm model name works too)")
    for column in ("name", "alias", "family", "timm name", "params @224", "native res"):
        table.add_column(column, justify="right" if column.startswith(("params", "native"))
                         else "left")
    for row in rows:
        table.add_row(row["name"], row["alias"], row["family"], row["timm_name"],
                      format_count(row["params"]), str(row["native_res"]))
    return table


def mixers_table(rows: list[dict]) -> Table:
    """The mixers half of `gfbench list`."""
    table = Table(title="Token mixers: (B, H, W, D) -> (B, H, W, D); FLOPs per image")
    for column in ("name", "FLOPs (multiply-adds)", "params", "GFNet paper (FLOPs / params)"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["flops_formula"], row["params_formula"], row["paper"])
    return table
