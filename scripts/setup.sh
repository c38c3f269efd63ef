#!/usr/bin/env bash
# Create .venv and install the project offline-ready. torch is pinned first so that pip takes the
# local CPU wheel instead of a multi-GB CUDA build pulled in by sentence-transformers.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[test,llm]"
# The package is installed editable, so its byte code is not compiled by pip; where PYTHONDONTWRITEBYTECODE
# is set, every start would compile it again (about 0.25 s of the command line's first answer).
.venv/bin/python -m compileall -q assistant app.py > /dev/null
echo "setup: done ($(.venv/bin/python -c 'import assistant; print(assistant.__version__)'))"
