"""Who is asking, and what they may do.

With login on, the role decides. With login off (the local single-user default), document
administration is allowed only to requests from this machine (a loopback client address).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from assistant.accounts import ROLE_ADMIN, ROLE_HELPDESK, AccountStore

DENIED_ADMIN_LOCAL = "資料管理はこのコンピューター（localhost）からのアクセスでのみ利用できます"
DENIED_ADMIN_ROLE = "資料管理には管理者の権限が必要です"
DENIED_REPLY_ROLE = "回答案作成はヘルプデスクまたは管理者の権限が必要です"


class AccessDenied(PermissionError):
    """The current user may not use this function; the message is for the user."""


@dataclass(frozen=True)
class Viewer:
    name: str | None
    role: str | None
    host: str | None
    auth_enabled: bool

    @property
    def is_local(self) -> bool:
        return is_loopback(self.host)

    @property
    def can_administer(self) -> bool:
        return self.role == ROLE_ADMIN if self.auth_enabled else self.is_local

    @property
    def can_draft_replies(self) -> bool:
        return self.role in {ROLE_HELPDESK, ROLE_ADMIN} if self.auth_enabled else True

    def require_admin(self) -> None:
        if not self.can_administer:
            raise AccessDenied(DENIED_ADMIN_ROLE if self.auth_enabled else DENIED_ADMIN_LOCAL)

    def require_reply(self) -> None:
        if not self.can_draft_replies:
            raise AccessDenied(DENIED_REPLY_ROLE)

    def label(self) -> str:
        if not self.auth_enabled:
            place = "このコンピューター" if self.is_local else "ネットワーク経由"
            return f"ログインなし（{place}からの利用）"
        return f"ログイン中: {self.name}（{self.role or '役割未設定'}）"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def client_host(request: Any) -> str | None:
    """The peer address of a gr.Request (None when unknown)."""
    client = getattr(request, "client", None) if request is not None else None
    return getattr(client, "host", None) if client is not None else None


def viewer_for(request: Any, *, auth_enabled: bool, accounts: AccountStore | None) -> Viewer:
    name = getattr(request, "username", None) if request is not None else None
    role = accounts.role_of(name) if (auth_enabled and accounts is not None and name) else None
    return Viewer(name=name, role=role, host=client_host(request), auth_enabled=auth_enabled)
