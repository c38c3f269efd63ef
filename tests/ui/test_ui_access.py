"""Who may administer documents and draft replies (login off: localhost only; login on: roles)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from assistant.accounts import ROLE_ADMIN, ROLE_HELPDESK, ROLE_STAFF, AccountStore
from assistant.ui.access import (
    AccessDenied,
    ClientAddressMiddleware,
    Viewer,
    current_client,
    is_loopback,
    is_relayed,
    viewer_for,
)


def request(host: str | None, username: str | None = None, headers: dict[str, str] | None = None) -> SimpleNamespace:
    return SimpleNamespace(client=SimpleNamespace(host=host) if host else None, username=username, headers=headers or {})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", [None, "", "192.168.1.10", "10.0.0.1", "::ffff:192.168.1.2", "example.jp"])
def test_other_hosts_are_not_local(host: str | None) -> None:
    assert not is_loopback(host)


def test_without_login_only_localhost_administers() -> None:
    local = viewer_for(request("127.0.0.1"), auth_enabled=False, accounts=None)
    remote = viewer_for(request("192.168.10.5"), auth_enabled=False, accounts=None)
    unknown = viewer_for(None, auth_enabled=False, accounts=None)
    assert local.can_administer and local.can_draft_replies
    assert not remote.can_administer and remote.can_draft_replies
    assert not unknown.can_administer
    local.require_admin()
    with pytest.raises(AccessDenied, match="localhost"):
        remote.require_admin()


def test_with_login_roles_decide(tmp_path) -> None:  # noqa: ANN001
    store = AccountStore(f"sqlite:///{tmp_path / 'a.db'}")
    store.add("staff", ROLE_STAFF, "password-1")
    store.add("desk", ROLE_HELPDESK, "password-2")
    store.add("admin", ROLE_ADMIN, "password-3")
    viewers = {name: viewer_for(request("127.0.0.1", name), auth_enabled=True, accounts=store) for name in ("staff", "desk", "admin")}
    assert [viewers[n].can_administer for n in ("staff", "desk", "admin")] == [False, False, True]
    assert [viewers[n].can_draft_replies for n in ("staff", "desk", "admin")] == [False, True, True]
    with pytest.raises(AccessDenied, match="管理者"):
        viewers["staff"].require_admin()
    with pytest.raises(AccessDenied, match="ヘルプデスク"):
        viewers["staff"].require_reply()
    assert "admin（管理者）" in viewers["admin"].label()
    remote_admin = viewer_for(request("192.168.1.2", "admin"), auth_enabled=True, accounts=store)
    assert remote_admin.can_administer  # with login on, the role decides, not the address


def test_labels_are_japanese() -> None:
    assert "このコンピューター" in Viewer(None, None, "127.0.0.1", False).label()
    assert "ネットワーク経由" in Viewer(None, None, "10.1.1.1", False).label()


@pytest.mark.parametrize("header", ["X-Forwarded-For", "x-real-ip", "Forwarded", "Via", "X-Forwarded-Host"])
def test_with_login_off_a_relayed_request_is_not_local(header: str) -> None:
    relayed = viewer_for(request("127.0.0.1", headers={header: "127.0.0.1"}), auth_enabled=False, accounts=None)
    assert not relayed.is_local and not relayed.can_administer
    assert "中継サーバー経由" in relayed.label()
    with pytest.raises(AccessDenied, match="中継サーバー経由では使えません"):
        relayed.require_admin()
    assert is_relayed({header.upper(): "x"}) and not is_relayed({"User-Agent": "x"}) and not is_relayed(None)


def test_the_audit_actor_of_a_viewer(tmp_path) -> None:  # noqa: ANN001
    store = AccountStore(f"sqlite:///{tmp_path / 'a.db'}")
    store.add("desk", ROLE_HELPDESK, "password-2")
    logged_in = viewer_for(request("192.0.2.4", "desk"), auth_enabled=True, accounts=store).actor()
    assert (logged_in.user, logged_in.role, logged_in.client, logged_in.address) == ("desk", ROLE_HELPDESK, "ネットワーク経由", "192.0.2.4")
    anonymous = viewer_for(request("127.0.0.1", "ignored"), auth_enabled=False, accounts=None)
    assert anonymous.owner is None and anonymous.actor().who == "ログインなし" and anonymous.actor().client == "このコンピューター"


def test_the_middleware_tells_the_login_check_who_is_asking() -> None:
    seen = []

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        seen.append(current_client())

    middleware = ClientAddressMiddleware(app)
    plain = {"type": "http", "client": ("192.0.2.8", 5000), "headers": [(b"user-agent", b"x")]}
    proxied = {"type": "http", "client": ("127.0.0.1", 5000), "headers": [(b"x-forwarded-for", b"203.0.113.1")]}
    asyncio.run(middleware(plain, None, None))
    asyncio.run(middleware(proxied, None, None))
    assert seen == [("192.0.2.8", False), ("127.0.0.1", True)]
    assert current_client() == (None, False), "nothing is left behind after the request"
