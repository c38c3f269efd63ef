"""Locks that every process using the same data takes: a file lock under ASSISTANT_HOME, or a
PostgreSQL advisory lock when the data is in a shared database (workers then have different homes).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from filelock import FileLock
from sqlalchemy import text
from sqlalchemy.engine import make_url

WAIT_SECONDS = 600


def _is_postgres(url: str) -> bool:
    return bool(url) and make_url(url).get_backend_name() == "postgresql"


@contextmanager
def shared_lock(settings: Any, name: str) -> Iterator[None]:
    """Held by one process at a time among all that share this configuration's data."""
    if _is_postgres(settings.database_url):
        from assistant.dialogue.store import get_engine

        key = zlib.crc32(f"assistant:{name}".encode())
        with get_engine(settings.database_url).connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
        return
    settings.home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(settings.home / f".{name}.lock"), timeout=WAIT_SECONDS):
        yield


def documents_lock(settings: Any):  # noqa: ANN201 - a context manager
    """Taken while documents are ingested or removed, and while legacy records are upgraded."""
    return shared_lock(settings, "documents")


def index_lock(settings: Any):  # noqa: ANN201
    """Taken while an index is built or updated in server mode."""
    return shared_lock(settings, "index")
