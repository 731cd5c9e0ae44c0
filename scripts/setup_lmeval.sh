#!/usr/bin/env bash
# Set up .venv-lmeval: lm-evaluation-harness 0.4.13 for bench/eval_bench.py's `lmeval` way, idempotent.
#
# A venv of its own so that lm-eval's dependencies (evaluate, sacrebleu, rouge_score, ...) never
# enter the project's environment. torch is the CPU wheel (2.13.0+cpu, what .venv has; nothing pulls
# a CUDA build) and transformers the version .venv carries when .venv exists (same model code on
# both sides of the comparison), else lm-eval's own choice.
#
# Usage: bash scripts/setup_lmeval.sh   (then: python bench/eval_bench.py --lmeval-python .venv-lmeval/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-lmeval
LMEVAL_SPEC=${LMEVAL_SPEC:-lm-eval==0.4.13}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0+cpu}
t0=$(date +%s)
transformers_spec=transformers
for main in .venv/bin/python "${MAIN_PYTHON:-}"; do
  if [ -n "$main" ] && [ -x "$main" ]; then
    v=$("$main" -c "from importlib.metadata import version; print(version('transformers'))" 2>/dev/null || true)
    [ -n "$v" ] && transformers_spec="transformers==$v" && break
  fi
done
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
. "$VENV/bin/activate"
want="$LMEVAL_SPEC $TORCH_SPEC $transformers_spec accelerate"
if [ "$(cat "$VENV/.lmeval-spec" 2>/dev/null)" != "$want" ]; then
  links=()
  for d in ${PIP_FIND_LINKS:-} $(python -m pip config get global.find-links 2>/dev/null || true); do
    [ -e "${d#file://}" ] && links+=(--find-links "$d")
  done
  # accelerate: HFLM imports it (lm-eval does not declare it)
  python -m pip install -q "${links[@]}" "$TORCH_SPEC" "$transformers_spec" "$LMEVAL_SPEC" accelerate
  echo "$want" >"$VENV/.lmeval-spec"
fi
python -c "from importlib.metadata import version as v; print('lm-eval', v('lm_eval'), '| torch', v('torch'), '| transformers', v('transformers'))"
echo "$VENV ready in $(( $(date +%s) - t0 )) s ($(du -sh "$VENV" | cut -f1))"
