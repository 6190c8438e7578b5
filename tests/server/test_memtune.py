"""gamesync.memtune: the malloc thresholds `gamesync serve` sets."""

from __future__ import annotations

import platform

from gamesync.memtune import keep_freed_memory


def test_keep_freed_memory_applies_on_glibc_and_is_harmless_to_repeat():
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is expected
    assert keep_freed_memory() is expected


def test_calm_gc_freezes_what_lives_and_collects_the_young_less_often():
    import subprocess
    import sys

    # in a child process: the test run's own collector settings stay as they are
    code = ("import gc; from gamesync.memtune import GC_YOUNG, calm_gc; before = gc.get_freeze_count(); "
            "calm_gc(); assert gc.get_freeze_count() > before, 'nothing frozen'; "
            "assert gc.get_threshold()[0] == GC_YOUNG; "
            "x = [[i] for i in range(100)]; x.append(x); del x; assert gc.collect() > 0  # cycles still found")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
