"""A fresh child process for every measurement call, so a number depends on nothing that ran
before it, and a crash is only a result.

A timed number must not depend on the process it was taken in: heap state left by earlier
settings moves later ones by tens of percent on a CPU, and an allocator setting that the
memory measurement needs (a fixed mmap threshold) slows some models by more than half. timm's
bulk benchmark runner starts one process per model for the same reason. Starting a new
interpreter costs seconds (importing torch and timm), so calls are forked from a server: a
child interpreter (``python -m gfbench.measure.worker``, the command's own environment) that
imports torch and timm once, runs no tensor code itself, and forks one process per call. Every
call starts from the same clean state in milliseconds, and nothing it does outlives it. (Not
``multiprocessing``'s forkserver: it re-imports the caller's ``__main__`` in every child, so
a child's state would depend on the script that called gfbench.)

The child answers with the function's return value (pickled), or with the error it raised.
When it dies instead (a segfault in native code, the kernel's out-of-memory killer) or stops
answering, the parent gets a :class:`CallResult` saying so. Only a memory measurement asks
for the allocator setting, and only in its own child (``mmap_threshold``), never a timing.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import importlib
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, overload

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


def set_mmap_threshold(nbytes: int) -> bool:
    """Serve every allocation of ``nbytes`` or more with its own mmap (glibc's mallopt), so a
    freed tensor leaves the resident set at once; False where the C library has no mallopt."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(nbytes)))


def resolve(function: str) -> Any:
    """'module:function' -> the function."""
    module_name, function_name = function.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def _child_main(request: dict[str, Any]) -> None:
    """The forked child: output to its log, allocator and threads set, one call, the reply
    pickled to the reply file, then exit without running the server's clean-up."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        log = os.open(request["log_path"], os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:  # the caller gave up on this call (Ctrl-C) and removed its folder
        os._exit(1)
    os.dup2(log, 1)
    os.dup2(log, 2)
    if request["mmap_threshold"] is not None:
        set_mmap_threshold(request["mmap_threshold"])
    if request["threads"]:
        import torch

        torch.set_num_threads(int(request["threads"]))
    try:
        reply = ("ok", resolve(request["function"])(**request["kwargs"]), "")
    except Exception as exc:  # the parent decides what an exception means
        reply = ("raised", None, first_line(exc))
    try:
        payload = pickle.dumps(reply)
    except Exception as exc:  # a value that cannot be pickled
        payload = pickle.dumps(("raised", None,
                                f"the result cannot be sent back: {first_line(exc)}"))
    with open(request["reply_path"], "wb") as handle:
        handle.write(payload)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _serve(requests: Any, answers: Any) -> None:
    """The server's loop: one pickled request in, fork, 'started PID' and 'ended PID STATUS'
    out (the parent reads the reply file). Ctrl-C reaches the children, not the server."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for module in PRELOAD:
        importlib.import_module(module)
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        pid = os.fork()
        if pid == 0:
            requests.close()
            _child_main(request)
        answers.write(f"started {pid}\n")
        answers.flush()
        _, status = os.waitpid(pid, 0)
        answers.write(f"ended {pid} {os.waitstatus_to_exitcode(status)}\n")
        answers.flush()


class ForkServer:
    """The server process of this process (started on first use, with this environment and
    sys.path); replaced if it ever dies."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def ensure(self) -> subprocess.Popen:
        """The running server, started when there is none."""
        if self.process is None or self.process.poll() is not None:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            self.process = subprocess.Popen([sys.executable, "-m", "gfbench.measure.worker"],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            env=env, bufsize=0)  # select sees every line
        return self.process

    def close(self) -> None:
        """End the server (its stdin closes; it exits after the call in flight). Ctrl-C while
        waiting for it (the second it takes at exit, all rows written) kills it instead of
        printing a traceback."""
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None  # started with stdin=PIPE
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                self.process.kill()
                self.process.wait()
        self.process = None


_SERVER = ForkServer()
atexit.register(_SERVER.close)


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte to a pipe (one os.write may take only part of a large request)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@overload
def _read_line(server: subprocess.Popen, timeout_s: None) -> str: ...
@overload
def _read_line(server: subprocess.Popen, timeout_s: float) -> str | None: ...


def _read_line(server: subprocess.Popen, timeout_s: float | None) -> str | None:
    """One answer line from the server; None after ``timeout_s`` without one ('' at EOF)."""
    assert server.stdout is not None  # started with stdout=PIPE
    if timeout_s is not None:
        ready, _, _ = select.select([server.stdout], [], [], timeout_s)
        if not ready:
            return None
    return server.stdout.readline().decode()


def call_in_child(function: str, kwargs: dict[str, Any], *, threads: int | None = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S,
                  mmap_threshold: int | None = None) -> CallResult:
    """Run ``function(**kwargs)`` ("module:function", picklable arguments) in a fresh child.

    ``threads``: torch's CPU threads in the child. ``mmap_threshold``: the allocator setting a
    memory measurement needs (never given for timing). The child is killed after
    ``timeout_s`` without an answer, and on Ctrl-C.
    """
    with tempfile.TemporaryDirectory(prefix="gfbench-call-") as folder:
        request: dict[str, Any] = {"function": function, "kwargs": kwargs, "threads": threads,
                   "mmap_threshold": mmap_threshold, "log_path": os.path.join(folder, "log"),
                   "reply_path": os.path.join(folder, "reply")}
        open(request["log_path"], "w").close()
        server = _SERVER.ensure()
        assert server.stdin is not None  # started with stdin=PIPE
        try:
            _write_all(server.stdin.fileno(), pickle.dumps(request))
            started = _read_line(server, None)
        except (BrokenPipeError, OSError):
            started = ""
        if not started.startswith("started "):
            _SERVER.close()
            return CallResult(status="died", error="the fork server ended before the call "
                                                   "started (see its output above)")
        pid = int(started.split()[1])
        return _wait(server, pid, timeout_s, request)


def _wait(server: subprocess.Popen, pid: int, timeout_s: float,
          request: dict[str, Any]) -> CallResult:
    """The child's reply, or how it ended without one (killed after the timeout, or Ctrl-C)."""
    timed_out = False
    try:
        ended = _read_line(server, timeout_s)
        if ended is None:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            ended = _read_line(server, None)
    except BaseException:  # Ctrl-C: the child goes too, and the server with it
        _kill_quietly(pid)
        _SERVER.close()
        raise
    if timed_out:
        return CallResult(status="timeout", pid=pid,
                          error=f"no answer from the child process after {timeout_s:.0f} s "
                                "(killed)")
    code = int(ended.split()[2]) if ended.startswith("ended ") else -signal.SIGKILL
    if code == -signal.SIGINT:  # Ctrl-C reached the child first: the user stopped the run
        raise KeyboardInterrupt
    if code == 0 and os.path.exists(request["reply_path"]):
        with open(request["reply_path"], "rb") as handle:
            status, value, error = pickle.load(handle)
        return CallResult(value=value, status=status, error=error, pid=pid)
    return CallResult(status="died", error=death_message(code, _log_tail(request["log_path"])),
                      signal=-code if code < 0 else None, pid=pid)


def _kill_quietly(pid: int) -> None:
    """SIGKILL a child that may already be gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _log_tail(path: str) -> str:
    """The last line a child wrote to its output (why it exited)."""
    try:
        with open(path, errors="replace") as handle:
            lines = handle.read().strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


if __name__ == "__main__":
    _answers = os.fdopen(os.dup(1), "w")  # the protocol's own channel
    os.dup2(2, 1)  # whatever the imports print goes to stderr, never into the answers
    sys.stdout = sys.stderr
    _serve(sys.stdin.buffer, _answers)
