"""Small helpers shared by the pages: errors for the user, the current viewer, session ids and owners, audit rows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr

from assistant.audit import ACCESS_DENIED
from assistant.dialogue.store import DialogueStore
from assistant.knowledge.hosts import link_label
from assistant.ownership import NotOwner
from assistant.ui.access import AccessDenied, Viewer, viewer_for
from assistant.ui.context import UIContext
from assistant.validation import InputError, ServiceError, validate_session_id

# Concurrency groups: answers run side by side; document administration runs one at a time
# in its own group, so a long ingest or rebuild never holds up the chat.
ANSWER_GROUP = "answers"
ANSWER_LIMIT = 4
ADMIN_GROUP = "admin"
ADMIN_LIMIT = 1
_log = logging.getLogger(__name__)


def user_error(message: str) -> gr.Error:
    return gr.Error(message, title="エラー", print_exception=False)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn library errors meant for the user into a Japanese error toast."""
    try:
        yield
    except gr.Error:
        raise
    except (InputError, ServiceError, AccessDenied) as exc:
        raise user_error(str(exc)) from exc
    except KeyError as exc:
        raise user_error(str(exc.args[0]) if exc.args else "見つかりません") from exc
    except ValueError as exc:
        raise user_error(str(exc)) from exc
    except Exception as exc:  # an unexpected failure: logged in full, told to the user in Japanese
        _log.exception("unexpected error while serving a request")
        raise user_error(
            f"処理中に予期しないエラーが発生しました（{type(exc).__name__}）。時間をおいてもう一度お試しください。"
            "続く場合は管理者に連絡してください"
        ) from exc


def current_viewer(context: UIContext, request: gr.Request | None) -> Viewer:
    auth = context.settings.auth_enabled
    return viewer_for(request, auth_enabled=auth, accounts=context.accounts if auth else None)


def require_session(session_id: str | None) -> str:
    session = (session_id or "").strip()
    if not session:
        raise user_error("セッション ID が空です。新しいセッションを始めるか、以前の ID を入力してください")
    try:
        return validate_session_id(session)
    except InputError as exc:
        raise user_error(str(exc)) from exc


def require_owner(context: UIContext, viewer: Viewer, kind: str, session_id: str) -> None:
    """With login on, the session must be the viewer's (a new one becomes theirs); refused and audited otherwise."""
    if viewer.owner is None:
        return
    exists = DialogueStore.for_settings(context.settings).load_session(kind, session_id) is not None
    try:
        context.owners.claim(kind, session_id, viewer.owner, exists=exists)
    except NotOwner as exc:
        context.audit.record(ACCESS_DENIED, viewer.actor(), session_id=session_id, detail=f"{kind}: {exc}")
        raise user_error(str(exc)) from exc


def export_format(label: str, formats: dict[str, str]) -> str:
    """The file format for a radio label such as "Word (.docx)" (the bare format, e.g. "docx", is accepted too)."""
    fmt = formats.get(label) or (label if label in formats.values() else None)
    if fmt is None:
        raise user_error(f"形式は {' / '.join(formats)} から選んでください")
    return fmt


def source_lookup(context: UIContext) -> Callable[[str], dict[str, Any] | None]:
    """The indexed chunk of a citation, its original sources labelled when a link is not the publisher's page."""

    def lookup(source_id: str) -> dict[str, Any] | None:
        try:
            source = context.assistant.source(source_id)
        except KeyError:
            return None
        corpus = context.settings.corpus_dir
        origins = [s | {"link_label": link_label(s.get("url"), corpus)} for s in source.get("sources", [])]
        return source | {"sources": origins}

    return lookup
