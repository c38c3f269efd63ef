"""The web worker caps glibc's malloc arenas before its threads start."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the cap is glibc's")

# Threads allocate at the same time, then the process counts the heaps (arenas) glibc reports.
_HEAPS_AFTER_THREADS = """
import ctypes, sys, tempfile, threading
from assistant.runtime import limit_malloc_arenas
print(limit_malloc_arenas(int(sys.argv[1])) if sys.argv[1] != "none" else None)
start = threading.Barrier(8)
def allocate():
    start.wait()
    kept = [bytearray(2000) for _ in range(3000)]  # above pymalloc's size: malloc's own
    start.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile() as out:
    handle = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(handle))
    libc.fclose(ctypes.c_void_p(handle))
    print(open(out.name).read().count("<heap nr="))
"""


def _run(cap: str, **env: str) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", _HEAPS_AFTER_THREADS, cap], capture_output=True, text=True, check=True,
                          env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env)
    answer, heaps = done.stdout.split()
    return answer, int(heaps)


def test_the_cap_limits_the_arenas_threads_get() -> None:
    assert _run("none")[1] > 2, "without the cap, threads allocating at once get arenas of their own"
    assert _run("2") == ("True", 2)


def test_an_explicit_setting_in_the_environment_wins() -> None:
    answer, heaps = _run("2", MALLOC_ARENA_MAX="3")
    assert answer == "False" and heaps == 3
