"""Backend selection from the configuration, offline (models are constructed, never called)."""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.llm import fill_template, load_prompt
from assistant.llm.backends import LlamaCppChatModel, LLMConfigError, create_chat_model


def _settings(**values: object) -> Settings:
    return dataclasses.replace(Settings(home=Path("/nonexistent")), **values)


def test_default_backend_is_llm_free() -> None:
    assert create_chat_model(_settings()) is None


def test_ollama_backend_constructs_offline() -> None:
    from langchain_ollama import ChatOllama

    model = create_chat_model(_settings(llm_backend="ollama", llm_model="qwen2.5:7b", llm_base_url="http://127.0.0.1:9"))
    assert isinstance(model, ChatOllama)
    assert model.model == "qwen2.5:7b"


def test_openai_compatible_backend_needs_a_base_url() -> None:
    from langchain_openai import ChatOpenAI

    with pytest.raises(LLMConfigError, match="llm_base_url"):
        create_chat_model(_settings(llm_backend="openai", llm_model="local"))
    model = create_chat_model(_settings(llm_backend="openai", llm_model="local", llm_base_url="http://127.0.0.1:9/v1"))
    assert isinstance(model, ChatOpenAI)
    assert str(model.openai_api_base).startswith("http://127.0.0.1:9")


def test_model_name_is_required() -> None:
    with pytest.raises(LLMConfigError, match="llm_model"):
        create_chat_model(_settings(llm_backend="ollama"))


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(LLMConfigError, match="llm_backend"):
        create_chat_model(_settings(llm_backend="gpt"))


def test_llamacpp_without_the_package_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as when not installed
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(LLMConfigError, match="pip install llama-cpp-python"):
        create_chat_model(_settings(llm_backend="llamacpp", llm_model_path=str(gguf)))
    with pytest.raises(LLMConfigError, match="llm_model_path"):
        create_chat_model(_settings(llm_backend="llamacpp"))


def test_llamacpp_wrapper_calls_create_chat_completion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []

    class FakeLlama:
        def __init__(self, model_path: str, n_ctx: int, verbose: bool) -> None:
            self.model_path = model_path

        def create_chat_completion(self, messages, temperature, max_tokens, stop):  # noqa: ANN001, ANN201
            calls.append({"messages": messages, "temperature": temperature})
            return {"choices": [{"message": {"role": "assistant", "content": "回答です[1]。"}}]}

    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=FakeLlama))
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    model = create_chat_model(_settings(llm_backend="llamacpp", llm_model_path=str(gguf)))
    assert isinstance(model, LlamaCppChatModel)
    reply = model.invoke([("system", "規則"), ("human", "質問")])
    assert reply.content == "回答です[1]。"
    assert [m["role"] for m in calls[0]["messages"]] == ["system", "user"]


def test_llamacpp_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=object))
    with pytest.raises(LLMConfigError, match="GGUF"):
        create_chat_model(_settings(llm_backend="llamacpp", llm_model_path=str(tmp_path / "missing.gguf")))


def test_prompts_are_files_with_placeholders() -> None:
    prompts = Settings().prompts_dir
    system = load_prompt(prompts, "answer_system")
    user = load_prompt(prompts, "answer_user")
    assert "データ" in system and "[1]" in system
    assert {"{question}", "{passages}", "{draft}"} <= {p for p in ("{question}", "{passages}", "{draft}") if p in user}
    filled = fill_template(user, question="質問{draft}", passages="P", draft="D")
    assert "質問{draft}" in filled  # values are not re-expanded
    with pytest.raises(LLMConfigError):
        load_prompt(prompts, "no-such-prompt")
