"""Task files (official MedS/SNI JSON and our JSONL layout), validation and the catalog."""

from medsbench.tasks.catalog import (
    INS_CATEGORIES,
    Catalog,
    CatalogEntry,
    catalog,
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
from medsbench.tasks.workspace import (
    find_task_files,
    load_task,
    resolve_tasks,
    task_order,
    validate_selected,
)

__all__ += ["Problem", "load_task", "resolve_tasks", "task_order", "validate_file", "validate_selected"]
