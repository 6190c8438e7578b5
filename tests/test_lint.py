"""The static checks as tests, so the test command runs them: ``ruff check gamesync bench`` and
``mypy gamesync``, configured in pyproject.toml (``[tool.ruff]``, ``[tool.mypy]``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 120  # each takes a few seconds alone, more on a loaded machine


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)


@pytest.mark.parametrize("args", [("ruff", "check", "gamesync", "bench"), ("mypy", "gamesync")],
                         ids=["ruff", "mypy"])
def test_static_checks_pass(args: tuple[str, ...]) -> None:
    done = run(*args)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}"
