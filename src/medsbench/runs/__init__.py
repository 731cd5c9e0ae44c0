"""Evaluation runs: plan, cache, backend, predictions, manifest, resume, shards.

``run_eval`` here generates and records predictions; it scores them only when given a scorer
(``scorer=``), which :func:`medsbench.pipeline.run_eval` (the API to use) passes in.
"""

from medsbench.runs.cache import ResultCache, cache_key
from medsbench.runs.manifest import RunManifest
from medsbench.runs.run import RunResult, run_eval

__all__ = ["ResultCache", "RunManifest", "RunResult", "cache_key", "run_eval"]
