"""The core stays pure: importing all of ``gamesync.core`` pulls in only the standard library,
numpy, msgpack and isal (a deflate codec, as zlib is; no trio, no sockets layer, no PyJWT), and
never the server or client."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import gamesync.core

ALLOWED = {"gamesync", "numpy", "msgpack", "isal", "cython_runtime"}  # the last: compiled extensions' helper

PROBE = """
import importlib, json, sys
before = set(sys.modules)
for name in {names!r}:
    importlib.import_module(name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_core_imports_only_the_standard_library_numpy_msgpack_and_isal():
    names = [f"gamesync.core.{m.name}" for m in pkgutil.iter_modules(gamesync.core.__path__)]
    assert len(names) >= 10
    out = subprocess.run([sys.executable, "-c", PROBE.format(names=names)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    loaded = json.loads(out)
    third_party = {m.split(".")[0] for m in loaded if not m.startswith("_cython_")} - set(sys.stdlib_module_names) - ALLOWED
    assert third_party == set()
    ours = {m for m in loaded if m.startswith("gamesync.")}
    assert not {m for m in ours if not m.startswith("gamesync.core")} - {"gamesync"}, ours
