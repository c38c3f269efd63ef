#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, browser and slow tests included; then the server
# job: scripts/servers.sh starts PostgreSQL, a Chroma server, two app workers and HAProxy, the tests
# marked `server` run against them with the settings the script prints, and the servers are stopped.
# With arguments, only `pytest ARGS` runs (no servers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -f scripts/install-browser.sh ]; then
  bash scripts/install-browser.sh
fi
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
.venv/bin/python -m pytest -q -m "not server"

echo "test.sh: starting the servers for the tests marked server" >&2
started="$(bash scripts/servers.sh start)"
trap 'bash scripts/servers.sh stop' EXIT
(
  workers=""
  while read -r kind value _rest; do
    case "$kind" in
      URL) export ASSISTANT_TEST_PROXY_URL="$value" ;;
      ENV) export "${value?}" ;;
      WORKER) workers="$workers $value" ;;
    esac
  done <<< "$started"
  export ASSISTANT_TEST_WORKERS="${workers# }"
  .venv/bin/python -m pytest -q -m server tests/servers
)
