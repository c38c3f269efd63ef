"""Every table the project declares, and how a database gets them.

SQLite (the embedded default): the tables are created on first use (`create_all`), as before; there is
nothing to migrate by hand. A server database (PostgreSQL): the Alembic history in `alembic/` is applied
up to its head on first use by each process (under an advisory lock, inside a transaction), and by
`python -m assistant.schema upgrade` (also `current`, `history`) for a planned upgrade.

A module that adds tables appends its `metadata` to `TABLE_MODULES` and adds an Alembic revision.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from sqlalchemy import MetaData, text
from sqlalchemy.engine import Engine

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_DIR = PROJECT_ROOT / "alembic"
TABLE_MODULES = (
    "assistant.dialogue.store",
    "assistant.accounts",
    "assistant.audit",
    "assistant.ownership",
    "assistant.ingest.records",
    "assistant.index.remote",
    "assistant.curation.store",
)
MIGRATION_LOCK = 0x6173_7301  # pg_advisory_xact_lock key: one process migrates at a time


def all_metadata() -> list[MetaData]:
    return [importlib.import_module(name).metadata for name in TABLE_MODULES]


def alembic_config(url: str | None = None):  # noqa: ANN201 - alembic.config.Config
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring a server database to the newest schema (no-op when it is there)."""
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def ensure_schema(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        for metadata in all_metadata():
            metadata.create_all(engine)
    else:
        migrate(engine)


def main(argv: list[str] | None = None) -> int:
    from alembic import command

    from assistant.config import load_settings

    parser = argparse.ArgumentParser(prog="python -m assistant.schema", description="データベースの表の移行（Alembic）")
    parser.add_argument("action", choices=["upgrade", "current", "history"])
    args = parser.parse_args(argv)
    settings = load_settings()
    url = settings.resolved_database_url
    if args.action == "history":
        command.history(alembic_config(url))
        return 0
    from assistant.dialogue.store import get_engine

    engine = get_engine(url)  # migrates a server database on first use
    if args.action == "upgrade" and engine.dialect.name == "sqlite":
        print("SQLite のデータベースは起動時に表を作成するため、移行の操作は不要です")
        return 0
    with engine.connect() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.current(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
