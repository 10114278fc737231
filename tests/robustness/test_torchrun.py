"""torchrun with 2 CPU processes (gloo) gives exactly the single-process numbers."""

import os
import subprocess
import sys
from pathlib import Path

from robustness_helpers import (
    torchrun_robustness,
    write_folder_tree,
    write_folder_val,
    write_vit_checkpoint,
)

import gfbench
from gfbench.results import read_results
from gfbench.robustness.evaluate import RobustnessConfig, run_robustness

CORRUPTIONS = ("gaussian_noise", "fog")
SEVERITIES = (1, 2)


def counts(frame):
    """Every row's identity and integer counts, sorted."""
    return sorted(frame[["source", "corruption", "severity", "images", "correct_top1",
                         "correct_top5", "unreadable"]].itertuples(index=False, name=None))


def test_two_gloo_processes_equal_one(tmp_path, one_thread):
    checkpoint = write_vit_checkpoint(tmp_path / "vit3.pth")
    data = write_folder_tree(tmp_path / "c", CORRUPTIONS, SEVERITIES, per_class=3)
    val = write_folder_val(tmp_path / "val", per_class=3)
    options = ["--ckpt", str(checkpoint), "--model", "test_vit", "--data", str(data),
               "--clean", str(val), "--generate-from", str(val), "--corruptions",
               ",".join(CORRUPTIONS), "--severities", "1,2", "--attack", "pgd",
               "--class-map", "folders", "--batch-size", "4", "--workers", "0",
               "--device", "cpu"]
    done = torchrun_robustness(options, tmp_path / "two", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes" in done.stdout  # rank 0 reports, once
    assert done.stdout.count("wrote ") == 1

    single = run_robustness(RobustnessConfig(
        checkpoint=checkpoint, model="test_vit", data=data, clean=val, generate_from=val,
        corruptions=CORRUPTIONS, severities=SEVERITIES, attacks=("pgd",), class_map="folders",
        batch_size=5, workers=0, device="cpu", out=tmp_path / "one"))
    (two_json,) = (tmp_path / "two").glob("robustness-test_vit-vit3-*.json")
    provenance, two = read_results(two_json)
    _, one = read_results(single.json_path)
    assert provenance.extra["world_size"] == 2
    assert counts(two) == counts(one)
    assert len(one) == 1 + 2 * 4 + 1  # clean, 4 ImageNet-C + 4 generated parts, pgd
    assert set(one["images"]) == {9} and one["unreadable"].max() == 1
    assert 0 < one["correct_top1"].sum() < one["images"].sum()  # the answers do vary


def test_shards_partition_every_part_without_padding():
    from gfbench.robustness.distributed import shard

    sizes = [0, 1, 2, 5, 9]
    offsets = [0, 0, 1, 3, 8]
    for world in (1, 2, 3, 4):
        per_rank = [shard(sizes, rank, world) for rank in range(world)]
        for part, (size, offset) in enumerate(zip(sizes, offsets, strict=True)):
            taken = sorted(i for rank in per_rank for i in rank[part])
            assert taken == list(range(offset, offset + size))  # each image once, none padded


def test_a_failing_rank_ends_every_rank_with_one_line(tmp_path, one_thread):
    """Rank 0's results file fails after the first part while rank 1 goes on to the next
    collective: the job ends (no rank left waiting), exit code non-zero, one error line."""
    checkpoint = write_vit_checkpoint(tmp_path / "vit3.pth")
    data = write_folder_tree(tmp_path / "c", CORRUPTIONS, SEVERITIES, per_class=3)
    script = Path(__file__).with_name("failing_rank.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "120", "FAIL_RANK": "0",
           "FAIL_AT": "write", "PYTHONPATH": str(Path(gfbench.__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script), "--ckpt", str(checkpoint), "--model", "test_vit", "--data", str(data),
         "--corruptions", ",".join(CORRUPTIONS), "--severities", "1,2", "--class-map",
         "folders", "--batch-size", "4", "--workers", "0", "--device", "cpu", "--out",
         str(tmp_path / "out")],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert ours == ["error: rank 0 of 2: evaluation stopped by OSError: No space left on device "
                    "(injected); no rows were written; the same command resumes"], \
        done.stderr[-3000:]
