"""Fixtures shared by the measurement tests."""

import os
import subprocess

import pytest


@pytest.fixture
def spawned(monkeypatch) -> list[str]:
    """Every child process started while the test runs ('Popen <args>' or 'fork'): a count-only
    run must start none."""
    started: list[str] = []
    real_popen_init, real_fork = subprocess.Popen.__init__, os.fork

    def popen_init(self, *args, **kwargs):
        started.append(f"Popen {args[0] if args else kwargs.get('args')}")
        real_popen_init(self, *args, **kwargs)

    def fork():
        started.append("fork")
        return real_fork()

    monkeypatch.setattr(subprocess.Popen, "__init__", popen_init)
    monkeypatch.setattr(os, "fork", fork)
    return started
