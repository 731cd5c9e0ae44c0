"""``manifest.json`` of a run folder: the typed record lives in :mod:`medsbench.records.manifest`."""

from medsbench.records.manifest import (
    MANIFEST,
    ManifestTask,
    RunManifest,
    TaskFile,
    now,
    package_versions,
)

__all__ = ["MANIFEST", "ManifestTask", "RunManifest", "TaskFile", "now", "package_versions"]
