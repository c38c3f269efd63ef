"""Chat-model backends chosen in the configuration (`llm_backend`).

- "none" (default): no model; answers come from the LLM-free composer.
- "ollama": `langchain_ollama.ChatOllama` against a local Ollama server.
- "openai": `langchain_openai.ChatOpenAI` against any OpenAI-compatible server (`llm_base_url`).
- "llamacpp": a local GGUF file through llama-cpp-python (`pip install llama-cpp-python`), imported
  only when this backend is used.

Token-counting helpers are never called (some download tokenizer files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from assistant.config import ConfigError

BACKENDS = ("none", "ollama", "openai", "llamacpp")
LLAMA_CPP_MISSING = (
    "llm_backend = \"llamacpp\" には llama-cpp-python が必要ですが、インストールされていません。"
    "`pip install llama-cpp-python` でインストールするか、llm_backend を \"ollama\" / \"openai\" / \"none\" にしてください。"
)


class LLMConfigError(ConfigError):
    """The LLM backend cannot be set up from the configuration; the message is for the user."""


def _role(message: BaseMessage) -> str:
    return {"system": "system", "human": "user", "ai": "assistant"}.get(message.type, "user")


def message_text(message: BaseMessage) -> str:
    """The text of a model reply, whether its content is a string or a list of parts."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
    return "".join(parts)


class LlamaCppChatModel(BaseChatModel):
    """A minimal chat model over `llama_cpp.Llama.create_chat_completion` for a local GGUF file."""

    model_path: str
    temperature: float = 0.0
    n_ctx: int = 4096
    max_tokens: int = 1024
    _llama: Any = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        try:
            import llama_cpp  # noqa: PLC0415 - optional dependency, loaded only for this backend
        except ImportError as exc:
            raise LLMConfigError(LLAMA_CPP_MISSING) from exc
        if not Path(self.model_path).is_file():
            raise LLMConfigError(f"GGUF ファイルが見つかりません: {self.model_path}（llm_model_path を確認してください）")
        self._llama = llama_cpp.Llama(model_path=self.model_path, n_ctx=self.n_ctx, verbose=False)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        response = self._llama.create_chat_completion(
            messages=[{"role": _role(m), "content": message_text(m)} for m in messages],
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stop=stop,
        )
        text = response["choices"][0]["message"].get("content") or ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def create_chat_model(settings: Any) -> BaseChatModel | None:
    """The configured chat model, or None for the LLM-free default."""
    backend = (settings.llm_backend or "none").strip().lower()
    if backend not in BACKENDS:
        raise LLMConfigError(f"llm_backend が不正です: {settings.llm_backend!r}（{' / '.join(BACKENDS)} のいずれか）")
    if backend == "none":
        return None
    if backend == "llamacpp":
        if not settings.llm_model_path:
            raise LLMConfigError("llm_backend = \"llamacpp\" には llm_model_path（GGUF ファイル）の指定が必要です")
        return LlamaCppChatModel(model_path=str(Path(settings.llm_model_path).expanduser()), temperature=settings.llm_temperature)
    if not settings.llm_model:
        raise LLMConfigError(f"llm_backend = \"{backend}\" には llm_model（モデル名）の指定が必要です")
    if backend == "ollama":
        from langchain_ollama import ChatOllama

        return ChatOllama(
            model=settings.llm_model,
            base_url=settings.llm_base_url or None,
            temperature=settings.llm_temperature,
        )
    if not settings.llm_base_url:
        raise LLMConfigError("llm_backend = \"openai\" には llm_base_url（OpenAI 互換サーバーの URL）の指定が必要です")
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key or "not-needed",
        temperature=settings.llm_temperature,
        max_retries=0,
        timeout=120,
    )
