"""What the pages share: the Assistant, the dialogue services (created once, on first use), the accounts,
the session owners and the audit log."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.config import Settings
from assistant.accounts import AccountStore
from assistant.audit import AuditLog
from assistant.files import path_inside
from assistant.ownership import SessionOwners

if TYPE_CHECKING:
    from assistant.dialogue.chat import ChatService
    from assistant.dialogue.checklist import ChecklistService
    from assistant.dialogue.reply import ReplyDrafter
    from assistant.service import Assistant

T = TypeVar("T")


@dataclass
class UIContext:
    assistant: Assistant
    _services: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)  # factories may use other services

    @property
    def settings(self) -> Settings:
        return self.assistant.settings

    def _once(self, name: str, factory: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._services:
                self._services[name] = factory()
            return self._services[name]

    @property
    def audit(self) -> AuditLog:
        """Opened once per process; opening purges rows past the retention period."""
        return self._once("audit", lambda: AuditLog.for_settings(self.settings))

    @property
    def accounts(self) -> AccountStore:
        return self._once("accounts", lambda: AccountStore.for_settings(self.settings, audit=self.audit))

    @property
    def owners(self) -> SessionOwners:
        return self._once("owners", lambda: SessionOwners(self.settings.resolved_database_url))

    @property
    def chat(self) -> ChatService:
        def make() -> ChatService:
            from assistant.dialogue.chat import ChatService

            return ChatService(self.assistant)

        return self._once("chat", make)

    @property
    def checklist(self) -> ChecklistService:
        def make() -> ChecklistService:
            from assistant.dialogue.checklist import ChecklistService

            return ChecklistService(self.assistant)

        return self._once("checklist", make)

    @property
    def reply(self) -> ReplyDrafter:
        def make() -> ReplyDrafter:
            from assistant.dialogue.reply import ReplyDrafter

            return ReplyDrafter(self.assistant)

        return self._once("reply", make)

    @property
    def web_exports_dir(self) -> Path:
        """Files made for download; the only folder of ASSISTANT_HOME that the web server may serve."""
        folder = self.settings.exports_dir / "web"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def export_path(self, stem: str, suffix: str) -> Path:
        """A fresh, hard-to-guess file name for a download, checked to lie in the web exports folder."""
        return path_inside(self.web_exports_dir, f"{stem}-{secrets.token_hex(8)}.{suffix}")

    @property
    def uploads_dir(self) -> Path:
        """The folder that names uploaded documents: uploading the same file name again updates that document.

        Nothing is written there; an original is kept only when the administrator asks (DocumentStore).
        """
        return self.settings.documents_dir / "uploads"

    def upload_path(self, name: str) -> Path:
        """Where an upload called `name` is kept: its base name only, checked to lie in the uploads folder."""
        return path_inside(self.uploads_dir, Path(name).name)


def new_session_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"
