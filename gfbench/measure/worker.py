"""A fresh child process for every measurement call, so a number depends on nothing that ran
before it, and a crash is only a result.

A timed number must not depend on the process it was taken in: heap state left by earlier
settings moves later ones by tens of percent on a CPU, and an allocator setting that the
memory measurement needs (a fixed mmap threshold) slows some models by more than half. timm's
bulk benchmark runner starts one process per model for the same reason. Starting a new
interpreter costs seconds (importing torch and timm), so calls are forked from a server
process that imported them once (``multiprocessing``'s forkserver, started with the command's
own environment): every call gets a clean process in milliseconds, identical for every
setting, and nothing the call does outlives it.

The child answers with the function's return value, or with the error it raised. When it dies
instead (a segfault in native code, the kernel's out-of-memory killer) or stops answering,
the parent gets a :class:`CallResult` saying so. Only a memory measurement asks for the
allocator setting, and only in its own child (``mmap_threshold``), never in a timing child.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib
import multiprocessing
import os
import signal
import tempfile
from dataclasses import dataclass
from typing import Any

from gfbench.errors import first_line

# What the server imports once, so that each forked child starts with them loaded.
PRELOAD = ("torch", "timm", "gfbench.measure.setting", "gfbench.measure.memory")
DEFAULT_TIMEOUT_S = 3600.0
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc malloc.h)


@dataclass(frozen=True)
class CallResult:
    """What one call in a child gave: its value, or why there is none."""

    value: Any = None
    status: str = "ok"  # ok | raised | died | timeout
    error: str = ""  # one line: the exception raised, or how the child ended
    signal: int | None = None  # the signal that killed the child, when one did
    pid: int | None = None  # the child's process id (each call has its own)

    @property
    def ok(self) -> bool:
        """The function returned normally."""
        return self.status == "ok"

    @property
    def failure_status(self) -> str:
        """A failed call as a results row reads it: 'oom' when the child was killed by SIGKILL
        (what the kernel's out-of-memory killer sends), 'error' otherwise."""
        return "oom" if self.signal == signal.SIGKILL else "error"


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


@functools.cache
def _context() -> multiprocessing.context.BaseContext:
    """The forkserver context; its server starts on the first call, with this environment."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def set_mmap_threshold(nbytes: int) -> bool:
    """Serve every allocation of ``nbytes`` or more with its own mmap (glibc's mallopt), so a
    freed tensor leaves the resident set at once; False where the C library has no mallopt."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(nbytes)))


def _resolve(function: str) -> Any:
    """'module:function' -> the function."""
    module_name, function_name = function.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def _child_main(conn: Any, function: str, kwargs: dict[str, Any], threads: int | None,
                mmap_threshold: int | None, log_path: str) -> None:
    """The child: output to the log, allocator and threads set, one call, one reply."""
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    if mmap_threshold is not None:
        set_mmap_threshold(mmap_threshold)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    try:
        reply = ("ok", _resolve(function)(**kwargs), "")
    except Exception as exc:  # the parent decides what an exception means
        reply = ("raised", None, first_line(exc))
    try:
        conn.send(reply)
    except Exception as exc:  # a value that cannot be pickled
        conn.send(("raised", None, f"the result cannot be sent back: {first_line(exc)}"))
    conn.close()


def _log_tail(path: str) -> str:
    """The last line a child wrote to its output (why it exited)."""
    try:
        with open(path, errors="replace") as handle:
            lines = handle.read().strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def call_in_child(function: str, kwargs: dict[str, Any], *, threads: int | None = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S,
                  mmap_threshold: int | None = None) -> CallResult:
    """Run ``function(**kwargs)`` ("module:function", picklable arguments) in a fresh child.

    ``threads``: torch's CPU threads in the child. ``mmap_threshold``: the allocator setting a
    memory measurement needs (never given for timing). The child is killed after
    ``timeout_s`` without an answer, and on Ctrl-C.
    """
    context = _context()
    receive, send = context.Pipe(duplex=False)
    with tempfile.NamedTemporaryFile(prefix="gfbench-child-", suffix=".log") as log:
        process = context.Process(target=_child_main, args=(
            send, function, kwargs, threads, mmap_threshold, log.name))
        try:
            process.start()
            send.close()
            return _wait(process, receive, timeout_s, log.name)
        finally:
            if process.is_alive():
                process.kill()
            if process.pid is not None:
                process.join()
            receive.close()


def _wait(process: multiprocessing.process.BaseProcess, receive: Any, timeout_s: float,
          log_path: str) -> CallResult:
    """The child's reply, or how it ended without one."""
    if not receive.poll(timeout_s):
        process.kill()
        process.join()
        return CallResult(status="timeout", pid=process.pid,
                          error=f"no answer from the child process after {timeout_s:.0f} s "
                                "(killed)")
    try:
        status, value, error = receive.recv()
    except (EOFError, OSError):
        process.join(60)
        if process.exitcode is None:
            process.kill()
            process.join()
        code = process.exitcode
        return CallResult(status="died", error=death_message(code, _log_tail(log_path)),
                          signal=-code if code < 0 else None, pid=process.pid)
    return CallResult(value=value, status=status, error=error, pid=process.pid)
