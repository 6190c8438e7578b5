"""Fixtures for every test module.

- ``gamesync serve`` processes a test starts keep their kept data (chat history, documents:
  gamesync.usage.data_dir) in a directory of their own, never in the user's.
- The ``wire_path`` fixture: a test module that uses it runs once on each WebSocket wire
  path. ``native`` is the compiled extension (gamesync/native/_wire.pyx), ``python`` the
  pure-Python path it must match byte for byte. A module opts in with
  ``pytestmark = pytest.mark.usefixtures("wire_path")``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gamesync import native


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


@pytest.fixture(params=["native", "python"])
def wire_path(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "native" and not native.available():
        pytest.skip("the native extension is not built here (tests/core/test_native.py says why)")
    was = native.use_native(request.param == "native")
    try:
        yield request.param
    finally:
        native.use_native(was)
