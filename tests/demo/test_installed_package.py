"""The installed package serves its demo: a wheel built from the sources (the build fetches the
demo's JavaScript dependency with npm and packs it), installed (not editable) in a fresh venv
outside the repository, and ``gamesync serve`` run from another directory; the arena page and
the notes pad load and play in Chromium, with nothing from the checkout and no npm at run time.

The venv gets gamesync from the wheel alone; its dependencies (trio, numpy...) come from the
test environment through a ``.pth`` file, so the test needs no package index."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_kit import ROOT, open_arena, walk_and_watch
from playwright.sync_api import Browser

from gamesync.cluster.local import free_port, stop

BUILD_S = 300  # npm ci and the wheel build, on a busy 2-core machine
#: what building a wheel needs from the checkout (demo/node_modules is not copied: the build fetches it)
SOURCES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "gamesync", "demo"]
UNCOPIED = shutil.ignore_patterns("node_modules", "__pycache__", "test", "*.egg-info")


def _run(*cmd: str | Path, cwd: Path, timeout: float = BUILD_S) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _build_wheel(tmp: Path) -> Path:
    """A wheel built from a copy of the sources, as ``pip install .`` builds it."""
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=UNCOPIED)
        else:
            shutil.copy2(path, src / name)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", tmp / "dist", src, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("gamesync-*.whl")
    return wheel


def _install(wheel: Path, venv: Path) -> Path:
    """A fresh venv with ``wheel`` installed (not editable); returns its ``gamesync`` script."""
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv.parent)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel, cwd=venv.parent)
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=venv.parent).strip())
    (purelib / "test-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv / "bin" / "gamesync"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """(HTTP URL, wheel, the installed package's directory) of ``gamesync serve`` from the venv."""
    tmp = tmp_path_factory.mktemp("installed")
    wheel = _build_wheel(tmp)
    gamesync = _install(wheel, tmp / "venv")
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("GAMESYNC_SECRET", "PYTHONPATH", "VIRTUAL_ENV")}
    package = Path(_run(gamesync.with_name("python"), "-c", "import gamesync, os; print(os.path.dirname(gamesync.__file__))",
                        cwd=elsewhere).strip())
    http_port = free_port()
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen([str(gamesync), "serve", "--port", str(free_port()), "--http-port", str(http_port),
                             "--npcs", "50"], cwd=elsewhere, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except OSError:
                assert proc.poll() is None, (tmp / "serve.log").read_text()
                time.sleep(0.1)
        else:
            raise AssertionError(f"the installed gamesync serve did not come up:\n{(tmp / 'serve.log').read_text()}")
        yield url, wheel, package
    finally:
        stop(proc, timeout=10)
        log.close()


def test_the_wheel_holds_the_demo_and_its_javascript_dependency(installed: tuple[str, Path, Path]) -> None:
    _, wheel, package = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for page in ("index.html", "notes.html", "big.html", "favicon.svg", "css/style.css", "js/arena.js",
                 "js/big.js", "js/connection.js", "js/view.js", "js/viewdecode.js", "js/viewwire.js",
                 "node_modules/@msgpack/msgpack/dist.esm/index.mjs", "node_modules/@msgpack/msgpack/LICENSE"):
        assert f"gamesync/demo/{page}" in names, page
    assert not any(n.startswith("gamesync/demo/test/") for n in names), "the demo's own tests stay out"
    assert ROOT not in package.parents and package.parent.name == "site-packages", package


def test_the_installed_package_serves_the_arena_and_the_notes_pad(installed: tuple[str, Path, Path],
                                                                    browser: Browser) -> None:
    url = installed[0]
    ctx = browser.new_context(viewport={"width": 1200, "height": 800})
    problems: list[str] = []
    ctx.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    ctx.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        a = open_arena(ctx, url + "/?room=wheel&name=ann", problems)
        b = open_arena(ctx, url + "/?room=wheel&name=bob", problems)
        walk_and_watch(a, b)  # ann moves and bob's page sees it
        pad = ctx.new_page()
        pad.on("pageerror", lambda e: problems.append(str(e)))
        pad.goto(url + "/notes.html?room=wheelnotes&name=cy")
        pad.wait_for_function("document.getElementById('sync').dataset.state === 'synchronized'", timeout=15_000)
        pad.focus("#pad")
        pad.keyboard.type("from the wheel")
        other = ctx.new_page()
        other.goto(url + "/notes.html?room=wheelnotes&name=di")
        other.wait_for_function("document.getElementById('pad').value === 'from the wheel'", timeout=15_000)
    finally:
        ctx.close()
    assert not problems, problems
