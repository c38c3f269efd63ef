"""Shared fixtures: a real index built once per session in a temporary ASSISTANT_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import apply_offline_environment, load_settings

from tests.caches import link_model_caches

apply_offline_environment()
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("assistant-home")


@pytest.fixture(scope="session")
def assistant(session_home: Path):
    from assistant.service import Assistant

    settings = load_settings(home=session_home)
    instance = Assistant(settings)
    instance.warm_up()
    return instance


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty ASSISTANT_HOME for tests that write."""
    path = tmp_path / "home"
    monkeypatch.setenv("ASSISTANT_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def shared_cache(session_home: Path) -> Path:
    return session_home / "cache"


@pytest.fixture
def settings(home: Path, shared_cache: Path, assistant):  # noqa: ANN001 - reuse the model cache
    settings = load_settings(home=home)
    settings.ensure_dirs()
    link_model_caches(shared_cache, settings.cache_dir)
    return settings
