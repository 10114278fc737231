""".ci/run: installs Debian's Chromium quietly when it is missing, then runs `make test`;
apt and make are stand-ins here that record how they were called."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "run"


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _run(tmp_path: Path, chromium: bool, apt_fails: bool = False):
    """.ci/run from a copy of the repository root with only stand-ins and coreutils on PATH."""
    root, tools, calls = tmp_path / "clone", tmp_path / "bin", tmp_path / "calls"
    (root / ".ci").mkdir(parents=True)
    shutil.copy(SCRIPT, root / ".ci" / "run")
    tools.mkdir()
    for tool in ("dirname", "mktemp", "cat", "rm"):
        (tools / tool).symlink_to(shutil.which(tool))
    _stub(tools, "apt-get", f'echo "apt-get $* [$DEBIAN_FRONTEND]" >> {calls}\n'
          'echo "Reading package lists... lots of apt output"\n'
          + ('[ "$1" = install ] && exit 100\n' if apt_fails else ""))
    _stub(tools, "make", f'echo "make $* in $(pwd)" >> {calls}')
    if chromium:
        _stub(tools, "chromium", "exit 0")
    result = subprocess.run(["/bin/bash", str(root / ".ci" / "run")], capture_output=True,
                            text=True, env={"PATH": str(tools), "HOME": str(tmp_path)},
                            timeout=60, check=False)
    return result, calls.read_text().splitlines() if calls.exists() else []


def test_ci_installs_chromium_quietly_when_missing_then_runs_make_test(tmp_path):
    result, calls = _run(tmp_path, chromium=False)
    assert result.returncode == 0, result.stderr
    assert calls == ["apt-get update -q [noninteractive]",
                     "apt-get install -y -q --no-install-recommends chromium [noninteractive]",
                     f"make test in {tmp_path / 'clone'}"]
    assert "apt output" not in result.stdout + result.stderr  # quiet when it works
    assert "installing Debian's chromium" in result.stderr


def test_ci_leaves_an_installed_chromium_alone(tmp_path):
    result, calls = _run(tmp_path, chromium=True)
    assert result.returncode == 0, result.stderr
    assert calls == [f"make test in {tmp_path / 'clone'}"]
    assert result.stdout + result.stderr == ""


def test_ci_fails_and_shows_apt_output_when_chromium_cannot_be_installed(tmp_path):
    result, calls = _run(tmp_path, chromium=False, apt_fails=True)
    assert result.returncode == 1
    assert not any(call.startswith("make") for call in calls)  # no test run without a browser
    assert "lots of apt output" in result.stderr and "could not install chromium" in result.stderr
