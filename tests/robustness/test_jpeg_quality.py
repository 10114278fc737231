"""--jpeg-quality: generated corruptions saved as JPEG and read back, as the released
ImageNet-C files were (quality 85); the quality keys the results file and is on every
generated row; bad values are one line."""

import io
import json

import numpy as np
import pytest
from PIL import Image
from robustness_helpers import run_cli, write_folder_val, write_vit_checkpoint

from gfbench.results import read_results
from gfbench.robustness.corruptions import corrupt, image_rng, jpeg_roundtrip
from gfbench.robustness.data import Recipe, Sample, center_crop, prepare, resize_cover
from gfbench.robustness.evaluate import RobustnessConfig, check_config, run_settings


def pil_round_trip(pixels: np.ndarray, quality: int) -> np.ndarray:
    """PIL's own JPEG round trip of a uint8 image, written out here, not gfbench's."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def test_reencoded_image_is_pils_jpeg_round_trip_of_the_corrupted_uint8_image():
    rng = np.random.default_rng(0)
    photo = Image.fromarray(np.clip(rng.normal(120, 40, (300, 260, 3)), 0, 255).astype(np.uint8))
    sample = Sample(path="unused", label=0, key="n01/a.JPEG")
    for corruption, severity in (("fog", 2), ("gaussian_noise", 5), ("pixelate", 1),
                                 ("sparkles", 3), ("perlin_noise", 1)):  # C's and C-bar's
        plain = prepare(photo, sample, Recipe("generate", (224, 224), corruption=corruption,
                                              severity=severity, seed=3))
        crop = center_crop(resize_cover(photo, (256, 256), "bilinear"), (224, 224))
        corrupted = corrupt(np.asarray(crop), corruption, severity,
                            image_rng(3, sample.key, corruption, severity))
        assert np.array_equal(plain, corrupted)  # the recipe's pixels before JPEG
        for quality in (85, 30):
            saved = prepare(photo, sample, Recipe("generate", (224, 224), corruption=corruption,
                                                  severity=severity, seed=3,
                                                  jpeg_quality=quality))
            assert saved.dtype == np.uint8 and saved.shape == (224, 224, 3)
            assert np.array_equal(saved, pil_round_trip(plain, quality))
            assert np.array_equal(jpeg_roundtrip(plain, quality), saved)
            assert not np.array_equal(saved, plain)
    # At another model size the JPEG comes first (on the 224 crop), then the resize.
    small = prepare(photo, sample, Recipe("generate", (160, 160), "bilinear", corruption="fog",
                                          severity=2, seed=3, jpeg_quality=85))
    crop = prepare(photo, sample, Recipe("generate", (224, 224), corruption="fog", severity=2,
                                         seed=3, jpeg_quality=85))
    resized = Image.fromarray(crop).resize((160, 160), Image.Resampling.BILINEAR)
    assert np.array_equal(small, np.asarray(resized))


def test_the_settings_key_has_the_quality_only_when_given(tmp_path):
    from gfbench.robustness.evaluate import ModelBundle

    bundle = ModelBundle(module=None, name="m", mean=(0.5,) * 3, std=(0.5,) * 3,  # type: ignore
                         input_size=(224, 224))
    plain = run_settings(RobustnessConfig(checkpoint=tmp_path / "c.pth"), bundle)
    assert "jpeg_quality" not in plain  # files made before the option keep their keys
    assert run_settings(RobustnessConfig(checkpoint=tmp_path / "c.pth", jpeg_quality=85),
                        bundle)["jpeg_quality"] == 85


def test_runs_with_and_without_it_write_different_files_and_rows_record_it(
        tmp_path, monkeypatch, capsys, one_thread):
    vit = write_vit_checkpoint(tmp_path / "vit3.pth")
    val = write_folder_val(tmp_path / "val", per_class=2)
    common = ["--ckpt", vit, "--model", "test_vit", "--generate-from", val, "--corruptions",
              "gaussian_noise,pixelate", "--severities", "2", "--class-map", "folders",
              "--workers", "0", "--device", "cpu", "--out", tmp_path / "out"]
    code, out, err = run_cli(monkeypatch, capsys, *common)
    assert code == 0, err
    code, out, err = run_cli(monkeypatch, capsys, *common, "--jpeg-quality", "85")
    assert code == 0, err
    assert "re-encoded as JPEG quality 85" in out
    files = sorted((tmp_path / "out").glob("*.json"))
    assert len(files) == 2  # another settings key: another file, nothing resumed
    by_quality = {}
    for path in files:
        provenance, rows = read_results(path)
        generated = rows[rows["source"] == "generated"]
        assert len(generated) == 2 and (rows["source"] == "clean").sum() == 1
        qualities = set(generated["jpeg_quality"].tolist())
        assert len(qualities) == 1
        quality = qualities.pop()
        quality = None if quality is None or quality != quality else int(quality)  # NaN: None
        assert provenance.extra["settings"].get("jpeg_quality") == quality
        clean = rows[rows["source"] == "clean"]["jpeg_quality"].tolist()
        assert clean[0] is None or clean[0] != clean[0]  # only generated rows are re-encoded
        by_quality[quality] = path
    assert set(by_quality) == {None, 85}
    assert "saved as JPEG quality 85 (PIL) and read back" in by_quality[85].read_text()
    assert "(PIL) and read back" not in by_quality[None].read_text()  # what was scored
    header = [line for line in by_quality[85].with_suffix(".csv").read_text().splitlines()
              if not line.startswith("#")][0]
    assert "jpeg_quality" in header.split(",")
    again = run_cli(monkeypatch, capsys, *common, "--jpeg-quality", "85")
    assert again[0] == 0 and "resumed: 3 parts" in again[1]


def test_results_files_without_the_field_still_load(tmp_path, monkeypatch, capsys, one_thread):
    vit = write_vit_checkpoint(tmp_path / "vit3.pth")
    val = write_folder_val(tmp_path / "val", per_class=1)
    code, _, err = run_cli(monkeypatch, capsys, "--ckpt", vit, "--model", "test_vit",
                           "--generate-from", val, "--corruptions", "fog", "--severities", "1",
                           "--class-map", "folders", "--workers", "0", "--device", "cpu",
                           "--out", tmp_path / "out")
    assert code == 0, err
    (path,) = (tmp_path / "out").glob("*.json")
    payload = json.loads(path.read_text())
    for row in payload["rows"]:
        row.pop("jpeg_quality")  # as files written before the field existed
    path.write_text(json.dumps(payload))
    _, rows = read_results(path)
    assert len(rows) == 2 and rows["jpeg_quality"].isna().all()


@pytest.mark.parametrize(("value", "says"), [
    ("0", "--jpeg-quality 0 is not a whole number from 1 to 95"),
    ("96", "--jpeg-quality 96 is not a whole number from 1 to 95"),
    ("high", "--jpeg-quality 'high' is not a whole number from 1 to 95"),
    ("", "--jpeg-quality '' is not a whole number from 1 to 95"),
])
def test_a_bad_quality_is_one_line(tmp_path, monkeypatch, capsys, value, says):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(monkeypatch, capsys, "--ckpt", "missing.pth", "--generate-from",
                             tmp_path, "--jpeg-quality", value)
    assert code == 1 and len(err.splitlines()) == 1 and says in err, err
    assert not any(tmp_path.iterdir())


def test_the_quality_needs_generated_corruptions(tmp_path, monkeypatch, capsys):
    val = write_folder_val(tmp_path / "val", per_class=1)
    code, out, err = run_cli(monkeypatch, capsys, "--ckpt", tmp_path / "none.pth", "--clean",
                             val, "--jpeg-quality", "85", "--device", "cpu")
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "--jpeg-quality re-encodes the corruptions gfbench generates: it needs " \
           "--generate-from" in err
    with pytest.raises(Exception, match="1 to 95"):  # the library checks the range too
        check_config(RobustnessConfig(checkpoint=tmp_path / "c.pth", generate_from=val,
                                      jpeg_quality=100))
