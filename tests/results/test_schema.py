"""The row schema: one key per row type, and a mixer's token grid apart from image size."""

import json

from gfbench.measure.setting import Setting
from gfbench.results import ComplexityRow, key_fields, read_rows, row_key


def test_the_complexity_key_holds_the_optimizer_and_both_sizes():
    fields = key_fields("complexity")
    assert {"optimizer", "res_h", "res_w", "grid_h", "grid_w"} <= set(fields)
    sgd = ComplexityRow(subject="model", name="deit-s", res_h=224, res_w=224, tokens=196,
                        batch_size=8, precision="fp32", mode="train", device="cpu",
                        optimizer="sgd")
    adamw = ComplexityRow(**{**sgd.__dict__, "optimizer": "adamw"})
    assert row_key(sgd) != row_key(adamw)


def test_a_mixer_setting_gives_its_grid_as_grid_and_no_image_size():
    mixer = Setting("mixer", "attention", 14, 28, 1, "fp32", "infer", "cpu", 64).row()
    assert (mixer.res_h, mixer.res_w, mixer.grid_h, mixer.grid_w) == (None, None, 14, 28)
    assert mixer.sides() == (14, 28)
    model = Setting("model", "deit-s", 224, 224, 1, "fp32", "infer", "cpu").row()
    assert (model.res_h, model.grid_h, model.sides()) == (224, None, (224, 224))


def test_an_old_file_s_mixer_row_reads_its_res_as_the_token_grid(tmp_path):
    record = {"subject": "mixer", "name": "global_filter", "res_h": 14, "res_w": 28,
              "tokens": 392, "batch_size": 8, "precision": "fp32", "mode": "infer",
              "device": "cpu", "dim": 384}
    model = {**record, "subject": "model", "name": "gfnet-xs", "res_h": 224, "res_w": 224}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"schema": "gfbench.results/1", "kind": "complexity",
                                "rows": [record, model]}))
    (mixer, net) = read_rows(path)[1]
    assert (mixer.res_h, mixer.res_w, mixer.grid_h, mixer.grid_w) == (None, None, 14, 28)
    assert (net.res_h, net.res_w, net.grid_h, net.grid_w) == (224, 224, None, None)


def test_provenance_records_the_environment_that_changes_cpu_timings(monkeypatch):
    from gfbench.results import collect_provenance

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1073741824")
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/libjemalloc.so.2")
    monkeypatch.setenv("GFBENCH_UNRELATED", "x")
    recorded = collect_provenance("complexity").extra["allocator_env"]
    assert recorded["MALLOC_TRIM_THRESHOLD_"] == "1073741824"
    assert recorded["LD_PRELOAD"] == "/usr/lib/libjemalloc.so.2"
    assert "GFBENCH_UNRELATED" not in recorded
