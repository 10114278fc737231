"""Start-up: the CLI, --help, --version and the plot path never load torch or timm."""

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "timm", "torchvision", "fvcore")
RESULTS = Path(__file__).resolve().parents[1] / "results"


def _loaded_after(code: str) -> set[str]:
    """Which heavy packages a fresh interpreter has imported after running ``code``."""
    probe = (f"{code}\nimport sys\n"
             f"print('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("loaded:"), done.stdout
    return set(filter(None, line.removeprefix("loaded:").split(",")))


@pytest.mark.parametrize("code", [
    "import gfbench",
    "import gfbench.cli",
    "import gfbench.plot, gfbench.plot.make, gfbench.measure.scaling, gfbench.results",
])
def test_light_paths_import_no_torch(code):
    assert _loaded_after(code) == set()


def test_gfbench_plot_draws_the_committed_results_without_torch(tmp_path):
    code = ("import sys\nfrom gfbench.cli import app\n"
            f"sys.argv = ['gfbench', 'plot', {str(RESULTS)!r}, '--out', {str(tmp_path)!r}, "
            "'--format', 'png']\n"
            "try:\n    app()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code")
    assert _loaded_after(code) == set()
    assert list(tmp_path.glob("*.png")) and (tmp_path / "report.html").exists()


def test_help_and_version_answer_without_torch():
    code = ("import sys\nfrom gfbench.cli import app\nsys.argv = ['gfbench', '--version']\n"
            "try:\n    app()\nexcept SystemExit:\n    pass")
    assert _loaded_after(code) == set()
    done = subprocess.run([sys.executable, "-m", "gfbench", "--version"], capture_output=True,
                          text=True, timeout=120)
    from gfbench import __version__

    assert done.returncode == 0 and done.stdout.strip() == f"gfbench {__version__}"


def test_the_api_still_loads_models_and_registers_gfnet_in_timm():
    code = ("import gfbench, timm\nm = gfbench.create_model('gfnet-ti', img_size=224)\n"
            "print(type(timm.create_model('gfnet_ti')).__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    assert done.stdout.strip() == "GFNet"
