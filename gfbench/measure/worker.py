"""A child Python process that runs library calls for its parent, so a crash is only a result.

The parent sends one JSON line per call (``"module:function"`` and its JSON keyword
arguments); the child answers one JSON line with the function's JSON-able return value, or
with the error it raised. When the child dies instead (a segfault in native code, the kernel's
out-of-memory killer) or stops answering, the parent gets a :class:`CallResult` saying so and
the next call starts a fresh child. A function can also ask for a fresh child after it
answers (``restart`` in its reply), as the sweep does after an error that poisons the CUDA
context: every later call then runs in a process that is still healthy.

This is how timm's bulk benchmark runner isolates models (one process each); here one child
serves many calls and is replaced only when it must be, so isolation costs one interpreter
start per sweep, not one per model.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

# Every allocation of 128 KiB or more is its own mmap, so freed tensors leave the resident set
# at once; set before the child's first allocation (see gfbench.measure.memory).
CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024), "GFBENCH_WORKER": "1"}
RESTART = "__gfbench_restart__"  # a reply carrying this key makes the parent start a new child


@dataclass(frozen=True)
class CallResult:
    """What one call in the child gave: its value, or why there is none."""

    value: Any = None
    status: str = "ok"  # ok | raised | died | timeout
    error: str = ""  # one line: the exception raised, or how the child ended
    signal: int | None = None  # the signal that killed the child, when one did

    @property
    def ok(self) -> bool:
        """The function returned normally."""
        return self.status == "ok"

    @property
    def failure_status(self) -> str:
        """A failed call as a results row reads it: 'oom' when the child was killed by SIGKILL
        (what the kernel's out-of-memory killer sends), 'error' otherwise."""
        return "oom" if self.signal == signal.SIGKILL else "error"


def in_worker() -> bool:
    """Whether this process is a worker child (it measures CPU memory in-process)."""
    return os.environ.get("GFBENCH_WORKER") == "1"


def _signal_name(number: int) -> str:
    """'SIGSEGV' for 11, or 'signal 42' for a number Python does not name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def death_message(returncode: int, stderr_tail: str) -> str:
    """One line on how a child ended without answering."""
    if returncode < 0:
        name = _signal_name(-returncode)
        cause = " (out of memory: the kernel's OOM killer sends SIGKILL)" \
            if -returncode == signal.SIGKILL \
            else ""
        return f"child process killed by {name}{cause}"
    return f"child process exited with code {returncode}: {stderr_tail or 'no output'}"


class ChildWorker:
    """One child process at a time, started on the first call and again after one dies."""

    def __init__(self, threads: int | None = None, timeout_s: float = 3600.0):
        self.threads = threads
        self.timeout_s = timeout_s
        self._child: subprocess.Popen | None = None
        self._stderr = None
        self.started = 0  # children started so far (tests and notes)

    def __enter__(self) -> ChildWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> subprocess.Popen:
        """A fresh child with the allocator settings fixed from its first allocation."""
        self._close_stderr()
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by close())
        self.started += 1
        return subprocess.Popen([sys.executable, "-m", "gfbench.measure.worker"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=self._stderr, text=True,
                                env={**os.environ, **CHILD_ENV})

    def _stderr_tail(self) -> str:
        """The last line the child wrote to stderr (why it exited)."""
        self._stderr.seek(0)
        lines = self._stderr.read().strip().splitlines()
        return lines[-1][:200] if lines else ""

    def _died(self, child: subprocess.Popen) -> CallResult:
        """The result of a call whose child ended before answering."""
        try:
            returncode = child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            returncode = child.wait()
        self._child = None
        return CallResult(status="died", error=death_message(returncode, self._stderr_tail()),
                          signal=-returncode if returncode < 0 else None)

    def call(self, function: str, kwargs: dict[str, Any]) -> CallResult:
        """Run ``function(**kwargs)`` ("module:function") in the child and return its answer."""
        if self._child is None or self._child.poll() is not None:
            self._child = self._start()
        child = self._child
        request = {"function": function, "kwargs": kwargs, "threads": self.threads}
        try:
            child.stdin.write(json.dumps(request) + "\n")
            child.stdin.flush()
        except BrokenPipeError:
            pass  # the child is gone: its stdout is at end of file, handled below
        ready, _, _ = select.select([child.stdout], [], [], self.timeout_s)
        if not ready:
            child.kill()
            child.wait()
            self._child = None
            return CallResult(status="timeout",
                              error=f"no answer from the child process after "
                                    f"{self.timeout_s:.0f} s (killed)")
        line = child.stdout.readline()
        if not line:
            return self._died(child)
        reply = json.loads(line)
        if reply.pop(RESTART, False):
            self.close()
        return CallResult(**reply)

    def close(self) -> None:
        """Let the child finish and reap it."""
        if self._child is not None and self._child.poll() is None:
            self._child.stdin.close()
            try:
                self._child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
        self._child = None
        self._close_stderr()

    def _close_stderr(self) -> None:
        """Drop the file that held the last child's stderr."""
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def restart_after(value: Any) -> dict[str, Any]:
    """Wrap a return value so the child answers it and then exits (a fresh one takes over)."""
    return {RESTART: True, "__value__": value}


def _run(function: str, kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Call the function; its reply and whether the child must exit afterwards."""
    module_name, function_name = function.split(":")
    try:
        value = getattr(importlib.import_module(module_name), function_name)(**kwargs)
    except Exception as exc:  # the parent decides what an exception means
        text = (str(exc).strip().splitlines() or [""])[0][:300]
        return {"status": "raised", "error": f"{type(exc).__name__}: {text}"}, False
    if isinstance(value, dict) and value.get(RESTART):
        return {"value": value["__value__"]}, True
    return {"value": value}, False


def _serve() -> None:
    """The child's loop: one JSON request per stdin line, one JSON reply per stdout line.

    Anything a library prints goes to stderr, so stdout carries only replies.
    """
    replies = sys.stdout
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("threads"):
            import torch

            torch.set_num_threads(int(request["threads"]))
        reply, restart = _run(request["function"], request["kwargs"])
        if restart:
            reply[RESTART] = True
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
        if restart:
            return


if __name__ == "__main__":
    _serve()
