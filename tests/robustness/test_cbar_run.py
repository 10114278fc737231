"""ImageNet-C-bar in a `gfbench robustness` run: its rows keep their own source, the C-bar
error is the plain mean over the cases evaluated (checked against hand counts), it is called
comparable only with all 50 cases, and asking for it wrongly gives one line."""

import json

import pandas as pd
import pytest
from robustness_helpers import run_cli, torchrun_robustness, write_folder_val, write_vit_checkpoint

from gfbench.errors import GfbenchError, UnknownNameError
from gfbench.robustness.evaluate import RobustnessConfig, check_config, generation_notes
from gfbench.robustness.metrics import summarize
from gfbench.robustness.protocol import CBAR_CORRUPTIONS, parse_corruptions


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    return write_vit_checkpoint(tmp_path_factory.mktemp("ckpt") / "vit3.pth")


def rows_frame(cases: dict[tuple[str, int], int], images: int = 10) -> pd.DataFrame:
    """Robustness rows: each (C-bar corruption, severity) with `correct` of `images` right."""
    return pd.DataFrame([{
        "model": "m", "checkpoint": "c.pth", "source": "generated-bar", "corruption": name,
        "severity": severity, "images": images, "correct_top1": correct,
        "correct_top5": correct, "unreadable": 0} for (name, severity), correct in cases.items()])


def test_parse_corruptions_knows_c_bar():
    assert parse_corruptions("c-bar") == CBAR_CORRUPTIONS
    assert parse_corruptions("sparkles, fog") == ("fog", "sparkles")  # C's order, then C-bar's
    assert len(parse_corruptions("all,c-bar")) == 29
    with pytest.raises(UnknownNameError, match="unknown corruption sparkle;.*c-bar"):
        parse_corruptions("sparkle")


def test_c_bar_error_is_the_plain_mean_over_cases():
    cases = {("sparkles", 1): 9, ("sparkles", 2): 6, ("perlin_noise", 5): 2}
    (summary,) = summarize(rows_frame(cases))
    # errors 10%, 40%, 80% by hand: mean 43.33..
    assert summary.source == "generated-bar" and summary.cbar_cases == 3
    assert summary.cbar_error_pct == pytest.approx((10 + 40 + 80) / 3)
    assert not summary.complete and not summary.comparable
    assert len(summary.missing) == 47 and "sparkles/3" in summary.missing
    assert summary.mce_pct is None
    per = summary.per_corruption.set_index("corruption")
    assert per.loc["sparkles", "error_top1_pct"] == pytest.approx(25.0)
    assert per.loc["sparkles", "group"] == "c-bar"


def test_all_fifty_cases_are_comparable():
    cases = {(name, s): (7 * i + s) % 11 for i, name in enumerate(CBAR_CORRUPTIONS)
             for s in range(1, 6)}
    (summary,) = summarize(rows_frame(cases))
    by_hand = sum(100 * (1 - c / 10) for c in cases.values()) / 50
    assert summary.cbar_cases == 50 and summary.missing == []
    assert summary.cbar_error_pct == pytest.approx(by_hand)
    assert summary.complete and summary.comparable


def test_c_bar_needs_generate_from(tmp_path):
    config = RobustnessConfig(tmp_path / "x.pth", clean=tmp_path,
                              corruptions=("fog", "sparkles"))
    with pytest.raises(GfbenchError, match=r"\(sparkles\) are generated in memory: they need "
                                           "--generate-from"):
        check_config(config)
    only_bar = RobustnessConfig(tmp_path / "x.pth", data=tmp_path, generate_from=tmp_path,
                                corruptions=("sparkles",))
    with pytest.raises(GfbenchError, match="--corruptions names only ImageNet-C-bar ones"):
        check_config(only_bar)


def test_notes_name_what_was_generated(tmp_path):
    both = RobustnessConfig(tmp_path, generate_from=tmp_path, corruptions=("fog", "sparkles"),
                            jpeg_quality=85)
    only_bar = RobustnessConfig(tmp_path, generate_from=tmp_path, corruptions=("sparkles",))
    assert len(generation_notes(both)) == 2 and "here 85" in generation_notes(both)[1]
    (note,) = generation_notes(only_bar)
    assert "ImageNet-C-bar" in note and "in-memory and saved results differ" in note


def test_a_run_keeps_c_and_c_bar_apart_and_resumes(vit, tmp_path, monkeypatch, capsys,
                                                   one_thread):
    val = write_folder_val(tmp_path / "val", per_class=2)
    args = ["--ckpt", vit, "--model", "test_vit", "--generate-from", val, "--corruptions",
            "gaussian_noise,sparkles,checkerboard_cutout", "--severities", "2",
            "--class-map", "folders", "--workers", "0", "--device", "cpu", "--out",
            tmp_path / "out", "--jpeg-quality", "85"]
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "C-bar error (2 of 50 cases)" in out and "48 of 50 cases missing" in out
    assert "ImageNet-C-bar" in out and "sparkles/1" in out  # the missing cases are named
    (written,) = (tmp_path / "out").glob("robustness-*.json")
    stored = json.loads(written.read_text())
    rows = pd.DataFrame(stored["rows"])
    rows = rows[rows["source"] != "clean"]  # --generate-from also scores its clean images
    sources = dict(zip(rows["corruption"], rows["source"], strict=True))
    assert sources == {"gaussian_noise": "generated", "sparkles": "generated-bar",
                       "checkerboard_cutout": "generated-bar"}
    assert set(rows["jpeg_quality"]) == {85}
    bar = rows[rows["source"] == "generated-bar"]
    by_hand = float((100 * (1 - bar["correct_top1"] / bar["images"])).mean())
    (record,) = [s for s in stored["summary"]["summaries"] if s["source"] == "generated-bar"]
    assert record["c_bar_error_pct"] == pytest.approx(by_hand) and record["c_bar_cases"] == 2
    assert record["comparable_to_published"] is False and len(record["missing"]) == 48
    again = run_cli(monkeypatch, capsys, *args)
    assert again[0] == 0 and "resumed: 4 parts" in again[1]


def test_unknown_c_bar_name_is_one_line(vit, tmp_path, monkeypatch, capsys):
    val = write_folder_val(tmp_path / "val", per_class=1)
    code, out, err = run_cli(monkeypatch, capsys, "--ckpt", vit, "--generate-from", val,
                             "--corruptions", "sparkle", "--device", "cpu")
    assert code == 1 and err.startswith("error: unknown corruption sparkle")
    assert "cocentric_sine_waves" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err


def test_two_gloo_processes_score_c_bar_as_one(vit, tmp_path, one_thread):

    from gfbench.results import read_results
    from gfbench.robustness.evaluate import run_robustness

    val = write_folder_val(tmp_path / "val", per_class=3)
    names = ("sparkles", "checkerboard_cutout")
    options = ["--ckpt", str(vit), "--model", "test_vit", "--generate-from", str(val),
               "--corruptions", ",".join(names), "--severities", "1,4", "--class-map",
               "folders", "--batch-size", "4", "--workers", "0", "--device", "cpu"]
    done = torchrun_robustness(options, tmp_path / "two", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    single = run_robustness(RobustnessConfig(
        vit, model="test_vit", generate_from=val, corruptions=names, severities=(1, 4),
        class_map="folders", batch_size=5, workers=0, device="cpu", out=tmp_path / "one"))
    (two_json,) = (tmp_path / "two").glob("robustness-*.json")
    columns = ["source", "corruption", "severity", "images", "correct_top1", "unreadable"]
    provenance, two_rows = read_results(two_json)
    assert provenance.extra["world_size"] == 2
    two = sorted(two_rows[columns].itertuples(index=False, name=None))
    one = sorted(read_results(single.json_path)[1][columns].itertuples(index=False, name=None))
    assert two == one and len(one) == 1 + 4  # clean + 2 corruptions x 2 severities
    assert {r[0] for r in one} == {"clean", "generated-bar"}
