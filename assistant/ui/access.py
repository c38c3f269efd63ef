"""Who is asking, and what they may do.

With login on, the role decides. With login off (the local single-user default), document
administration is allowed only to requests that reach the server directly from this machine: the
socket's peer is a loopback address and the request carries no proxy header (X-Forwarded-For,
Forwarded, X-Real-IP, Via …). Such headers are never trusted to *grant* anything; their presence only
marks a request as relayed, so behind a reverse proxy nobody administers without logging in.
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant.accounts import ROLE_ADMIN, ROLE_HELPDESK, ROLE_STAFF, AccountStore
from assistant.audit import CLIENT_LOCAL, CLIENT_NETWORK, CLIENT_PROXY, Actor
from assistant.retrieve.hybrid import Audience

DENIED_ADMIN_LOCAL = (
    "資料管理はこのコンピューター（localhost）から直接アクセスしたときだけ利用できます"
    "（中継サーバー経由では使えません。共用する場合はログインを有効にしてください）"
)
DENIED_ADMIN_ROLE = "資料管理には管理者の権限が必要です"
DENIED_REPLY_ROLE = "回答案作成はヘルプデスクまたは管理者の権限が必要です"

# Headers that reverse proxies and load balancers add; any of them means "relayed".
FORWARDING_HEADERS = frozenset(
    {
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-server",
        "x-real-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "via",
    }
)


class AccessDenied(PermissionError):
    """The current user may not use this function; the message is for the user."""


@dataclass(frozen=True)
class Viewer:
    name: str | None
    role: str | None
    host: str | None
    auth_enabled: bool
    relayed: bool = False
    municipality: str | None = None  # the account's municipality (login on)

    @property
    def is_local(self) -> bool:
        return not self.relayed and is_loopback(self.host)

    @property
    def client_kind(self) -> str:
        return kind_of_client(self.host, self.relayed)

    @property
    def owner(self) -> str | None:
        """Whose sessions these are: the logged-in user (None with login off, where sessions stay open)."""
        return self.name if self.auth_enabled and self.name else None

    @property
    def audience(self) -> Audience | None:
        """Whose material this viewer's answers may use: a municipal officer's own municipality and public
        material; help-desk staff, administrators and local use without login see everything."""
        if self.auth_enabled and self.role == ROLE_STAFF:
            return Audience(self.municipality)
        return None

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

    def actor(self) -> Actor:
        """This viewer as the audit log records them."""
        return Actor(user=self.owner, role=self.role if self.auth_enabled else None, client=self.client_kind,
                     address=self.host)

    def label(self) -> str:
        if not self.auth_enabled:
            return f"ログインなし（{self.client_kind}からの利用）"
        body = f"、{self.municipality}" if self.municipality else ""
        return f"ログイン中: {self.name}（{self.role or '役割未設定'}{body}）"


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


def is_relayed(headers: Mapping[str, str] | None) -> bool:
    """True when the request passed through a proxy (it carries a forwarding header)."""
    return any(str(name).lower() in FORWARDING_HEADERS for name in (headers or {}))


def viewer_for(request: Any, *, auth_enabled: bool, accounts: AccountStore | None) -> Viewer:
    name = getattr(request, "username", None) if request is not None else None
    known = auth_enabled and accounts is not None and bool(name)
    role = accounts.role_of(name) if known else None  # type: ignore[union-attr]
    municipality = accounts.municipality_of(name) if known else None  # type: ignore[union-attr]
    headers = getattr(request, "headers", None) if request is not None else None
    return Viewer(name=name, role=role, host=client_host(request), auth_enabled=auth_enabled,
                  relayed=is_relayed(headers), municipality=municipality)


# -- the client of the current HTTP request, for the login check ---------------------------------------
# Gradio calls the login function with the name and password only; this middleware remembers who is asking.
_current_client: contextvars.ContextVar[tuple[str | None, bool]] = contextvars.ContextVar(
    "current_client", default=(None, False)
)


class ClientAddressMiddleware:
    """ASGI middleware: keep the peer address and whether the request was relayed for the request's task."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            client = scope.get("client")
            names = {name.decode("latin-1").lower() for name, _ in scope.get("headers", [])}
            token = _current_client.set((client[0] if client else None, is_relayed(dict.fromkeys(names))))
            try:
                await self.app(scope, receive, send)
            finally:
                _current_client.reset(token)
        else:
            await self.app(scope, receive, send)


def current_client() -> tuple[str | None, bool]:
    """(address, relayed) of the HTTP request being handled ((None, False) outside a request)."""
    return _current_client.get()


def kind_of_client(address: str | None, relayed: bool) -> str:
    """このコンピューター / ネットワーク経由 / 中継サーバー経由, as the audit log and the label say."""
    if relayed:
        return CLIENT_PROXY
    return CLIENT_LOCAL if is_loopback(address) else CLIENT_NETWORK
