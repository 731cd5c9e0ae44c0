"""``ModelSpec``: a model spec string parsed once (``kind:target,key=value,...``).

Forms: ``default[,k=v]`` | ``hf:PATH_OR_NAME[,k=v]`` | ``vllm:PATH_OR_NAME[,k=v]`` |
``openai:MODEL[,base_url=..,k=v]``. Every place that needs a model's kind, a run name, a display
name or a loggable form of the spec asks this class; credentials in URLs never leave it
(:meth:`ModelSpec.redacted`, :func:`redact_url`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from medsbench.errors import MedsbenchError

KINDS = ("default", "hf", "vllm", "openai")
SECRET_PARAM = re.compile(r"(key|token|secret|password|passwd|auth|signature|sig)", re.I)
REDACTED = "REDACTED"


def redact_url(url: str) -> str:
    """``url`` without userinfo and with secret-looking query parameters masked.

    ``http://user:sk-1@host:8000/v1?api_key=x&a=1`` -> ``http://host:8000/v1?api_key=REDACTED&a=1``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if not parts.scheme and not parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if SECRET_PARAM.search(k) else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Every URL inside ``text`` redacted (for error messages and logs that may quote a URL)."""
    return re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+", lambda m: redact_url(m.group(0)), text)


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    target: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> ModelSpec:
        """``kind:target,key=value,...``; one clear line for anything malformed."""
        spec = (spec or "").strip()
        if not spec:
            raise MedsbenchError("empty model spec (try: default, hf:PATH, openai:MODEL, vllm:PATH)")
        if ":" not in spec.split(",")[0]:  # "default,threads=1" reads as "default:,threads=1"
            head, _, tail = spec.partition(",")
            spec = f"{head}:" + (f",{tail}" if tail else "")
        kind, _, rest = spec.partition(":")
        if kind not in KINDS:
            shown = redact_text(spec.rstrip(":"))
            raise MedsbenchError(f"unknown model spec '{shown}' (kinds: {', '.join(KINDS)}; e.g. hf:/path/to/model)")
        parts = rest.split(",") if rest else []
        target = ""
        if parts and "=" not in parts[0]:
            target = parts.pop(0).strip()
        options: dict[str, str] = {}
        for part in parts:
            if not part.strip():
                continue
            key, eq, value = part.partition("=")
            if not eq:
                raise MedsbenchError(f"bad option '{redact_text(part)}' in model spec (expected key=value)")
            options[key.strip()] = value.strip()
        if kind in ("hf", "vllm", "openai") and not target:
            raise MedsbenchError(f"model spec '{kind}:' needs a target: {kind}:PATH_OR_NAME")
        return cls(kind, target, options)

    def __str__(self) -> str:
        return self.redacted()

    def redacted(self) -> str:
        """The spec string with credentials removed: what manifests, logs and pages may show."""
        head = f"{self.kind}:{self.target}" if self.target else self.kind
        opts = []
        for key, value in self.options.items():
            if SECRET_PARAM.search(key):
                value = REDACTED
            elif "://" in value:
                value = redact_url(value)
            opts.append(f"{key}={value}")
        return ",".join([head, *opts])

    @property
    def display_name(self) -> str:
        """A short model name: the last path part of the target (names never carry paths), or the kind."""
        if self.kind == "default":
            return "SmolLM2-135M-Instruct"
        base = self.target.rstrip("/\\")
        base = re.split(r"[/\\]", base)[-1].replace("..", ".")
        return base or self.kind

    @property
    def run_name(self) -> str:
        """``default`` -> default, ``hf:/m/tuned`` -> hf-tuned, ``openai:gpt-4o`` -> openai-gpt-4o."""
        target = self.target.rstrip("/").rsplit("/", 1)[-1]
        name = f"{self.kind}-{target}" if target else self.kind
        return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:80] or "run"
