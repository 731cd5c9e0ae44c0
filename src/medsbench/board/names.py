"""Names on the board: display names (free text, escaped where shown) and the slugs paths are made of.

Identifiers with a grammar (task ids, run and judge names, instance ids) are checked with
:mod:`medsbench.ids`; this module adds what only the board needs: the check of a model's display
name and :func:`unique_slug`, the file name of a model or run page (a readable
:func:`medsbench.ids.slug` part and a short hash of the exact name, so ``GPT-4`` and ``GPT 4``
never share a page).
"""

from __future__ import annotations


from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_text
from medsbench.ids import check_name, check_text, slug

NAME_MAX = 100
REPORTED_PREFIX = "reported-"  # run name of a seeded (published) model: reported-<slug of its name>
POOLED_PREFIX = "pooled-"  # task id of a pooled group of the official summarization script (pooled-CT)


def check_model_name(name: object, what: str = "model name", where: str | None = None) -> str:
    """A model's display name: printable text of at most :data:`NAME_MAX` characters, and never
    something that reads as a path (``/``, ``\\``, ``..``)."""
    text = check_text(name.strip() if isinstance(name, str) else name, what, where, max_len=NAME_MAX)
    if "/" in text or "\\" in text or ".." in text:
        raise MedsbenchError(f"{what} {text!r} contains '/', '\\' or '..' (path traversal is not allowed)", where=where)
    return text


def unique_slug(name: str) -> str:
    """A file-system and URL safe name for ``name``: its slug (at most 40 characters) and 8 hex
    characters of its sha256, e.g. ``GPT-4-5fa1b2c3``. Always a :data:`medsbench.ids.NAME`."""
    readable = slug(name)[:40].strip("-.") or "x"
    return check_name(f"{readable}-{sha256_text(name)[:8]}", "slug")


def reported_run_name(model: str) -> str:
    """The run name of a seeded model's published numbers."""
    return check_name(REPORTED_PREFIX + slug(model), "reported run name")


def pooled_task_id(group: str) -> str:
    """The task id of a pooled group (``CT`` -> ``pooled-CT``)."""
    return check_name(POOLED_PREFIX + group, "pooled group")

LOGLIK_SUFFIX = "+loglik"  # the protocol label of likelihood-scored runs (medsbench+loglik): never ranked with generated ones
