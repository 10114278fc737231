"""The gfbench command line: parse, call one library function, render. Nothing else."""

from __future__ import annotations

import sys

import typer

from gfbench.errors import GfbenchError
from gfbench.render import console, mixers_table, models_table, print_error

app = typer.Typer(
    name="gfbench",
    help="How does a token mixer scale, and how robust is a checkpoint? "
    "Counted FLOPs, measured latency and memory, ImageNet-C and FGSM/PGD.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """How does a token mixer scale, and how robust is a checkpoint?"""


@app.command("list")
def list_command() -> None:
    """List gfbench's models (parameters at 224) and token mixers (FLOP formulas)."""
    from gfbench.layers import MIXERS
    from gfbench.models import model_catalogue

    console.print(models_table(model_catalogue()))
    console.print(mixers_table([
        {"name": s.name, "flops_formula": s.flops_formula, "params_formula": s.params_formula,
         "paper": s.paper}
        for s in MIXERS.values()
    ]))


# --- complexity ---

# --- robustness ---

# --- plot ---


def main() -> None:
    """Console-script entry point: a GfbenchError becomes one red line and exit code 1."""
    try:
        app()
    except GfbenchError as exc:
        print_error(str(exc))
        sys.exit(1)
