"""Cluster tests share the server tests' helpers (tests/server/gs_testkit.py)."""

import sys
from pathlib import Path

_server_tests = str(Path(__file__).resolve().parent.parent / "server")
if _server_tests not in sys.path:
    sys.path.insert(0, _server_tests)
