"""One contract for every command: a shared option rejects a bad value with the same one line
in each command that takes it; every command is thin, has --json and --quiet, and the layers
import downwards only."""

import ast
import dataclasses
import inspect
import sys
from pathlib import Path

import pytest
import typer.main

from gfbench import cli

PACKAGE = Path(cli.__file__).parent

# Each command with the arguments it needs to get as far as parsing the shared option.
COMMANDS = {
    "complexity": ["complexity", "--metrics", "flops,params"],
    "breakdown": ["breakdown"],
    "robustness": ["robustness", "--ckpt", "missing.pth"],
    "plot": ["plot", "missing-folder"],
    "ceilings": ["ceilings"],
}
BAD_VALUES = [  # option, bad value, what the one line must say, commands that take the option
    ("--models", "", "--models is empty", ("complexity", "breakdown")),
    ("--models", " , ", "--models is empty", ("complexity", "breakdown")),
    ("--exclude", "", "--exclude is empty", ("complexity", "breakdown")),
    ("--res", "0x224", "--res '0x224' is not a size", ("complexity", "breakdown")),
    ("--res", "", "--res is empty", ("complexity", "breakdown")),
    ("--device", "tpu", "--device 'tpu' is not one of",
     ("complexity", "robustness", "ceilings", "breakdown")),
    ("--precision", "fp8", "--precision 'fp8' is not one of", ("complexity", "robustness")),
    ("--batch-size", "0", "--batch-size '0' is not a whole number",
     ("complexity", "robustness", "breakdown")),
    ("--batch-size", "", "--batch-size is empty", ("complexity", "robustness", "breakdown")),
    ("--out", "rows.json", "--out 'rows.json' names a file",
     ("complexity", "breakdown", "robustness", "plot")),
]


def _one_line_error(monkeypatch, capsys, args: list[str]) -> str:
    """Run the console entry point; assert exit 1 and exactly one stderr line; return it."""
    monkeypatch.setattr(sys, "argv", ["gfbench", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(("option", "value", "says", "commands"), BAD_VALUES,
                         ids=[f"{o}={v!r}" for o, v, _, _ in BAD_VALUES])
def test_a_bad_shared_value_is_the_same_one_line_in_every_command(
        monkeypatch, capsys, tmp_path, option, value, says, commands):
    monkeypatch.chdir(tmp_path)
    lines = {command: _one_line_error(monkeypatch, capsys, [*COMMANDS[command], option, value])
             for command in commands}
    assert all(says in line for line in lines.values()), lines
    assert len(set(lines.values())) == 1, lines
    assert not any(tmp_path.iterdir())  # refused before anything was written


def _click_command(name: str):
    """The click command typer builds for a gfbench command."""
    return typer.main.get_command(cli.app).commands[name]


@pytest.mark.parametrize("name", ["complexity", "breakdown", "robustness", "plot", "compare",
                                  "ceilings"])
def test_every_command_that_writes_or_prints_results_takes_json_and_quiet(name):
    options = {opt for p in _click_command(name).params for opt in p.opts}
    assert {"--json", "--quiet"} <= options


@pytest.mark.parametrize("name", ["complexity", "breakdown"])
def test_models_and_res_are_one_definition_in_every_command_that_takes_models(name):
    params = {opt: p for p in _click_command(name).params for opt in p.opts}
    reference = {opt: p for p in _click_command("complexity").params for opt in p.opts}
    for option in ("--models", "--exclude", "--res", "--out", "--json", "--quiet"):
        assert params[option].help == reference[option].help


def test_complexity_parameters_are_its_request_fields():
    from gfbench.measure.plan import ComplexityRequest

    parameters = set(inspect.signature(cli.complexity_command).parameters)
    fields = {f.name for f in dataclasses.fields(ComplexityRequest)}
    assert fields <= parameters, fields - parameters
    assert parameters - fields == {"quiet", "as_json"}


def test_commands_are_thin():
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    commands = [node for node in tree.body if isinstance(node, ast.FunctionDef)
                and any("app.command" in ast.unparse(d) for d in node.decorator_list)]
    assert len(commands) == 7
    for node in commands:
        assert node.end_lineno - node.lineno + 1 < 40, node.name


def _gfbench_imports(path: Path) -> set[str]:
    """The gfbench modules (and typer) a source file imports, at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith(("gfbench", "typer"))}


def test_layers_import_downwards_only():
    library = [p for p in PACKAGE.rglob("*.py") if p.name not in ("cli.py", "__main__.py")]
    assert len(library) > 40
    for path in library:
        imported = _gfbench_imports(path)
        assert not {n for n in imported if n == "gfbench.cli" or n.startswith("typer")}, path
    for path in (PACKAGE / "results").rglob("*.py"):  # the results layer knows no reader
        readers = {n for n in _gfbench_imports(path)
                   if n.startswith(("gfbench.plot", "gfbench.compare", "gfbench.render"))}
        assert not readers, (path, readers)
