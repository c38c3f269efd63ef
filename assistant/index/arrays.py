"""Arrays read from .npy files by mapping them, so that workers on one machine share the pages they read."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def mapped(path: Path) -> np.ndarray:
    """The array of a .npy file, mapped read-only; a plain ndarray view, because `np.memmap` indexes
    through Python and that cost 20 µs per lookup. ValueError when the file is not a whole array."""
    try:
        return np.asarray(np.load(path, mmap_mode="r"))
    except EOFError as exc:  # an empty file
        raise ValueError(f"{path.name} holds no array") from exc
