"""Task files (official MedS/SNI JSON and our JSONL layout), validation and the catalog."""

from medsbench.tasks.catalog import (
    INS_CATEGORIES,
    Catalog,
    CatalogEntry,
    catalog,
    find_task_files,
)
from medsbench.tasks.format import (
    REQUIRED_KEYS,
    Instance,
    Task,
    iter_instances,
    read_meta,
    read_task,
    save_task,
    write_task,
)

__all__ = [
    "INS_CATEGORIES",
    "REQUIRED_KEYS",
    "Catalog",
    "CatalogEntry",
    "Instance",
    "Task",
    "catalog",
    "find_task_files",
    "iter_instances",
    "read_meta",
    "read_task",
    "save_task",
    "write_task",
]

from medsbench.tasks.validate import Problem, validate_file  # noqa: E402

__all__ += ["Problem", "validate_file"]
