"""The results layer every command stands on: schema, files and runs, tables for readers.

``schema`` says what a row is (and the one key of each kind), ``files`` writes and reads
results files and numbered runs (locked, atomic, one-line errors), ``frame`` turns runs
into pandas tables for plot and compare. Nothing here imports torch at import time.
"""

from gfbench.results.files import (
    ResultsWriter,
    RunLock,
    check_output_folder,
    claim_run_number,
    find_results,
    find_run,
    new_run,
    read_provenance,
    read_results,
    read_rows,
    read_summary,
    resume_run,
    run_files,
    run_id_text,
)
from gfbench.results.schema import (
    KINDS,
    ROW_TYPES,
    SCHEMA,
    BreakdownRow,
    ComplexityRow,
    Provenance,
    RobustnessRow,
    collect_provenance,
    key_fields,
    row_key,
    rows_record,
)

__all__ = [
    "KINDS", "ROW_TYPES", "SCHEMA", "BreakdownRow",
    "ComplexityRow", "Provenance", "ResultsWriter", "RobustnessRow", "RunLock",
    "check_output_folder", "claim_run_number", "collect_provenance", "find_results", "find_run",
    "key_fields", "new_run", "read_provenance", "read_results", "read_rows", "read_summary",
    "resume_run", "row_key", "rows_record", "run_files", "run_id_text",
]
