"""One configuration source: defaults → TOML file → environment variables.

`ASSISTANT_HOME` names the folder for everything the assistant writes. The TOML file is
`$ASSISTANT_CONFIG` if set, else `$ASSISTANT_HOME/config.toml` when present. Every field can be
overridden by `ASSISTANT_<FIELD>` in upper case (e.g. `ASSISTANT_EMBEDDING_MODEL`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import platformdirs

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS_DIR = PROJECT_ROOT / "corpus"
DEFAULT_PROMPTS_DIR = PROJECT_ROOT / "prompts"

# Offline and quiet before any library that could phone home is imported.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "DO_NOT_TRACK": "1",
}


def apply_offline_environment() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir("dokuji-assistant")))
    corpus_dir: Path = DEFAULT_CORPUS_DIR
    prompts_dir: Path = DEFAULT_PROMPTS_DIR
    # "chive" = the built-in static model from ja-ginza's chiVe vectors; anything else is a local
    # sentence-transformers model directory.
    embedding_model: str = "chive"
    query_prefix: str = ""
    passage_prefix: str = ""
    reranker_model: str = ""
    bm25_weight: float = 0.8
    dense_weight: float = 0.2
    top_k: int = 8
    chunk_chars: int = 500
    max_question_chars: int = 4000
    max_file_mb: float = 50.0
    # What one uploaded document may expand to while it is read (decompression bombs, huge sheets).
    max_unpacked_mb: float = 200.0  # all members of a DOCX / XLSX archive, as declared in the archive
    max_xml_mb: float = 25.0  # the XML members (parsed in memory by the Word and Excel readers)
    max_compression_ratio: float = 200.0  # of any member of 5 MB or more
    max_document_chars: int = 3_000_000
    max_sheet_cells: int = 500_000
    max_sheet_rows: int = 100_000
    max_sheet_columns: int = 1_000
    max_pdf_pages: int = 2_000
    # Servers (empty = embedded): sessions, accounts, audit and ingested documents in this database
    # (e.g. postgresql+psycopg://user@127.0.0.1:5432/assistant), and the index in this Chroma server
    # (e.g. http://127.0.0.1:8000; needs database_url too, where the published index version lives).
    database_url: str = ""
    chroma_url: str = ""
    llm_backend: str = "none"  # none | ollama | openai | llamacpp
    llm_model: str = ""
    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_model_path: str = ""
    llm_temperature: float = 0.0
    llm_reading: bool = False  # with an LLM backend: the model also fills the reading of each message
    host: str = "127.0.0.1"
    port: int = 7860
    auth_enabled: bool = False
    # Login off on an address other than the loopback makes every client an unauthenticated user;
    # the app refuses to start that way unless this is set.
    allow_open_access: bool = False
    # Failed logins: lock an account after this many failures within the window, and a client
    # address after the larger number (many names tried from one place). 0 minutes = until unlocked.
    login_max_failures: int = 5
    login_max_failures_per_address: int = 20
    login_failure_window_minutes: int = 15
    login_lock_minutes: int = 15
    audit_retention_days: int = 365  # 0 = keep the audit log for ever

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def documents_dir(self) -> Path:
        return self.home / "documents"

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'assistant.db'}"

    def ensure_dirs(self) -> None:
        for path in (self.home, self.index_dir, self.documents_dir, self.exports_dir, self.cache_dir, self.logs_dir):
            path.mkdir(parents=True, exist_ok=True)

    def public_dict(self) -> dict[str, object]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if data.get("llm_api_key"):
            data["llm_api_key"] = "***"
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


def _coerce(name: str, raw: object, target: object) -> object:
    kind = type(target)
    try:
        if isinstance(target, bool):
            if isinstance(raw, bool):
                return raw
            return str(raw).strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(target, Path):
            return Path(str(raw)).expanduser()
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"設定値 {name} が不正です: {raw!r} ({exc})") from exc


def load_settings(**overrides: object) -> Settings:
    """Build settings from defaults, then the TOML file, then environment, then explicit overrides."""
    defaults = Settings()
    values: dict[str, object] = {}
    home_env = os.environ.get("ASSISTANT_HOME")
    home = Path(home_env).expanduser() if home_env else defaults.home
    config_path = Path(os.environ["ASSISTANT_CONFIG"]) if os.environ.get("ASSISTANT_CONFIG") else home / "config.toml"
    if config_path.is_file():
        try:
            file_values = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"設定ファイル {config_path} を読み込めません: {exc}") from exc
        section = file_values.get("assistant", file_values)
        values.update(section)
    for f in fields(Settings):
        env_value = os.environ.get(f"ASSISTANT_{f.name.upper()}")
        if env_value is not None:
            values[f.name] = env_value
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - {f.name for f in fields(Settings)}
    if unknown:
        raise ConfigError(f"未知の設定項目です: {', '.join(sorted(unknown))}")
    coerced = {name: _coerce(name, raw, getattr(defaults, name)) for name, raw in values.items()}
    if "home" not in coerced:
        coerced["home"] = home
    settings = dataclasses.replace(defaults, **coerced)
    _check_servers(settings)
    return settings


def _check_servers(settings: Settings) -> None:
    if settings.chroma_url:
        if not settings.chroma_url.startswith(("http://", "https://")):
            raise ConfigError(f"設定値 chroma_url は http://ホスト:ポート の形で指定してください: {settings.chroma_url!r}")
        if not settings.database_url:
            raise ConfigError(
                "chroma_url を使うには database_url も設定してください（公開中の索引の版をデータベースで共有します）"
            )
