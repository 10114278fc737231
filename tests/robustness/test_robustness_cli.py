"""`gfbench robustness` at the boundary: a run renders honest names and writes files; bad
inputs give one red line and exit code 1."""


import pytest
from robustness_helpers import (
    run_cli,
    write_folder_tree,
    write_folder_val,
    write_oracle_tree,
    write_vit_checkpoint,
)


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    return write_vit_checkpoint(tmp_path_factory.mktemp("ckpt") / "vit3.pth")


def test_generated_run_says_it_is_not_comparable(vit, tmp_path, monkeypatch, capsys, one_thread):
    val = write_folder_val(tmp_path / "val", per_class=2)
    code, out, err = run_cli(
        monkeypatch, capsys, "--ckpt", vit, "--model", "test_vit", "--generate-from", val,
        "--corruptions", "gaussian_noise,defocus_blur", "--severities", "1",
        "--class-map", "folders", "--attack", "fgsm", "--clean", val, "--workers", "0",
        "--device", "cpu", "--out", tmp_path / "gen")
    assert code == 0, err
    assert "generated in memory" in out and "not comparable to published numbers" in out
    assert "mean CE over 0 of 15" in out and "not mCE" in out
    assert "FGSM top-1 accuracy" in out and "3 image reads failed" in out  # clean + 2 parts
    (written,) = (tmp_path / "gen").glob("robustness-test_vit-vit3-*.json")  # --out: a folder
    assert written.with_suffix(".csv").exists()
    again = run_cli(monkeypatch, capsys, "--ckpt", vit, "--model", "test_vit",
                    "--generate-from", val, "--corruptions", "gaussian_noise,defocus_blur",
                    "--severities", "1", "--class-map", "folders", "--attack", "fgsm",
                    "--clean", val, "--workers", "0", "--device", "cpu", "--out",
                    tmp_path / "gen")
    assert again[0] == 0 and "resumed: 4 parts" in again[1]


def test_json_prints_the_stored_summary(vit, tmp_path, monkeypatch, capsys, one_thread):
    import json

    from gfbench.results import read_summary

    val = write_folder_val(tmp_path / "val", per_class=1)
    code, out, err = run_cli(
        monkeypatch, capsys, "--ckpt", vit, "--model", "test_vit", "--clean", val,
        "--class-map", "folders", "--workers", "0", "--device", "cpu", "--out", tmp_path,
        "--json")
    assert code == 0, err
    printed = json.loads(out)
    (path,) = [p for p in printed["files"] if p.endswith(".json")]
    assert printed["summaries"] == read_summary(path)["summaries"]
    (summary,) = printed["summaries"]
    assert summary["clean_error_top1_pct"] is not None and summary["mce_pct"] is None
    assert summary["comparable_to_published"] is False and "done" not in out


def test_ctrl_c_prints_what_is_kept_and_how_to_resume(vit, tmp_path, monkeypatch, capsys):
    from gfbench.robustness import evaluate

    real = evaluate._row
    calls = []

    def interrupt_on_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(evaluate, "_row", interrupt_on_second)
    folders = write_folder_tree(tmp_path / "f", ["fog"], (1, 2), per_class=1)
    code, out, err = run_cli(
        monkeypatch, capsys, "--ckpt", vit, "--model", "test_vit", "--data", folders,
        "--corruptions", "fog", "--severities", "1,2", "--class-map", "folders",
        "--workers", "0", "--device", "cpu", "--out", tmp_path / "o", "--no-resume")
    assert code == 130 and "Traceback" not in out + err
    (path,) = (tmp_path / "o").glob("*.json")
    assert err == (f"interrupted: 1 row(s) kept in {path}; resume with: gfbench robustness "
                   f"--ckpt {vit} --model test_vit --data {folders} --corruptions fog "
                   f"--severities 1,2 --class-map folders --workers 0 --device cpu --out "
                   f"{tmp_path / 'o'}")


def bad_inputs(tmp_path, vit):
    """(arguments, fragment of the one-line error) for each mistake a user can make."""
    data = write_oracle_tree(tmp_path / "c", ["fog"], (1,))
    folders = write_folder_tree(tmp_path / "f", ["fog"], (1,), per_class=1)
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.pth").write_bytes(b"this is not a checkpoint")
    fog = ["--corruptions", "fog", "--severities", "1", "--device", "cpu", "--workers", "0"]
    return [
        (["--ckpt", tmp_path / "none.pth", "--model", "test_vit", "--data", data, *fog],
         "none.pth: no such checkpoint file"),
        (["--ckpt", tmp_path / "junk.pth", "--model", "test_vit", "--data", data, *fog],
         "junk.pth: not a"),
        (["--ckpt", vit, "--model", "test_vit", "--data", data, *fog],
         "the model outputs 3 classes but ImageNet-1k labels need 1000"),
        (["--ckpt", vit, "--model", "test_vit", "--data", folders, *fog],
         "are not ImageNet-1k wnids"),
        (["--ckpt", vit, "--data", tmp_path / "empty", *fog],
         "none of the requested corruptions is there"),
        (["--ckpt", vit, "--clean", tmp_path / "empty", "--device", "cpu"],
         "no images found"),
        (["--ckpt", vit, "--data", data, "--severities", "0-7"], "bad severity list"),
        (["--ckpt", vit, "--data", data, "--corruptions", "rain"], "unknown corruption rain"),
        (["--ckpt", vit, "--data", data, "--corruptions", "fog,frost", "--severities", "1"],
         "lacks frost (all); run what is there with --corruptions fog"),
        (["--ckpt", vit, "--data", data, "--attack", "pgd", *fog], "--attack needs --clean"),
        (["--ckpt", vit, *fog], "nothing to evaluate"),
        (["--ckpt", vit, "--model", "test_vit", "--imagenet-sketch", data / "fog" / "1",
          *fog],
         "the model outputs 3 classes but --imagenet-sketch is scored on ImageNet-1k"),
        (["--ckpt", vit, "--imagenet-v2", data / "fog" / "1", *fog],
         "are not class indices 0..999"),
        (["--ckpt", vit, "--data", data, "--out", tmp_path / "junk.pth", *fog],
         "is a file, not a folder"),
        (["--ckpt", vit, "--data", data, "--out", "/proc/gfbench-x", *fog],
         "cannot write there"),
    ]


def test_bad_inputs_give_one_clear_line(vit, tmp_path, monkeypatch, capsys):
    for args, fragment in bad_inputs(tmp_path, vit):
        code, out, err = run_cli(monkeypatch, capsys, *args)
        assert code == 1, (args, out, err)
        assert err.startswith("error:") and fragment in err, (fragment, err)
        assert "Traceback" not in err + out
