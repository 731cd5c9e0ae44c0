"""Evaluation runs: plan, cache, backend, predictions, manifest, resume."""

from medsbench.runs.cache import ResultCache, cache_key
from medsbench.runs.manifest import RunManifest
from medsbench.runs.run import RunResult, run_eval

__all__ = ["ResultCache", "RunManifest", "RunResult", "cache_key", "run_eval"]
