"""Starting the app: with login off it listens on this machine only, unless open access is configured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ui_support import PROJECT_ROOT, RunningApp, app_environment, copy_index, free_port, start_app, stop_app


def start(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "app.py"), *args, "--port", str(free_port())],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env=app_environment(home, **env), timeout=60,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.jp"])
def test_login_off_on_a_shared_address_is_refused_in_japanese(tmp_path: Path, host: str) -> None:
    done = start(tmp_path / "home", "--host", host)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ログインなし" in done.stderr and "auth_enabled" in done.stderr and "allow_open_access" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "home" / "index").exists(), "refused before building anything"


def test_a_bad_login_setting_is_reported_before_starting(tmp_path: Path) -> None:
    done = start(tmp_path / "home", ASSISTANT_LOGIN_MAX_FAILURES="0")
    assert done.returncode == 2 and "login_max_failures" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["ASSISTANT_ALLOW_OPEN_ACCESS", "ASSISTANT_AUTH_ENABLED"])
def test_a_shared_address_with_login_or_open_access_configured_starts(
    tmp_path: Path, app_home: Path, running_app: RunningApp, setting: str
) -> None:
    home = tmp_path / "home"
    copy_index(app_home, home)
    app = start_app(home, tmp_path / "app.log", "--host", "0.0.0.0", **{setting: "true"})
    try:
        log = app.log_text()
        assert "で起動します" in log
        if setting == "ASSISTANT_ALLOW_OPEN_ACCESS":
            assert "注意: ログインなしで 0.0.0.0 に公開しています" in log
    finally:
        stop_app(app)
