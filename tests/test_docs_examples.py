"""The examples in README.md and docs/*.md run as written.

Every fenced ```bash, ```sh or ```console block is an example: each of its `gfbench ...` lines
runs as `python -m gfbench ...` (console blocks: the lines after `$ `; a line ending in `\\`
continues on the next; other lines are output). Every ```python block runs in a fresh
interpreter. Each example gets a fresh temporary working folder holding a copy of the
committed `results/*.json` and `*.csv`, so `results/...` paths in the docs resolve.
Other lines (`make`, `pip`, `python benchmarks/...`) are not run.

An HTML comment on the line before a fence (blank lines between are allowed) changes that:

    <!-- docs-test: skip gpu -->    not run: a pytest skip naming the reason (see SKIPS)
    <!-- docs-test: exit 1 -->      every gfbench command of the block must exit 1 (default 0)
    <!-- docs-test: continue -->    one example with the block before it: same folder, after it

Options combine with commas: `<!-- docs-test: continue, exit 1 -->`. An example whose
block runs gfbench through another launcher (`torchrun ... -m gfbench`) must be marked skip.
GFBENCH_DOCS_RUN=gpu,torchrun runs the examples skipped for those reasons as well (on a
machine that has a GPU, or several processes).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIPS = {
    "gpu": "needs a CUDA GPU",
    "gpus": "needs several CUDA GPUs",
    "dataset": "needs a data set (ImageNet, ImageNet-C, ...) that is not shipped",
    "checkpoint": "needs a released checkpoint file that is not shipped",
    "torchrun": "starts several processes with torchrun",
    "slow": "takes minutes on a CPU",
}
SHELL = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)\s*$")
MARKER = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->$")
OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
TIMEOUT_S = 300


@dataclass
class Block:
    """One fenced block and what its marker says."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip: str = ""
    exit_code: int = 0
    cont: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown}:{self.line}"


@dataclass
class Command:
    """One command line (`gfbench ...`, `torchrun ... -m gfbench ...`) or a python source."""

    words: list[str]  # as typed, environment assignments removed; empty for python
    env: dict[str, str]
    source: str = ""
    exit_code: int = 0
    where: str = ""

    def argv(self) -> list[str]:
        """What runs: this interpreter in place of `gfbench`, `torchrun` and `python`."""
        first, rest = self.words[0], self.words[1:]
        if first == "gfbench":
            return [sys.executable, "-m", "gfbench", *rest]
        if first == "torchrun":
            return [sys.executable, "-m", "torch.distributed.run", *rest]
        return [sys.executable, *rest]  # python -m gfbench ...

    def shown(self) -> str:
        return "python block" if self.source else shlex.join(self.words)


def _parse_marker(block: Block, text: str) -> None:
    for option in filter(None, (part.strip() for part in text.split(","))):
        words = option.split()
        if words[0] == "skip" and len(words) == 2 and words[1] in SKIPS:
            block.skip = words[1]
        elif words[0] == "exit" and len(words) == 2 and words[1].isdigit():
            block.exit_code = int(words[1])
        elif words == ["continue"]:
            block.cont = True
        else:
            block.problems.append(f"{block.where}: unknown docs-test option {option!r} "
                                  f"(skip {'|'.join(SKIPS)}, exit N, continue)")


def parse_blocks(path: Path, text: str | None = None) -> list[Block]:
    """The fenced blocks of a Markdown file, with the marker written before each."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, lang = opening.group(1), opening.group(2).lower()
        end = i + 1
        while end < len(lines) and not (lines[end].startswith(fence[0] * len(fence))
                                        and not lines[end].strip(fence[0]).strip()):
            end += 1
        block = Block(path, i + 1, lang, "\n".join(lines[i + 1:end]))
        before = i - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        marker = MARKER.match(lines[before].strip()) if before >= 0 else None
        if marker:
            _parse_marker(block, marker.group(1))
        blocks.append(block)
        i = end + 1
    return blocks


def shell_commands(block: Block) -> list[str]:
    """The command lines of a shell block, continuation lines joined, output left out."""
    commands: list[str] = []
    pending = ""
    for raw in block.text.splitlines():
        line = raw.rstrip()
        if pending:
            line = pending + " " + line.strip()
            pending = ""
        elif block.lang == "console":
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    if pending:
        commands.append(pending)
    return commands


def _launches_gfbench(words: list[str]) -> bool:
    """`gfbench ...`, or a launcher with `-m gfbench` (torchrun, python)."""
    return Path(words[0]).name == "gfbench" or any(
        a == "-m" and b == "gfbench" for a, b in zip(words, words[1:], strict=False))


def to_command(block: Block, line: str) -> Command | None:
    """A line that runs gfbench as a Command; None for other lines (make, pip, ...)."""
    words = shlex.split(line, comments=True)
    env: dict[str, str] = {}
    while words and ASSIGNMENT.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words or not _launches_gfbench(words):
        return None
    if OPERATORS & set(words):
        block.problems.append(f"{block.where}: {line!r} uses shell syntax the docs test "
                              "does not run (pipes, redirections, ;, &&)")
        return None
    if words[0] == "torchrun" and not block.skip:
        block.problems.append(f"{block.where}: {line!r} starts torchrun: mark the block "
                              "skip torchrun")
    elif Path(words[0]).name not in ("gfbench", "torchrun", "python", "python3"):
        block.problems.append(f"{block.where}: {line!r}: gfbench through {words[0]}, "
                              "which the docs test cannot run")
        return None
    return Command(["gfbench", *words[1:]] if Path(words[0]).name == "gfbench" else words,
                   env, exit_code=block.exit_code, where=block.where)


def commands_of(block: Block) -> list[Command]:
    if block.lang == "python":
        return [Command([], {}, source=block.text, exit_code=block.exit_code,
                        where=block.where)]
    if block.lang in SHELL:
        return [c for c in (to_command(block, line) for line in shell_commands(block)) if c]
    return []


@dataclass
class Example:
    """Blocks run in order in one folder (a block and those that continue it)."""

    blocks: list[Block]
    commands: list[Command] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.blocks[0].where

    @property
    def skip(self) -> str:
        return next((b.skip for b in self.blocks if b.skip), "")


def collect(paths: list[Path] = DOCS) -> tuple[list[Example], list[str]]:
    """Every example of the docs (blocks with a command to run), and the problems found."""
    examples: list[Example] = []
    for path in paths:
        previous: Example | None = None
        for block in parse_blocks(path):
            if block.lang not in SHELL | {"python"}:
                if block.cont or block.skip or block.exit_code:
                    block.problems.append(f"{block.where}: a docs-test marker on a "
                                          f"```{block.lang} block, which never runs")
                    examples.append(Example([block]))
                continue
            if block.cont and previous is not None:
                previous.blocks.append(block)
                continue
            if block.cont:
                block.problems.append(f"{block.where}: 'continue' with no example before it")
            previous = Example([block])
            examples.append(previous)
    problems: list[str] = []
    for example in examples:
        example.commands = [c for block in example.blocks for c in commands_of(block)]
        problems += [p for block in example.blocks for p in block.problems]
    return [e for e in examples if e.commands], problems


EXAMPLES, PROBLEMS = collect()


def _environment(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _run(command: Command, cwd: Path) -> subprocess.CompletedProcess:
    if command.source:
        script = cwd / f"docs_example_{re.sub(r'[^A-Za-z0-9]', '_', command.where)}.py"
        script.write_text(command.source, encoding="utf-8")
        argv = [sys.executable, str(script)]
    else:
        argv = command.argv()
    return subprocess.run(argv, cwd=cwd, env=_environment(command.env), capture_output=True,
                          text=True, timeout=TIMEOUT_S)


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_docs_example_runs(example: Example, tmp_path: Path):
    run_anyway = set(filter(None, os.environ.get("GFBENCH_DOCS_RUN", "").split(",")))
    if example.skip and example.skip not in run_anyway:
        pytest.skip(f"{example.skip}: {SKIPS[example.skip]}")
    (tmp_path / "results").mkdir()
    for source in sorted((ROOT / "results").glob("*")):
        if source.suffix in (".json", ".csv"):
            shutil.copy2(source, tmp_path / "results" / source.name)
    for command in example.commands:
        done = _run(command, tmp_path)
        assert done.returncode == command.exit_code, (
            f"{command.where}: {command.shown()} exited {done.returncode}, the docs say "
            f"{command.exit_code}\n--- stdout\n{_tail(done.stdout)}\n--- stderr\n"
            f"{_tail(done.stderr)}")


def test_docs_markers_and_launchers_are_understood():
    assert not PROBLEMS, "\n".join(PROBLEMS)


def test_every_page_has_examples_and_the_readme_keeps_the_make_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [line for block in parse_blocks(ROOT / "README.md") if block.lang in SHELL
                for line in shell_commands(block)]
    assert any(c.startswith("make test") for c in commands), "CI runs the README's `make test`"
    assert any(c.startswith("make demo") for c in commands)
    assert len(readme.splitlines()) < 300, "README.md is the five-minute read; details in docs/"
    assert len(EXAMPLES) >= 10


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file (lower case, punctuation dropped)."""
    anchors = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_relative_links_and_images_exist(page: Path):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_parser_reads_console_blocks_markers_and_continuations(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- docs-test: exit 1 -->\n\n"
        "```console\n"
        "$ gfbench complexity --models deit \\\n"
        "      --res 100   # a comment\n"
        "error deit-s ...\n"
        "$ make demo\n"
        "```\n"
        "<!-- docs-test: continue -->\n"
        "```bash\n"
        "# a comment line\n"
        "MALLOC_TRIM_THRESHOLD_=1G gfbench plot 'runs/' --out figures\n"
        "ruff check gfbench tests\n"
        "```\n"
        "<!-- docs-test: skip gpu -->\n"
        "```sh\n"
        "torchrun --nproc_per_node=2 -m gfbench complexity\n"
        "```\n"
        "```text\n"
        "$ gfbench not run\n"
        "```\n", encoding="utf-8")
    blocks = parse_blocks(page)
    assert [(b.lang, b.exit_code, b.cont, b.skip) for b in blocks] == [
        ("console", 1, False, ""), ("bash", 0, True, ""), ("sh", 0, False, "gpu"),
        ("text", 0, False, "")]
    first, second = (commands_of(b) for b in blocks[:2])
    assert [c.words for c in first] == [["gfbench", "complexity", "--models", "deit", "--res",
                                         "100"]]
    assert first[0].exit_code == 1
    assert [(c.words, c.env) for c in second] == [
        (["gfbench", "plot", "runs/", "--out", "figures"], {"MALLOC_TRIM_THRESHOLD_": "1G"})]
    torchrun = commands_of(blocks[2])
    assert torchrun[0].argv()[1:4] == ["-m", "torch.distributed.run", "--nproc_per_node=2"]
    assert not blocks[2].problems
    examples, problems = collect([page])
    assert [(len(e.blocks), e.skip) for e in examples] == [(2, ""), (1, "gpu")]
    assert not problems
    page.write_text("```bash\ntorchrun -m gfbench complexity\n```\n"
                    "<!-- docs-test: skip gpux -->\n```bash\ngfbench list\n```\n",
                    encoding="utf-8")
    _, problems = collect([page])
    assert len(problems) == 2
    assert "mark the block skip torchrun" in problems[0] and "'skip gpux'" in problems[1]
    page.write_text("```bash\ngfbench plot runs/ > log.txt\n```\n", encoding="utf-8")
    examples, problems = collect([page])
    assert not examples and "shell syntax" in problems[0]
