"""Start-up benchmark: process start → first CLI answer, and process start → web page answering.

Each measurement is a fresh process on an ASSISTANT_HOME whose index and model caches exist (run once
before measuring, as after `bash scripts/run.sh`). Reports wall seconds and the peak memory (RSS) of
the process, and writes benchmarks/results/start[-LABEL].json.

Run: .venv/bin/python benchmarks/start.py [--home DIR] [--label NAME] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "子どもの医療費助成で地方税関係情報を照会できますか"
PAGE_TIMEOUT = 300


def _env(home: Path | None) -> dict[str, str]:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False"}
    if home is not None:
        env["ASSISTANT_HOME"] = str(home)
    return env


def memory_mb(pid: int) -> dict[str, float]:
    """The process's memory now, in MB: peak and current resident size, the private (anonymous) part, the
    part that maps files (dictionary, libraries, index arrays; shared with every process mapping them), and
    the proportional share (each shared page divided by the processes that map it)."""
    fields = {"VmHWM": "peak", "VmRSS": "resident", "RssAnon": "private", "RssFile": "file_mapped"}
    found: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in fields:
                found[fields[name]] = round(int(value.split()[0]) / 1024, 1)
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                found["proportional"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return found


def cli_first_answer(home: Path | None) -> tuple[float, float]:
    """(seconds, peak MB) of `assistant ask QUESTION --json` from process start to its exit."""
    command = ["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "assistant.cli", "ask", QUESTION, "--json"]
    done = subprocess.run(command, env=_env(home), cwd=ROOT, capture_output=True, text=True, check=True)
    seconds, kilobytes = done.stderr.strip().splitlines()[-1].split()
    json.loads(done.stdout)  # a real answer came back
    return float(seconds), int(kilobytes) / 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_page(home: Path | None) -> tuple[float, float, dict[str, float]]:
    """(seconds until the page answers, seconds until the first chat answer, memory after it) of `python app.py`."""
    port = _free_port()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], env=_env(home), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        page = _wait_for_page(url, started, process)
        from gradio_client import Client

        client = Client(url, verbose=False)
        client.predict("bench-start", QUESTION, [], api_name="/chat")
        answered = time.perf_counter() - started
        return page, answered, memory_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_for_page(url: str, started: float, process: subprocess.Popen) -> float:
    while time.perf_counter() - started < PAGE_TIMEOUT:
        if process.poll() is not None:
            raise RuntimeError(f"app.py ended with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the page did not answer")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, help="ASSISTANT_HOME to start on (default: the configured one)")
    parser.add_argument("--label", default="")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cli_first_answer(args.home)  # builds what is missing; not measured
    cli = [cli_first_answer(args.home) for _ in range(args.runs)]
    app = [app_page(args.home) for _ in range(args.runs)]
    results = {
        "runs": args.runs,
        "cli_first_answer_s": {"median": round(statistics.median(c[0] for c in cli), 2), "all": [c[0] for c in cli]},
        "cli_peak_mb": round(max(c[1] for c in cli), 1),
        "app_page_s": {"median": round(statistics.median(a[0] for a in app), 2), "all": [round(a[0], 2) for a in app]},
        "app_first_answer_s": round(statistics.median(a[1] for a in app), 2),
        "app_peak_mb_after_first_answer": max(a[2].get("peak", 0.0) for a in app),
        "app_memory_mb_after_first_answer": app[-1][2],
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }
    name = f"start-{args.label}.json" if args.label else "start.json"
    out = ROOT / "benchmarks" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
