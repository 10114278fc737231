"""python -m gfbench (also the entry point torchrun uses)."""

from gfbench.cli import entry

if __name__ == "__main__":
    entry()
