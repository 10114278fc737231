"""The Fourier heat map (Yin et al. 2019): the basis images are the real Fourier basis (checked
against numpy.fft), orthonormal and scaled to eps; a model that only sees the image mean is
unaffected at every non-zero frequency; the signs are seeded per image; a run resumes per
frequency; the figure draws the mirrored grid; bad options are one line."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from gfbench.errors import GfbenchError
from gfbench.results import read_results, read_summary
from gfbench.robustness.evaluate import ModelBundle, RobustnessConfig, run_robustness
from gfbench.robustness.fourier import (
    DEFAULT_FOURIER_EPS,
    DEFAULT_FOURIER_GRID,
    PAPER_EPS_IMAGENET,
    FourierSpec,
    axis_frequencies,
    basis_image,
    fourier_maps,
    grid_frequencies,
    half_grid,
    image_signs,
    parse_corruption,
    partner,
    perturb,
)

SIDE = 16
CLASSES = ("a", "b", "c")


# --- the basis ---


def _numpy_basis(size: tuple[int, int], ky: int, kx: int) -> np.ndarray:
    """Independently: the inverse FFT of a one-hot spectrum at (ky, kx) plus its conjugate
    partner at (-ky, -kx), real, normalised to unit L2 norm."""
    spectrum = np.zeros(size, complex)
    spectrum[ky % size[0], kx % size[1]] += 1.0
    spectrum[-ky % size[0], -kx % size[1]] += 1.0
    image = np.fft.ifft2(spectrum)
    assert np.abs(image.imag).max() < 1e-12  # conjugate-symmetric spectrum: a real image
    return image.real / np.linalg.norm(image.real)


@pytest.mark.parametrize("size", [(8, 8), (6, 9), (7, 7)])
def test_basis_images_are_the_inverse_fft_of_a_symmetric_one_hot_spectrum(size):
    for ky, kx in grid_frequencies(size, max(size)):
        np.testing.assert_allclose(basis_image(size, ky, kx), _numpy_basis(size, ky, kx),
                                   atol=1e-12, err_msg=f"{ky},{kx}")
        spectrum = np.abs(np.fft.fft2(basis_image(size, ky, kx)))
        assert np.count_nonzero(spectrum > 1e-9) <= 2


@pytest.mark.parametrize("size", [(8, 8), (6, 9), (7, 7)])
def test_the_half_grid_basis_images_are_orthonormal_and_each_pair_is_evaluated_once(size):
    half = half_grid(size, max(size))
    stacked = np.stack([basis_image(size, *f).ravel() for f in half])
    np.testing.assert_allclose(stacked @ stacked.T, np.eye(len(half)), atol=1e-10)
    own_mirrors = sum(partner(*f, size) == f for f in grid_frequencies(size, max(size)))
    assert own_mirrors == (1 + (size[0] % 2 == 0)) * (1 + (size[1] % 2 == 0))
    assert len(half) == (size[0] * size[1] + own_mirrors) // 2
    covered = set(half) | {partner(*f, size) for f in half}
    assert covered == set(grid_frequencies(size, max(size)))  # the other half is mirrored


def test_coarse_grids_are_symmetric_spread_and_include_zero():
    assert axis_frequencies(224, 15) == [-111, -95, -79, -63, -48, -32, -16, 0, 16, 32, 48,
                                         63, 79, 95, 111]
    assert axis_frequencies(224, 224) == list(range(-112, 112))
    assert axis_frequencies(224, 1) == [0]
    assert len(half_grid((224, 224), DEFAULT_FOURIER_GRID)) == (15 * 15 + 1) // 2 == 113
    assert len(half_grid((224, 224), 224)) == (224 * 224 + 4) // 2  # 4 self-mirrored points
    assert DEFAULT_FOURIER_EPS == PAPER_EPS_IMAGENET == 15.7
    assert RobustnessConfig(checkpoint=Path("m.pth")).fourier_settings() == (15, 15.7)
    assert RobustnessConfig(checkpoint=Path("m.pth"), fourier_grid=7,
                            fourier_eps=4.0).fourier_settings() == (7, 4.0)


def test_corruption_names_round_trip_and_carry_eps():
    spec = FourierSpec(-3, 5, 15.7)
    assert spec.corruption == "fourier:-3,5@15.7"
    assert parse_corruption(spec.corruption) == spec
    assert parse_corruption("gaussian_noise") is None
    assert FourierSpec(1, 2, 4.0).corruption != FourierSpec(1, 2, 15.7).corruption


def test_the_perturbation_has_norm_eps_per_channel_and_seeded_signs():
    pixels = torch.full((4, 3, SIDE, SIDE), 0.5)
    keys = [f"a/img{i}.png" for i in range(4)]
    spec = FourierSpec(2, -5, 1.5)  # amplitude 1.5 * sqrt(2) / 16 < 0.5: no clipping
    delta = (perturb(pixels, spec, keys, seed=0) - pixels).double()
    norms = delta.flatten(2).norm(dim=2)
    np.testing.assert_allclose(norms.numpy(), 1.5, rtol=1e-5)
    unit = torch.from_numpy(basis_image((SIDE, SIDE), 2, -5))
    signs = (delta * unit).sum(dim=(2, 3)) / 1.5
    np.testing.assert_allclose(signs.abs().numpy(), 1.0, rtol=1e-5)
    expected = np.stack([image_signs(0, k, spec, (SIDE, SIDE)) for k in keys])
    np.testing.assert_array_equal(np.sign(signs.numpy()), expected)
    again = perturb(pixels[[2, 0]], spec, [keys[2], keys[0]], seed=0)  # order and batch free
    assert torch.equal(again, perturb(pixels, spec, keys, seed=0)[[2, 0]])
    many = np.stack([image_signs(0, f"k{i}", spec, (SIDE, SIDE)) for i in range(40)])
    assert (many == 1).any() and (many == -1).any()  # random signs, not one fixed sign
    assert not np.array_equal(many, np.stack([image_signs(1, f"k{i}", spec, (SIDE, SIDE))
                                              for i in range(40)]))  # the seed matters


# --- runs: a model that only sees the image mean ---


class MeanModel(nn.Module):
    """Global average pool then a fixed linear head: the class is the brightest channel."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 3, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(3) * 10)
        self.num_classes = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=(2, 3)))


class PixelModel(nn.Module):
    """A fixed random linear map of all pixels: it sees every frequency."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.randn(3, 3 * SIDE * SIDE, generator=generator))
        self.num_classes = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - 0.5) @ self.weight.T


def bundle_of(module: nn.Module, name: str) -> ModelBundle:
    return ModelBundle(module=module, name=name, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                       input_size=(SIDE, SIDE), interpolation="bilinear", crop_pct=1.0,
                       num_classes=3)


def write_val(root: Path) -> Path:
    """Flat PNGs in [0.3, 0.7] (no clipping at eps 2): the brightest channel is the class for
    most, a close second for some (so the clean error is not 0 and a mean shift flips some)."""
    rng = np.random.default_rng(3)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(6):
            colour = rng.uniform(0.35, 0.6, 3)
            colour[c] = colour.max() + (0.03 if i % 3 else -0.02)
            array = np.full((SIDE, SIDE, 3), np.rint(np.clip(colour, 0.3, 0.7) * 255), np.uint8)
            Image.fromarray(array).save(root / name / f"img{i}.png")
    return root


@pytest.fixture
def val(tmp_path) -> Path:
    return write_val(tmp_path / "val")


def fourier_config(val: Path, out: Path, **changes) -> RobustnessConfig:
    config = RobustnessConfig(checkpoint=Path("model.pth"), clean=val, class_map="folders",
                              batch_size=5, workers=0, device="cpu", out=out,
                              fourier_map=True, fourier_grid=SIDE, fourier_eps=2.0)
    return dataclasses.replace(config, **changes)


def by_part(rows) -> dict[str, object]:
    return {r.corruption: r for r in rows}


def test_a_mean_only_model_is_unaffected_at_every_non_zero_frequency(val, tmp_path, one_thread):
    report = run_robustness(fourier_config(val, tmp_path / "run"),
                            bundle=bundle_of(MeanModel(), "mean"))
    rows = by_part(report.rows)
    clean = rows.pop("clean")
    assert clean.images == 18 and 0 < clean.correct_top1 < 18
    assert len(rows) == (SIDE * SIDE + 4) // 2  # the paper's full grid, one half of it
    zero = rows.pop(FourierSpec(0, 0, 2.0).corruption)
    for name, row in rows.items():
        assert row.source == "fourier" and row.eps == 2.0
        assert (row.images, row.correct_top1) == (clean.images, clean.correct_top1), name
    # the zero frequency shifts each channel's mean by +-eps/16: it does change answers, so the
    # perturbation was applied (a run that skipped it would pass the loop above)
    assert zero.correct_top1 != clean.correct_top1
    stored = read_summary(report.json_path)["fourier"]
    (record,) = stored
    assert record["ky"] == list(range(-8, 8)) and record["frequencies_evaluated"] == 130
    grid = np.array(record["error_top1_pct"], dtype=float)
    clean_pct = 100 * (1 - clean.correct_top1 / clean.images)
    assert grid.shape == (SIDE, SIDE) and not np.isnan(grid).any()
    assert np.count_nonzero(grid != clean_pct) == 1 and grid[8, 8] != clean_pct  # the centre


def test_signs_do_not_depend_on_batches(val, tmp_path, one_thread):
    config = fourier_config(val, tmp_path / "a", fourier_grid=5)
    first = run_robustness(config, bundle=bundle_of(PixelModel(), "pixel"))
    second = run_robustness(dataclasses.replace(config, out=tmp_path / "b", batch_size=7),
                            bundle=bundle_of(PixelModel(), "pixel"))
    assert {k: r.correct_top1 for k, r in by_part(first.rows).items()} == \
        {k: r.correct_top1 for k, r in by_part(second.rows).items()}
    other_seed = run_robustness(dataclasses.replace(config, out=tmp_path / "c", seed=1),
                                bundle=bundle_of(PixelModel(), "pixel"))
    assert {k: r.correct_top1 for k, r in by_part(first.rows).items()} != \
        {k: r.correct_top1 for k, r in by_part(other_seed.rows).items()}


def test_resuming_skips_the_frequencies_already_done(val, tmp_path, one_thread):
    out = tmp_path / "run"
    coarse = run_robustness(fourier_config(val, out, fourier_grid=3),
                            bundle=bundle_of(PixelModel(), "pixel"))
    done = {r.corruption for r in coarse.rows if r.source == "fourier"}
    assert len(done) == 5  # (-7, 0, 7)^2 halved
    finer = run_robustness(fourier_config(val, out, fourier_grid=5),
                           bundle=bundle_of(PixelModel(), "pixel"))
    assert set(finer.resumed) == done | {"clean"}
    assert finer.evaluated_images == 18 * (len(half_grid((SIDE, SIDE), 5)) - len(done))
    again = run_robustness(fourier_config(val, out, fourier_grid=5),
                           bundle=bundle_of(PixelModel(), "pixel"))
    assert again.evaluated_images == 0
    other_eps = run_robustness(fourier_config(val, out, fourier_grid=3, fourier_eps=1.0),
                               bundle=bundle_of(PixelModel(), "pixel"))
    assert set(other_eps.resumed) == {"clean"}  # another eps is another part
    assert len(read_results(finer.json_path)[1]) == len(other_eps.rows)  # all rows kept
    maps = fourier_maps(pd.DataFrame([dataclasses.asdict(r) for r in other_eps.rows]))
    assert sorted(m.eps for m in maps) == [1.0, 2.0]


def test_the_figure_draws_the_mirrored_error_and_its_change_from_clean(val, tmp_path,
                                                                      one_thread):
    from gfbench.plot.make import make_plots
    from gfbench.plot.robustness import fourier_figure

    report = run_robustness(fourier_config(val, tmp_path / "run", fourier_grid=5),
                            bundle=bundle_of(PixelModel(), "pixel"))
    rows = by_part(report.rows)
    frame = pd.DataFrame([dataclasses.asdict(r) for r in report.rows])
    figure = fourier_figure(frame)
    assert figure is not None and figure.stem == "robustness-fourier"
    images = {ax.images[0].get_gid().split("|")[-1]: ax.images[0].get_array()
              for ax in figure.figure.axes if ax.images}
    error, change = np.asarray(images["error"]), np.asarray(images["change"])
    axis = axis_frequencies(SIDE, 5)
    clean = 100 * (1 - rows["clean"].correct_top1 / rows["clean"].images)
    for i, ky in enumerate(axis):
        for j, kx in enumerate(axis):
            spec = FourierSpec(ky, kx, 2.0)
            if spec.corruption not in rows:
                spec = FourierSpec(-ky, -kx, 2.0)  # the mirrored half
            row = rows[spec.corruption]
            assert error[i, j] == pytest.approx(100 * (1 - row.correct_top1 / row.images))
            assert change[i, j] == pytest.approx(error[i, j] - clean)
    assert error[2, 2] == pytest.approx(
        100 * (1 - rows["fourier:0,0@2.0"].correct_top1 / 18))  # zero frequency centred
    assert not np.allclose(error, error[2, 2])  # the model does see the frequencies
    plots = make_plots([tmp_path / "run"])
    assert "robustness-fourier.png" in {p.name for p in plots.figures}
    for name in ("report.md", "report.html"):
        assert "Fourier heat map" in (tmp_path / "run" / "plots" / name).read_text()


def test_no_fourier_rows_no_figure_and_no_summary_entry(val, tmp_path, one_thread):
    from gfbench.plot.robustness import fourier_figure

    report = run_robustness(fourier_config(val, tmp_path / "run", fourier_map=False,
                                           fourier_grid=None, fourier_eps=None),
                            bundle=bundle_of(MeanModel(), "mean"))
    assert "fourier" not in read_summary(report.json_path)
    assert fourier_figure(pd.DataFrame([dataclasses.asdict(r) for r in report.rows])) is None


# --- bad input: one line, exit 1, nothing evaluated lost ---


def _one_line(monkeypatch, capsys, *args) -> str:
    from gfbench.cli import main

    monkeypatch.setattr(sys, "argv", ["gfbench", "robustness", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(("args", "says"), [
    (["--fourier-map"], "--fourier-map needs --clean"),
    (["--clean", "VAL", "--fourier-grid", "5"], "--fourier-grid and --fourier-eps set up "
     "--fourier-map: add it"),
    (["--clean", "VAL", "--fourier-eps", "4"], "set up --fourier-map"),
    (["--fourier-map", "--clean", "VAL", "--fourier-grid", "0"], "--fourier-grid 0: must be 1"),
    (["--fourier-map", "--clean", "VAL", "--fourier-eps", "0"], "--fourier-eps 0.0: must be"),
    (["--fourier-map", "--clean", "VAL", "--fourier-eps", "-4"], "--fourier-eps -4.0: must be"),
    (["--fourier-map", "--clean", "VAL", "--fourier-eps", "nan"], "--fourier-eps nan: must be"),
])
def test_bad_fourier_options_are_one_line(monkeypatch, capsys, val, tmp_path, args, says):
    args = [str(val) if a == "VAL" else a for a in args]
    line = _one_line(monkeypatch, capsys, "--ckpt", tmp_path / "missing.pth", "--out",
                     tmp_path / "out", *args)
    assert says in line, line


def test_a_grid_finer_than_the_image_is_refused_before_anything_is_lost(val, tmp_path,
                                                                        one_thread):
    out = tmp_path / "run"
    first = run_robustness(fourier_config(val, out, fourier_grid=3),
                           bundle=bundle_of(MeanModel(), "mean"))
    before = first.json_path.read_bytes()
    with pytest.raises(GfbenchError, match=r"--fourier-grid 17: must be 1 to the model's image "
                                           r"side, 16"):
        run_robustness(fourier_config(val, out, fourier_grid=SIDE + 1),
                       bundle=bundle_of(MeanModel(), "mean"))
    assert first.json_path.read_bytes() == before
    assert math.isclose(first.rows[0].images, 18)


def test_the_cli_runs_the_map_with_clean_and_prints_its_line(tmp_path, monkeypatch, capsys,
                                                             one_thread):
    from robustness_helpers import write_folder_val, write_vit_checkpoint

    from gfbench.cli import main

    vit = write_vit_checkpoint(tmp_path / "vit3.pth")
    val = write_folder_val(tmp_path / "val", per_class=1)
    monkeypatch.setattr(sys, "argv", [
        "gfbench", "robustness", "--ckpt", str(vit), "--model", "test_vit", "--clean", str(val),
        "--class-map", "folders", "--workers", "0", "--device", "cpu", "--out",
        str(tmp_path / "out"), "--fourier-map", "--fourier-grid", "3", "--fourier-eps", "4"])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Fourier heat map of test_vit, eps 4: 5 frequencies on a 3x3 grid" in out, out
    (path,) = (tmp_path / "out").glob("*.json")
    _, rows = read_results(path)
    assert len(rows) == 6  # clean and 5 frequencies


def test_two_gloo_processes_give_the_single_process_map(tmp_path, one_thread):
    from robustness_helpers import torchrun_robustness, write_folder_val, write_vit_checkpoint


    checkpoint = write_vit_checkpoint(tmp_path / "vit3.pth")
    val = write_folder_val(tmp_path / "val", per_class=3)
    options = ["--ckpt", str(checkpoint), "--model", "test_vit", "--clean", str(val),
               "--fourier-map", "--fourier-grid", "3", "--fourier-eps", "8", "--class-map",
               "folders", "--batch-size", "4", "--workers", "0", "--device", "cpu"]
    done = torchrun_robustness(options, tmp_path / "two", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    single = run_robustness(RobustnessConfig(
        checkpoint=checkpoint, model="test_vit", clean=val, class_map="folders", batch_size=5,
        workers=0, device="cpu", out=tmp_path / "one", fourier_map=True, fourier_grid=3,
        fourier_eps=8.0))
    (two_json,) = (tmp_path / "two").glob("*.json")
    columns = ["source", "corruption", "images", "correct_top1", "correct_top5", "nll"]
    two = read_results(two_json)[1][columns].sort_values("corruption").reset_index(drop=True)
    one = read_results(single.json_path)[1][columns].sort_values("corruption")
    # counts exactly; the NLL to float32 logits' batch-size noise (the clean row's too: other
    # batches, other BLAS sums), which the signs, if they depended on the rank, would exceed
    pd.testing.assert_frame_equal(two, one.reset_index(drop=True), check_exact=False,
                                  rtol=1e-5)
    assert len(one) == 6 and (one["source"] == "fourier").sum() == 5
    assert one["correct_top1"].nunique() > 1  # the frequencies do change the answers
