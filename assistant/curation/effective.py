"""The knowledge in force (corpus/ with the recorded corrections), and how a running process notices a change.

Kept apart from the correction store so that a process that never had a correction (the embedded default
with no revision file) loads neither the database nor SQLAlchemy to answer.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

REVISION_FILE = "knowledge-revision"


def revision_file_of(settings: Any) -> Path:
    return Path(settings.home) / REVISION_FILE

def _embedded(settings: Any) -> bool:
    return not settings.database_url or settings.database_url.startswith("sqlite")

SERVER_REVISION_SECONDS = 1.0  # how often a worker asks a server database whether the knowledge changed
_server_revisions: dict[str, tuple[float, int]] = {}

def revision_stamp(settings: Any) -> tuple[int, ...] | None:
    """What running processes compare to notice a correction (None before the first one).

    With the embedded database, the revision file's stat under ASSISTANT_HOME; with a server database
    (workers with different homes), the newest correction's number, asked at most once a second."""
    url = settings.resolved_database_url
    if not _embedded(settings):
        now = time.monotonic()
        cached = _server_revisions.get(url)
        if cached is None or now - cached[0] >= SERVER_REVISION_SECONDS:
            cached = (now, _store(url).revision())
            _server_revisions[url] = cached
        return (cached[1],) if cached[1] else None
    try:
        info = os.stat(revision_file_of(settings))
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)

def load_effective_knowledge(settings: Any):  # noqa: ANN201 - Knowledge
    """corpus/ with the corrections in force applied: the knowledge every part of the assistant uses.

    With the embedded database and no revision file, no correction was ever recorded: the database is
    not opened (a command-line answer then does not load SQLAlchemy)."""
    from assistant.knowledge import load_knowledge

    if _embedded(settings) and not revision_file_of(settings).exists():
        return load_knowledge(settings.corpus_dir, cache_dir=settings.cache_dir)
    return load_knowledge(settings.corpus_dir, _store(settings.resolved_database_url, revision_file_of(settings)).overlay(), cache_dir=settings.cache_dir)


def _store(url: str, revision_file: Path | None = None):  # noqa: ANN202 - CorrectionStore
    from assistant.curation.store import CorrectionStore

    return CorrectionStore(url, revision_file)
