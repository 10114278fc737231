"""The fast meta path: a count-only run builds on meta with no initialisation, starts no child
process, and fvcore traces zeroed storage instead of randomly initialised weights."""

import subprocess

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

import gfbench.models
from gfbench.measure.complexity import run_complexity
from gfbench.measure.plan import ComplexityRequest
from gfbench.models.meta import is_meta, materialise, on_meta

# What draws random numbers: torch's and timm's initialisers come down to these.
RANDOM_OPS = frozenset({"uniform_", "normal_", "bernoulli_", "random_", "exponential_",
                        "geometric_", "log_normal_", "cauchy_", "erfinv_", "randn", "rand",
                        "randint", "randperm", "normal", "rand_like", "randn_like"})


class RandomOnRealTensors(TorchFunctionMode):
    """Records every random draw that produced a tensor with storage (not a meta tensor)."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if name in RANDOM_OPS and isinstance(out, torch.Tensor) and not out.is_meta:
            self.calls.append(name)
        return out


def test_count_only_run_starts_no_child_and_builds_no_real_weights(tmp_path, monkeypatch,
                                                                   spawned):
    built: list[set[str]] = []
    real_create = gfbench.models.create_model

    def create_model(*args, **kwargs):
        model = real_create(*args, **kwargs)
        built.append({t.device.type for t in (*model.parameters(), *model.buffers())})
        return model

    monkeypatch.setattr(gfbench.models, "create_model", create_model)
    request = ComplexityRequest(models=("deit",), resolutions=("224",),
                                metrics=("flops", "params"), out=tmp_path)
    with RandomOnRealTensors() as random_draws:
        report = run_complexity(request)
    (row,) = report.rows
    assert row.status == "ok" and row.params == 22_050_664
    assert row.flops_engine == "fvcore" and row.flops == row.flops_torch  # cross-checked
    assert spawned == []
    assert built and all(devices == {"meta"} for devices in built), built
    assert random_draws.calls == []


def test_on_meta_skips_value_writes_but_keeps_shape_and_autograd_writes():
    with on_meta():
        weight = nn.Parameter(torch.empty(4, 3))
        nn.init.trunc_normal_(weight, std=0.02)  # skipped: no values to write
        column = torch.empty(4)
        column.unsqueeze_(1)
        weight.requires_grad_(False)
    assert weight.is_meta and column.shape == (4, 1) and not weight.requires_grad


def test_materialise_zeroes_storage_and_recomputes_timms_buffers():
    with on_meta():
        model = gfbench.models.create_model("swin_tiny_patch4_window7_224")
    assert is_meta(model)
    materialise(model)
    reference = gfbench.models.create_model("swin_tiny_patch4_window7_224")
    assert all(t.device.type == "cpu" for t in (*model.parameters(), *model.buffers()))
    assert all(not p.any() for p in model.parameters())
    index = "layers.0.blocks.0.attn.relative_position_index"
    assert torch.equal(model.get_buffer(index), reference.get_buffer(index))
    mask = "layers.0.blocks.1.attn_mask"
    assert torch.equal(model.get_buffer(mask), reference.get_buffer(mask))


@pytest.mark.parametrize("name", ["repvgg_a0", "mobileone_s0"])
def test_reparameterise_on_meta_builds_the_fused_modules_on_meta(name):
    from gfbench.models.meta import reparameterise

    with on_meta():
        model = gfbench.models.create_model(name)
    built = sum(p.numel() for p in model.parameters())
    with RandomOnRealTensors() as random_draws:
        fused = reparameterise(model)
    assert is_meta(fused) and random_draws.calls == []
    assert sum(p.numel() for p in fused.parameters()) < built  # branches and norms folded


class _SizedByBuffer(nn.Module):
    """A module whose forward reads a shape from a buffer that only its constructor computes
    (what a materialised copy, whose buffers are zero, cannot run)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.register_buffer("chunks", torch.tensor(2))

    def forward(self, x):
        return self.fc(x.reshape(int(self.chunks), -1, 8))


def test_fvcore_falls_back_to_a_cpu_build_when_the_zeroed_copy_cannot_run():
    from gfbench.measure.flops import count_flops

    with on_meta():
        built = _SizedByBuffer()
    copy = materialise(built)
    assert int(copy.chunks) == 0  # the constructor's value is gone
    with pytest.raises(RuntimeError):
        copy(torch.zeros(2, 3, 8))
    counted = count_flops(_SizedByBuffer, (2, 3, 8), engine="fvcore")
    assert counted.total == 2 * 3 * 8 * 4  # what the CPU build gives


def test_counting_uses_no_more_threads_than_the_machine_has_free(monkeypatch):
    from gfbench.measure import setting

    before = torch.get_num_threads()
    monkeypatch.setattr(setting, "load_average", lambda: [9.0, 9.0, 9.0])
    monkeypatch.setattr(setting, "available_cores", lambda: 2)
    with setting.counting_threads() as threads:
        assert threads == torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    monkeypatch.setattr(setting, "load_average", lambda: [0.0, 0.0, 0.0])
    monkeypatch.setattr(setting, "available_cores", lambda: 64)
    with setting.counting_threads() as threads:
        assert threads == before  # an idle machine: torch's own number, never more


@pytest.mark.parametrize("extra, fvcore", [((), True), (("--no-fvcore",), False)])
def test_a_count_only_run_imports_neither_pandas_nor_an_unused_fvcore(tmp_path, extra, fvcore):
    import sys

    argv = ["gfbench", "complexity", "--models", "deit", "--res", "224", "--metrics",
            "flops,params", "--quiet", "--out", str(tmp_path), *extra]
    code = ("import sys\nfrom gfbench.cli import main\n"
            f"sys.argv = {argv!r}\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print(','.join(m for m in ('pandas', 'fvcore') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    assert done.stdout.strip().splitlines()[-1:] == (["fvcore"] if fvcore else [])
