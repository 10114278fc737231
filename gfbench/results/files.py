"""Results files on disk: runs, the writer that keeps them, the lock that guards them, readers.

A results file pair is ``<stem>.json`` (the source of truth: schema, kind, provenance, rows)
and ``<stem>.csv`` (the same rows, provenance as ``# key: value`` lines above the header,
readable with ``pandas.read_csv(path, comment="#")``). Both are rewritten atomically (a
temporary file, then a rename) every time a row is added, so an interrupted run leaves valid
files holding every row that finished; a write the system refuses is one ResultsWriteError
line and leaves no temporary file.

A *run* is one invocation's file pair, ``<out>/<NNNN>-<name>.json``: its number is claimed
with O_EXCL, so concurrent invocations never share one, and no run ever touches another
run's rows. While a writer is open it holds ``<stem>.lock`` (fcntl.flock; the file names
the holder's pid and command), so a second process opening the same file is refused in one
line (RunLockedError) instead of both rewriting it.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import fcntl
import io
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfbench.errors import (
    GfbenchError,
    ResultsFileError,
    ResultsWriteError,
    RunLockedError,
    RunNotFoundError,
)
from gfbench.results.schema import (
    KINDS,
    ROW_TYPES,
    SCHEMA,
    Provenance,
    row_key,
    rows_record,
)

if TYPE_CHECKING:  # pandas is imported by read_results alone: writing a run never loads it
    import pandas as pd

RUN_DIGITS = 4  # run numbers as file names start: 0007-...
RUN_NAME = re.compile(rf"^(\d{{{RUN_DIGITS},}})-(.+)$")
CLAIM_PREFIX = ".gfbench-run-"  # the empty marker whose O_EXCL creation claims a number


def check_output_folder(folder: Path, option: str = "--out") -> Path:
    """Make sure results can be written into ``folder`` before any work starts (created when
    missing); GfbenchError in one line otherwise."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise GfbenchError(f"{option} {folder}: is a file, not a folder (give a folder; the "
                           "file names inside are chosen for you)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".gfbench-write-test-{os.getpid()}.tmp"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise GfbenchError(f"{option} {folder}: cannot write there ({reason}); give a folder "
                           "you can write to") from None
    return folder


def os_reason(exc: OSError) -> str:
    """An OSError as a user reads it: 'No space left on device (ENOSPC)'."""
    name = errno.errorcode.get(exc.errno or 0, "")
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"{text} ({name})" if name else text


def atomic_write(path: Path, text: str) -> None:
    """Write text so that readers see the old file or the new one, never half of one; on an
    OSError the temporary file is removed before the error goes on."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


# --- the lock ---------------------------------------------------------------------------------


def _holder(path: Path) -> str:
    """Who holds a lock file, as its first lines say: 'pid 123: gfbench complexity ...'."""
    try:
        pid, _, command = path.read_text().partition("\n")
    except OSError:
        return "another process"
    return f"pid {pid.strip() or '?'}: {command.strip() or '?'}"


class RunLock:
    """An exclusive flock on ``<stem>.lock`` for as long as one writer keeps a file pair.

    The lock file holds the holder's pid and command line, so the one refused can name it;
    it is removed on release (and a stale one, left by a killed process, is simply taken).
    """

    def __init__(self, stem: Path):
        self.path = Path(stem).with_suffix(".lock")
        self.fd: int | None = None

    def acquire(self, target: Path) -> None:
        """Take the lock; RunLockedError naming the other process when it is held."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunLockedError(f"{target} is being written by another process "
                                     f"({_holder(self.path)}); wait for it to finish, or "
                                     "write elsewhere (--out)") from None
            try:  # the holder before us may have removed the file we locked: lock the new one
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n{shlex.join(sys.argv)}\n".encode())
        self.fd = fd

    def release(self) -> None:
        """Remove the lock file and let go (nothing when not held)."""
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None

    def __del__(self) -> None:
        """A writer dropped without close() still lets go of its file."""
        self.release()


# --- the writer -------------------------------------------------------------------------------


class ResultsWriter:
    """Keeps a results file pair up to date, one row at a time, never losing rows.

    Opening takes the file's lock (RunLockedError while another process holds it). Rows
    already in the file are kept; a row with the key of one already there replaces it. A file
    that is not a gfbench results file of the same kind is refused in one line before
    anything is measured. ``close()`` (or leaving a ``with`` block) releases the lock.
    """

    def __init__(self, stem: Path, provenance: Provenance,
                 summary_of: Callable[[list[Any]], Any] | None = None):
        self.stem = Path(stem)
        self.summary_of = summary_of  # rows -> the optional top-level "summary" of the JSON
        self.json_path = self.stem.with_suffix(".json")
        self.csv_path = self.stem.with_suffix(".csv")
        self.provenance = provenance
        self.row_type = ROW_TYPES[provenance.kind]
        self.rows: list[Any] = []
        self.lock = RunLock(self.stem)
        self.stem.parent.mkdir(parents=True, exist_ok=True)
        self.lock.acquire(self.json_path)
        try:
            if self.json_path.exists():
                kind, self.rows = read_rows(self.json_path)
                if kind != provenance.kind:
                    raise ResultsFileError(
                        f"{self.json_path}: holds {kind} results, not {provenance.kind}; "
                        "choose another --out or move that file")
        except BaseException:
            self.lock.release()
            raise
        self.saved = len(self.rows)  # rows in the JSON file after its last complete write

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file's lock (the files stay as last written)."""
        self.lock.release()

    @property
    def run_id(self) -> str:
        """The run number this file pair carries ('' for a file outside the run scheme)."""
        return str(self.provenance.extra.get("run_id", ""))

    def done(self) -> set[tuple]:
        """Keys of the rows already present (skipped by a resume)."""
        return {row_key(r) for r in self.rows}

    def add(self, row: Any) -> None:
        """Append (or replace, same key) a row and rewrite both files atomically."""
        self.extend([row])

    def extend(self, rows: Iterable[Any]) -> None:
        """Append (or replace, same keys) several rows, then rewrite both files once."""
        new = {row_key(r): r for r in rows}
        self.rows = [r for r in self.rows if row_key(r) not in new] + list(new.values())
        self.flush()

    def _write(self, path: Path, text: str) -> None:
        """One atomic write; an OSError becomes one line saying what is kept and where."""
        try:
            atomic_write(path, text)
        except OSError as exc:
            kept = (f"{self.saved} row(s) kept in {self.json_path} (its last complete write)"
                    if self.saved or self.json_path.exists() else "no rows were written")
            raise ResultsWriteError(f"cannot write {path}: {os_reason(exc)}; {kept}") from None

    def flush(self) -> None:
        """Write the JSON and CSV files from the rows held now."""
        records = [rows_record(r) for r in self.rows]
        payload = {
            "schema": SCHEMA,
            "kind": self.provenance.kind,
            "provenance": dataclasses.asdict(self.provenance),
            "rows": records,
        }
        if self.summary_of is not None:
            payload["summary"] = self.summary_of(self.rows)
        self._write(self.json_path, json.dumps(payload, indent=1) + "\n")
        self.saved = len(self.rows)
        header = "".join(
            f"# {k}: {v}\n" for k, v in dataclasses.asdict(self.provenance).items() if k != "extra"
        )
        self._write(self.csv_path, header + csv_table(self.row_type, records))


def csv_table(row_type: type, records: list[dict[str, Any]]) -> str:
    """The rows as CSV text: a header of the row type's fields, an empty cell for None (what
    pandas.read_csv reads as missing); written without pandas, whose import would cost a
    count-only run a third of a second."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = [f.name for f in dataclasses.fields(row_type)]
    writer.writerow(columns)
    writer.writerows([["" if r.get(c) is None else r[c] for c in columns] for r in records])
    return buffer.getvalue()


# --- runs: numbered file pairs ------------------------------------------------------------------


def run_id_text(number: int) -> str:
    """7 -> '0007', the run number as file names and messages write it."""
    return f"{number:0{RUN_DIGITS}d}"


def run_files(folder: Path, name: str | None = None) -> list[Path]:
    """The runs' JSON files in a folder (of one descriptive name when given), oldest first."""
    found = []
    for path in Path(folder).glob("*.json"):
        match = RUN_NAME.match(path.stem)
        if match and (name is None or match.group(2) == name):
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def _highest_number(folder: Path) -> int:
    """The highest run number claimed or written in a folder (0 when none)."""
    numbers = [int(m.group(1)) for p in folder.iterdir()
               if (m := RUN_NAME.match(p.stem))]
    numbers += [int(p.name[len(CLAIM_PREFIX):]) for p in folder.glob(CLAIM_PREFIX + "*")
                if p.name[len(CLAIM_PREFIX):].isdigit()]
    return max(numbers, default=0)


def _claim_marker(folder: Path, number: int) -> Path:
    """The marker file whose O_EXCL creation claims a run number (removed once the run's
    files exist)."""
    return Path(folder) / f"{CLAIM_PREFIX}{run_id_text(number)}"


def _number_written(folder: Path, number: int) -> bool:
    """Whether a run's files with this number are already in the folder."""
    return any(RUN_NAME.match(p.stem) for p in Path(folder).glob(f"{run_id_text(number)}-*"))


def claim_run_number(folder: Path) -> int:
    """The next run number of a folder, claimed with O_EXCL: no two processes get the same.

    A run writes its files before it removes its marker, so a marker created after that
    removal finds the files and moves on to the next number.
    """
    folder = Path(folder)
    number = _highest_number(folder) + 1
    while True:
        marker = _claim_marker(folder, number)
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            number += 1
            continue
        except OSError as exc:
            raise ResultsWriteError(f"cannot start a run in {folder}: {os_reason(exc)}; "
                                    "nothing was written") from None
        if not _number_written(folder, number):
            return number
        marker.unlink(missing_ok=True)
        number += 1


def new_run(folder: Path, name: str, provenance: Provenance,
            summary_of: Callable[[list[Any]], Any] | None = None) -> ResultsWriter:
    """Open a new run ``<folder>/<NNNN>-<name>``: its number claimed, recorded in the
    provenance (``extra.run_id``), its lock held and its (empty) files written."""
    number = claim_run_number(folder)
    run_id = run_id_text(number)
    provenance.extra["run_id"] = run_id
    try:
        writer = ResultsWriter(Path(folder) / f"{run_id}-{name}", provenance, summary_of)
        try:
            writer.flush()
        except BaseException:
            writer.close()
            raise
    finally:
        _claim_marker(folder, number).unlink(missing_ok=True)
    return writer


def _runs_listing(folder: Path) -> str:
    """The runs a folder holds, for a one-line message."""
    runs = [p.stem for p in run_files(folder)]
    if not runs:
        return f"{folder} holds no runs"
    shown = ", ".join(runs[-5:])
    return f"runs in {folder}: " + (f"... {shown}" if len(runs) > 5 else shown)


def find_run(folder: Path, name: str, which: str) -> Path:
    """The JSON file of the run ``which`` names: 'last' (the newest run of ``name``), a number
    ('7', '0007') or a path to a run's .json; RunNotFoundError listing the runs otherwise."""
    folder, text = Path(folder), str(which).strip()
    if text == "last":
        runs = run_files(folder, name)
        if runs:
            return runs[-1]
        raise RunNotFoundError(f"--resume last: no run of {name} in {folder}; "
                               f"{_runs_listing(folder)}")
    if text.isdigit():
        runs = [p for p in run_files(folder)
                if (m := RUN_NAME.match(p.stem)) and int(m.group(1)) == int(text)]
        if runs:
            return runs[0]
        raise RunNotFoundError(f"--resume {text}: no run {run_id_text(int(text))} in {folder}; "
                               f"{_runs_listing(folder)}")
    path = Path(text)
    if path.suffix == ".csv":
        path = path.with_suffix(".json")
    if path.is_file() and RUN_NAME.match(path.stem):
        return path
    raise RunNotFoundError(f"--resume {text}: not a run (give its number, 'last' or the path of "
                           f"its .json); {_runs_listing(path.parent if path.suffix else folder)}")


def resume_run(path: Path, provenance: Provenance) -> ResultsWriter:
    """Reopen the run whose JSON is ``path`` to append to it: its rows and original
    provenance are kept; this invocation is added to ``extra.resumed`` (command, date, load)."""
    path = Path(path)
    original = read_provenance(path)
    resumed = {"command": provenance.command, "date": provenance.date,
               "load_average_at_start": provenance.extra.get("load_average_at_start")}
    original.extra["resumed"] = [*original.extra.get("resumed", []), resumed]
    match = RUN_NAME.match(path.stem)
    assert match is not None, path  # find_run gives run files only
    original.extra.setdefault("run_id", match.group(1))
    return ResultsWriter(path.with_suffix(""), original)


# --- readers ------------------------------------------------------------------------------------


def _payload(path: Path) -> dict[str, Any]:
    """The parsed JSON of a gfbench results file; ResultsFileError when it is not one."""
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsFileError(f"{path}: not a gfbench results file ({exc.__class__.__name__})") \
            from None
    if not isinstance(payload, dict) or payload.get("schema") != SCHEMA:
        raise ResultsFileError(f"{path}: not a gfbench results file (expected schema {SCHEMA})")
    if payload.get("kind") not in ROW_TYPES:
        raise ResultsFileError(f"{path}: unknown results kind {payload.get('kind')!r}; known: "
                               f"{', '.join(KINDS)}")
    return payload


def upgraded(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    """A row record as today's schema reads it: a train-mode complexity row written before
    ``fwd_flops`` existed counted the forward pass only, so that count is its forward and its
    forward + backward total is unknown (not the forward mistaken for both passes)."""
    if kind == "complexity" and record.get("mode") == "train" and "fwd_flops" not in record:
        return {**record, "fwd_flops": record.get("flops"), "flops": None, "flops_torch": None}
    return record


def _rows_of(path: Path, payload: dict[str, Any]) -> list[Any]:
    """The typed rows of a parsed results file."""
    row_type = ROW_TYPES[payload["kind"]]
    names = {f.name for f in dataclasses.fields(row_type)}
    rows = []
    for i, record in enumerate(payload.get("rows") or []):
        if not isinstance(record, dict):
            raise ResultsFileError(f"{path}: row {i} is not an object")
        try:
            fields = {k: v for k, v in upgraded(payload["kind"], record).items() if k in names}
            rows.append(row_type(**fields))
        except TypeError as exc:
            raise ResultsFileError(f"{path}: row {i} is malformed ({exc})") from None
    return rows


def _provenance_of(path: Path, payload: dict[str, Any]) -> Provenance:
    """The provenance of a parsed results file; ResultsFileError naming what is missing."""
    prov_raw = payload.get("provenance")
    required = [f.name for f in dataclasses.fields(Provenance)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if not isinstance(prov_raw, dict) or name not in prov_raw]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3
                                           else "")
        raise ResultsFileError(f"{path}: provenance is malformed (missing {shown})")
    assert isinstance(prov_raw, dict)  # a dict holding every required field
    names = {f.name for f in dataclasses.fields(Provenance)}
    return Provenance(**{k: v for k, v in prov_raw.items() if k in names})


def read_rows(path: Path) -> tuple[str, list[Any]]:
    """Kind and typed rows of a gfbench JSON results file; ResultsFileError when it is not one."""
    path = Path(path)
    payload = _payload(path)
    return payload["kind"], _rows_of(path, payload)


def read_provenance(path: Path) -> Provenance:
    """The provenance of a gfbench JSON results file."""
    path = Path(path)
    return _provenance_of(path, _payload(path))


def read_summary(path: Path) -> Any:
    """The top-level `summary` a results file carries (robustness headline numbers), None when
    it has none; ResultsFileError when the file is not a gfbench results file."""
    path = Path(path)
    payload = _payload(path)
    _rows_of(path, payload)
    return payload.get("summary")


def read_results(path: Path) -> tuple[Provenance, pd.DataFrame]:
    """Provenance and rows (as a DataFrame) of one gfbench JSON results file."""
    import pandas as pd

    path = Path(path)
    payload = _payload(path)
    rows = _rows_of(path, payload)
    provenance = _provenance_of(path, payload)
    columns = [f.name for f in dataclasses.fields(ROW_TYPES[payload["kind"]])]
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=columns)
    return provenance, frame


def find_results(paths: Iterable[Path]) -> list[Path]:
    """Every JSON file under the given files or folders (recursively), sorted; hidden ones
    (gfbench's own bookkeeping, such as plot's manifest) are not results."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*.json") if q.is_file()
                                and not q.name.startswith(".")))
        else:
            found.append(p)
    return found
