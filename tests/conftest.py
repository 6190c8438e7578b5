"""For every test: `gamesync serve` processes it starts keep their kept data (chat history,
documents: gamesync.usage.data_dir) in a directory of their own, never in the user's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _session_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """For servers started by fixtures wider than one test."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GAMESYNC_DATA_DIR", str(tmp_path_factory.mktemp("gamesync-data")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gamesync-data")
    monkeypatch.setenv("GAMESYNC_DATA_DIR", str(path))
    return path
