"""The lazily importing packages (gfbench, gfbench.measure, gfbench.robustness): every name of
a package's export map is also imported under ``if TYPE_CHECKING:``, from the module the map
names (so that type checkers and IDEs see it), and resolves at run time to that module's
object; importing the packages still loads no torch."""

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = ("gfbench", "gfbench.measure", "gfbench.robustness")
HEAVY = ("torch", "timm", "torchvision", "fvcore")


def export_map(package: str) -> dict[str, str]:
    """name -> the module the package's __getattr__ imports it from."""
    module = importlib.import_module(package)
    if package == "gfbench":
        return dict.fromkeys(module._API, "gfbench.models")
    return {name: f"{package}.{where}" for name, where in module._EXPORTS.items()}


def static_imports(package: str) -> dict[str, str]:
    """name -> module, for each ``from M import X as X`` in the package's one
    ``if TYPE_CHECKING:`` block (read from its source, not run)."""
    origin = importlib.util.find_spec(package).origin
    tree = ast.parse(Path(origin).read_text(encoding="utf-8"))
    blocks = [node for node in tree.body if isinstance(node, ast.If)
              and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"]
    assert len(blocks) == 1, f"{package}: {len(blocks)} `if TYPE_CHECKING:` blocks"
    found: dict[str, str] = {}
    for statement in blocks[0].body:
        assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
        for alias in statement.names:
            # `X as X` is an explicit re-export (mypy --no-implicit-reexport, pyright)
            assert alias.asname == alias.name, ast.unparse(statement)
            assert alias.name not in found, f"{package}: {alias.name} imported twice"
            found[alias.name] = statement.module
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_the_type_checking_block_imports_every_export_from_its_module(package):
    exports = export_map(package)
    static = static_imports(package)
    assert sorted(set(exports) - set(static)) == [], "exported, not visible to type checkers"
    assert sorted(set(static) - set(exports)) == [], "imported for type checkers, not exported"
    assert {name: m for name, m in static.items() if exports[name] != m} == {}, "other module"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_export_resolves_at_run_time_to_its_modules_object(package):
    module = importlib.import_module(package)
    for name, source in export_map(package).items():
        assert name in module.__all__
        assert getattr(module, name) is getattr(importlib.import_module(source), name), name
    with pytest.raises(AttributeError, match="no attribute 'not_exported'"):
        module.not_exported  # noqa: B018


def test_importing_the_packages_loads_no_torch():
    probe = ("import gfbench, gfbench.measure, gfbench.robustness, sys\n"
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == ""


def test_the_robustness_run_loads_the_corruption_generator_only_when_it_generates():
    """A run on released ImageNet-C files or clean images never imports the in-memory
    generator or the scipy it needs (about a second of start-up on a busy 2-core machine)."""
    probe = ("import sys, gfbench.robustness.evaluate\n"
             "print(','.join(m for m in ('scipy', 'gfbench.robustness.corruptions') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == ""
