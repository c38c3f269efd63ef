"""Settings of the running process that must be made before its threads start."""

from __future__ import annotations

import ctypes
import os

_M_ARENA_MAX = -8  # glibc's mallopt parameter for the number of malloc arenas
WEB_WORKER_ARENAS = 2


def limit_malloc_arenas(arenas: int = WEB_WORKER_ARENAS) -> bool:
    """Cap glibc's malloc arenas. glibc gives threads that allocate at once arenas of their own (up to eight
    per core) and keeps what is freed in each; a web worker's threads held about 30 MB that way at 50,000
    chunks. Python code runs one thread at a time, so two arenas cost no measurable speed.

    MALLOC_ARENA_MAX in the environment, read by glibc itself, wins. Returns whether the cap was set
    (False also where the C library is not glibc).
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(_M_ARENA_MAX, arenas) == 1
