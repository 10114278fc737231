"""gfbench: how token mixers scale and how robust a checkpoint is."""
__version__ = "0.1.0"
