"""The ``wire_path`` fixture: a test module that uses it runs once on each WebSocket wire path.

``native`` is the compiled extension (gamesync/native/_wire.pyx), ``python`` the pure-Python
path it must match byte for byte. A module opts in with
``pytestmark = pytest.mark.usefixtures("wire_path")``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gamesync import native


@pytest.fixture(params=["native", "python"])
def wire_path(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "native" and not native.available():
        pytest.skip("the native extension is not built here (tests/core/test_native.py says why)")
    was = native.use_native(request.param == "native")
    try:
        yield request.param
    finally:
        native.use_native(was)
