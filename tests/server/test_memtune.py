"""gamesync.memtune: the malloc thresholds `gamesync serve` sets."""

from __future__ import annotations

import platform

from gamesync.memtune import keep_freed_memory


def test_keep_freed_memory_applies_on_glibc_and_is_harmless_to_repeat():
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is expected
    assert keep_freed_memory() is expected
