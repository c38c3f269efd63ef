from pathlib import Path

import pytest

from assistant.config import ConfigError, load_settings


def test_precedence_defaults_toml_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text('[assistant]\ntop_k = 5\nport = 9000\nllm_backend = "ollama"\n', encoding="utf-8")
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    monkeypatch.setenv("ASSISTANT_PORT", "9100")
    settings = load_settings()
    assert settings.home == home
    assert settings.top_k == 5  # from the file
    assert settings.port == 9100  # environment beats the file
    assert settings.llm_backend == "ollama"
    assert settings.bm25_weight == 0.8  # default kept
    assert settings.resolved_database_url == f"sqlite:///{home / 'assistant.db'}"


def test_unknown_key_and_bad_value_fail_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "h"
    home.mkdir()
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    (home / "config.toml").write_text("no_such_setting = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no_such_setting"):
        load_settings()
    (home / "config.toml").write_text("top_k = 'many'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top_k"):
        load_settings()
