"""Redaction of secrets: the one place every writer (manifest, logs, errors, board store, site) calls.

URLs are reduced by an allow-list: only the scheme, host, port and path survive
(``http://user:pw@host:8000/v1?pwd=X&credential=Y#Z`` -> ``http://host:8000/v1``); userinfo, query
and fragment never reach a file. In free text every URL is reduced that way, ``name=value`` /
``name: value`` pairs whose name looks secret are masked, a command-line option that names a secret
(``--api-key X``) has its value masked, and API-key-looking words (``sk-...``, ``hf_...``) are masked.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "REDACTED"

_SECRET_WORD = (
    r"(?:[\w.-]*[_.-])?(?:api[_-]?key|key|token|secret|password|passwd|pwd|auth|authorization|signature|sig|"
    r"credentials?)"
)
SECRET_NAME = re.compile(rf"(?i)^{_SECRET_WORD}$")
_PAIR = re.compile(rf"(?i)\b({_SECRET_WORD})(\s*[=:]\s*)([^\s,&;'\"]+)")
_OPTION = re.compile(rf"(?i)^--?{_SECRET_WORD}$")
_KEYLIKE = re.compile(r"\b(sk|pk|rk|hf|ghp|gho|xox[abp])[-_][A-Za-z0-9_-]{8,}")
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """Scheme, host, port and path of ``url``; nothing else (an unparseable URL becomes REDACTED)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return REDACTED
    if not parts.scheme and not parts.netloc:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_text(text: str) -> str:
    """``text`` without credentials: URLs reduced, secret ``name=value`` pairs and key-like words masked."""

    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        core = url.rstrip(".,;:!?)]}")  # sentence punctuation after a URL is not part of it
        return redact_url(core) + url[len(core) :]

    text = _URL.sub(one, text)
    text = _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _KEYLIKE.sub(REDACTED, text)


def redact(value: Any) -> Any:
    """A JSON-like value with every string redacted; string values under secret-looking keys masked,
    and the value after a secret-naming command-line option (``--api-key X``) masked."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and SECRET_NAME.match(k) and isinstance(v, str) and v else redact(v))
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
            out.append(redact(item))
        return out
    return value
