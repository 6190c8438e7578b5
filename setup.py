"""The build's two steps beyond pyproject.toml: the browser demo goes into the package, and the
native path (gamesync/native/_wire.pyx, _pack.pyx and _bots.pyx, Cython) is compiled when it can be.

The extension is optional: without Cython or a working C compiler the build warns and goes on,
and gamesync runs its pure-Python wire path (the server logs which path it runs).

A wheel gets ``gamesync/demo/``: the pages of ``demo/`` (html, css, js) and the one JavaScript
dependency they import (``@msgpack/msgpack``, its ``dist.esm`` build, at the path the pages'
import maps name), so an installed gamesync serves its demo with no npm at run time. The
dependency comes from ``npm ci`` in ``demo/`` (pinned by demo/package-lock.json), which the
build runs when ``demo/node_modules`` lacks it. An editable install serves ``demo/`` in place,
so it only runs that ``npm ci`` (and goes on with a warning when npm is missing).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

DEMO = Path(__file__).resolve().parent / "demo"
#: what the pages import, relative to demo/ (and to the packaged copy)
DEPENDENCY = Path("node_modules", "@msgpack", "msgpack")
#: copied into the wheel: the pages, then the dependency's ES modules and licence
PAGES = ["*.html", "*.svg", "css/*.css", "js/*.js"]
DEPENDENCY_FILES = ["LICENSE", "package.json", "dist.esm/**/*.mjs"]


def npm_ci(required: bool) -> None:
    """Fetch the demo's dependency into demo/node_modules unless it is there already."""
    if (DEMO / DEPENDENCY / "dist.esm" / "index.mjs").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        why = ("the demo's JavaScript dependency is not in demo/node_modules and npm is not installed: install "
               "Node.js 20+ (with npm) and build again, or run `npm ci --prefix demo` first")
        if required:
            raise SystemExit(f"error: {why}")
        print(f"warning: {why}; the demo pages cannot load until then")
        return
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=DEMO, check=True)


def copy_demo(target: Path) -> None:
    """The demo's pages and dependency, into ``target`` (the package's ``demo`` directory)."""
    files = [p for pattern in PAGES for p in DEMO.glob(pattern)]
    files += [p for pattern in DEPENDENCY_FILES for p in (DEMO / DEPENDENCY).glob(pattern)]
    for src in files:
        dst = target / src.relative_to(DEMO)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


class BuildWithDemo(build_py):
    """build_py, plus the demo into the built package (``gamesync/demo``)."""

    def run(self) -> None:
        super().run()
        if not DEMO.is_dir():  # a build from something that has no demo/ at all
            raise SystemExit("error: demo/ is missing from the source tree")
        editable = getattr(self, "editable_mode", False)
        npm_ci(required=not editable)
        if not editable:
            target = Path(self.build_lib, "gamesync", "demo")
            shutil.rmtree(target, ignore_errors=True)  # nothing stale from an earlier build
            copy_demo(target)


NATIVE = [Extension("gamesync.native._wire", ["gamesync/native/_wire.pyx"], extra_compile_args=["-O2"]),
          Extension("gamesync.native._pack", ["gamesync/native/_pack.pyx"], extra_compile_args=["-O2"]),
          Extension("gamesync.native._bots", ["gamesync/native/_bots.pyx"], extra_compile_args=["-O2"])]


def native_extensions() -> list[Extension]:
    """The Cython extensions, translated to C here (empty, with a warning, without Cython)."""
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("warning: Cython is not installed: gamesync will run its pure-Python wire path")
        return []
    return list(cythonize(NATIVE, language_level=3, quiet=True))


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing: no compiler means the pure-Python path."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # no compiler at all (setuptools' platform errors)
            print(f"warning: the native wire path was not built ({e}); gamesync runs its pure-Python path")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:  # a compiler that fails (missing headers, a broken toolchain)
            print(f"warning: {ext.name} was not built ({e}); gamesync runs its pure-Python wire path")


setup(cmdclass={"build_py": BuildWithDemo, "build_ext": OptionalBuildExt}, ext_modules=native_extensions())
