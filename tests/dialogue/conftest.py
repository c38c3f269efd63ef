"""Shared fixtures for the conversation tests."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest


@pytest.fixture
def db_assistant(assistant, tmp_path: Path):  # noqa: ANN001, ANN201
    """The session assistant (index and models reused) with its own database file."""
    clone = copy.copy(assistant)
    clone.settings = dataclasses.replace(assistant.settings, database_url=f"sqlite:///{tmp_path / 'dialogue.db'}")
    return clone
