"""torchrun entry point for tests: `gfbench robustness` with an injected failure on one rank.

FAIL_RANK names the rank; FAIL_AT says where: "write" (rank 0's results file fails after the
first part) or "predict" (the second batch's forward pass raises)."""

import os
import sys

from gfbench.cli import main
from gfbench.results import ResultsWriter
from gfbench.robustness import evaluate

if int(os.environ["RANK"]) == int(os.environ["FAIL_RANK"]):
    if os.environ["FAIL_AT"] == "write":
        def broken_add(self, row):
            raise OSError("No space left on device (injected)")

        ResultsWriter.add = broken_add
    else:
        real_predict = evaluate._predict
        calls = []

        def broken_predict(*args):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("CUDA out of memory (injected)")
            return real_predict(*args)

        evaluate._predict = broken_predict

sys.argv = ["gfbench", "robustness", *sys.argv[1:]]
main()
