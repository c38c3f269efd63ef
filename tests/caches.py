"""Reuse the session's model caches (word vectors, reader) in a test's own ASSISTANT_HOME."""

from __future__ import annotations

import os
from pathlib import Path

MODEL_CACHE_PATTERNS = ("*.npy", "*.npz")


def link_model_caches(shared_cache: Path, cache_dir: Path) -> None:
    """Hard-link every model cache file of `shared_cache` into `cache_dir` (they do not depend on documents)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    for pattern in MODEL_CACHE_PATTERNS:
        for item in shared_cache.glob(pattern):
            target = cache_dir / item.name
            if not target.exists():
                os.link(item, target)
