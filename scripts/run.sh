#!/usr/bin/env bash
# Set up (idempotent) and start the assistant on its embedded default: no LLM, no network.
# Starts the web app when app.py is present, otherwise the command-line consultation.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False
.venv/bin/assistant index build
.venv/bin/assistant reader train
if [ -f app.py ]; then
  exec .venv/bin/python app.py "$@"
fi
exec .venv/bin/assistant consult
