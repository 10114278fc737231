"""The errors a user can cause; the CLI turns each into one red line and exit code 1."""

from __future__ import annotations

from pathlib import Path


class GfbenchError(Exception):
    """Bad input or an unmet precondition, in one line: what is wrong, what is allowed.
    ``details`` are lines said before it (e.g. each input a command skipped, and why)."""

    details: tuple[str, ...] = ()


class UnknownNameError(GfbenchError):
    """A model, mixer or corruption name that no registry knows."""


class ResolutionError(GfbenchError):
    """A resolution the model cannot be built at."""


class CheckpointError(GfbenchError):
    """A checkpoint file that cannot be read safely or does not fit the model."""


class ResultsFileError(GfbenchError):
    """A results file that is missing, malformed or of another kind."""


class DataError(GfbenchError):
    """A data folder that is missing, empty or laid out wrongly."""


class RunNotFoundError(ResultsFileError):
    """A --resume that names no run in the output folder."""


class RunLockedError(ResultsFileError):
    """A run that another live process is writing (its lock file names that process)."""


class ResultsWriteError(ResultsFileError):
    """The operating system refused a write (disk full, read-only, quota): rows kept so far."""


class PeerFailed(GfbenchError):
    """Another torchrun rank failed (it reports why); this rank stops too instead of waiting
    forever."""


class CombineError(GfbenchError):
    """Runs that --combine would join although a machine or a version differs."""


def first_line(exc: BaseException, limit: int = 200, with_type: bool = True) -> str:
    """'TypeName: first line of the message' (what a results row or a reply holds of an
    error); without the type, the first line alone, or the type where there is no message."""
    lines = str(exc).strip().splitlines()
    text = lines[0][:limit] if lines else ""
    if with_type:
        return f"{type(exc).__name__}: {text}"
    return text or type(exc).__name__


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during any command's run: the rows it keeps, where, and the run to resume
    (``run_id`` for numbered runs; empty where the same command resumes; ``resumable`` False
    where nothing resumes). Only the process that owns the files (``is_main``) says so."""

    def __init__(self, rows_kept: int, path: Path, run_id: str = "", is_main: bool = True,
                 resumable: bool = True):
        super().__init__(f"{rows_kept} row(s) kept in {path}")
        self.rows_kept = rows_kept
        self.path = path
        self.run_id = run_id
        self.is_main = is_main
        self.resumable = resumable
