"""Consultations belong to the logged-in user who started them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from assistant.ownership import NotOwner, SessionOwners


@pytest.fixture
def owners(tmp_path: Path) -> SessionOwners:
    return SessionOwners(f"sqlite:///{tmp_path / 'owners.db'}")


def test_the_first_user_owns_a_new_session_and_others_are_refused(owners: SessionOwners) -> None:
    owners.claim("chat", "chat-1", "tanaka", exists=False)
    owners.claim("chat", "chat-1", "tanaka", exists=True)  # the owner comes back
    assert owners.owner("chat", "chat-1") == "tanaka"
    for other in ("desk", "admin"):
        with pytest.raises(NotOwner, match="別の利用者"):
            owners.claim("chat", "chat-1", other, exists=True)
    owners.claim("checklist", "chat-1", "desk", exists=False)  # the same id of another kind is another session
    assert owners.owner("checklist", "chat-1") == "desk"


def test_a_session_made_without_login_is_not_handed_to_whoever_asks_first(owners: SessionOwners) -> None:
    with pytest.raises(NotOwner, match="ログインなし"):
        owners.claim("chat", "cli-session", "tanaka", exists=True)
    assert owners.owner("chat", "cli-session") is None


def test_two_users_claiming_at_once_get_one_owner(owners: SessionOwners) -> None:
    def claim(user: str) -> str:
        try:
            owners.claim("chat", "race", user, exists=False)
            return user
        except NotOwner:
            return ""

    with ThreadPoolExecutor(max_workers=8) as pool:
        winners = {w for w in pool.map(claim, [f"user{i}" for i in range(16)]) if w}
    assert winners == {owners.owner("chat", "race")}
