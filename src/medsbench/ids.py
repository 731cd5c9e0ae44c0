"""Identifiers read from files, and paths made from them: one grammar, checked where a file is read.

Every identifier that crosses a stage boundary (a task id, a run or judge name in a run folder, a
board store or a submission; an instance id in a task or prediction file) is untrusted input. Two
grammars cover them:

- :data:`NAME` for identifiers that may become a file name, a URL part or a CSS/HTML anchor: task
  ids (``task57``, ``ddi_drug_ner``), run names, judge names, slugs. ASCII letters, digits, ``.``,
  ``_`` and ``-``; starts with a letter or digit; at most 128 characters; never ``..``.
- :data:`ITEM_ID` for instance ids, which are data and never a path: any printable text without
  control characters, at most 512 characters.

Display names (a model's name on the board) are free text: they are escaped where rendered and
turned into a :func:`slug` where a path needs them.

Paths: :func:`inside` joins parts under a root and refuses any result that does not resolve inside
that root (a check, not only a sanitiser: symlinks and ``..`` are resolved first).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from medsbench.errors import MedsbenchError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ITEM_ID_MAX = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def is_name(value: object) -> bool:
    """True when ``value`` is a string of the :data:`NAME` grammar."""
    return isinstance(value, str) and NAME.fullmatch(value) is not None and ".." not in value


def check_name(value: object, what: str, where: str | None = None) -> str:
    """``value`` if it is a :data:`NAME` (a task id, run or judge name), else a one-line error."""
    if not is_name(value):
        shown = repr(value)[:60]
        raise MedsbenchError(
            f"{what} {shown} is not a valid name (letters, digits, '.', '_', '-'; at most 128 characters; no '..')",
            where=where,
        )
    return str(value)


def is_item_id(value: object) -> bool:
    """True when ``value`` is a printable instance id of at most :data:`ITEM_ID_MAX` characters."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= ITEM_ID_MAX
        and value.strip() == value
        and _CONTROL.search(value) is None
    )


def check_item_id(value: object, where: str | None = None) -> str:
    """``value`` if it is a valid instance id, else a one-line error naming ``where``."""
    if not is_item_id(value):
        shown = repr(value)[:60]
        raise MedsbenchError(
            f"instance id {shown} is not valid (printable text without control characters or surrounding "
            f"spaces, 1-{ITEM_ID_MAX} characters)",
            where=where,
        )
    return str(value)


def check_text(value: object, what: str, where: str | None = None, max_len: int = 200) -> str:
    """A display name (free text): printable, no control characters, at most ``max_len`` characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > max_len or _CONTROL.search(value):
        raise MedsbenchError(f"{what} {repr(value)[:60]} is not valid (printable text, 1-{max_len} characters)",
                             where=where)
    return value


def slug(text: str, fallback: str = "x") -> str:
    """A :data:`NAME` made from free text (``"MMedIns-Llama 3"`` -> ``"MMedIns-Llama-3"``)."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    out = re.sub(r"\.{2,}", ".", out)[:128].strip("-.")
    return out if is_name(out) else fallback


def inside(root: str | os.PathLike[str], *parts: str) -> Path:
    """``root/parts...``, refused unless it resolves inside ``root`` (``..``, absolute parts and
    symlinks pointing out are all caught, because the check runs on the resolved paths)."""
    base = Path(root).resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise MedsbenchError(f"refusing to write outside {base}: {'/'.join(parts)!r}")
    return target
