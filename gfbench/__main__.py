"""python -m gfbench (also the entry point torchrun uses)."""

from gfbench.cli import main

if __name__ == "__main__":
    main()
