#!/usr/bin/env bash
# Set up and run the main job: build MedS-Bench task files from the public raw data
# in ../shared/data/raw, then evaluate the embedded default model (SmolLM2-135M-Instruct)
# on a few items of every available task, offline, and print the results table.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
RAW=${RAW:-../shared/data/raw}
WORK=${WORK:-medsbench-work}
LIMIT=${LIMIT:-5}
bash scripts/setup.sh
. .venv/bin/activate
medsbench data convert --all --raw "$RAW" --out "$WORK/tasks"
medsbench data stats "$WORK/tasks"
medsbench eval --model default --tasks available --limit "$LIMIT" --workspace "$WORK" --out "$WORK/runs/smollm2-default"
