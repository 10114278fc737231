"""Results files: written per row, read back, numbered runs, locks, refused writes."""

import dataclasses
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gfbench.defaults import FLOP_CONVENTION
from gfbench.errors import GfbenchError, ResultsFileError, ResultsWriteError, RunNotFoundError
from gfbench.results import (
    ComplexityRow,
    Provenance,
    ResultsWriter,
    RobustnessRow,
    check_output_folder,
    claim_run_number,
    collect_provenance,
    find_results,
    find_run,
    new_run,
    read_provenance,
    read_results,
    read_rows,
    resume_run,
    row_key,
    run_files,
)


def row(name: str, res: int, **kw) -> ComplexityRow:
    return ComplexityRow(subject="model", name=name, res_h=res, res_w=res,
                         tokens=(res // 16) ** 2, batch_size=1, precision="fp32",
                         mode="infer", device="cpu", **kw)


def test_provenance_fields_present():
    prov = collect_provenance("complexity", argv=["gfbench", "complexity", "--res", "224"])
    record = dataclasses.asdict(prov)
    for field in ("gfbench_version", "torch_version", "timm_version", "fvcore_version",
                  "device_name", "cuda_version", "driver_version", "cpu_model", "cpu_threads",
                  "command", "date", "flop_convention"):
        assert field in record
    assert prov.command == "gfbench complexity --res 224"
    assert prov.torch_version and prov.cpu_threads > 0
    assert prov.flop_convention == FLOP_CONVENTION


def test_rows_written_as_they_come_and_read_back(tmp_path):
    writer = ResultsWriter(tmp_path / "run", collect_provenance("complexity"))
    writer.add(row("gfnet-xs", 224, flops=2.857e9))
    assert json.loads((tmp_path / "run.json").read_text())["rows"][0]["name"] == "gfnet-xs"
    writer.add(row("deit-s", 224, status="oom"))
    prov, frame = read_results(tmp_path / "run.json")
    assert prov.kind == "complexity"
    assert list(frame["name"]) == ["gfnet-xs", "deit-s"]
    assert list(frame["status"]) == ["ok", "oom"]
    csv = pd.read_csv(tmp_path / "run.csv", comment="#")
    assert list(csv["name"]) == ["gfnet-xs", "deit-s"]
    assert "# flop_convention:" in (tmp_path / "run.csv").read_text()
    assert not list(tmp_path.glob("*.tmp"))


def test_reopening_a_file_keeps_its_rows_and_a_same_key_row_replaces_one(tmp_path):
    with ResultsWriter(tmp_path / "run", collect_provenance("complexity")) as first:
        first.add(row("gfnet-xs", 224, flops=1.0))
        first.add(row("deit-s", 224, flops=5.0))
    with ResultsWriter(tmp_path / "run", collect_provenance("complexity")) as second:
        assert row_key(row("gfnet-xs", 224)) in second.done()
        second.add(row("gfnet-xs", 224, flops=2.0))
        second.add(row("gfnet-xs", 384, flops=3.0))
    _, frame = read_results(tmp_path / "run.json")
    assert list(frame["flops"]) == [5.0, 2.0, 3.0]  # deit-s kept; gfnet-xs 224 replaced
    assert not (tmp_path / "run.lock").exists()  # closing let go of the lock


def test_another_kind_is_refused(tmp_path):
    with ResultsWriter(tmp_path / "run", collect_provenance("complexity")) as writer:
        writer.add(row("a", 224))
    with pytest.raises(ResultsFileError, match="holds complexity results"):
        ResultsWriter(tmp_path / "run", collect_provenance("robustness"))


@pytest.mark.parametrize("make", ["file", "below_file", "proc"])
def test_an_output_folder_is_checked_in_one_line(tmp_path, make):
    taken = tmp_path / "taken"
    taken.write_text("x")
    folder = {"file": taken, "below_file": taken / "sub", "proc": Path("/proc/gfbench")}[make]
    with pytest.raises(GfbenchError, match="--out") as info:
        check_output_folder(folder)
    assert "\n" not in str(info.value)
    assert check_output_folder(tmp_path / "new" / "folder").is_dir()


def test_robustness_rows_share_the_schema(tmp_path):
    writer = ResultsWriter(tmp_path / "r", collect_provenance("robustness"))
    writer.add(RobustnessRow(model="gfnet-s", checkpoint="x.pth", source="imagenet-c",
                             corruption="fog", severity=3, images=10, correct_top1=7,
                             correct_top5=9, error_top1=0.3, error_top5=0.1))
    prov, frame = read_results(tmp_path / "r.json")
    assert prov.kind == "robustness" and frame.loc[0, "correct_top1"] == 7


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not a gfbench results file"),
    ('{"schema": "other"}', "expected schema"),
    ('{"schema": "gfbench.results/1", "kind": "weather"}', "unknown results kind"),
    ('{"schema": "gfbench.results/1", "kind": "complexity", "rows": [{"name": 1}]}',
     "row 0 is malformed"),
])
def test_bad_files_are_named(tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ResultsFileError, match=fragment) as info:
        read_results(path)
    assert str(path) in str(info.value)


def test_find_results_recurses(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.json").write_text("{}")
    (tmp_path / "y.json").write_text("{}")
    (tmp_path / "z.csv").write_text("")
    assert [p.name for p in find_results([tmp_path])] == ["x.json", "y.json"]


def test_malformed_provenance_is_one_short_line(tmp_path):
    writer = ResultsWriter(tmp_path / "run", collect_provenance("complexity"))
    writer.add(row("gfnet-xs", 224))
    payload = json.loads((tmp_path / "run.json").read_text())
    payload["provenance"] = {"kind": "complexity"}
    (tmp_path / "run.json").write_text(json.dumps(payload))
    required = [f for f in dataclasses.fields(Provenance) if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]
    more = len(required) - 1 - 3  # all but kind are missing; three are named
    with pytest.raises(ResultsFileError, match=rf"provenance is malformed \(missing command, "
                                               rf"date, gfbench_version and {more} more\)"):
        read_results(tmp_path / "run.json")


def test_new_runs_get_their_own_numbered_files_and_find_run_names_them(tmp_path):
    first = new_run(tmp_path, "complexity-x", collect_provenance("complexity"))
    first.add(row("gfnet-xs", 224))
    first.close()
    second = new_run(tmp_path, "complexity-x", collect_provenance("complexity"))
    second.close()
    other = new_run(tmp_path, "breakdown-d1-torch", collect_provenance("breakdown"))
    other.close()
    assert [p.name for p in run_files(tmp_path)] == [
        "0001-complexity-x.json", "0002-complexity-x.json", "0003-breakdown-d1-torch.json"]
    assert read_provenance(first.json_path).extra["run_id"] == "0001"
    assert find_run(tmp_path, "complexity-x", "last") == second.json_path
    assert find_run(tmp_path, "complexity-x", "1") == first.json_path
    assert find_run(tmp_path, "complexity-x", "0001") == first.json_path
    assert find_run(tmp_path, "complexity-x", str(first.json_path)) == first.json_path
    with pytest.raises(RunNotFoundError) as info:
        find_run(tmp_path, "complexity-x", "9")
    assert "\n" not in str(info.value) and "0003-breakdown-d1-torch" in str(info.value)


def test_run_numbers_are_claimed_so_no_two_claims_get_the_same(tmp_path):
    (tmp_path / "0041-complexity-old.json").write_text("{}")
    numbers = [claim_run_number(tmp_path) for _ in range(3)]
    assert numbers == [42, 43, 44]


def test_resuming_keeps_the_rows_and_the_original_provenance(tmp_path):
    with new_run(tmp_path, "complexity-x", collect_provenance("complexity")) as run:
        run.add(row("gfnet-xs", 224))
    later = collect_provenance("complexity", argv=["gfbench", "complexity", "--resume", "1"])
    with resume_run(run.json_path, later) as resumed:
        assert resumed.done() == {row_key(row("gfnet-xs", 224))}
        resumed.add(row("deit-s", 224))
    provenance, frame = read_results(run.json_path)
    assert list(frame["name"]) == ["gfnet-xs", "deit-s"]
    assert provenance.date == run.provenance.date and provenance.extra["run_id"] == "0001"
    assert provenance.extra["resumed"][0]["command"] == "gfbench complexity --resume 1"


HOLDER = """
import sys
from gfbench.results import ResultsWriter, collect_provenance
writer = ResultsWriter(sys.argv[1], collect_provenance("complexity"))
print("ready", flush=True)
sys.stdin.readline()
"""

OPENER = """
import sys
from gfbench.errors import GfbenchError
from gfbench.results import ResultsWriter, collect_provenance
try:
    ResultsWriter(sys.argv[1], collect_provenance("complexity")).close()
except GfbenchError as exc:
    print(exc)
    sys.exit(1)
print("opened")
"""


def test_a_second_process_opening_a_run_in_use_is_refused_naming_the_first(tmp_path):
    stem = tmp_path / "0001-complexity-x"
    with ResultsWriter(stem, collect_provenance("complexity")) as writer:
        writer.add(row("gfnet-xs", 224))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(stem), "--hold-marker"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "ready"
        second = subprocess.run([sys.executable, "-c", OPENER, str(stem)], capture_output=True,
                                text=True, env=env, timeout=120)
        assert second.returncode == 1, second.stdout + second.stderr
        line = second.stdout.strip()
        assert "\n" not in line and "Traceback" not in second.stderr
        assert f"pid {holder.pid}" in line and "--hold-marker" in line
        assert "being written by another process" in line
    finally:
        holder.communicate("\n", timeout=60)
    assert read_rows(stem.with_suffix(".json"))[1] == [row("gfnet-xs", 224)]  # nothing lost
    after = subprocess.run([sys.executable, "-c", OPENER, str(stem)], capture_output=True,
                           text=True, env=env, timeout=120)
    assert after.returncode == 0 and after.stdout.strip() == "opened"


def test_a_refused_write_is_one_line_and_leaves_the_last_complete_file(tmp_path, monkeypatch):
    writer = ResultsWriter(tmp_path / "run", collect_provenance("complexity"))
    writer.add(row("gfnet-xs", 224))
    writer.add(row("deit-s", 224))
    before = (tmp_path / "run.json").read_text()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ResultsWriteError) as info:
        writer.add(row("resmlp-12", 224))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"cannot write {tmp_path / 'run.json'}: No space left on device "
                              "(ENOSPC)")
    assert message.endswith(f"2 row(s) kept in {tmp_path / 'run.json'} (its last complete "
                            "write)")
    assert (tmp_path / "run.json").read_text() == before
    assert not list(tmp_path.glob("*.tmp"))
    writer.close()


def test_files_written_before_reparam_load_as_the_built_form(tmp_path):
    """A committed run with the field taken out, as files written before it read: their rows
    are the form as built, same keys."""
    committed = Path(__file__).resolve().parents[2] / "results"
    payload = json.loads(sorted(committed.glob("*-complexity-models-*.json"))[0].read_text())
    payload["rows"] = [{k: v for k, v in row.items() if k != "reparam"}
                       for row in payload["rows"]]
    path = tmp_path / "0001-complexity-models-meta-b1-fp32-infer.json"
    path.write_text(json.dumps(payload))
    _, rows = read_rows(path)
    assert rows and not any(r.reparam for r in rows)
    assert row_key(rows[0])[-1] is False
    _, frame = read_results(path)
    assert not frame["reparam"].any()


def test_csv_is_written_without_pandas_and_reads_back_with_it(tmp_path):
    code = ("import sys\nfrom gfbench.results import ResultsWriter, ComplexityRow, "
            "collect_provenance\n"
            f"w = ResultsWriter({str(tmp_path / 'run')!r}, collect_provenance('complexity'))\n"
            "w.add(ComplexityRow('model', 'a,b \"x\"', 224, 224, 196, 1, 'fp32', 'infer', 'meta',"
            " flops=1.5e9, params=7, reparam=True))\n"
            "w.add(ComplexityRow('model', 'c', 224, 224, None, 1, 'fp32', 'infer', 'meta', "
            "status='error', error='line; two'))\n"
            "print('pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "False"
    frame = pd.read_csv(tmp_path / "run.csv", comment="#")
    assert list(frame["name"]) == ['a,b "x"', "c"]
    assert frame["flops"][0] == 1.5e9 and frame["params"][0] == 7
    assert pd.isna(frame["flops"][1]) and pd.isna(frame["tokens"][1])
    assert list(frame["reparam"]) == [True, False] and frame["error"][1] == "line; two"


def test_a_train_row_written_before_fwd_flops_reads_as_forward_only(tmp_path):
    """Before training FLOPs, a train row's `flops` was the forward pass alone: it loads as
    `fwd_flops`, its forward + backward total unknown; a new file's train row is untouched."""
    def record(**extra):
        return {"subject": "mixer", "name": "attention", "res_h": None, "res_w": None,
                "grid_h": 14, "grid_w": 14, "tokens": 196, "batch_size": 1, "precision": "fp32",
                "mode": "train", "device": "meta", "dim": 64, "flops": 9.0e6,
                "flops_torch": 9.0e6, **extra}

    writer = ResultsWriter(tmp_path / "r", collect_provenance("complexity"))
    writer.add(ComplexityRow(**record(fwd_flops=3.0e6)))
    path = tmp_path / "r.json"
    _, (new,) = read_rows(path)
    assert (new.flops, new.fwd_flops) == (9.0e6, 3.0e6)
    payload = json.loads(path.read_text())
    payload["rows"] = [record()]  # as an older gfbench wrote it
    path.write_text(json.dumps(payload))
    _, (old,) = read_rows(path)
    assert (old.flops, old.fwd_flops, old.flops_torch) == (None, 9.0e6, None)
