"""Helpers for the web app tests: start and stop `python app.py`, checklist answers (fixtures are in conftest.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
START_TIMEOUT_S = 180  # the first start builds the index


NETGUARD = Path(__file__).resolve().parent / "netguard"


@dataclass
class RunningApp:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    log: Path
    network_log: Path
    tmpdir: Path  # the app's own TMPDIR, so tests can see what it writes outside ASSISTANT_HOME

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def outside_connections(self) -> list[str]:
        """Connections or name lookups the app tried towards other machines (see netguard/sitecustomize.py)."""
        if not self.network_log.exists():
            return []
        return self.network_log.read_text(encoding="utf-8").splitlines()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_environment(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_HOME=str(home),
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def start_app(home: Path, log: Path, *args: str, **extra_env: str) -> RunningApp:
    """`python app.py --port <free port>` with its own ASSISTANT_HOME and TMPDIR; returns once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    network_log = log.with_suffix(".network")
    tmpdir = log.parent / f"{log.stem}-tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = app_environment(home, NETGUARD_LOG=str(network_log), TMPDIR=str(tmpdir), **extra_env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(NETGUARD), env.get("PYTHONPATH", "")) if p)
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "app.py"), "--port", str(port), *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    app = RunningApp(url=url, home=home, process=process, log=log, network_log=network_log, tmpdir=tmpdir)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{app.log_text()}")
        if _answers(url):
            return app
        time.sleep(0.5)
    stop_app(app)
    raise RuntimeError(f"app.py did not answer within {START_TIMEOUT_S} s:\n{app.log_text()}")


def stop_app(app: RunningApp) -> None:
    if app.process.poll() is None:
        app.process.terminate()
        try:
            app.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            app.process.kill()
            app.process.wait(timeout=10)


def copy_index(source_home: Path, target_home: Path) -> None:
    """Start a second app quickly: reuse the first app's index and model cache."""
    for name in ("index", "cache"):
        if (source_home / name).is_dir():
            shutil.copytree(source_home / name, target_home / name, dirs_exist_ok=True)


# Answers a municipal officer would give, by checklist step (any other step gets "はい").
CHECKLIST_ANSWERS: dict[str, str] = {
    "profile-municipality": "〇〇市",
    "profile-department": "こども家庭課",
    "profile-person": "山田 太郎",
    "profile-contact": "03-5511-7729",
    "affair-name": "子ども医療費助成事務",
    "affair-basis": "○○市子ども医療費助成条例",
    "affair-body": "市長",
    "affair-targets": "中学生までの子どもとその保護者",
    "affair-purpose": "子どもの保健の向上と福祉の増進",
    "affair-benefit": "医療費の自己負担分の助成",
    "case": "1",
    "notification": "新規",
    "schedule": "2027年10月",
    "commission-questions": "審査にはどのくらいの期間がかかりますか？",
}


def checklist_answer(result: dict, repeats: int) -> str:
    """The next answer for a checklist result; skip a question that was asked twice already."""
    if repeats >= 2:
        return "スキップ"
    return CHECKLIST_ANSWERS.get(str(result.get("step")), "はい")


def pick_file(page, selector: str, path: Path, artifacts: Path) -> None:  # noqa: ANN001
    """Choose a file in a Gradio file picker and wait until it is uploaded and listed in the picker.

    On a loaded machine either step can be slow; a screenshot of the picker is kept when it never shows."""
    with page.expect_response(lambda r: "/upload" in r.url and r.request.method == "POST", timeout=120_000) as sent:
        page.locator(f"{selector} input[type='file']").set_input_files(str(path))
    assert sent.value.ok, f"upload answered {sent.value.status}"
    try:
        # The picker shows the stem and the extension in separate elements (on separate lines when narrow).
        page.wait_for_function(f"document.querySelector({selector!r})?.innerText.includes({path.stem!r})", timeout=60_000)
    except Exception:
        page.screenshot(path=str(artifacts / "file-picker-not-listed.png"), full_page=True)
        raise
