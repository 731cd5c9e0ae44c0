"""Credentials never reach the board: every string of a run manifest is redacted before it is stored
or rendered.

Model specs go through :meth:`medsbench.models.spec.ModelSpec.redacted`, URLs anywhere in text through
:func:`medsbench.models.spec.redact_text` (userinfo dropped, ``key``/``token`` query parameters
masked), ``name=value`` pairs whose name looks secret are masked, a command-line option that names a
secret (``--api-key X``) has its value masked, and OpenAI-style keys (``sk-...``) are masked wherever
they appear.
"""

from __future__ import annotations

import re
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.models.spec import KINDS, REDACTED, ModelSpec, redact_text

_SECRET_WORD = r"(?:[\w.-]*[_.-])?(?:api[_-]?key|key|token|secret|password|passwd|auth|authorization|signature|credentials?)"
_SECRET_KEY = re.compile(rf"(?i)^{_SECRET_WORD}$")
_PAIR = re.compile(rf"(?i)\b({_SECRET_WORD})(\s*[=:]\s*)([^\s,&;'\"]+)")
_OPTION = re.compile(rf"(?i)^--?{_SECRET_WORD}$")
_KEYLIKE = re.compile(r"\b(sk|pk|rk|hf|ghp|gho|xox[abp])[-_][A-Za-z0-9_-]{8,}")
_SPEC_HEAD = re.compile(rf"^({'|'.join(KINDS)})(:|,|$)")


def redact_string(text: str) -> str:
    """``text`` without credentials (model specs, URLs, ``key=value`` pairs, API-key-looking words)."""
    if _SPEC_HEAD.match(text.strip()):
        try:
            text = ModelSpec.parse(text).redacted()
        except MedsbenchError:
            pass
    text = redact_text(text)
    text = _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _KEYLIKE.sub(REDACTED, text)


def redact_value(value: Any) -> Any:
    """A JSON-like value with every string redacted; values under secret-looking keys are masked."""
    if isinstance(value, str):
        return redact_string(value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and _SECRET_KEY.match(k) and isinstance(v, str) and v else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        out: list[Any] = []
        hide_next = False
        for item in value:
            if hide_next and isinstance(item, str):
                out.append(REDACTED)
                hide_next = False
                continue
            hide_next = isinstance(item, str) and bool(_OPTION.match(item))
            out.append(redact_value(item))
        return out
    return value
